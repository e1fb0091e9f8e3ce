"""One test per stage of extract_defects, on tiny hand-made maps with exact expected regions."""

import json

import numpy as np
import pytest

from pyimgano.defects import DefectsConfig, extract_defects


def _boxes(result):
    return [r["bbox_xyxy"] for r in result.regions]


def _fg(result):
    return result.mask == 255


def test_plain_threshold_is_greater_or_equal_and_regions_carry_every_field():
    m = np.zeros((6, 6), np.float32)
    m[1:3, 1:4] = 0.5  # exactly at the threshold: kept
    m[4, 4] = 0.49
    res = extract_defects(m, DefectsConfig(pixel_threshold=0.5))
    assert res.regions == [
        {
            "id": 1,
            "bbox_xyxy": [1, 1, 3, 2],
            "area": 6,
            "centroid_xy": [2.0, 1.5],
            "bbox_area": 6,
            "fill_ratio": 1.0,
            "aspect_ratio": 1.5,
            "solidity": 1.0,
            "score_max": 0.5,
            "score_mean": 0.5,
        }
    ]
    assert res.mask.dtype == np.uint8 and res.mask.shape == (6, 6)
    assert set(np.unique(res.mask)) == {0, 255}
    assert int(_fg(res).sum()) == 6


def test_median_3_removes_an_isolated_pixel_and_keeps_a_3x3_blob():
    m = np.zeros((10, 10), np.float32)
    m[5:8, 5:8] = 1.0
    m[2, 2] = 1.0
    plain = extract_defects(m, DefectsConfig(pixel_threshold=0.5))
    assert _boxes(plain) == [[2, 2, 2, 2], [5, 5, 7, 7]]  # equal score_max: raster order
    smoothed = extract_defects(m, DefectsConfig(pixel_threshold=0.5, map_smoothing="median", map_smoothing_ksize=3))
    # The blob's corners see 4 of 9 high pixels and drop out; its plus shape stays.
    assert _boxes(smoothed) == [[5, 5, 7, 7]]
    expected = np.zeros((10, 10), bool)
    expected[6, 5:8] = expected[5:8, 6] = True
    np.testing.assert_array_equal(_fg(smoothed), expected)
    assert smoothed.regions[0]["area"] == 5
    assert smoothed.regions[0]["score_max"] == 1.0  # scores come from the raw map


def test_box_smoothing_spreads_a_single_pixel_over_its_3x3_neighbourhood():
    m = np.zeros((9, 9), np.float32)
    m[4, 4] = 1.0
    res = extract_defects(m, DefectsConfig(pixel_threshold=0.1, map_smoothing="box", map_smoothing_ksize=3))
    assert _boxes(res) == [[3, 3, 5, 5]]
    assert res.regions[0]["area"] == 9
    assert res.regions[0]["score_max"] == 1.0
    assert res.regions[0]["score_mean"] == pytest.approx(1.0 / 9.0, rel=1e-6)


def test_gaussian_smoothing_lowers_a_single_pixel_peak_below_the_threshold():
    m = np.zeros((9, 9), np.float32)
    m[4, 4] = 1.0
    cfg = DefectsConfig(pixel_threshold=0.5, map_smoothing="gaussian", map_smoothing_ksize=5, map_smoothing_sigma=1.0)
    assert extract_defects(m, cfg).regions == []


def test_hysteresis_keeps_a_low_pixel_connected_to_a_seed_and_drops_an_isolated_one():
    m = np.zeros((7, 7), np.float32)
    m[1, 1] = 0.95
    m[1, 2] = 0.6
    m[5, 5] = 0.6
    plain = extract_defects(m, DefectsConfig(pixel_threshold=0.5))
    assert _boxes(plain) == [[1, 1, 2, 1], [5, 5, 5, 5]]
    # high defaults to the pixel threshold (0.9), low to 0.45.
    res = extract_defects(m, DefectsConfig(pixel_threshold=0.9, hysteresis=True))
    assert len(res.regions) == 1
    region = res.regions[0]
    assert region["bbox_xyxy"] == [1, 1, 2, 1]
    assert region["area"] == 2
    assert region["score_max"] == pytest.approx(0.95)
    assert region["score_mean"] == pytest.approx(0.775)
    assert not _fg(res)[5, 5]


def test_hysteresis_default_low_is_half_of_high():
    m = np.zeros((5, 5), np.float32)
    m[2, 1] = 1.0
    m[2, 2] = 0.44  # below 0.5 * 0.9
    m[2, 3] = 0.9
    res = extract_defects(m, DefectsConfig(pixel_threshold=0.9, hysteresis=True))
    assert _boxes(res) == [[1, 2, 1, 2], [3, 2, 3, 2]]
    explicit = extract_defects(m, DefectsConfig(pixel_threshold=0.9, hysteresis=True, hysteresis_low=0.4))
    assert _boxes(explicit) == [[1, 2, 3, 2]]


