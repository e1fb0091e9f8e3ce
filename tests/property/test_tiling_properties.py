"""Hypothesis invariants of the tile grid, the map blends and the tiled detector."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pyimgano.inference.tiling import MAP_REDUCES, SCORE_REDUCES, TiledDetector, plan_tiles, stitch, tile


@st.composite
def grids(draw, max_side=48, max_tile=20):
    height = draw(st.integers(1, max_side))
    width = draw(st.integers(1, max_side))
    tile_size = draw(st.integers(1, max_tile))
    stride = draw(st.integers(1, tile_size))
    return plan_tiles(height, width, tile_size, stride)


@given(grids())
def test_every_pixel_is_covered_by_at_least_one_tile_and_the_last_tile_touches_the_edge(plan):
    covered = np.zeros(plan.padded_shape, np.int32)
    t = plan.tile_size
    for y, x in plan.origins:
        covered[y : y + t, x : x + t] += 1
    assert (covered[: plan.height, : plan.width] >= 1).all()
    assert plan.ys[-1] + t == plan.padded_shape[0] and plan.xs[-1] + t == plan.padded_shape[1]
    assert list(plan.ys) == sorted(set(plan.ys)) and list(plan.xs) == sorted(set(plan.xs))
    # Steps never exceed the stride, so no gap can open between neighbours.
    assert all(b - a <= plan.stride for a, b in zip(plan.ys, plan.ys[1:]))


@settings(max_examples=20)
@given(grids(), st.sampled_from(MAP_REDUCES), st.floats(-100, 100, allow_nan=False, width=32))
def test_a_constant_per_tile_map_blends_to_the_same_constant(plan, map_reduce, value):
    tile_maps = np.full((2, plan.num_tiles, plan.tile_size, plan.tile_size), value, np.float32)
    out = np.asarray(stitch(tile_maps, plan, map_reduce))
    assert out.shape == (2, plan.height, plan.width)
    np.testing.assert_allclose(out, value, rtol=1e-5, atol=1e-5)


@settings(max_examples=20)
@given(grids(max_side=40, max_tile=16), st.sampled_from(MAP_REDUCES), st.integers(0, 2**31 - 1))
def test_stitching_the_tiles_of_an_identity_detector_reproduces_the_image(plan, map_reduce, seed):
    image = np.random.default_rng(seed).uniform(0, 1, (1, plan.height, plan.width)).astype(np.float32)
    out = np.asarray(stitch(tile(image, plan), plan, map_reduce))
    np.testing.assert_allclose(out, image, rtol=1e-5, atol=1e-6)


@settings(max_examples=4)
@given(st.integers(0, 2**31 - 1), st.sampled_from(SCORE_REDUCES), st.sampled_from(MAP_REDUCES))
def test_tiled_and_untiled_scoring_agree_when_one_tile_covers_the_whole_image(
    tiny_state, seed, score_reduce, map_reduce
):
    import pyimgano

    frames = np.random.default_rng(seed).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    tiled = TiledDetector(tiny_state, tile_size=32, score_reduce=score_reduce, map_reduce=map_reduce, batch_size=2)
    scores, maps = tiled.tiled_predict(frames)
    ref_scores, ref_maps = pyimgano.predict(tiny_state, frames, "rgb_u8_hwc")
    np.testing.assert_allclose(scores, np.asarray(ref_scores), rtol=1e-4, atol=1e-5)
    # Maps pass through the detector's blur in two differently batched programs: round-off only.
    np.testing.assert_allclose(maps, np.asarray(ref_maps), rtol=1e-3, atol=2e-3)
