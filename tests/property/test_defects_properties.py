"""Hypothesis invariants of pyimgano.defects.extract_defects (SPEC section 7)."""

import attrs
import cv2
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pyimgano.defects import DefectsConfig, extract_defects
from pyimgano.defects.geometry import roi_mask

# Maps on a coarse value grid so that components, ties and thresholds all occur.
_LEVELS = np.arange(11, dtype=np.float32) / 10.0


@st.composite
def maps(draw):
    h = draw(st.integers(3, 12))
    w = draw(st.integers(3, 12))
    idx = draw(st.lists(st.integers(0, 10), min_size=h * w, max_size=h * w))
    return _LEVELS[np.array(idx)].reshape(h, w)


rois = st.one_of(
    st.none(),
    st.tuples(st.floats(0.0, 0.45), st.floats(0.0, 0.45), st.floats(0.55, 1.0), st.floats(0.55, 1.0)),
)


@st.composite
def configs(draw, *, merge=None, threshold_monotone=False):
    """Configs; with ``threshold_monotone`` only stages whose output shrinks as the threshold rises."""
    smoothing = draw(st.sampled_from(["none", "median", "box"]))
    kwargs = dict(
        roi_xyxy_norm=draw(rois),
        border_ignore_px=draw(st.integers(0, 2)),
        map_smoothing=smoothing,
        map_smoothing_ksize=3,
        hysteresis=draw(st.booleans()),
        open_ksize=draw(st.sampled_from([0, 2, 3])),
        close_ksize=draw(st.sampled_from([0, 2, 3])),
        fill_holes=draw(st.booleans()),
        min_area=draw(st.integers(0, 4)),
        min_score_max=draw(st.one_of(st.none(), st.sampled_from([0.5, 0.8]))),
        max_regions_sort_by=draw(st.sampled_from(["score_max", "score_mean", "area"])),
    )
    if not threshold_monotone:
        # Shape and mean-score filters can let a component through once a higher
        # threshold trims it, so they are left out of the monotonicity property.
        kwargs.update(
            min_score_mean=draw(st.one_of(st.none(), st.sampled_from([0.4, 0.7]))),
            min_fill_ratio=draw(st.one_of(st.none(), st.sampled_from([0.3, 0.6]))),
            max_aspect_ratio=draw(st.one_of(st.none(), st.sampled_from([2.0, 4.0]))),
            min_solidity=draw(st.one_of(st.none(), st.sampled_from([0.6, 0.9]))),
        )
    use_merge = draw(st.booleans()) if merge is None else merge
    kwargs.update(merge_nearby=use_merge, merge_nearby_max_gap_px=draw(st.integers(0, 2)))
    return DefectsConfig(**kwargs)


thresholds = st.sampled_from([0.15, 0.35, 0.5, 0.65, 0.85])


def _fg(result):
    return result.mask == 255


@settings(max_examples=40)
@given(maps(), configs(merge=False), thresholds)
def test_region_areas_sum_to_the_mask_foreground_without_merging(m, cfg, thr):
    res = extract_defects(m, cfg, pixel_threshold=thr)
    assert sum(r["area"] for r in res.regions) == int(_fg(res).sum())
    assert set(np.unique(res.mask)) <= {0, 255}


@settings(max_examples=40)
@given(maps(), configs(), thresholds)
def test_every_bbox_contains_all_its_pixels_and_its_centroid(m, cfg, thr):
    res = extract_defects(m, cfg, pixel_threshold=thr)
    _, labels = cv2.connectedComponents(res.mask, connectivity=8, ltype=cv2.CV_32S)
    for r in res.regions:
        members = r.get("merged_from_ids", [r["id"]])
        ys, xs = np.nonzero(np.isin(labels, members))
        assert len(xs) == r["area"]
        x1, y1, x2, y2 = r["bbox_xyxy"]
        assert [xs.min(), ys.min(), xs.max(), ys.max()] == [x1, y1, x2, y2]
        cx, cy = r["centroid_xy"]
        assert x1 <= cx <= x2 and y1 <= cy <= y2
        assert np.isclose(cx, xs.mean()) and np.isclose(cy, ys.mean())
        assert r["bbox_area"] == (x2 - x1 + 1) * (y2 - y1 + 1)
        assert 0.0 < r["solidity"] <= 1.0 and 0.0 < r["fill_ratio"] <= 1.0
        assert r["score_max"] >= r["score_mean"] - 1e-6


@settings(max_examples=40)
@given(maps(), configs(), thresholds, rois.filter(lambda r: r is not None))
def test_the_roi_never_adds_foreground_and_gates_everything_outside(m, cfg, thr, roi):
    without = extract_defects(m, attrs.evolve(cfg, roi_xyxy_norm=None), pixel_threshold=thr)
    gated = extract_defects(m, attrs.evolve(cfg, roi_xyxy_norm=roi), pixel_threshold=thr)
    assert not (_fg(gated) & ~_fg(without)).any()
    assert not (_fg(gated) & ~roi_mask(m.shape, roi)).any()


@settings(max_examples=40)
@given(maps(), configs(threshold_monotone=True), thresholds, thresholds)
def test_raising_the_threshold_never_adds_foreground(m, cfg, t1, t2):
    lo, hi = min(t1, t2), max(t1, t2)
    low = extract_defects(m, cfg, pixel_threshold=lo)
    high = extract_defects(m, cfg, pixel_threshold=hi)
    assert not (_fg(high) & ~_fg(low)).any()


@settings(max_examples=30)
@given(maps(), configs(), thresholds)
def test_identical_inputs_give_identical_outputs(m, cfg, thr):
    a = extract_defects(m, cfg, pixel_threshold=thr, image_hw=(2 * m.shape[0], 3 * m.shape[1]))
    b = extract_defects(m.copy(), DefectsConfig.from_mapping(cfg.to_mapping()), pixel_threshold=thr, image_hw=(2 * m.shape[0], 3 * m.shape[1]))
    np.testing.assert_array_equal(a.mask, b.mask)
    assert a.to_jsonable() == b.to_jsonable()


@settings(max_examples=40)
@given(maps(), configs(), thresholds, st.integers(1, 4))
def test_max_regions_keeps_the_top_regions_by_the_sort_key(m, cfg, thr, k):
    everything = extract_defects(m, cfg, pixel_threshold=thr)
    top = extract_defects(m, attrs.evolve(cfg, max_regions=k), pixel_threshold=thr)
    key = cfg.max_regions_sort_by
    assert top.regions == everything.regions[:k]
    keys = [(-r[key], r["id"]) for r in everything.regions]
    assert keys == sorted(keys)
    np.testing.assert_array_equal(top.mask, everything.mask)


@settings(max_examples=30)
@given(maps(), configs(merge=False), thresholds, st.integers(0, 2))
def test_merging_changes_the_regions_list_only(m, cfg, thr, gap):
    plain = extract_defects(m, cfg, pixel_threshold=thr)
    merged = extract_defects(m, attrs.evolve(cfg, merge_nearby=True, merge_nearby_max_gap_px=gap), pixel_threshold=thr)
    np.testing.assert_array_equal(plain.mask, merged.mask)
    assert sum(r["area"] for r in merged.regions) == sum(r["area"] for r in plain.regions)
    ids = sorted(i for r in merged.regions for i in r.get("merged_from_ids", [r["id"]]))
    assert ids == sorted(r["id"] for r in plain.regions)
