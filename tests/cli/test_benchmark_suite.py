"""``pyimgano-benchmark --suite`` / repeated ``--dataset LAYOUT:ROOT:CATEGORY``: one table over several datasets."""

import io
import json

import numpy as np
import pytest

from pyimgano.cli.benchmark import main
from pyimgano.workbench.schema import ConfigError
from pyimgano.workbench.suite import load_suite, parse_dataset_spec

TINY = {"backbone": "tiny_resnet", "pretrained": False, "image_size": 32, "batch_size": 4,
        "pretrain_embed_dim": 16, "target_embed_dim": 16}


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    return main(list(argv), stdout=out, stderr=err), out.getvalue(), err.getvalue()


def _mvtec_category(folder, make_frame, write_png, seed):
    """6 normal training frames, 2 normal and 2 defective test frames with their masks (MVTec layout)."""
    for i in range(6):
        write_png(folder / "train" / "good" / f"{i:03d}.png", make_frame(seed + i))
    for i in range(2):
        write_png(folder / "test" / "good" / f"{i:03d}.png", make_frame(seed + 20 + i))
        write_png(folder / "test" / "spot" / f"{i:03d}.png", make_frame(seed + 30 + i, defect=True))
        mask = np.zeros((32, 32, 3), np.uint8)
        mask[10:18, 16:24] = 255  # the defect fixture's 8x8 square at (h/3, w/2)
        write_png(folder / "ground_truth" / "spot" / f"{i:03d}_mask.png", mask)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory, make_frame_fn, write_png_fn):
    """Two tiny MVTec-layout categories under one root, with masks: ``root/set_a/parts``, ``root/set_b/tiles``."""
    root = tmp_path_factory.mktemp("suite_data")
    _mvtec_category(root / "set_a" / "parts", make_frame_fn, write_png_fn, seed=0)
    _mvtec_category(root / "set_b" / "tiles", make_frame_fn, write_png_fn, seed=50)
    return root


def _suite_file(path, data_root=None):
    body = {"datasets": [{"name": "a/parts", "dataset": "mvtec", "root": "set_a", "category": "parts"},
                         {"dataset": "mvtec", "root": "set_b", "category": "tiles"}]}
    if data_root is not None:
        body["data_root"] = data_root
    path.write_text(json.dumps(body), encoding="utf-8")
    return str(path)


def test_a_suite_prints_one_row_per_dataset_with_confusion_counts_and_their_mean(tmp_path, data_root):
    suite = _suite_file(tmp_path / "suite.json", data_root=str(data_root))
    code, out, err = run("--suite", suite, "--model-kwargs", json.dumps(TINY), "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [(r["model"], r["dataset"]) for r in rows] == [
        ("vision_patchcore", "a/parts"), ("vision_patchcore", "set_b/tiles"), ("vision_patchcore", "mean")]
    per_dataset, mean = rows[:2], rows[2]
    for row in per_dataset:
        assert 0.0 <= row["image_auroc"] <= 1.0 and 0.0 <= row["pixel_auroc"] <= 1.0 and 0.0 <= row["aupro"] <= 1.0
        assert row["tp"] + row["fp"] + row["tn"] + row["fn"] == row["test_images"] == 4
        assert row["tp"] + row["fn"] == 2 and row["fit_s"] > 0 and row["images_per_s"] > 0
    for key in ("image_auroc", "pixel_auroc", "aupro", "fit_s", "images_per_s"):
        assert mean[key] == pytest.approx(np.mean([r[key] for r in per_dataset]))
    for key in ("tp", "fp", "tn", "fn", "test_images"):
        assert mean[key] == sum(r[key] for r in per_dataset)


def test_the_text_table_has_the_suite_columns_and_a_mean_row(tmp_path, data_root):
    suite = _suite_file(tmp_path / "suite.json", data_root=str(data_root))
    code, out, err = run("--suite", suite, "--model-kwargs", json.dumps(TINY))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["model", "dataset", "image_auroc", "pixel_auroc", "AUPRO", "tp", "fp", "tn", "fn",
                                "fit_s", "images/s"]
    assert [line.split()[1] for line in lines[1:]] == ["a/parts", "set_b/tiles", "mean"]


