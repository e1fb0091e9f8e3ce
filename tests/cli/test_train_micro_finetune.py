"""The ``micro-finetune-autoencoder`` recipe end to end with ``vision_ae`` on a tiny ``custom`` dataset:
``pyimgano-train`` trains, calibrates, evaluates and exports; ``pyimgano-infer --from-run`` reproduces the
run's records; a run interrupted during training and re-run with the same config resumes after the last
finished epoch and ends with the state of an uninterrupted run."""

import io
import json

import cv2
import jax
import numpy as np
import pytest

import pyimgano
from pyimgano.cli.train import main as train_main
from pyimgano.workbench.recipes import build_config, recipe_info
from pyimgano.workbench.runner import run_workbench

# 8 train images, 6 fitted (2 held out): batch 3 -> 2 steps per epoch, 3 epochs.
TINY_AE = {"image_size": 32, "widths": [8, 16], "latent_channels": 8}
TRAINING = {"epochs": 3, "batch_size": 3}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, make_frame_fn, write_png_fn):
    root = tmp_path_factory.mktemp("micro_ft") / "parts"
    for i in range(8):
        write_png_fn(root / "train" / "normal" / f"{i:02d}.png", make_frame_fn(i))
    for i in range(2):
        write_png_fn(root / "test" / "normal" / f"n{i}.png", make_frame_fn(50 + i))
        write_png_fn(root / "test" / "anomaly" / f"a{i}.png", make_frame_fn(60 + i, defect=True))
        mask = np.zeros((32, 32), np.uint8)
        mask[32 // 3 : 32 // 3 + 8, 16:24] = 255  # where make_frame paints its 8x8 defect
        path = root / "ground_truth" / "anomaly" / f"a{i}_mask.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imencode(".png", mask)[1].tofile(str(path))
    return root


def _sections(dataset, output):
    return {"recipe": "micro-finetune-autoencoder", "dataset": {"name": "custom", "root": str(dataset)},
            "model": {"model_kwargs": TINY_AE}, "training": TRAINING, "output": {"output_dir": str(output)}}


@pytest.fixture(scope="module")
def trained_run(dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("micro_ft_run")
    cfg = root / "cfg.json"
    cfg.write_text(json.dumps(_sections(dataset, root / "run")), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    code = train_main(["--config", str(cfg), "--export-infer-config"], stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    return root / "run"


def test_the_recipe_is_available_now_that_vision_ae_is_registered():
    info = recipe_info("micro-finetune-autoencoder")
    assert info["available"] and info["unavailable_reason"] is None


def test_the_recipe_trains_vision_ae_and_writes_a_complete_run(trained_run):
    report = json.loads((trained_run / "report.json").read_text())
    assert report["status"] == "complete"
    metrics = json.loads((trained_run / "categories" / "default" / "report.json").read_text())
    assert json.dumps(metrics)  # plain JSON
    state = pyimgano.load_state(trained_run / "checkpoints" / "default" / "detector_state.safetensors")
    assert state.detector == "vision_ae" and state.threshold is not None
    assert (state.config.epochs, state.config.batch_size, state.config.lr) == (3, 3, 0.001)  # recipe lr default
    assert tuple(state.config.widths) == (8, 16) and tuple(state.config.image_size) == (32, 32)
    summary = json.loads((trained_run / "checkpoints" / "default" / "training" / "training.json").read_text())
    assert summary["epoch"] == 3 and len(summary["history"]) == 3
    assert summary["history"][-1]["loss"] < summary["history"][0]["loss"]


def test_infer_from_the_run_reproduces_the_runs_scores(trained_run, dataset, run_cli):
    lines = (trained_run / "categories" / "default" / "per_image.jsonl").read_text().splitlines()
    expected = {json.loads(x)["input"].rsplit("/", 1)[-1]: json.loads(x)["score"] for x in lines}
    again = run_cli("--from-run", trained_run, "--input", dataset / "test")
    assert again.code == 0, again.err
    got = {r["input"].rsplit("/", 1)[-1]: r["score"] for r in again.records()}
    assert got.keys() == expected.keys() and len(got) == 4
    np.testing.assert_allclose([got[k] for k in sorted(got)], [expected[k] for k in sorted(got)], rtol=1e-5)


class _Stop(Exception):
    pass


def test_an_interrupted_run_rerun_with_the_same_config_resumes_and_equals_an_uninterrupted_one(
    dataset, trained_run, tmp_path
):
    run = tmp_path / "run"
    config = build_config(_sections(dataset, run))

    def stop_in_epoch_two(stage, done, total):
        if stage == "fit" and done >= total // 2:  # step 3 of 6: after epoch 1's checkpoint
            raise _Stop

    with pytest.raises(_Stop):
        run_workbench(config, progress=stop_in_epoch_two)
    assert json.loads((run / "report.json").read_text())["status"] == "failed"
    assert json.loads((run / "checkpoints" / "default" / "training" / "training.json").read_text())["epoch"] == 1

    seen = []
    run_workbench(config, progress=lambda stage, done, total: seen.append(done) if stage == "fit" else None)
    assert seen[0] == 2  # resumed after epoch 1: progress starts at 2 of 6
    assert json.loads((run / "report.json").read_text())["status"] == "complete"
    resumed = pyimgano.load_state(run / "checkpoints" / "default" / "detector_state.safetensors")
    whole = pyimgano.load_state(trained_run / "checkpoints" / "default" / "detector_state.safetensors")
    for a, b in zip(jax.tree.leaves(resumed.model), jax.tree.leaves(whole.model)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert resumed.threshold == whole.threshold
