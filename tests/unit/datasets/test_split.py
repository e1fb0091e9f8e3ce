"""DatasetSplit validation, mask loading and split limiting."""

import cv2
import numpy as np
import pytest

from pyimgano.datasets import DatasetSplit, limit_split, load_mask, load_masks


def test_load_mask_binarises_any_nonzero_value(tmp_path):
    raw = np.array([[0, 1, 128], [255, 0, 7]], np.uint8)
    path = tmp_path / "m.png"
    cv2.imwrite(str(path), raw)
    mask = load_mask(path)
    assert mask.dtype == bool
    np.testing.assert_array_equal(mask, raw > 0)


def test_load_mask_of_a_colour_image_uses_any_channel(tmp_path):
    raw = np.zeros((2, 2, 3), np.uint8)
    raw[0, 0, 2] = 200
    raw[1, 1, 0] = 5
    path = tmp_path / "m.png"
    cv2.imwrite(str(path), raw)
    np.testing.assert_array_equal(load_mask(path), [[True, False], [False, True]])


def test_load_mask_resizes_with_nearest_neighbour(write_mask, tmp_path):
    rng = np.random.default_rng(0)
    small = rng.random((4, 6)) > 0.5
    path = write_mask(tmp_path / "m.png", small)
    # Enlarging by an integer factor repeats each pixel; no pixel becomes "half" defect.
    np.testing.assert_array_equal(load_mask(path, (8, 12)), small.repeat(2, axis=0).repeat(2, axis=1))
    blocky = write_mask(tmp_path / "b.png", small.repeat(3, axis=0).repeat(3, axis=1))
    np.testing.assert_array_equal(load_mask(blocky, (4, 6)), small)


def test_load_mask_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.png"):
        load_mask(tmp_path / "missing.png")
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"cannot decode mask file .*junk\.png"):
        load_mask(junk)
    with pytest.raises(ValueError, match="size must be"):
        load_mask(junk, (0, 4))


def test_load_masks_stacks_masks_and_leaves_normal_images_empty(write_mask, tmp_path):
    path = write_mask(tmp_path / "m.png", np.ones((2, 2), bool))
    masks = load_masks([None, str(path)], (3, 5))
    assert masks.shape == (2, 3, 5) and masks.dtype == bool
    assert not masks[0].any() and masks[1].all()


def _split(n_per_type=4, types=("crack", "good", "hole")):
    paths, labels, masks, kinds = [], [], [], []
    for kind in types:
        for i in range(n_per_type):
            paths.append(f"test/{kind}/{i}.png")
            labels.append(0 if kind == "good" else 1)
            masks.append(None if kind == "good" else f"gt/{kind}/{i}_mask.png")
            kinds.append(kind)
    return DatasetSplit([f"train/{i}.png" for i in range(10)], paths, labels, masks, kinds, "mvtec", "x")


def test_limit_split_keeps_a_prefix_of_train_and_spreads_test_over_types():
    limited = limit_split(_split(), max_train=3, max_test=3)
    assert limited.train_paths == ("train/0.png", "train/1.png", "train/2.png")
    assert sorted(limited.test_defect_types) == ["crack", "good", "hole"]
    assert all(p.startswith(f"test/{k}/") for p, k in zip(limited.test_paths, limited.test_defect_types))
    assert limit_split(_split(), max_test=100) == _split()


def test_limit_split_rejects_limits_below_one():
    with pytest.raises(ValueError, match="max_test must be None or >= 1, got 0"):
        limit_split(_split(), max_test=0)


def test_split_rejects_inconsistent_fields():
    with pytest.raises(ValueError, match="differ in length"):
        DatasetSplit(["a.png"], ["b.png"], [0, 1], [None], ["good"])
    with pytest.raises(ValueError, match=r"must be 0 \(normal\) or 1 \(anomalous\), got \[2\]"):
        DatasetSplit(["a.png"], ["b.png"], [2], [None], ["good"])
    with pytest.raises(ValueError, match="normal test image 'b.png' has a mask path"):
        DatasetSplit(["a.png"], ["b.png"], [0], ["m.png"], ["good"])
