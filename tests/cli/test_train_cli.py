"""``pyimgano-train`` end to end on tiny ``custom`` datasets written here: the run folder of SPEC
section 9, and ``pyimgano-infer --from-run`` / ``--infer-config`` reproducing the run's records."""

import io
import json

import cv2
import numpy as np
import pytest

from pyimgano.cli.train import main as train_main

TINY = {"backbone": "tiny_resnet", "pretrained": False, "image_size": 32, "pretrain_embed_dim": 16,
        "target_embed_dim": 16, "coreset_ratio": 0.5, "batch_size": 4}


def train(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = train_main([str(a) for a in argv], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def _write_category(root, make_frame, write_png, seed):
    for i in range(8):
        write_png(root / "train" / "normal" / f"{i:02d}.png", make_frame(seed + i))
    for i in range(2):
        write_png(root / "test" / "normal" / f"n{i}.png", make_frame(seed + 50 + i))
        write_png(root / "test" / "anomaly" / f"a{i}.png", make_frame(seed + 60 + i, defect=True))
        mask = np.zeros((32, 32), np.uint8)
        mask[32 // 3 : 32 // 3 + 8, 16:24] = 255  # where make_frame paints its 8x8 defect
        path = root / "ground_truth" / "anomaly" / f"a{i}_mask.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imencode(".png", mask)[1].tofile(str(path))
    return root


def _config(path, **sections):
    path.write_text(json.dumps(sections), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def single(tmp_path_factory, make_frame_fn, write_png_fn):
    """One tiny category trained with --export-infer-config."""
    root = tmp_path_factory.mktemp("train_single")
    data = _write_category(root / "parts", make_frame_fn, write_png_fn, seed=0)
    cfg = _config(root / "cfg.json", dataset={"name": "custom", "root": str(data)},
                  model={"name": "vision_patchcore", "model_kwargs": TINY}, output={"output_dir": str(root / "run")})
    code, out, err = train("--config", cfg, "--export-infer-config")
    assert code == 0, err
    return {"root": root, "data": data, "run": root / "run", "out": out, "err": err, "cfg": cfg}


def _by_name(records):
    return {r["input"].rsplit("/", 1)[-1]: (r["score"], r["label"]) for r in records}


def _per_image(run, category="default"):
    lines = (run / "categories" / category / "per_image.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_infer_from_run_and_from_infer_config_give_the_runs_scores_and_labels(single, run_cli):
    expected = _by_name(_per_image(single["run"]))
    assert len(expected) == 4 and {label for _, label in expected.values()} <= {0, 1}
    for flag, value in (("--from-run", single["run"]), ("--infer-config", single["run"] / "artifacts" / "infer_config.json")):
        again = run_cli(flag, value, "--input", single["data"] / "test")
        assert again.code == 0, again.err
        assert _by_name(again.records()) == expected


def test_the_run_folder_has_the_spec_layout_and_every_report_its_header(single):
    run = single["run"]
    for rel in ("report.json", "config.json", "environment.json", "report.html", "categories/default/report.json",
                "categories/default/per_image.jsonl", "categories/default/plots/roc.png",
                "categories/default/plots/pro.png", "categories/default/plots/score_histogram.png",
                "categories/default/review/worst_normal_1.png", "categories/default/review/hardest_anomalous_1.png",
                "checkpoints/default/detector_state.safetensors", "artifacts/infer_config.json"):
        assert (run / rel).is_file(), rel
    for rel in ("report.json", "categories/default/report.json", "config.json", "environment.json"):
        text = (run / rel).read_text()
        payload = json.loads(text)
        assert {"schema_version", "timestamp_utc", "pyimgano_version"} <= set(payload), rel
        assert text == json.dumps(payload, sort_keys=True, indent=2) + "\n", f"{rel} keys are not sorted"
    report = json.loads((run / "report.json").read_text())
    assert report["status"] == "complete" and report["categories"] == ["default"]
    category = json.loads((run / "categories/default/report.json").read_text())
    split = category["split"]
    assert (split["train"], split["fit"], split["calibration"]) == (8, 6, 2) and len(split["split_sha256"]) == 16
    assert category["threshold_provenance"]["split_sha256"] == split["split_sha256"]
    assert category["threshold_provenance"]["source"] == "holdout"
    metrics = category["metrics"]
    assert sum(metrics["confusion"].values()) == 4 and metrics["image_auroc"] is not None
    assert metrics["pixel_auroc"] is not None and metrics["aupro"] is not None


def test_report_html_is_self_contained(single):
    page = (single["run"] / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3 + 4  # three plots, two + two review overlays
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert "Worst-scored normal images" in page and "Hardest anomalous images" in page and "image AUROC" in page


def test_the_table_and_the_log_say_what_happened(single):
    assert single["out"].splitlines()[0].split()[:3] == ["category", "image_auroc", "AP"]
    assert single["out"].splitlines()[1].startswith("default")
    assert single["err"].splitlines()[0].startswith("pyimgano-train: recipe industrial-adapt on custom")
    assert "pyimgano-train: done: 1 category in" in single["err"]


def test_a_second_run_into_the_same_folder_replaces_it(single, tmp_path):
    code, out, err = train("--config", single["cfg"], "--json", "--output-dir", single["run"], "-q")
    assert code == 0, err
    report = json.loads(out)
    assert report["status"] == "complete" and report["output_dir"] == str(single["run"])
    assert json.loads((single["run"] / "report.json").read_text())["status"] == "complete"
    assert not (single["run"] / "artifacts" / "infer_config.json").exists()  # not asked for this time


@pytest.fixture(scope="module")
def multi(tmp_path_factory, make_frame_fn, write_png_fn):
    """Two categories, recipe industrial-adapt-fp40 (defects, saved maps), category all."""
    root = tmp_path_factory.mktemp("train_multi")
    for n, name in enumerate(("cat_a", "cat_b")):
        _write_category(root / "data" / name, make_frame_fn, write_png_fn, seed=100 * (n + 1))
    cfg = _config(root / "cfg.json", recipe="industrial-adapt-fp40", seed=3,
                  dataset={"name": "custom", "root": str(root / "data"), "category": "all"},
                  model={"name": "vision_patchcore", "model_kwargs": TINY},
                  defects={"pixel_normal_quantile": 0.9, "min_area": 2},
                  output={"output_dir": str(root / "run")})
    code, out, err = train("--config", cfg, "--export-infer-config", "--json")
    assert code == 0, err
    return {"root": root, "run": root / "run", "report": json.loads(out)}


def test_category_all_runs_every_category_and_writes_an_aggregate(multi):
    report = multi["report"]
    assert report["categories"] == ["cat_a", "cat_b"] and report["recipe"] == "industrial-adapt-fp40"
    aggregate = report["aggregate"]
    assert aggregate["categories"] == 2
    per = report["per_category"]
    assert aggregate["confusion"] == {k: per["cat_a"]["confusion"][k] + per["cat_b"]["confusion"][k]
                                      for k in ("tp", "fp", "tn", "fn")}
    assert aggregate["mean"]["image_auroc"] == pytest.approx((per["cat_a"]["image_auroc"] + per["cat_b"]["image_auroc"]) / 2)
    maps = sorted(p.relative_to(multi["run"]).as_posix() for p in (multi["run"] / "artifacts" / "maps").rglob("*.npy"))
    assert maps == [f"artifacts/maps/{c}/{t}.npy" for c in ("cat_a", "cat_b")
                    for t in ("anomaly/a0", "anomaly/a1", "normal/n0", "normal/n1")]
    assert _per_image(multi["run"], "cat_b")[0]["anomaly_map"]["path"].endswith("artifacts/maps/cat_b/anomaly/a0.npy")


def test_a_multi_category_infer_config_holds_each_categorys_state_and_defects(multi, run_cli):
    payload = json.loads((multi["run"] / "artifacts" / "infer_config.json").read_text())
    assert sorted(payload["categories"]) == ["cat_a", "cat_b"]
    block = payload["categories"]["cat_b"]
    assert block["model"]["checkpoint_path"] == "../checkpoints/cat_b/detector_state.safetensors"
    assert block["defects"]["min_area"] == 2 and block["defects"]["pixel_threshold"] > 0 and block["include_maps"]
    assert block["postprocess"]["normalize"] == "normal_stats"
    again = run_cli("--from-run", multi["run"], "--from-run-category", "cat_b", "--input",
                    multi["root"] / "data" / "cat_b" / "test", "--defects")
    assert again.code == 0, again.err
    assert _by_name(again.records()) == _by_name(_per_image(multi["run"], "cat_b"))
    assert all(r["defects"]["pixel_threshold_provenance"]["source"] == "holdout" for r in again.records())
    ambiguous = run_cli("--from-run", multi["run"], "--input", multi["root"] / "data" / "cat_b" / "test")
    assert ambiguous.code == 2 and "['cat_a', 'cat_b']" in ambiguous.err and "--from-run-category" in ambiguous.err


def test_list_recipes_and_recipe_info_in_text_and_json():
    code, out, _ = train("--list-recipes")
    names = [line.split()[0] for line in out.splitlines()]
    assert code == 0 and {"industrial-adapt", "industrial-adapt-highres", "industrial-adapt-fp40",
                          "micro-finetune-autoencoder", "anomalib-train"} <= set(names)
    assert "anomalib-train" in out and "[not available here]" in out
    code, out, _ = train("--list-recipes", "--json")
    assert code == 0 and {i["name"] for i in json.loads(out)} >= set(names)
    code, out, _ = train("--recipe-info", "industrial-adapt-highres")
    assert code == 0 and '"tile_size": 512' in out and "hann" in out
    code, out, _ = train("--recipe-info", "industrial-adapt", "--json")
    assert code == 0 and json.loads(out)["name"] == "industrial-adapt"
    code, _, err = train("--recipe-info", "industrial-adapt-hires")
    assert code == 2 and "did you mean 'industrial-adapt-highres'?" in err


def test_dry_run_prints_the_effective_config_and_writes_nothing(tmp_path):
    code, out, err = train("--dataset", "mvtec", "--root", tmp_path / "data", "--category", "bottle",
                           "--recipe", "industrial-adapt-fp40", "--output-dir", tmp_path / "run", "--dry-run")
    assert code == 0, err
    config = json.loads(out)
    assert config["defects"]["enabled"] and config["defects"]["border_ignore_px"] == 2
    assert config["dataset"]["root"] == str(tmp_path / "data") and config["adaptation"]["save_maps"]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "cfg, message",
    [
        ({"dataset": {"name": "custom", "root": "/d", "resise": [1, 1]}}, "error: dataset.resise: unknown key (did you mean 'resize'?)"),
        ({"dataset": {"name": "custom", "root": "/d"}, "model": {"name": "vision_padin"}}, "error: model.name: unknown detector 'vision_padin' (did you mean 'vision_padim'?)"),
        ({"dataset": {"name": "custom", "root": "/d"}, "recipe": "anomalib-train"}, "error: recipe 'anomalib-train' cannot run: pyimgano does not bundle anomalib"),
    ],
)
def test_config_errors_exit_2_on_one_line_naming_the_key_path(tmp_path, cfg, message):
    code, out, err = train("--config", _config(tmp_path / "c.json", **cfg), "--dry-run")
    assert code == 2 and out == ""
    assert err.startswith("pyimgano-train: " + message) and len(err.strip().splitlines()) == 1


def test_a_bad_dataset_folder_exits_2_listing_every_problem(tmp_path):
    (tmp_path / "data" / "test" / "stuff").mkdir(parents=True)
    code, _, err = train("--dataset", "custom", "--root", tmp_path / "data", "--output-dir", tmp_path / "run",
                         "--model", "vision_padim")
    assert code == 2 and "missing training folder" in err and "unexpected folder(s) ['stuff']" in err
    assert not (tmp_path / "run").exists()  # nothing is written before the data is known to be usable


def test_a_resized_run_is_reproduced_by_pyimgano_infer(tmp_path, make_frame_fn, write_png_fn, run_cli):
    data = _write_category(tmp_path / "parts", make_frame_fn, write_png_fn, seed=7)
    cfg = _config(tmp_path / "cfg.json", dataset={"name": "custom", "root": str(data), "resize": [24, 40]},
                  model={"name": "vision_patchcore", "model_kwargs": TINY}, output={"output_dir": str(tmp_path / "run")})
    code, _, err = train("--config", cfg, "--export-infer-config")
    assert code == 0, err
    payload = json.loads((tmp_path / "run" / "artifacts" / "infer_config.json").read_text())
    assert payload["resize"] == [24, 40]
    again = run_cli("--from-run", tmp_path / "run", "--input", data / "test", "--include-maps")
    assert again.code == 0, again.err
    assert _by_name(again.records()) == _by_name(_per_image(tmp_path / "run"))
    assert {tuple(r["anomaly_map"]["shape"]) for r in again.records()} == {(24, 40)}