def test_opening_removes_a_speck_and_keeps_a_3x3_blob():
    m = np.zeros((9, 9), np.float32)
    m[4:7, 4:7] = 1.0
    m[1, 1] = 1.0
    res = extract_defects(m, DefectsConfig(pixel_threshold=0.5, open_ksize=3))
    assert _boxes(res) == [[4, 4, 6, 6]]
    assert res.regions[0]["area"] == 9


def test_closing_bridges_a_one_pixel_gap():
    m = np.zeros((7, 7), np.float32)
    m[3, 2] = m[3, 4] = 1.0
    assert len(extract_defects(m, DefectsConfig(pixel_threshold=0.5)).regions) == 2
    res = extract_defects(m, DefectsConfig(pixel_threshold=0.5, close_ksize=3))
    assert _boxes(res) == [[2, 3, 4, 3]]
    assert res.regions[0]["area"] == 3
    assert res.regions[0]["score_mean"] == pytest.approx(2.0 / 3.0)


def test_min_area_drops_small_components():
    m = np.zeros((8, 8), np.float32)
    m[1:3, 1:3] = 1.0  # area 4
    m[5, 5:8] = 1.0  # area 3
    res = extract_defects(m, DefectsConfig(pixel_threshold=0.5, min_area=4))
    assert _boxes(res) == [[1, 1, 2, 2]]


def test_min_score_max_and_min_score_mean_drop_weak_components():
    m = np.zeros((8, 8), np.float32)
    m[1, 1:3] = [0.9, 0.5]  # max 0.9, mean 0.7
    m[5, 5:7] = [0.6, 0.6]  # max 0.6, mean 0.6
    res = extract_defects(m, DefectsConfig(pixel_threshold=0.5, min_score_max=0.8))
    assert _boxes(res) == [[1, 1, 2, 1]]
    res = extract_defects(m, DefectsConfig(pixel_threshold=0.5, min_score_mean=0.6))
    assert sorted(_boxes(res)) == [[1, 1, 2, 1], [5, 5, 6, 5]]  # 0.6 >= 0.6 is kept
    res = extract_defects(m, DefectsConfig(pixel_threshold=0.5, min_score_mean=0.65))
    assert _boxes(res) == [[1, 1, 2, 1]]


def test_a_1x6_line_is_removed_by_max_aspect_ratio_3():
    m = np.zeros((8, 8), np.float32)
    m[1, 1:7] = 1.0
    m[4:6, 4:6] = 0.8
    plain = extract_defects(m, DefectsConfig(pixel_threshold=0.5))
    assert [r["aspect_ratio"] for r in plain.regions] == [6.0, 1.0]
    res = extract_defects(m, DefectsConfig(pixel_threshold=0.5, max_aspect_ratio=3.0))
    assert _boxes(res) == [[4, 4, 5, 5]]


def _l_shape_and_square():
    m = np.zeros((8, 8), np.float32)
    m[0, 0:3] = 1.0
    m[1:3, 0] = 1.0  # L: area 5 in a 3x3 box, pixel-square hull area 7
    m[5:7, 5:7] = 0.9
    return m


def test_an_l_shape_has_fill_ratio_5_9_and_solidity_5_7():
    res = extract_defects(_l_shape_and_square(), DefectsConfig(pixel_threshold=0.5))
    l_region = res.regions[0]
    assert l_region["bbox_xyxy"] == [0, 0, 2, 2]
    assert l_region["fill_ratio"] == pytest.approx(5 / 9)
    assert l_region["solidity"] == pytest.approx(5 / 7)


def test_min_fill_ratio_drops_the_l_shape():
    res = extract_defects(_l_shape_and_square(), DefectsConfig(pixel_threshold=0.5, min_fill_ratio=0.6))
    assert _boxes(res) == [[5, 5, 6, 6]]


def test_min_solidity_drops_the_l_shape():
    res = extract_defects(_l_shape_and_square(), DefectsConfig(pixel_threshold=0.5, min_solidity=0.8))
    assert _boxes(res) == [[5, 5, 6, 6]]
    kept = extract_defects(_l_shape_and_square(), DefectsConfig(pixel_threshold=0.5, min_solidity=0.7))
    assert len(kept.regions) == 2


