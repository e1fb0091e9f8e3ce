"""Fuzz extract_defects with hostile maps (NaN, inf, constant, empty, huge) and random configs."""

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pyimgano.defects import DefectsConfig, extract_defects

VALUES = st.sampled_from([0.0, 0.3, 0.5, 1.0, -1.0, 3e38, -3e38, 1e-45, np.nan, np.inf, -np.inf])


@st.composite
def maps(draw):
    kind = draw(st.sampled_from(["random", "constant", "empty", "wrong_ndim", "other_dtype"]))
    if kind == "empty":
        return np.zeros(draw(st.sampled_from([(0, 5), (5, 0), (0, 0)])), np.float32)
    if kind == "wrong_ndim":
        return np.zeros(draw(hnp.array_shapes(min_dims=0, max_dims=4).filter(lambda s: len(s) != 2)), np.float32)
    shape = (draw(st.integers(1, 24)), draw(st.integers(1, 24)))
    if kind == "constant":
        return np.full(shape, draw(VALUES), np.float32)
    dtype = np.float32 if kind == "random" else draw(st.sampled_from([np.float64, np.float16, np.int32, np.uint8,
                                                                      np.bool_, np.complex64]))
    return draw(hnp.arrays(dtype, shape, elements=VALUES if np.dtype(dtype).kind == "f" else None))


CONFIGS = st.builds(
    DefectsConfig,
    border_ignore_px=st.integers(0, 30),
    map_smoothing=st.sampled_from(["none", "median", "gaussian", "box"]),
    map_smoothing_ksize=st.sampled_from([3, 5]),
    hysteresis=st.booleans(),
    open_ksize=st.integers(0, 5),
    close_ksize=st.integers(0, 5),
    fill_holes=st.booleans(),
    min_area=st.integers(0, 50),
    min_score_max=st.one_of(st.none(), st.floats(-1, 2)),
    merge_nearby=st.booleans(),
    max_regions=st.one_of(st.none(), st.integers(1, 5)),
    roi_xyxy_norm=st.one_of(st.none(), st.just((0.1, 0.1, 0.9, 0.9))),
)


def test_extract_defects_gives_a_result_or_a_clear_error(fuzz_budget, fuzz_case):
    @settings(max_examples=fuzz_budget["extract_defects"])
    @given(amap=maps(), config=CONFIGS, threshold=st.one_of(st.floats(-2, 2), st.sampled_from([np.nan, np.inf])))
    def check(amap, config, threshold):
        with fuzz_case():
            try:
                result = extract_defects(amap, config, pixel_threshold=threshold, image_hw=(64, 48))
            except (ValueError, TypeError) as exc:
                assert any(word in str(exc) for word in ("anomaly_map", "pixel_threshold", "threshold")), exc
                return
            assert np.isfinite(amap.astype(np.float64)).all() and amap.ndim == 2 and amap.size
            assert result.mask.shape == amap.shape and set(np.unique(result.mask)) <= {0, 255}
            assert sum(r["area"] for r in result.regions) <= int((result.mask > 0).sum())
            json.dumps(result.to_jsonable(), allow_nan=False)  # the JSONL block stays valid JSON

    check()
    assert fuzz_case.count >= 0.8 * fuzz_budget["extract_defects"]
