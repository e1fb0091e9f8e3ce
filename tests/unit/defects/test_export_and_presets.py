"""Mask files, FP-review overlays, presets and map -> image geometry."""

import os

import cv2
import numpy as np
import pytest

from pyimgano.defects import (
    DEFECT_PRESETS,
    DefectsConfig,
    extract_defects,
    get_defects_preset,
    render_overlay,
    roi_pixel_box,
    save_mask,
    save_overlay,
    scale_bbox_xyxy,
)


def _mask():
    m = np.zeros((6, 8), np.uint8)
    m[1:4, 2:6] = 255
    return m


def test_png_masks_are_8_bit_0_255_and_read_back_exactly(tmp_path):
    path = tmp_path / "masks" / "000000_a.png"
    info = save_mask(path, _mask(), fmt="png")
    assert info == {"path": str(path), "shape": [6, 8], "dtype": "uint8", "encoding": "png"}
    back = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, _mask())
    assert os.listdir(tmp_path / "masks") == ["000000_a.png"]  # no temp file left behind


def test_npy_masks_read_back_exactly_and_bool_masks_are_accepted(tmp_path):
    path = tmp_path / "m.npy"
    info = save_mask(path, _mask() > 0, fmt="npy")
    assert info["encoding"] == "npy"
    back = np.load(path, allow_pickle=False)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, _mask())


def test_unknown_mask_formats_and_non_binary_masks_are_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"accepted: \['png', 'npy'\]"):
        save_mask(tmp_path / "m.jpg", _mask(), fmt="jpg")
    with pytest.raises(ValueError, match="0, 255"):
        save_mask(tmp_path / "m.png", np.full((2, 2), 7, np.uint8))


def test_overlay_panels_show_the_original_a_heat_map_and_the_outlined_mask():
    img = np.full((12, 16, 3), 100, np.uint8)
    amap = np.zeros((6, 8), np.float32)
    amap[1:4, 2:6] = 1.0
    panel = render_overlay(img, amap, _mask())
    assert panel.shape == (12, 48, 3) and panel.dtype == np.uint8
    np.testing.assert_array_equal(panel[:, :16], img)
    assert not np.array_equal(panel[:, 16:32], img)  # heat map blended in
    mask_panel = panel[:, 32:]
    np.testing.assert_array_equal(mask_panel[0, 0], [100, 100, 100])  # outside: untouched
    np.testing.assert_array_equal(mask_panel[2, 4], [255, 255, 0])  # outline at the mask edge (image px)
    np.testing.assert_array_equal(mask_panel[4, 6], [162, 60, 60])  # fill: 0.6*100 + 0.4*(255, 0, 0)


def test_gray_images_are_accepted_and_shape_mismatches_are_rejected():
    amap = np.zeros((6, 8), np.float32)
    assert render_overlay(np.zeros((6, 8), np.uint8), amap, _mask()).shape == (6, 24, 3)
    with pytest.raises(ValueError, match="differs"):
        render_overlay(np.zeros((6, 8), np.uint8), amap, np.zeros((3, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        render_overlay(np.zeros((6, 8, 3), np.float32), amap, _mask())


def test_save_overlay_writes_a_png(tmp_path):
    path = save_overlay(tmp_path / "o" / "x.png", np.zeros((6, 8, 3), np.uint8), np.zeros((6, 8)), _mask())
    back = cv2.imread(path, cv2.IMREAD_COLOR)
    assert back.shape == (6, 24, 3)


def test_the_fp40_preset_has_the_documented_settings():
    cfg = get_defects_preset("industrial-defects-fp40")
    assert cfg.roi_xyxy_norm == (0.1, 0.1, 0.9, 0.9)
    assert (cfg.border_ignore_px, cfg.map_smoothing, cfg.map_smoothing_ksize) == (2, "median", 3)
    assert cfg.hysteresis is True
    assert (cfg.min_fill_ratio, cfg.max_aspect_ratio, cfg.min_solidity) == (0.15, 6.0, 0.8)
    assert (cfg.merge_nearby, cfg.merge_nearby_max_gap_px) == (True, 1)
    assert (cfg.min_area, cfg.min_score_max, cfg.max_regions) == (16, 0.6, 20)
    assert set(DEFECT_PRESETS) == {"industrial-defects-fp40"}


def test_the_fp40_preset_keeps_a_compact_defect_and_drops_speckle_and_a_border_strip():
    m = np.zeros((40, 40), np.float32)
    m[15:21, 15:21] = 0.95  # compact 6x6 defect
    m[30, 8] = 0.99  # speckle
    m[5:35, 34] = 0.9  # thin vertical strip
    res = extract_defects(m, get_defects_preset("industrial-defects-fp40"), pixel_threshold=0.8)
    assert [r["bbox_xyxy"] for r in res.regions] == [[15, 15, 20, 20]]


def test_unknown_presets_are_rejected_with_the_names():
    with pytest.raises(ValueError, match="industrial-defects-fp40"):
        get_defects_preset("fp40")


def test_scale_bbox_maps_pixel_edges_and_stays_inside():
    assert scale_bbox_xyxy([1, 1, 2, 2], src_hw=(4, 4), dst_hw=(8, 8)) == [2, 2, 5, 5]
    assert scale_bbox_xyxy([0, 0, 3, 3], src_hw=(4, 4), dst_hw=(6, 10)) == [0, 0, 9, 5]
    assert scale_bbox_xyxy([2, 1, 2, 1], src_hw=(4, 4), dst_hw=(2, 2)) == [1, 0, 1, 0]
    with pytest.raises(ValueError):
        scale_bbox_xyxy([0, 0, 4, 0], src_hw=(4, 4), dst_hw=(8, 8))


def test_roi_pixel_box_covers_every_touched_pixel():
    assert roi_pixel_box((10, 10), (0.1, 0.1, 0.9, 0.9)) == (1, 1, 9, 9)
    assert roi_pixel_box((10, 10), (0.15, 0.0, 0.7, 1.0)) == (1, 0, 7, 10)
    assert roi_pixel_box((4, 4), None) == (0, 0, 4, 4)


def test_defects_config_default_turns_every_optional_stage_off():
    cfg = DefectsConfig()
    assert cfg.map_smoothing == "none" and not cfg.hysteresis and not cfg.merge_nearby
    assert cfg.pixel_threshold_strategy is None and cfg.max_regions is None
