"""The synthetic inspection set: layout, determinism and exact defect masks."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from pyimgano.datasets import DEFECT_TYPES, load_mask, load_mvtec_split, make_synthetic_inspection_set
from pyimgano.datasets import synthetic as synthetic_module

_SMALL = dict(n_train=3, n_test_good=2, n_test_defect=6, size=64)


def _read(path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def _bytes_of_tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.png"))}


def test_set_has_the_mvtec_layout_and_matches_the_mvtec_loader(tmp_path):
    root = tmp_path / "plate"
    split = make_synthetic_inspection_set(root, **_SMALL)
    assert split == load_mvtec_split(tmp_path, "plate")
    assert len(split.train_paths) == 3
    assert split.test_defect_types.count("good") == 2
    for defect in DEFECT_TYPES:
        assert split.test_defect_types.count(defect) == 2  # round-robin over 6 defect images
    for label, kind, mask in zip(split.test_labels, split.test_defect_types, split.test_mask_paths):
        assert label == (kind != "good")
        assert (mask is None) == (kind == "good")
    assert (split.dataset, split.category) == ("mvtec", "plate")


def test_images_are_3_channel_u8_of_the_requested_size_and_masks_match(tmp_path):
    split = make_synthetic_inspection_set(tmp_path / "plate", **_SMALL)
    for path, mask_path in zip(split.test_paths, split.test_mask_paths):
        image = _read(path)
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8
        if mask_path is not None:
            mask = load_mask(mask_path)
            assert mask.shape == (64, 64)
            # A visible but small defect: present, and far from covering the part.
            assert 0 < mask.sum() < 0.1 * mask.size


def test_same_seed_gives_identical_files_and_another_seed_differs(tmp_path):
    make_synthetic_inspection_set(tmp_path / "a", seed=3, **_SMALL)
    make_synthetic_inspection_set(tmp_path / "b", seed=3, **_SMALL)
    make_synthetic_inspection_set(tmp_path / "c", seed=4, **_SMALL)
    a, b, c = (_bytes_of_tree(tmp_path / name) for name in "abc")
    assert a == b
    assert a.keys() == c.keys() and all(a[k] != c[k] for k in a)


def test_normal_images_are_not_identical_to_each_other(tmp_path):
    split = make_synthetic_inspection_set(tmp_path / "plate", **_SMALL)
    first, second = (_read(p).astype(int) for p in split.train_paths[:2])
    assert np.abs(first - second).mean() > 1.0


@pytest.mark.parametrize("defect", DEFECT_TYPES)
def test_defect_changes_exactly_the_masked_pixels(defect):
    # White-box check of the exactness promise: render a part, add one defect, and compare.
    size = 96
    for index in range(4):
        rng = np.random.default_rng([11, index])
        gray, solid = synthetic_module._render_part(rng, size)
        if defect == "scratch":
            alpha, delta = synthetic_module._scratch(rng, size, solid)
        elif defect == "spot":
            alpha, delta = synthetic_module._spot(rng, size, solid)
        else:
            alpha, delta = synthetic_module._dent(rng, size, solid, gray)
        out, mask = synthetic_module._apply(gray, alpha, delta, solid)
        changed = out != gray
        assert mask.any()
        assert not (changed & ~mask).any(), "a pixel outside the mask changed"
        assert (mask & solid).sum() == mask.sum(), "a defect left the solid metal"
        assert changed[mask].mean() > 0.9


def test_rerun_replaces_its_own_set_but_refuses_a_foreign_folder(tmp_path):
    root = tmp_path / "plate"
    make_synthetic_inspection_set(root, **_SMALL)
    smaller = make_synthetic_inspection_set(root, n_train=1, n_test_good=1, n_test_defect=0, size=64)
    assert smaller == load_mvtec_split(tmp_path, "plate")  # no stale files from the first run
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("user data")
    with pytest.raises(FileExistsError, match="not empty"):
        make_synthetic_inspection_set(foreign, **_SMALL)
    assert (foreign / "keep.txt").read_text() == "user data"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(n_train=0), "n_train must be an integer >= 1, got 0"),
        (dict(size=32), "size must be an integer >= 64, got 32"),
        (dict(seed=-1), "seed must be an integer >= 0"),
        (dict(n_test_good=0, n_test_defect=0), "at least one test image"),
        (dict(n_train=2.5), "n_train must be an integer"),
    ],
)
def test_bad_arguments_are_rejected(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_synthetic_inspection_set(tmp_path / "plate", **kwargs)
