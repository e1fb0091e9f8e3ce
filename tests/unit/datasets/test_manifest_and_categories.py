"""``manifest`` datasets, one error listing every problem of a folder, and category listing."""

import json

import numpy as np
import pytest

from pyimgano.datasets import DatasetError, list_categories, load_manifest_split, load_mvtec_split, load_split

_MASK = np.eye(8, dtype=bool)


def _write_manifest(path, entries):
    path.write_text("\n".join(json.dumps(e) for e in entries) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def bottle(tree, tmp_path):
    return tree(tmp_path / "mvtec" / "bottle", {
        "train/good/000.png": None, "train/good/001.png": None, "test/good/000.png": None,
        "test/broken/000.png": None, "test/broken/001.png": None,
        "ground_truth/broken/000_mask.png": _MASK, "ground_truth/broken/001_mask.png": _MASK,
    })


def test_a_manifest_of_a_folder_dataset_gives_the_folder_split_whatever_the_line_order(bottle, tmp_path):
    folder = load_mvtec_split(bottle.parent, "bottle")
    entries = [{"path": p, "split": "train"} for p in folder.train_paths]
    entries += [{"path": p, "split": "test", "label": y, "mask": m, "defect_type": t}
                for p, y, m, t in zip(folder.test_paths, folder.test_labels, folder.test_mask_paths, folder.test_defect_types)]
    forward = load_manifest_split(_write_manifest(tmp_path / "a.jsonl", entries))
    backward = load_manifest_split(_write_manifest(tmp_path / "b.jsonl", entries[::-1]))
    assert forward == backward
    assert (forward.train_paths, forward.test_paths, forward.test_labels, forward.test_mask_paths) == (
        folder.train_paths, folder.test_paths, folder.test_labels, folder.test_mask_paths)
    assert forward.dataset == "manifest" and load_split("manifest", tmp_path / "a.jsonl") == forward


def test_relative_manifest_paths_resolve_against_its_folder_and_categories_select_entries(bottle, tmp_path):
    manifest = _write_manifest(bottle / "m.jsonl", [
        {"path": "train/good/000.png", "split": "train", "category": "a"},
        {"path": "test/good/000.png", "split": "test", "label": 0, "category": "a"},
        {"path": "train/good/001.png", "split": "train", "category": "b"},
        {"path": "test/broken/000.png", "split": "test", "label": 1, "category": "b"},
    ])
    split = load_manifest_split(manifest, "b")
    assert split.train_paths == (str(bottle / "train/good/001.png"),)
    assert split.test_defect_types == ("anomaly",) and split.category == "b"
    assert list_categories("manifest", manifest) == ["a", "b"]
    with pytest.raises(DatasetError, match=r"category 'c' is not in manifest .*\['a', 'b'\]"):
        load_manifest_split(manifest, "c")
    with pytest.raises(DatasetError, match=r"categories: \['a', 'b'\] \(choose one, or 'all'\)"):
        load_manifest_split(manifest)


def test_every_problem_of_a_manifest_is_listed_in_one_error(bottle, tmp_path):
    manifest = tmp_path / "bad.jsonl"
    manifest.write_text("\n".join([
        json.dumps({"path": str(bottle / "train/good/000.png"), "split": "train"}),
        "{not json",
        json.dumps({"path": "missing.png", "split": "test", "label": 1}),
        json.dumps({"path": str(bottle / "test/good/000.png"), "split": "tset", "label": 0}),
        json.dumps({"path": str(bottle / "test/good/000.png"), "split": "test", "label": 0, "mask": "m.png"}),
        json.dumps({"path": str(bottle / "train/good/001.png"), "split": "train", "label": 1, "colour": 3}),
        json.dumps({"path": str(bottle / "train/good/000.png"), "split": "train"}),
    ]), encoding="utf-8")
    with pytest.raises(DatasetError) as info:
        load_manifest_split(manifest)
    text = str(info.value)
    assert "7 problem(s)" in text
    for expected in ("line 2: not JSON", "line 3: image", "does not exist", "line 4: 'split' must be one of",
                     "line 5: only anomalous test entries", "line 6: unknown key(s) ['colour']",
                     "line 6: training entries must be normal", "line 7: ", "listed twice"):
        assert expected in text
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, ValueError)


def test_a_bad_folder_gives_one_error_listing_everything_missing(tree, tmp_path):
    root = tree(tmp_path / "mvtec" / "screw", {"test/broken/000.png": None, "ground_truth/other/x.png": _MASK})
    with pytest.raises(DatasetError) as info:
        load_mvtec_split(root.parent, "screw")
    text = str(info.value)
    assert "(2 problem(s))" in text
    assert "missing training folder" in text and "screw/train/good" in text
    assert "1 anomalous test image(s) have no ground-truth mask" in text and "broken/000_mask.png" in text


def test_list_categories_of_folder_layouts(tree, tmp_path):
    tree(tmp_path / "mv" / "b", {"train/good/0.png": None})
    tree(tmp_path / "mv" / "a", {"train/good/0.png": None})
    (tmp_path / "mv" / "not_a_category").mkdir()
    assert list_categories("mvtec", tmp_path / "mv") == ["a", "b"]
    tree(tmp_path / "own", {"train/normal/0.png": None})
    assert list_categories("custom", tmp_path / "own") == [""]
    with pytest.raises(DatasetError, match="no visa categories"):
        list_categories("visa", tmp_path / "own")
    with pytest.raises(ValueError, match="unknown dataset 'mvtek'"):
        list_categories("mvtek", tmp_path)
