"""Exit codes, error records and flag validation of ``pyimgano-infer``."""

import json
import os
import shutil

import pytest


@pytest.fixture()
def dir_with_corrupt(image_dirs, tmp_path):
    """The three test images plus ``b_corrupt.png`` (not an image), sorted second."""
    folder = tmp_path / "inputs"
    shutil.copytree(image_dirs["test"], folder)
    (folder / "b_corrupt.png").write_bytes(b"this is not a png")
    return folder


def test_one_corrupt_file_gives_one_error_record_and_exit_code_1(run_cli, checkpoint, dir_with_corrupt, tmp_path):
    out = tmp_path / "r.jsonl"
    run = run_cli("--checkpoint-path", checkpoint, "--input", dir_with_corrupt, "--continue-on-error", "--save-jsonl", out)
    assert run.code == 1
    records = run.records(out)
    assert [r["index"] for r in records] == [0, 1, 2, 3]
    errors = [r for r in records if r.get("status") == "error"]
    assert len(errors) == 1
    err = errors[0]
    assert set(err) == {"index", "input", "status", "error"}
    assert err["input"].endswith("b_corrupt.png")
    assert set(err["error"]) == {"type", "message", "stage"}
    assert err["error"]["stage"] == "load" and "b_corrupt.png" in err["error"]["message"]
    for r in records:
        if r is not err:
            assert isinstance(r["score"], float) and "status" not in r
    assert "1 of 4 inputs failed" in run.err


