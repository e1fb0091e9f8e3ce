"""Pixel metrics: pooled pixel AUROC and AUPRO (MVTec AD definition)."""

import numpy as np
import pytest

from pyimgano.metrics import aupro, image_auroc, pixel_auroc, pro_curve


def _small_case():
    """One 1x6 image: region A = pixels 0-1 (area 2), region B = pixel 5; pixels 2-4 defect-free.

    Thresholds (score >= t), descending: 0.9 -> A half found, PRO 0.25, FPR 0;
    0.8 -> FPR 1/3; 0.5 -> A complete, PRO 0.5; 0.3 -> B found, PRO 1; 0.2 -> FPR 2/3; 0.1 -> FPR 1.
    """
    mask = np.array([[1, 1, 0, 0, 0, 1]], dtype=bool)
    amap = np.array([[0.9, 0.5, 0.8, 0.2, 0.1, 0.3]])
    return mask[None], amap[None]


def test_pixel_auroc_equals_image_auroc_of_the_flattened_pixels():
    rng = np.random.default_rng(0)
    masks = rng.random((3, 9, 7)) > 0.7
    maps = np.round(rng.random((3, 9, 7)) + 0.5 * masks, 1)  # rounding makes ties
    assert pixel_auroc(masks, maps) == image_auroc(masks.ravel(), maps.ravel())


def test_pixel_auroc_accepts_a_list_of_differently_sized_images():
    masks = [np.array([[0, 1]]), np.array([[0], [0], [1]])]
    maps = [np.array([[0.1, 0.9]]), np.array([[0.2], [0.95], [0.5]])]
    flat_masks = np.concatenate([m.ravel() for m in masks])
    flat_maps = np.concatenate([a.ravel() for a in maps])
    assert pixel_auroc(masks, maps) == image_auroc(flat_masks, flat_maps)


def test_pixel_auroc_without_defect_pixels_is_rejected():
    with pytest.raises(ValueError, match="no defect pixel in 8 pixels"):
        pixel_auroc(np.zeros((2, 2, 2), bool), np.zeros((2, 2, 2)))


def test_mask_and_map_shape_mismatch_is_rejected_with_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 4, 4\) does not match maps shape \(2, 4, 5\)"):
        pixel_auroc(np.zeros((2, 4, 4), bool), np.zeros((2, 4, 5)))
    with pytest.raises(ValueError, match=r"masks\[1\] has shape \(2, 2\) but maps\[1\] has shape \(2, 3\)"):
        aupro([np.ones((1, 2)), np.zeros((2, 2))], [np.zeros((1, 2)), np.zeros((2, 3))])


def test_masks_of_0_255_are_rejected_with_a_hint():
    with pytest.raises(ValueError, match="masks > 0"):
        pixel_auroc(np.full((1, 2, 2), 255), np.zeros((1, 2, 2)))


def test_pro_curve_of_hand_example():
    fprs, pros = pro_curve(*_small_case())
    np.testing.assert_allclose(fprs, [0, 0, 1 / 3, 1 / 3, 1 / 3, 2 / 3, 1, 1], rtol=0, atol=1e-15)
    np.testing.assert_allclose(pros, [0, 0.25, 0.25, 0.5, 1, 1, 1, 1], rtol=0, atol=1e-15)


@pytest.mark.parametrize(("fpr_limit", "expected"), [(0.3, 0.25), (0.5, 0.5), (1.0, 0.75)])
def test_aupro_of_hand_example_integrates_and_normalises_by_the_limit(fpr_limit, expected):
    # Area under the curve above: 0.25 * min(limit, 1/3) plus 1.0 * (limit - 1/3) beyond 1/3.
    assert aupro(*_small_case(), fpr_limit=fpr_limit) == pytest.approx(expected, abs=1e-12)


def test_aupro_is_one_for_a_perfect_map():
    rng = np.random.default_rng(1)
    masks = np.zeros((4, 16, 16), bool)
    masks[0, 2:6, 3:9] = True
    masks[0, 10:12, 10:15] = True
    masks[2, 7:9, 7:9] = True
    maps = masks + 0.5 * rng.random(masks.shape)  # every defect pixel above every normal one
    assert aupro(masks, maps) == 1.0


def test_aupro_averages_over_regions_not_pixels():
    # A large region found first and a one-pixel region found last: PRO counts each region once.
    masks = np.zeros((1, 10, 10), bool)
    masks[0, 0:5, 0:5] = True  # area 25
    masks[0, 9, 9] = True  # area 1
    maps = np.zeros((1, 10, 10))
    maps[0, 0:5, 0:5] = 1.0
    fprs, pros = pro_curve(masks, maps)
    # At threshold 1.0 the large region is complete (overlap 1) and the small one is not (0).
    assert fprs[1] == 0.0
    assert pros[1] == pytest.approx(0.5, abs=1e-12)


def test_regions_are_8_connected_like_mvtec():
    masks = np.zeros((1, 4, 4), bool)
    masks[0, 0, 0] = masks[0, 1, 1] = True  # diagonal neighbours: one region of area 2
    masks[0, 3, 3] = True  # a separate region
    maps = np.zeros((1, 4, 4))
    maps[0, 0, 0] = 1.0
    _, pros = pro_curve(masks, maps)
    # 8-connectivity: (1/2 + 0) / 2 regions = 0.25; 4-connectivity would give (1 + 0 + 0) / 3.
    assert pros[1] == pytest.approx(0.25, abs=1e-15)


def test_binned_aupro_approaches_the_exact_value():
    rng = np.random.default_rng(2)
    masks = np.zeros((3, 24, 24), bool)
    masks[0, 3:9, 4:12] = True
    masks[1, 15:20, 2:6] = True
    maps = rng.random(masks.shape) + 0.6 * masks
    exact = aupro(masks, maps)
    assert aupro(masks, maps, num_thresholds=5000) == pytest.approx(exact, abs=2e-3)


def test_aupro_rejects_bad_limits_and_masks_without_regions():
    masks, maps = _small_case()
    with pytest.raises(ValueError, match=r"fpr_limit must lie in \(0, 1\], got 0"):
        aupro(masks, maps, fpr_limit=0)
    with pytest.raises(ValueError, match="num_thresholds must be None"):
        aupro(masks, maps, num_thresholds=1)
    with pytest.raises(ValueError, match="at least one defect region"):
        aupro(np.zeros((1, 3, 3), bool), np.zeros((1, 3, 3)))
    with pytest.raises(ValueError, match="needs defect-free pixels"):
        aupro(np.ones((1, 3, 3), bool), np.zeros((1, 3, 3)))
