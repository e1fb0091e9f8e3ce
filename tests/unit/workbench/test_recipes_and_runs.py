"""The recipe registry, and how a run folder is claimed and written when a recipe fails."""

import json

import pytest

from pyimgano.registry import list_detectors
from pyimgano.workbench import recipes
from pyimgano.workbench.recipes import build_config, get_recipe, list_recipes, recipe_info, register_recipe
from pyimgano.workbench.runner import run_workbench
from pyimgano.workbench.schema import ConfigError

BUILTINS = ["anomalib-train", "industrial-adapt", "industrial-adapt-fp40", "industrial-adapt-highres",
            "micro-finetune-autoencoder"]


def test_every_builtin_recipe_is_listed_and_described():
    assert set(BUILTINS) <= set(list_recipes())
    for name in BUILTINS:
        info = recipe_info(name)
        assert info["name"] == name and len(info["description"]) > 20
        assert info["details"] or name == "anomalib-train"
        json.dumps(info)  # plain JSON


def test_register_recipe_refuses_duplicates_and_bad_arguments(monkeypatch):
    monkeypatch.setattr(recipes, "RECIPES", dict(recipes.RECIPES))
    spec = register_recipe("mine", lambda c, cat, ctx: None, description="my recipe",
                           defaults={"model": {"name": "vision_padim"}})
    assert get_recipe("mine") is spec and "mine" in list_recipes()
    assert build_config({"recipe": "mine", "dataset": {"name": "custom", "root": "/d"}}).model.name == "vision_padim"
    with pytest.raises(ValueError, match="recipe 'mine' is already registered"):
        register_recipe("mine", lambda c, cat, ctx: None, description="again")
    with pytest.raises(ValueError, match="needs a one-line description"):
        register_recipe("other", lambda c, cat, ctx: None, description=" ")
    with pytest.raises(ValueError, match="fn must be callable"):
        register_recipe("other", "not a function", description="x")


def test_anomalib_train_is_not_available_and_names_the_alternatives():
    info = recipe_info("anomalib-train")
    assert not info["available"]
    assert "industrial-adapt" in info["unavailable_reason"] and "micro-finetune-autoencoder" in info["unavailable_reason"]


def test_micro_finetune_autoencoder_runs_with_vision_ae_and_says_so_when_it_is_missing(tmp_path, monkeypatch):
    from pyimgano.workbench import builtin_recipes

    info = recipe_info("micro-finetune-autoencoder")
    config = build_config({"recipe": "micro-finetune-autoencoder", "dataset": {"name": "custom", "root": str(tmp_path)},
                           "output": {"save_run": False}})
    assert config.training.enabled and config.model.name == "vision_ae" and config.training.epochs == 5
    assert "vision_ae" in list_detectors()
    assert info["available"] and info["unavailable_reason"] is None
    # Without vision_ae (unregistered), the recipe says what it needs and names the alternative.
    monkeypatch.setattr(builtin_recipes, "list_detectors", lambda: ["vision_padim", "vision_patchcore"])
    info = recipe_info("micro-finetune-autoencoder")
    assert not info["available"]
    assert "vision_ae" in info["unavailable_reason"] and "industrial-adapt" in info["unavailable_reason"]
    with pytest.raises(ConfigError, match=r"recipe 'micro-finetune-autoencoder' cannot run: it trains the vision_ae"):
        run_workbench(config)


@pytest.fixture
def dataset(tree_writer, tmp_path):
    return tree_writer(tmp_path / "ds")


@pytest.fixture
def tree_writer():
    import cv2
    import numpy as np

    def write(root):
        for rel in ("train/normal/a.png", "train/normal/b.png", "test/normal/c.png", "test/anomaly/d.png"):
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imencode(".png", np.full((8, 8, 3), 100, np.uint8))[1].tofile(str(path))
        return root

    return write


def _config(dataset, output, recipe):
    return build_config({"recipe": recipe, "dataset": {"name": "custom", "root": str(dataset)},
                         "output": {"output_dir": str(output)}})


