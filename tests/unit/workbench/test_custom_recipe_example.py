"""examples/custom_recipe.py: a recipe built from the library's steps, registered by name, runs end
to end from Python and is found by ``pyimgano-train --plugin``."""

import io
import json
import pathlib
import runpy

from pyimgano.cli.train import main as train_main
from pyimgano.workbench import recipes

EXAMPLE = pathlib.Path(__file__).resolve().parents[3] / "examples" / "custom_recipe.py"


def test_the_custom_recipe_example_registers_and_runs_its_recipe(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(recipes, "RECIPES", dict(recipes.RECIPES))
    module = runpy.run_path(str(EXAMPLE), run_name="example")
    assert recipes.get_recipe("strict-adapt").fn is module["strict_adapt"]
    metrics = module["main"](["--tiny", "--out", str(tmp_path)])
    assert metrics["missed_anomalies"] == metrics["confusion"]["fn"]
    report = json.loads((tmp_path / "run" / "categories" / "plates" / "report.json").read_text())
    assert report["recipe"] == "strict-adapt" and report["threshold_provenance"]["quantile"] == 0.9
    assert report["detector"] == "vision_padim"
    assert "missed anomalies" in capsys.readouterr().out


def test_pyimgano_train_finds_a_recipe_registered_by_a_plugin(tmp_path, monkeypatch):
    monkeypatch.setattr(recipes, "RECIPES", dict(recipes.RECIPES))
    out, err = io.StringIO(), io.StringIO()
    code = train_main(["--plugin", str(EXAMPLE), "--recipe", "strict-adapt", "--dataset", "custom", "--root",
                       str(tmp_path), "--dry-run"], stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    config = json.loads(out.getvalue())
    assert config["recipe"] == "strict-adapt" and config["model"]["name"] == "vision_padim"
