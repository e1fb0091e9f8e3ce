"""``--save-run`` writes a deployable state that ``--from-run`` / ``--infer-config`` reproduce exactly;
headless runs say what they do on stderr; a closed stdout pipe ends quietly."""

import io
import json
import re

import pytest

from pyimgano.cli.infer import main


@pytest.fixture(scope="module")
def saved_run(run_cli, image_dirs, tiny_patchcore_kwargs, tmp_path_factory):
    root = tmp_path_factory.mktemp("saved_run")
    run = run_cli(
        "--model", "vision_patchcore", "--model-kwargs", json.dumps(tiny_patchcore_kwargs),
        "--train-dir", image_dirs["train"], "--input", image_dirs["test"], "--defects", "--defect-min-area", "2",
        "--save-run", root / "run", "--save-jsonl", root / "fit.jsonl",
    )
    assert run.code == 0, run.err
    return root, run


def test_a_saved_run_reproduces_scores_labels_and_regions_exactly(run_cli, image_dirs, saved_run):
    root, fitted = saved_run
    expected = fitted.records(root / "fit.jsonl")
    assert all("label" in r and r["defects"]["pixel_threshold_provenance"]["source"] == "holdout" for r in expected)
    config = root / "run" / "artifacts" / "infer_config.json"
    for flag, value, name in (("--from-run", root / "run", "a.jsonl"), ("--infer-config", config, "b.jsonl")):
        again = run_cli(flag, value, "--input", image_dirs["test"], "--defects", "--save-jsonl", root / name)
        assert again.code == 0, again.err
        assert again.records(root / name) == expected


def test_the_saved_infer_config_names_the_state_and_its_settings(saved_run):
    root, _ = saved_run
    payload = json.loads((root / "run" / "artifacts" / "infer_config.json").read_text())
    assert payload["model"] == {"name": "vision_patchcore", "checkpoint_path": "../checkpoints/detector_state.safetensors"}
    assert payload["threshold_provenance"]["source"] == "holdout" and payload["defects"]["min_area"] == 2
    assert payload["defects"]["pixel_threshold"] > 0 and payload["schema_version"] == 1


def test_save_run_needs_train_dir(run_cli, checkpoint, image_dirs, tmp_path):
    run = run_cli("--checkpoint-path", checkpoint, "--input", image_dirs["test"], "--save-run", tmp_path / "r")
    assert run.code == 2 and "--save-run DIR needs --train-dir" in run.err


def test_a_headless_run_writes_a_start_and_a_summary_line_and_quiet_silences_them(run_cli, checkpoint, image_dirs):
    run = run_cli("--checkpoint-path", checkpoint, "--input", image_dirs["test"])
    lines = run.err.strip().splitlines()
    assert re.match(r"pyimgano-infer: scoring 3 input\(s\) with vision_patchcore on \d+ x cpu; image threshold ", lines[0])
    assert lines[-1].startswith("pyimgano-infer: done: 3 of 3 input(s) scored (") and "0 error(s)" in lines[-1]
    quiet = run_cli("-q", "--checkpoint-path", checkpoint, "--input", image_dirs["test"])
    assert quiet.code == 0 and quiet.err == "" and quiet.records() == run.records()


class _ClosedPipe(io.StringIO):
    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_stdout_pipe_ends_the_run_quietly(checkpoint, image_dirs):
    err = io.StringIO()
    code = main(["--checkpoint-path", checkpoint, "--input", image_dirs["test"]], stdout=_ClosedPipe(), stderr=err)
    assert code == 141
    assert "error" not in err.getvalue() and "Traceback" not in err.getvalue()


def test_a_rerun_into_the_same_maps_folder_leaves_no_stale_maps(run_cli, checkpoint, image_dirs, tmp_path):
    maps = tmp_path / "maps"
    first = run_cli("--checkpoint-path", checkpoint, "--input", image_dirs["test"], "--save-maps", maps)
    second = run_cli("--checkpoint-path", checkpoint, "--input", image_dirs["test"] + "/c_bad.png", "--save-maps", maps)
    assert first.code == second.code == 0, second.err
    assert sorted(p.name for p in maps.iterdir()) == [".pyimgano-artifacts.json", "c_bad.npy"]
    assert second.records()[0]["anomaly_map"]["path"] == str(maps / "c_bad.npy")


def test_a_foreign_file_in_an_artifact_folder_stops_the_run_before_any_work(run_cli, checkpoint, image_dirs, tmp_path):
    maps = tmp_path / "maps"
    maps.mkdir()
    (maps / "a_good.npy").write_bytes(b"not ours")
    run = run_cli("--checkpoint-path", checkpoint, "--input", image_dirs["test"], "--save-maps", maps)
    assert run.code == 2 and "not written by a pyimgano run" in run.err and run.out == ""
    assert (maps / "a_good.npy").read_bytes() == b"not ours"