def test_fill_holes_fills_an_enclosed_pixel_but_not_background_touching_the_edge():
    m = np.zeros((7, 7), np.float32)
    m[1:4, 1:4] = 1.0
    m[2, 2] = 0.0  # enclosed hole
    res = extract_defects(m, DefectsConfig(pixel_threshold=0.5))
    assert res.regions[0]["area"] == 8
    filled = extract_defects(m, DefectsConfig(pixel_threshold=0.5, fill_holes=True))
    assert filled.regions[0]["area"] == 9
    assert int(_fg(filled).sum()) == 9
    # Filled pixels take their raw score: (8 * 1.0 + 0.0) / 9.
    assert filled.regions[0]["score_mean"] == pytest.approx(8 / 9)


def test_border_ignore_keeps_the_frame_out_of_the_mask():
    m = np.zeros((8, 8), np.float32)
    m[0, 3] = 1.0
    m[4, 4] = 1.0
    res = extract_defects(m, DefectsConfig(pixel_threshold=0.5, border_ignore_px=1))
    assert _boxes(res) == [[4, 4, 4, 4]]
    # With a threshold at the map minimum everything but the 2 px frame is foreground.
    everything = extract_defects(m, DefectsConfig(pixel_threshold=0.0, border_ignore_px=2))
    expected = np.zeros((8, 8), bool)
    expected[2:6, 2:6] = True
    np.testing.assert_array_equal(_fg(everything), expected)


def test_roi_zeroes_pixels_outside_and_changes_no_score():
    m = np.zeros((10, 10), np.float32)
    m[1:3, 1:3] = 0.7  # inside ROI box [0, 5) x [0, 5)
    m[7:9, 7:9] = 0.9  # outside
    m[3:7, 4] = 0.6  # straddles the ROI edge at y = 5
    cfg = DefectsConfig(pixel_threshold=0.5)
    full = extract_defects(m, cfg)
    gated = extract_defects(m, DefectsConfig(pixel_threshold=0.5, roi_xyxy_norm=(0.0, 0.0, 0.5, 0.5)))
    assert not _fg(gated)[5:, :].any() and not _fg(gated)[:, 5:].any()
    by_box = {tuple(r["bbox_xyxy"]): r for r in full.regions}
    inside = [r for r in gated.regions if r["bbox_xyxy"] == [1, 1, 2, 2]]
    assert len(inside) == 1
    for key in ("area", "score_max", "score_mean", "centroid_xy"):
        assert inside[0][key] == by_box[(1, 1, 2, 2)][key]
    cut = [r for r in gated.regions if r["bbox_xyxy"] == [4, 3, 4, 4]]
    assert len(cut) == 1 and cut[0]["area"] == 2
    assert gated.map_stats_roi == {"max": 0.7, "mean": pytest.approx((4 * 0.7 + 2 * 0.6) / 25, rel=1e-6)}
    assert full.map_stats_roi["max"] == 0.9


def test_two_blobs_one_pixel_apart_merge_into_one_region_with_both_ids():
    m = np.zeros((6, 8), np.float32)
    m[1:3, 1:3] = 0.8
    m[1:3, 4:6] = 0.9
    separate = extract_defects(m, DefectsConfig(pixel_threshold=0.5))
    assert [r["id"] for r in separate.regions] == [2, 1]  # score_max desc
    merged = extract_defects(m, DefectsConfig(pixel_threshold=0.5, merge_nearby=True, merge_nearby_max_gap_px=1))
    assert len(merged.regions) == 1
    region = merged.regions[0]
    assert region["merged_from_ids"] == [1, 2]
    assert region["id"] == 1
    assert region["bbox_xyxy"] == [1, 1, 5, 2]
    assert region["area"] == 8
    assert region["bbox_area"] == 10
    assert region["centroid_xy"] == [3.0, 1.5]
    assert region["score_max"] == pytest.approx(0.9)
    assert region["score_mean"] == pytest.approx(0.85)
    assert region["solidity"] == pytest.approx(0.8)
    np.testing.assert_array_equal(merged.mask, separate.mask)  # regions list only


def test_merge_gap_smaller_than_the_gap_merges_nothing():
    m = np.zeros((6, 9), np.float32)
    m[1:3, 1:3] = 0.8
    m[1:3, 5:7] = 0.9  # two empty columns between
    res = extract_defects(m, DefectsConfig(pixel_threshold=0.5, merge_nearby=True, merge_nearby_max_gap_px=1))
    assert len(res.regions) == 2 and all("merged_from_ids" not in r for r in res.regions)
    res2 = extract_defects(m, DefectsConfig(pixel_threshold=0.5, merge_nearby=True, merge_nearby_max_gap_px=2))
    assert [r["merged_from_ids"] for r in res2.regions] == [[1, 2]]


