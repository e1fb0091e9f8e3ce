"""Artifact names, the record writer and the progress bar of ``pyimgano.cli``."""

import io
import json
import os

import pytest

from pyimgano.cli._artifacts import artifact_name, artifact_path, safe_stem
from pyimgano.cli._progress import Progress
from pyimgano.cli._records import RecordWriter, error_record


@pytest.mark.parametrize(
    "stem, expected",
    [
        ("../../x", "x"),
        ("/etc/passwd", "passwd"),
        ("a b  c", "a_b_c"),
        ("ünï", "n"),
        ("...", "input"),
        ("", "input"),
        ("..\\..\\win", "win"),
    ],
)
def test_hostile_stems_are_reduced_to_safe_names(stem, expected):
    assert safe_stem(stem) == expected


@pytest.mark.parametrize("stem", ["../../x", "/abs/olute", "..", "a/../../../b", "\x00nul", "漢字"])
def test_artifact_paths_never_leave_the_output_folder(tmp_path, stem):
    path = artifact_path(tmp_path, 7, stem, "png")
    assert path.resolve().parent == tmp_path.resolve()
    assert path.name.startswith("000007_") and path.name.endswith(".png")


def test_artifact_names_are_index_prefixed():
    assert artifact_name(12, "part one", "npy") == "000012_part_one.npy"


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
    from pyimgano.cli.infer import DEFECT_FLAGS
    from pyimgano.defects import DefectsConfig

    fields = {field for _, field, _ in DEFECT_FLAGS} | {"roi_xyxy_norm"}
    assert fields == set(DefectsConfig.field_names())
    for flag, field, _ in DEFECT_FLAGS:
        assert flag.lstrip("-").replace("-", "_").removeprefix("defect_") == field