@pytest.mark.parametrize("error, status", [(RuntimeError("boom"), "failed"), (KeyboardInterrupt(), "interrupted")])
def test_a_run_that_stops_leaves_a_report_that_says_so_and_was_running_until_then(monkeypatch, dataset, tmp_path,
                                                                                   error, status):
    seen = {}

    def stops(config, category, context):
        seen["status"] = json.loads((context.run_dir.path / "report.json").read_text())["status"]
        raise error

    monkeypatch.setattr(recipes, "RECIPES", dict(recipes.RECIPES))
    register_recipe("stops", stops, description="raises")
    with pytest.raises(type(error)):
        run_workbench(_config(dataset, tmp_path / "run", "stops"))
    assert seen["status"] == "running"
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["status"] == status and report["categories"] == []
    assert report["error"]["type"] == type(error).__name__
    assert {"schema_version", "timestamp_utc", "pyimgano_version"} <= set(report)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["config.json", "environment.json", "report.json"]


def test_a_run_refuses_a_foreign_folder_and_replaces_only_the_layout_of_an_earlier_run(monkeypatch, dataset, tmp_path):
    def stops(config, category, context):
        raise RuntimeError("x")

    monkeypatch.setattr(recipes, "RECIPES", dict(recipes.RECIPES))
    register_recipe("stops", stops, description="raises")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("mine")
    with pytest.raises(ConfigError, match=r"^output\.output_dir: .* is not empty and holds no earlier pyimgano-train run"):
        run_workbench(_config(dataset, foreign, "stops"))
    assert [p.name for p in foreign.iterdir()] == ["thesis.tex"]

    earlier = tmp_path / "earlier"
    (earlier / "categories" / "old").mkdir(parents=True)
    (earlier / "report.json").write_text(json.dumps({"format": "pyimgano-workbench-report", "status": "complete"}))
    (earlier / "notes.txt").write_text("keep me")
    with pytest.raises(RuntimeError):
        run_workbench(_config(dataset, earlier, "stops"))
    assert not (earlier / "categories" / "old").exists() and (earlier / "notes.txt").read_text() == "keep me"
    assert json.loads((earlier / "report.json").read_text())["status"] == "failed"


def test_export_infer_config_needs_a_run_folder(dataset):
    config = build_config({"dataset": {"name": "custom", "root": str(dataset)}, "output": {"save_run": False}})
    with pytest.raises(ConfigError, match=r"^output\.save_run: --export-infer-config writes into the run folder"):
        run_workbench(config, export_infer_config=True)


def test_a_device_that_is_not_jaxs_backend_is_an_error_not_a_silent_fallback(dataset):
    import jax

    if jax.default_backend() == "tpu":
        pytest.skip("runs on a TPU: every device name is available")
    config = build_config({"dataset": {"name": "custom", "root": str(dataset)}, "model": {"device": "tpu"},
                           "output": {"save_run": False}})
    with pytest.raises(ConfigError, match=r"^model\.device: device 'tpu' is not available: JAX has no 'tpu' devices"):
        run_workbench(config)


@pytest.mark.parametrize("status, kept", [("interrupted", True), ("complete", False)])
def test_an_unfinished_earlier_run_keeps_its_training_checkpoints_so_training_resumes(monkeypatch, dataset, tmp_path,
                                                                                      status, kept):
    def stops(config, category, context):
        raise RuntimeError("x")

    monkeypatch.setattr(recipes, "RECIPES", dict(recipes.RECIPES))
    register_recipe("stops", stops, description="raises")
    earlier = tmp_path / "earlier"
    (earlier / "checkpoints" / "default" / "training").mkdir(parents=True)
    (earlier / "checkpoints" / "default" / "training" / "checkpoint.safetensors").write_bytes(b"epoch 3")
    (earlier / "checkpoints" / "default" / "detector_state.safetensors").write_bytes(b"old state")
    (earlier / "report.json").write_text(json.dumps({"format": "pyimgano-workbench-report", "status": status}))
    with pytest.raises(RuntimeError):
        run_workbench(_config(dataset, earlier, "stops"))
    assert (earlier / "checkpoints" / "default" / "training" / "checkpoint.safetensors").exists() == kept
    assert not (earlier / "checkpoints" / "default" / "detector_state.safetensors").exists()