def _three_blobs():
    m = np.zeros((8, 12), np.float32)
    m[1, 1] = 0.9  # id 1: area 1, max 0.9
    m[1:4, 5:8] = 0.6  # id 2: area 9, max 0.6
    m[5:7, 1:3] = 0.9  # id 3: area 4, max 0.9 (ties id 1 on score_max)
    m[5, 2] = 0.7
    return m


def test_regions_sort_by_score_max_desc_with_ties_by_position():
    res = extract_defects(_three_blobs(), DefectsConfig(pixel_threshold=0.5))
    assert [r["id"] for r in res.regions] == [1, 3, 2]


def test_regions_sort_by_area_and_score_mean():
    by_area = extract_defects(_three_blobs(), DefectsConfig(pixel_threshold=0.5, max_regions_sort_by="area"))
    assert [r["id"] for r in by_area.regions] == [2, 3, 1]
    by_mean = extract_defects(_three_blobs(), DefectsConfig(pixel_threshold=0.5, max_regions_sort_by="score_mean"))
    assert [r["id"] for r in by_mean.regions] == [1, 3, 2]


def test_max_regions_keeps_the_first_regions_in_sort_order():
    res = extract_defects(_three_blobs(), DefectsConfig(pixel_threshold=0.5, max_regions=2, max_regions_sort_by="area"))
    assert [r["id"] for r in res.regions] == [2, 3]


def test_image_space_bbox_scales_pixel_edges():
    m = np.zeros((4, 4), np.float32)
    m[1:3, 1:3] = 1.0
    res = extract_defects(m, DefectsConfig(pixel_threshold=0.5), image_hw=(8, 8))
    assert res.regions[0]["bbox_xyxy"] == [1, 1, 2, 2]
    assert res.regions[0]["bbox_xyxy_image"] == [2, 2, 5, 5]
    assert "bbox_xyxy_image" not in extract_defects(m, DefectsConfig(pixel_threshold=0.5)).regions[0]


def test_threshold_argument_and_provenance_are_carried_to_the_result():
    m = np.zeros((4, 4), np.float32)
    m[1, 1] = 0.3
    prov = {"method": "normal_pixel_quantile", "source": "train_dir", "q": 0.9, "n_maps": 2, "n_pixels": 32}
    res = extract_defects(m, DefectsConfig(), pixel_threshold=0.25, pixel_threshold_provenance=prov)
    assert res.pixel_threshold == 0.25
    assert res.pixel_threshold_provenance == prov
    assert _boxes(res) == [[1, 1, 1, 1]]
    default = extract_defects(m, DefectsConfig(pixel_threshold=0.25))
    assert default.pixel_threshold_provenance == {"method": "fixed", "source": "explicit"}


def test_to_jsonable_is_plain_json_with_the_optional_mask_block():
    m = np.zeros((5, 5), np.float64)
    m[1:3, 1:3] = 0.8
    res = extract_defects(m, DefectsConfig(pixel_threshold=np.float64(0.5)), image_hw=(10, 10))
    info = {"path": "masks/000000_a.png", "shape": [5, 5], "dtype": "uint8", "encoding": "png"}
    out = res.to_jsonable(mask=info)
    assert json.loads(json.dumps(out)) == out
    assert set(out) == {"space", "pixel_threshold", "pixel_threshold_provenance", "mask", "regions", "map_stats_roi"}
    assert out["space"] == {"type": "anomaly_map", "shape": [5, 5]}
    assert type(out["pixel_threshold"]) is float
    out["regions"][0]["area"] = -1  # a copy: the result is untouched
    assert res.regions[0]["area"] == 4


def test_missing_threshold_is_an_error_saying_how_to_provide_one():
    with pytest.raises(ValueError, match="--pixel-threshold"):
        extract_defects(np.zeros((3, 3), np.float32), DefectsConfig())


@pytest.mark.parametrize(
    "bad, err",
    [
        (np.zeros((2, 2, 2), np.float32), ValueError),
        (np.array([[0.0, np.nan]], np.float32), ValueError),
        (np.zeros((2, 2), bool), TypeError),
    ],
)
def test_bad_maps_are_rejected(bad, err):
    with pytest.raises(err):
        extract_defects(bad, DefectsConfig(pixel_threshold=0.5))


def test_bad_image_hw_is_rejected():
    with pytest.raises(ValueError, match="image_hw"):
        extract_defects(np.zeros((3, 3), np.float32), DefectsConfig(pixel_threshold=0.5), image_hw=(0, 4))
