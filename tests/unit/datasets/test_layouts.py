"""Folder layouts: mvtec, custom, visa, btad, and the name -> loader table."""

from pathlib import Path

import numpy as np
import pytest

from pyimgano.datasets import (
    DATASET_LOADERS,
    load_btad_split,
    load_custom_split,
    load_mvtec_split,
    load_split,
    load_visa_split,
)

_MASK = np.eye(8, dtype=bool)


def _mvtec(tree, root):
    return tree(
        root / "bottle",
        {
            "train/good/001.png": None,
            "train/good/000.png": None,
            "test/good/000.png": None,
            "test/broken_large/000.png": None,
            "test/broken_large/001.png": None,
            "test/contamination/000.png": None,
            "ground_truth/broken_large/000_mask.png": _MASK,
            "ground_truth/broken_large/001_mask.png": _MASK,
            "ground_truth/contamination/000_mask.png": _MASK,
        },
    )


def test_mvtec_split_lists_sorted_images_with_labels_masks_and_types(tree, tmp_path):
    category = _mvtec(tree, tmp_path)
    split = load_mvtec_split(tmp_path, "bottle")
    assert split.train_paths == (str(category / "train/good/000.png"), str(category / "train/good/001.png"))
    assert split.test_paths == tuple(
        str(category / rel)
        for rel in ("test/broken_large/000.png", "test/broken_large/001.png", "test/contamination/000.png", "test/good/000.png")
    )
    assert split.test_labels == (1, 1, 1, 0)
    assert split.test_defect_types == ("broken_large", "broken_large", "contamination", "good")
    assert split.test_mask_paths == (
        str(category / "ground_truth/broken_large/000_mask.png"),
        str(category / "ground_truth/broken_large/001_mask.png"),
        str(category / "ground_truth/contamination/000_mask.png"),
        None,
    )
    assert (split.dataset, split.category) == ("mvtec", "bottle")
    assert split.num_anomalous == 3 and split.has_masks


def test_mvtec_ignores_files_that_are_not_images(tree, tmp_path):
    _mvtec(tree, tmp_path)
    (tmp_path / "bottle/train/good/readme.txt").write_text("not an image")
    (tmp_path / "bottle/train/good/.hidden.png").write_bytes(b"")
    assert len(load_mvtec_split(tmp_path, "bottle").train_paths) == 2


