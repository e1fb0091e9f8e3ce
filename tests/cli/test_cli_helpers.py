"""Artifact names, the record writer and the progress bar of ``pyimgano.cli``."""

import io
import json
import os

import pytest

from pyimgano.cli._artifacts import MANIFEST_NAME, ArtifactFolder, artifact_names, safe_component
from pyimgano.cli.common import UsageError
from pyimgano.cli._progress import Progress
from pyimgano.cli._records import RecordWriter, error_record


@pytest.mark.parametrize(
    "part, expected",
    [("a b  c", "a_b_c"), ("ünï", "n"), ("...", "input"), ("", "input"), ("..x", "x")],
)
def test_hostile_path_components_are_reduced_to_safe_names(part, expected):
    assert safe_component(part) == expected


@pytest.mark.parametrize("stem", ["../../x", "/abs/olute", "..", "a/../../../b", "\x00nul", "漢字", "..\\..\\win"])
def test_artifact_paths_never_leave_the_output_folder(tmp_path, stem):
    (name,) = artifact_names([stem])
    path = ArtifactFolder(tmp_path, "png").path_for(name)
    assert tmp_path.resolve() in path.resolve().parents
    assert ".." not in name.split("/") and path.suffix == ".png"


def test_artifact_names_keep_the_relative_path_and_never_collide():
    names = artifact_names(["good/000", "broken_large/000", "a b", "a_b", "A_B", "x/y z"])
    assert names[:2] == ["good/000", "broken_large/000"]
    assert names[2:5] == ["a_b__000002", "a_b__000003", "A_B__000004"]  # same name after cleaning, any case
    assert names[5] == "x/y_z"
    assert len({n.lower() for n in names}) == len(names)


def test_a_second_run_replaces_only_the_files_the_first_one_wrote(tmp_path):
    first = ArtifactFolder(tmp_path, "npy")
    first.prepare(["good/000", "good/001"])
    for name in ("good/000", "good/001"):
        first.path_for(name).parent.mkdir(parents=True, exist_ok=True)
        first.path_for(name).write_bytes(b"old")
    (tmp_path / "notes.txt").write_text("keep me")
    ArtifactFolder(tmp_path, "npy").prepare(["good/000"])
    assert not (tmp_path / "good" / "000.npy").exists() and not (tmp_path / "good" / "001.npy").exists()
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    assert json.loads((tmp_path / MANIFEST_NAME).read_text()) == {"files": ["good/000.npy"]}


def test_a_foreign_file_in_the_way_is_never_overwritten(tmp_path):
    (tmp_path / "good").mkdir()
    (tmp_path / "good" / "000.npy").write_bytes(b"someone else's")
    with pytest.raises(UsageError, match="not written by a pyimgano run"):
        ArtifactFolder(tmp_path, "npy").prepare(["good/000"])
    assert (tmp_path / "good" / "000.npy").read_bytes() == b"someone else's"


def test_each_record_is_on_disk_as_a_full_line_before_the_next_is_written(tmp_path):
    path = tmp_path / "r.jsonl"
    with RecordWriter(path) as writer:
        writer.write({"b": 1, "a": float("nan")})
        assert path.read_text() == '{"a": null, "b": 1}\n'
        writer.write({"index": 1})
        assert len(path.read_text().splitlines()) == 2


def test_error_records_carry_type_message_and_stage():
    rec = error_record(3, "x.png", ValueError("cannot load image 'x.png': bad\nmore"), "load")
    assert rec == {"index": 3, "input": "x.png", "status": "error",
                   "error": {"type": "ValueError", "message": "cannot load image 'x.png': bad", "stage": "load"}}
    json.dumps(rec)


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_the_progress_bar_draws_only_on_a_terminal():
    tty, pipe = _Tty(), io.StringIO()
    for stream in (tty, pipe):
        with Progress("infer", 4, stream=stream) as bar:
            bar.update(4)
    assert "infer [" in tty.getvalue() and "4/4" in tty.getvalue()
    assert pipe.getvalue() == ""


def test_every_defects_config_field_has_a_cli_flag_named_after_it():
    from pyimgano.cli.infer import build_parser
    from pyimgano.defects import DefectsConfig

    flags = {a.dest: a.option_strings for a in build_parser()._actions}
    for field in DefectsConfig.field_names():
        dest = field if field == "roi_xyxy_norm" else "defect__" + field
        (flag,) = [f for f in flags[dest] if not f.startswith("--no-")]
        assert flag.lstrip("-").replace("-", "_").removeprefix("defect_") == field


def test_every_infer_flag_has_help_text_and_abbreviations_are_refused():
    from pyimgano.cli.infer import build_parser, main

    parser = build_parser()
    assert all(action.help for action in parser._actions if action.option_strings)
    err = io.StringIO()
    assert main(["--inp", "x"], stdout=io.StringIO(), stderr=err) == 2
    assert "unrecognized arguments: --inp" in err.getvalue()


@pytest.mark.parametrize("prog", ["pyimgano.cli.infer", "pyimgano.cli.benchmark"])
def test_every_command_prints_its_version(prog):
    import importlib

    from pyimgano import __version__

    out = io.StringIO()
    assert importlib.import_module(prog).main(["--version"], stdout=out, stderr=io.StringIO()) == 0
    assert out.getvalue().strip().endswith(__version__)
