"""``pyimgano-infer --plugin FILE --model NAME``: a detector written outside the package, fitted and scored."""

import json
import os
import pathlib

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "plugin_patch_knn.py"
TINY = {"backbone": "tiny_resnet", "pretrained": False, "image_size": 32, "coreset_ratio": 0.5, "batch_size": 4}


def test_a_plugin_file_adds_a_detector_that_fits_and_scores(run_cli, image_dirs):
    run = run_cli(
        "--plugin", EXAMPLE,
        "--model", "example_patch_knn",
        "--model-kwargs", json.dumps(TINY),
        "--train-dir", image_dirs["train"],
        "--input", image_dirs["test"],
    )
    assert run.code == 0, run.err
    records = run.records()
    assert [os.path.basename(r["input"]) for r in records] == ["a_good.png", "b_good.png", "c_bad.png"]
    assert all(isinstance(r["score"], float) for r in records)
    assert records[2]["score"] > max(records[0]["score"], records[1]["score"])


def test_an_unknown_model_without_its_plugin_is_a_usage_error(run_cli, image_dirs):
    run = run_cli("--model", "example_patch_knn_not_loaded", "--train-dir", image_dirs["train"], "--input", image_dirs["test"])
    assert run.code == 2
    assert "example_patch_knn_not_loaded" in run.err


def test_a_missing_plugin_file_is_a_usage_error_naming_it(run_cli, image_dirs, tmp_path):
    missing = tmp_path / "nowhere.py"
    run = run_cli("--plugin", missing, "--model", "example_patch_knn", "--train-dir", image_dirs["train"],
                  "--input", image_dirs["test"])
    assert run.code == 2
    assert "nowhere.py" in run.err
