"""Properties of the deployable state: immutability under calibration, file round trips,
tiling with one covering tile, and tile-order invariance of stitching."""

import attrs
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import pyimgano
from pyimgano.calibration import calibrate
from pyimgano.postprocess import NORMALIZE_METHODS, AnomalyMapPostprocess
from pyimgano.tiling import MAP_REDUCES, SCORE_REDUCES, TileConfig, blend_tiles, plan_tiles

FEW = settings(max_examples=8)


def _meta(state):
    return {k: v for k, v in attrs.asdict(state, recurse=False).items() if k != "model"}


@FEW
@given(seed=st.integers(0, 1000), quantile=st.floats(0.0, 1.0), pixel=st.one_of(st.none(), st.floats(0.01, 0.99)))
def test_calibrate_never_changes_its_input_state(tiny_state, frames_factory, seed, quantile, pixel):
    start = pyimgano.with_threshold(tiny_state, 1.5, {"method": "fixed", "source": "explicit"})
    before = _meta(start)
    bank = np.asarray(start.model.memory_bank).copy()
    new = calibrate(start, frames_factory(2, seed=seed), "rgb_u8_hwc", quantile=quantile, pixel_quantile=pixel)
    assert _meta(start) == before
    np.testing.assert_array_equal(np.asarray(start.model.memory_bank), bank)
    assert new.threshold != 1.5 or new.provenance["method"] == "quantile"


tilings = st.one_of(
    st.none(),
    st.builds(
        TileConfig,
        tile_size=st.integers(8, 64),
        stride=st.none(),
        score_reduce=st.sampled_from(SCORE_REDUCES),
        score_topk=st.one_of(st.integers(1, 4), st.floats(0.05, 1.0)),
        map_reduce=st.sampled_from(MAP_REDUCES),
    ),
)
postprocesses = st.one_of(
    st.none(),
    st.builds(
        AnomalyMapPostprocess,
        normalize=st.sampled_from([m for m in NORMALIZE_METHODS if m != "normal_stats"]),
        gaussian_sigma=st.floats(0.0, 3.0),
        morph_open_ksize=st.integers(0, 5),
    ),
)
finite = st.floats(-1e6, 1e6, allow_nan=False)
provenances = st.dictionaries(
    st.sampled_from(["method", "source", "q", "count", "note"]),
    st.one_of(st.text(max_size=8), st.integers(-5, 5), finite, st.lists(st.integers(0, 3), max_size=3)),
)


@FEW
@given(threshold=st.one_of(st.none(), finite), prov=provenances, pixel=st.one_of(st.none(), finite),
       tiling=tilings, post=postprocesses)
def test_a_state_file_round_trip_keeps_thresholds_tiling_and_postprocessing(
    tiny_state, tmp_path_factory, threshold, prov, pixel, tiling, post
):
    state = attrs.evolve(
        tiny_state,
        threshold=threshold,
        threshold_provenance=prov if threshold is not None else None,
        pixel_threshold=pixel,
        pixel_threshold_provenance={"method": "fixed", "source": "explicit"} if pixel is not None else None,
        tiling=tiling,
        postprocess=post,
    )
    path = pyimgano.save_state(state, tmp_path_factory.mktemp("rt") / "s.safetensors")
    loaded = pyimgano.load_state(path)
    assert _meta(loaded) == _meta(state)
    assert loaded.provenance == state.provenance


@FEW
@given(
    score_reduce=st.sampled_from(SCORE_REDUCES),
    map_reduce=st.sampled_from(MAP_REDUCES),
    seed=st.integers(0, 100),
)
def test_tiled_scoring_with_one_tile_covering_the_frame_equals_untiled_scoring(
    tiny_state, frames_factory, score_reduce, map_reduce, seed
):
    frames = frames_factory(2, seed=seed)  # 32x32 = the model input: no resize on either path
    tiled = pyimgano.with_tiling(tiny_state, TileConfig(tile_size=32, score_reduce=score_reduce, map_reduce=map_reduce))
    s_plain, m_plain = (np.asarray(a) for a in pyimgano.predict(tiny_state, frames, "rgb_u8_hwc"))
    s_tiled, m_tiled = (np.asarray(a) for a in pyimgano.predict(tiled, frames, "rgb_u8_hwc"))
    np.testing.assert_allclose(s_tiled, s_plain, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m_tiled, m_plain, rtol=1e-5, atol=1e-6)


@settings(max_examples=25)
@given(
    h=st.integers(4, 40),
    w=st.integers(4, 40),
    tile_size=st.integers(2, 16),
    stride_frac=st.floats(0.2, 1.0),
    map_reduce=st.sampled_from(MAP_REDUCES),
    seed=st.integers(0, 2**16),
)
def test_stitching_does_not_depend_on_the_order_of_the_tiles(h, w, tile_size, stride_frac, map_reduce, seed):
    plan = plan_tiles(h, w, tile_size, max(1, int(tile_size * stride_frac)))
    rng = np.random.default_rng(seed)
    maps = rng.random((2, plan.num_tiles, tile_size, tile_size), dtype=np.float32)
    order = rng.permutation(plan.num_tiles)
    ordered = np.asarray(blend_tiles(maps, plan.origins, plan.padded_shape, map_reduce))
    shuffled = np.asarray(
        blend_tiles(maps[:, order], tuple(plan.origins[i] for i in order), plan.padded_shape, map_reduce)
    )
    np.testing.assert_allclose(shuffled, ordered, rtol=1e-6, atol=1e-7)
    assert np.isfinite(ordered).all()