def test_mvtec_missing_mask_is_an_error_naming_the_expected_file(tree, tmp_path):
    category = _mvtec(tree, tmp_path)
    (category / "ground_truth/contamination/000_mask.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"ground_truth/contamination/000_mask\.png"):
        load_mvtec_split(tmp_path, "bottle")


def test_unknown_category_names_the_root_and_the_categories_present(tree, tmp_path):
    _mvtec(tree, tmp_path)
    with pytest.raises(FileNotFoundError, match=r"'cable' not found under .*\['bottle'\]"):
        load_mvtec_split(tmp_path, "cable")


def test_missing_root_and_missing_category_argument_are_errors(tree, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"root .*nowhere.* does not exist"):
        load_mvtec_split(tmp_path / "nowhere", "bottle")
    _mvtec(tree, tmp_path)
    with pytest.raises(ValueError, match=r"needs a category; categories under .*\['bottle'\]"):
        load_mvtec_split(tmp_path, "")
    with pytest.raises(ValueError, match="plain folder name"):
        load_mvtec_split(tmp_path, "../bottle")


def test_missing_train_folder_is_an_error_naming_the_path(tree, tmp_path):
    tree(tmp_path / "screw", {"test/good/000.png": None})
    (tmp_path / "screw/train").mkdir()
    with pytest.raises(FileNotFoundError, match=r"screw/train/good"):
        load_mvtec_split(tmp_path, "screw")


def test_custom_layout_with_masks(tree, tmp_path):
    root = tree(
        tmp_path / "parts",
        {
            "train/normal/a.png": None,
            "test/normal/b.png": None,
            "test/anomaly/c.png": None,
            "ground_truth/anomaly/c_mask.png": _MASK,
        },
    )
    split = load_custom_split(root)
    assert split.test_labels == (1, 0)
    assert split.test_mask_paths == (str(root / "ground_truth/anomaly/c_mask.png"), None)
    assert split.test_defect_types == ("anomaly", "normal")
    assert (split.dataset, split.category) == ("custom", "")
    assert load_custom_split(tmp_path, "parts").category == "parts"


def test_custom_layout_without_masks_gives_none_for_anomalies(tree, tmp_path):
    root = tree(tmp_path, {"train/normal/a.png": None, "test/normal/b.png": None, "test/anomaly/c.png": None})
    split = load_custom_split(root)
    assert split.test_mask_paths == (None, None)
    assert not split.has_masks


def test_custom_layout_with_partial_masks_is_an_error(tree, tmp_path):
    root = tree(
        tmp_path,
        {
            "train/normal/a.png": None,
            "test/anomaly/c.png": None,
            "test/anomaly/d.png": None,
            "ground_truth/anomaly/c_mask.png": _MASK,
        },
    )
    with pytest.raises(FileNotFoundError, match=r"d_mask\.png"):
        load_custom_split(root)


def test_custom_layout_rejects_an_unexpected_test_folder_listing_accepted_ones(tree, tmp_path):
    root = tree(tmp_path, {"train/normal/a.png": None, "test/good/b.png": None})
    with pytest.raises(ValueError, match=r"unexpected folder\(s\) \['good'\].*accepted: \['normal', 'anomaly'\]"):
        load_custom_split(root)


def test_visa_layout_reads_bad_masks_named_by_stem(tree, tmp_path):
    category = tree(
        tmp_path / "candle",
        {
            "train/good/0001.JPG": None,
            "test/good/0002.JPG": None,
            "test/bad/0003.JPG": None,
            "ground_truth/bad/0003.png": _MASK,
        },
    )
    split = load_visa_split(tmp_path, "candle")
    assert split.train_paths == (str(category / "train/good/0001.JPG"),)
    assert split.test_labels == (1, 0)
    assert split.test_mask_paths[0] == str(category / "ground_truth/bad/0003.png")
    assert split.dataset == "visa"


def test_visa_layout_also_finds_the_visa_pytorch_subfolder(tree, tmp_path):
    tree(tmp_path / "visa_pytorch/pcb1", {"train/good/a.png": None, "test/bad/b.png": None})
    split = load_visa_split(tmp_path, "pcb1")
    assert split.test_labels == (1,)
    assert split.test_mask_paths == (None,)


def test_btad_layout_reads_ok_ko_folders_and_bmp_masks(tree, tmp_path):
    category = tree(
        tmp_path / "01",
        {
            "train/ok/0000.bmp": None,
            "test/ok/0001.bmp": None,
            "test/ko/0002.bmp": None,
            "ground_truth/ko/0002.bmp": _MASK,
        },
    )
    split = load_btad_split(tmp_path, "01")
    assert split.test_defect_types == ("ko", "ok")
    assert split.test_labels == (1, 0)
    assert split.test_mask_paths == (str(category / "ground_truth/ko/0002.bmp"), None)
    assert split.dataset == "btad"


def test_load_split_dispatches_by_name_and_lists_accepted_names(tree, tmp_path):
    _mvtec(tree, tmp_path)
    assert load_split("mvtec", tmp_path, "bottle") == load_mvtec_split(tmp_path, "bottle")
    assert sorted(DATASET_LOADERS) == ["btad", "custom", "manifest", "mvtec", "visa"]
    with pytest.raises(ValueError, match=r"unknown dataset 'kolektor'; accepted: \['btad', 'custom', 'manifest', 'mvtec', 'visa'\]"):
        load_split("kolektor", tmp_path, "bottle")


def test_split_is_hashable_and_immutable(tree, tmp_path):
    _mvtec(tree, tmp_path)
    split = load_mvtec_split(Path(tmp_path), "bottle")
    assert hash(split) == hash(load_mvtec_split(str(tmp_path), "bottle"))
    with pytest.raises(AttributeError):
        split.category = "other"