def test_without_continue_on_error_a_corrupt_input_exits_2_naming_it_and_keeps_earlier_records(
    run_cli, checkpoint, dir_with_corrupt, tmp_path
):
    out = tmp_path / "r.jsonl"
    run = run_cli("--checkpoint-path", checkpoint, "--input", dir_with_corrupt, "--save-jsonl", out)
    assert run.code == 2
    errors = [line for line in run.err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "b_corrupt.png" in errors[0]
    records = run.records(out)
    assert [os.path.basename(r["input"]) for r in records] == ["a_good.png"]


def test_max_errors_stops_the_run_once_exceeded(run_cli, checkpoint, dir_with_corrupt, tmp_path):
    (dir_with_corrupt / "a_corrupt.png").write_bytes(b"")
    run = run_cli("--checkpoint-path", checkpoint, "--input", dir_with_corrupt, "--continue-on-error",
                  "--max-errors", "1")
    assert run.code == 1
    records = run.records()
    # a_corrupt, a_good, b_corrupt: the second error exceeds the limit and ends the run.
    assert [r.get("status") for r in records] == ["error", None, "error"]
    assert "--max-errors 1" in run.err


@pytest.mark.parametrize(
    "argv, named",
    [
        (["--mask-format", "jpg"], ["'jpg'", "'png'", "'npy'"]),
        (["--tile-map-reduce", "blend"], ["'blend'", "'hann'"]),
        (["--defect-min-area", "-3"], ["'-3'", "integer >= 0"]),
        (["--calibration-quantile", "1.5"], ["'1.5'", "[0, 1]"]),
        (["--model-kwargs", "{bad json"], ["{bad json", "JSON object"]),
        (["--model-kwargs", "[1, 2]"], ["[1, 2]", "JSON object"]),
    ],
)
def test_bad_flag_values_exit_2_naming_the_value_and_the_accepted_ones(run_cli, argv, named):
    run = run_cli(*argv, "--input", "x.png")
    assert run.code == 2
    for text in named:
        assert text in run.err


def test_an_unknown_model_exits_2_listing_the_registered_names(run_cli, image_dirs):
    run = run_cli("--model", "vision_nope", "--train-dir", image_dirs["train"], "--input", image_dirs["test"])
    assert run.code == 2
    assert "vision_nope" in run.err and "vision_patchcore" in run.err


def test_an_unknown_model_kwarg_exits_2_listing_the_accepted_fields(run_cli, image_dirs):
    run = run_cli("--model", "vision_patchcore", "--model-kwargs", '{"colour": 1}', "--train-dir",
                  image_dirs["train"], "--input", image_dirs["test"])
    assert run.code == 2
    assert "colour" in run.err and "coreset_ratio" in run.err


def test_an_unknown_preset_exits_2_listing_the_presets(run_cli, image_dirs):
    run = run_cli("--preset", "industrial-ultra", "--train-dir", image_dirs["train"], "--input", image_dirs["test"])
    assert run.code == 2
    assert "industrial-ultra" in run.err and "industrial-balanced" in run.err


def test_an_unfitted_model_without_train_dir_or_checkpoint_exits_2(run_cli, image_dirs):
    run = run_cli("--model", "vision_patchcore", "--input", image_dirs["test"])
    assert run.code == 2
    assert "--train-dir" in run.err and "--checkpoint-path" in run.err


def test_defects_without_a_pixel_threshold_source_fail_early_naming_the_three_ways(run_cli, checkpoint, image_dirs,
                                                                                  tmp_path):
    out = tmp_path / "r.jsonl"
    run = run_cli("--checkpoint-path", checkpoint, "--input", image_dirs["test"], "--defects", "--save-jsonl", out)
    assert run.code == 2
    assert "--pixel-threshold" in run.err and "infer-config" in run.err and "--train-dir" in run.err
    assert not out.exists(), "nothing is scored before the failure"


def test_defect_flags_without_defects_are_refused(run_cli, checkpoint, image_dirs):
    run = run_cli("--checkpoint-path", checkpoint, "--input", image_dirs["test"], "--pixel-threshold", "0.5")
    assert run.code == 2 and "--defects" in run.err


def test_missing_inputs_exit_2_naming_the_path(run_cli, checkpoint, tmp_path):
    missing = tmp_path / "nowhere"
    run = run_cli("--checkpoint-path", checkpoint, "--input", missing)
    assert run.code == 2 and str(missing) in run.err


def test_a_missing_checkpoint_exits_2_naming_it(run_cli, image_dirs, tmp_path):
    run = run_cli("--checkpoint-path", tmp_path / "none.safetensors", "--input", image_dirs["test"])
    assert run.code == 2 and "none.safetensors" in run.err


def test_list_models_with_tags_prints_valid_json(run_cli):
    run = run_cli("--list-models", "--tags", "numpy,pixel_map", "--json")
    assert run.code == 0
    names = json.loads(run.out)
    assert isinstance(names, list) and "vision_patchcore" in names and names == sorted(names)


def test_list_models_text_prints_one_name_per_line(run_cli):
    run = run_cli("--list-models")
    assert run.code == 0 and "vision_patchcore" in run.out.splitlines()


def test_list_models_with_an_unknown_tag_exits_2_listing_the_known_tags(run_cli):
    run = run_cli("--list-models", "--tags", "numpy,shiny")
    assert run.code == 2 and "shiny" in run.err and "pixel_map" in run.err


def test_model_info_json_describes_tags_and_config_fields(run_cli):
    run = run_cli("--model-info", "vision_patchcore", "--json")
    assert run.code == 0
    info = json.loads(run.out)
    assert info["name"] == "vision_patchcore"
    assert {"numpy", "pixel_map"} <= set(info["tags"])
    assert "coreset_ratio" in [f["name"] for f in info["config"]]


def test_a_stride_larger_than_the_tile_exits_2_before_any_work(run_cli, checkpoint, image_dirs, tmp_path):
    out = tmp_path / "r.jsonl"
    run = run_cli("--checkpoint-path", checkpoint, "--input", image_dirs["test"], "--tile-size", "8", "--tile-stride",
                  "16", "--save-jsonl", out)
    assert run.code == 2 and "stride" in run.err
    assert not out.exists()


def test_help_exits_0_and_lists_every_spec_flag(run_cli):
    run = run_cli("--help")
    assert run.code == 0
    for flag in ("--model-kwargs", "--preset", "--checkpoint-path", "--backbone", "--train-dir", "--input-format",
                 "--calibration-quantile", "--include-maps", "--save-maps", "--postprocess", "--tile-size",
                 "--tile-stride", "--tile-score-reduce", "--tile-score-topk", "--tile-map-reduce", "--save-jsonl",
                 "--defects", "--save-masks", "--mask-format", "--pixel-threshold", "--pixel-threshold-strategy",
                 "--pixel-normal-quantile", "--defect-border-ignore-px", "--defect-map-smoothing-sigma",
                 "--defect-hysteresis-low", "--defect-min-solidity", "--defect-merge-nearby-max-gap-px",
                 "--defect-max-regions-sort-by", "--roi-xyxy-norm", "--defects-image-space", "--save-overlays",
                 "--infer-config", "--from-run", "--from-run-category", "--batch-size", "--seed",
                 "--continue-on-error", "--max-errors", "--profile-json", "--list-models", "--tags", "--json",
                 "--model-info"):
        assert flag in run.out, flag