def test_repeated_dataset_entries_and_data_root_give_the_same_datasets_as_the_suite(tmp_path, data_root):
    a = f"mvtec:{data_root / 'set_a'}:parts"
    b = f"mvtec:{data_root / 'set_b'}:tiles"
    code, out, err = run("--dataset", a, "--dataset", b, "--model-kwargs", json.dumps(TINY), "--json")
    assert code == 0, err
    from_flags = json.loads(out)
    # The suite without data_root, pointed at the data by --data-root: relative roots resolve there.
    suite = _suite_file(tmp_path / "suite.json")
    code, out, err = run("--suite", suite, "--data-root", str(data_root), "--model-kwargs", json.dumps(TINY), "--json")
    assert code == 0, err
    from_suite = json.loads(out)
    for x, y in zip(from_flags, from_suite):
        assert x["image_auroc"] == y["image_auroc"] and x["pixel_auroc"] == y["pixel_auroc"]
        assert (x["tp"], x["fp"], x["tn"], x["fn"]) == (y["tp"], y["fp"], y["tn"], y["fn"])


def test_suite_files_resolve_roots_against_their_data_root_and_folder(tmp_path):
    (tmp_path / "s").mkdir()
    path = tmp_path / "s" / "suite.json"
    path.write_text(json.dumps({"data_root": "../data", "datasets": [
        {"dataset": "mvtec", "root": "mvtec_ad", "category": "bottle"},
        {"name": "abs", "dataset": "custom", "root": str(tmp_path / "elsewhere")}]}), encoding="utf-8")
    first, second = load_suite(path)
    assert first.root == str(tmp_path / "data" / "mvtec_ad") and first.name == "mvtec_ad/bottle"
    assert second.root == str(tmp_path / "elsewhere") and second.category is None
    assert load_suite(path, data_root=tmp_path / "other")[0].root == str(tmp_path / "other" / "mvtec_ad")


@pytest.mark.parametrize("body, message", [
    ({"datasets": []}, "non-empty list"),
    ({"datasets": [{"dataset": "mvtec", "root": "x", "categroy": "a"}]}, "did you mean 'category'"),
    ({"datasets": [{"dataset": "nope", "root": "x"}]}, "unknown dataset layout 'nope'"),
    ({"datasets": [{"dataset": "custom"}]}, "datasets[0].root: required"),
    ({"datasets": [{"dataset": "custom", "root": "x"}, {"dataset": "custom", "root": "y/x"}]}, "more than once"),
    ({"data_rot": "x", "datasets": [{"dataset": "custom", "root": "x"}]}, "did you mean 'data_root'"),
])
def test_bad_suite_files_are_refused_naming_the_problem(tmp_path, body, message):
    path = tmp_path / "suite.json"
    path.write_text(json.dumps(body), encoding="utf-8")
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_suite(path)
    code, _, err = run("--suite", str(path))
    assert code == 2 and message in err


def test_dataset_specs_parse_layout_root_and_optional_category():
    spec = parse_dataset_spec("mvtec:/data/mvtec_ad:bottle")
    assert (spec.dataset, spec.root, spec.category, spec.name) == ("mvtec", "/data/mvtec_ad", "bottle", "mvtec_ad/bottle")
    spec = parse_dataset_spec("custom:/data/parts")
    assert (spec.dataset, spec.root, spec.category, spec.name) == ("custom", "/data/parts", None, "parts")
    for bad in ("mvtec", "mvtec:", "nope:/x:y"):
        with pytest.raises(ConfigError):
            parse_dataset_spec(bad)


def test_suite_flags_that_do_not_combine_exit_2(tmp_path, data_root):
    suite = _suite_file(tmp_path / "suite.json", data_root=str(data_root))
    code, _, err = run("--suite", suite, "--dataset", "mvtec")
    assert code == 2 and "cannot be mixed with a suite" in err
    code, _, err = run("--suite", suite, "--root", str(data_root))
    assert code == 2 and "--root" in err
    code, _, err = run("--dataset", "mvtec", "--root", str(data_root), "--data-root", str(data_root), "--model", "x")
    assert code == 2 and "--data-root goes with --suite" in err
    code, _, err = run("--dataset", "mvtec:")
    assert code == 2 and "LAYOUT:ROOT" in err
