"""``--infer-config`` / ``--from-run``: config values are defaults, explicit flags win."""

import json
import os
from pathlib import Path

import numpy as np


def write_config(folder: Path, checkpoint: str, **blocks) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    # A relative checkpoint path resolves against the config's folder.
    rel = os.path.relpath(checkpoint, folder)
    payload = {"schema_version": 1, "model": {"name": "vision_patchcore", "checkpoint_path": rel}, **blocks}
    path = folder / "infer_config.json"
    path.write_text(json.dumps(payload))
    return path


def test_infer_config_values_are_used_as_defaults(run_cli, checkpoint, image_dirs, tmp_path):
    cfg = write_config(
        tmp_path / "cfg", checkpoint, threshold=1e9, threshold_provenance={"method": "quantile", "source": "run"},
        defects={"pixel_threshold": 1e9, "mask_format": "npy"},
    )
    run = run_cli("--infer-config", cfg, "--input", image_dirs["test"], "--defects", "--save-masks", tmp_path / "m")
    assert run.code == 0, run.err
    for r in run.records():
        assert r["label"] == 0
        d = r["defects"]
        assert d["pixel_threshold"] == 1e9
        assert d["pixel_threshold_provenance"] == {"method": "fixed", "source": "infer_config"}
        assert d["mask"]["encoding"] == "npy" and d["regions"] == []


def test_explicit_flags_win_over_infer_config_values(run_cli, checkpoint, image_dirs, tmp_path):
    cfg = write_config(tmp_path / "cfg", checkpoint, defects={"pixel_threshold": 1e9, "mask_format": "npy"})
    run = run_cli("--infer-config", cfg, "--input", image_dirs["test"], "--defects", "--save-masks", tmp_path / "m",
                  "--pixel-threshold", "0.0", "--mask-format", "png")
    assert run.code == 0, run.err
    d = run.records()[0]["defects"]
    assert d["pixel_threshold"] == 0.0
    assert d["pixel_threshold_provenance"] == {"method": "fixed", "source": "explicit"}
    assert d["mask"]["encoding"] == "png" and d["regions"]


def test_the_infer_config_threshold_labels_records(run_cli, checkpoint, image_dirs, tmp_path):
    low = write_config(tmp_path / "low", checkpoint, threshold=-1.0)
    run = run_cli("--infer-config", low, "--input", image_dirs["test"])
    assert run.code == 0, run.err
    assert [r["label"] for r in run.records()] == [1, 1, 1]


def test_infer_config_maps_and_postprocess_defaults_apply(run_cli, checkpoint, image_dirs, tmp_path):
    cfg = write_config(tmp_path / "cfg", checkpoint, include_maps=True, postprocess={"normalize": "minmax"})
    run = run_cli("--infer-config", cfg, "--input", image_dirs["test"], "--save-maps", tmp_path / "maps")
    assert run.code == 0, run.err
    m = np.load(run.records()[2]["anomaly_map"]["path"])
    assert float(m.max()) == 1.0


def test_from_run_reads_the_run_artifacts_infer_config(run_cli, checkpoint, image_dirs, tmp_path):
    run_dir = tmp_path / "run"
    write_config(run_dir / "artifacts", checkpoint, threshold=-1.0)
    run = run_cli("--from-run", run_dir, "--input", image_dirs["test"])
    assert run.code == 0, run.err
    assert [r["label"] for r in run.records()] == [1, 1, 1]


def test_from_run_category_picks_the_category_block(run_cli, checkpoint, image_dirs, tmp_path):
    run_dir = tmp_path / "run"
    folder = run_dir / "artifacts"
    folder.mkdir(parents=True)
    rel = os.path.relpath(checkpoint, folder)
    payload = {
        "model": {"name": "vision_patchcore", "checkpoint_path": rel},
        "categories": {"bottle": {"threshold": -1.0}, "cable": {"threshold": 1e9}},
    }
    (folder / "infer_config.json").write_text(json.dumps(payload))
    bottle = run_cli("--from-run", run_dir, "--from-run-category", "bottle", "--input", image_dirs["test"])
    cable = run_cli("--from-run", run_dir, "--from-run-category", "cable", "--input", image_dirs["test"])
    assert bottle.code == cable.code == 0, cable.err
    assert {r["label"] for r in bottle.records()} == {1}
    assert {r["label"] for r in cable.records()} == {0}
    ambiguous = run_cli("--from-run", run_dir, "--input", image_dirs["test"])
    assert ambiguous.code == 2 and "bottle" in ambiguous.err and "cable" in ambiguous.err


def test_unknown_infer_config_keys_exit_2_listing_the_accepted_ones(run_cli, checkpoint, image_dirs, tmp_path):
    cfg = write_config(tmp_path / "cfg", checkpoint, tilling={"tile_size": 8})
    run = run_cli("--infer-config", cfg, "--input", image_dirs["test"])
    assert run.code == 2 and "tilling" in run.err and "tiling" in run.err


def test_unknown_defects_keys_in_the_infer_config_exit_2(run_cli, checkpoint, image_dirs, tmp_path):
    cfg = write_config(tmp_path / "cfg", checkpoint, defects={"pixel_treshold": 0.5})
    run = run_cli("--infer-config", cfg, "--input", image_dirs["test"], "--defects")
    assert run.code == 2 and "pixel_treshold" in run.err and "pixel_threshold" in run.err


def test_defects_preset_applies_its_settings_and_flags_override_them(run_cli, checkpoint, image_dirs):
    base = ("--checkpoint-path", checkpoint, "--input", image_dirs["test"], "--defects", "--pixel-threshold", "0.0")
    preset = run_cli(*base, "--defects-preset", "industrial-defects-fp40", "--defect-min-score-max", "0")
    assert preset.code == 0, preset.err
    # fp40's ROI (0.1..0.9) and 2 px border ignore keep the all-foreground mask (threshold 0) off the edges.
    regions = [region for r in preset.records() for region in r["defects"]["regions"]]
    assert regions
    for region in regions:
        x1, y1, x2, y2 = region["bbox_xyxy"]
        assert x1 >= 2 and y1 >= 2 and x2 <= 29 and y2 <= 29
    override = run_cli(*base, "--defects-preset", "industrial-defects-fp40", "--roi-xyxy-norm", "0", "0", "1", "1",
                       "--defect-border-ignore-px", "0", "--defect-min-score-max", "0", "--no-defect-hysteresis")
    assert override.code == 0, override.err
    assert any(
        region["bbox_xyxy"][0] <= 2 for r in override.records() for region in r["defects"]["regions"]
    )


def test_defects_preset_unknown_name_exits_2(run_cli, checkpoint, image_dirs):
    run = run_cli("--checkpoint-path", checkpoint, "--input", image_dirs["test"], "--defects", "--pixel-threshold",
                  "0.5", "--defects-preset", "nope")
    assert run.code == 2 and "industrial-defects-fp40" in run.err
