"""``pyimgano-infer`` serves a trained detector (the autoencoder) fitted from --train-dir and from a state file."""

import json

import pytest

import pyimgano

AE = {"image_size": 32, "widths": [8, 16], "latent_channels": 8, "epochs": 2, "batch_size": 2}


def test_a_trained_detector_fits_from_train_dir_and_scores_every_input(run_cli, image_dirs, tmp_path):
    run = run_cli(
        "--model", "vision_ae", "--model-kwargs", json.dumps(AE), "--train-dir", image_dirs["train"],
        "--input", image_dirs["test"], "--include-maps",
    )
    assert run.code == 0, run.err
    records = run.records()
    assert len(records) == 3
    for record in records:
        assert isinstance(record["score"], float) and record["label"] in (0, 1)
        assert record["anomaly_map"]["shape"] == [32, 32]


def test_a_saved_trained_state_is_served_with_checkpoint_path(run_cli, image_dirs, make_frame_fn, tmp_path):
    frames = [make_frame_fn(i) for i in range(4)]
    state = pyimgano.fit("vision_ae", frames, "rgb_u8_hwc", **AE)
    path = pyimgano.save_state(state, tmp_path / "ae.pyimgano")
    run = run_cli("--checkpoint-path", path, "--input", image_dirs["test"])
    assert run.code == 0, run.err
    scores = [r["score"] for r in run.records()]
    expected = pyimgano.score(state, sorted((image_dirs["root"] / "test").glob("*.png")))
    # Same model; the CLI batches differently, so the last float bits may differ.
    assert scores == pytest.approx([float(s) for s in expected], rel=1e-5)
