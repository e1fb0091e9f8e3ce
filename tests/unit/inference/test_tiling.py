import numpy as np
import pytest

from pyimgano.inference.tiling import (
    MAP_REDUCES,
    TileConfig,
    plan_tiles,
    reduce_tile_scores,
    stitch,
    tile,
    window_weights,
)


def test_tile_origins_for_6x6_tile_4_stride_3_end_on_the_edge():
    plan = plan_tiles(6, 6, 4, 3)
    assert plan.ys == (0, 2) and plan.xs == (0, 2)
    assert plan.origins == ((0, 0), (0, 2), (2, 0), (2, 2))


def test_grid_origins_follow_the_range_plus_final_edge_rule():
    assert plan_tiles(2048, 2048, 512, 384).ys == (0, 384, 768, 1152, 1536)
    assert plan_tiles(10, 10, 4, 4).ys == (0, 4, 6)
    assert plan_tiles(8, 8, 4, 4).ys == (0, 4)  # the last origin is already H - t


def test_image_smaller_than_tile_gets_one_reflect_padded_tile():
    plan = plan_tiles(3, 2, 4, 2)
    assert plan.ys == (0,) and plan.xs == (0,) and plan.num_tiles == 1
    frame = np.array([[1, 2], [3, 4], [5, 6]], np.float32)[None]
    tiles = np.asarray(tile(frame, plan))
    assert tiles.shape == (1, 1, 4, 4)
    # numpy "reflect" padding (edge not repeated) on the bottom and right.
    np.testing.assert_array_equal(tiles[0, 0], np.pad(frame[0], ((0, 1), (0, 2)), mode="reflect"))
    np.testing.assert_allclose(np.asarray(stitch(tiles, plan, "hann")), frame, rtol=1e-6)


def test_tiles_are_cut_in_row_major_order():
    frame = np.arange(36, dtype=np.float32).reshape(1, 6, 6)
    tiles = np.asarray(tile(frame, plan_tiles(6, 6, 4, 3)))
    np.testing.assert_array_equal(tiles[0, 1], frame[0, 0:4, 2:6])
    np.testing.assert_array_equal(tiles[0, 2], frame[0, 2:6, 0:4])


def test_stride_larger_than_tile_is_rejected():
    with pytest.raises(ValueError, match="stride=5 tile_size=4"):
        plan_tiles(10, 10, 4, 5)
    with pytest.raises(ValueError, match="stride"):
        TileConfig(tile_size=4, stride=5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(tile_size=0), "tile_size"),
        (dict(tile_size=4.5), "tile_size"),
        (dict(tile_size=4, score_reduce="median"), r"\['max', 'mean', 'topk_mean'\]"),
        (dict(tile_size=4, map_reduce="blend"), r"\['max', 'mean', 'hann', 'gaussian'\]"),
        (dict(tile_size=4, score_topk=0), "score_topk"),
        (dict(tile_size=4, score_topk=1.5), "score_topk"),
    ],
)
def test_bad_tile_settings_name_the_value_and_the_accepted_ones(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TileConfig(**kwargs)


def test_stride_defaults_to_tile_size():
    assert TileConfig(tile_size=16).stride == 16


def test_tiles_of_a_frame_of_the_wrong_size_are_refused():
    with pytest.raises(ValueError, match=r"\(5, 6\)"):
        tile(np.zeros((1, 5, 6, 3)), plan_tiles(6, 6, 4, 3))


@pytest.mark.parametrize("map_reduce", MAP_REDUCES)
def test_window_weights_are_positive_everywhere(map_reduce):
    for t in (1, 2, 7, 64):
        w = window_weights(t, map_reduce)
        assert w.shape == (t, t) and w.dtype == np.float32 and (w > 0).all()


def test_hann_and_gaussian_windows_favour_the_tile_centre():
    for name in ("hann", "gaussian"):
        w = window_weights(8, name)
        assert w[3, 3] > w[0, 0] and w[0, 0] == w[7, 7]


def test_tile_scores_reduce_by_max_mean_and_topk_mean():
    scores = np.array([[1.0, 5.0, 3.0, 2.0]], np.float32)
    assert float(reduce_tile_scores(scores, "max")[0]) == 5.0
    assert float(reduce_tile_scores(scores, "mean")[0]) == pytest.approx(2.75)
    assert float(reduce_tile_scores(scores, "topk_mean", 2)[0]) == pytest.approx(4.0)
    # fraction 0.5 of 4 tiles -> 2 tiles; 0.1 -> at least 1 tile.
    assert float(reduce_tile_scores(scores, "topk_mean", 0.5)[0]) == pytest.approx(4.0)
    assert float(reduce_tile_scores(scores, "topk_mean", 0.1)[0]) == pytest.approx(5.0)


def _identity_tile_maps(image: np.ndarray, plan):
    """An identity 'detector': each tile's map is the tile's pixels."""
    return tile(image[None], plan)


@pytest.mark.parametrize("map_reduce", MAP_REDUCES)
def test_a_hot_2x2_spot_is_found_by_max_reduce_and_localised_by_every_blend(map_reduce):
    image = np.full((20, 20), 0.1, np.float32)
    image[13:15, 6:8] = 1.0
    plan = plan_tiles(20, 20, 8, 5)
    tile_maps = _identity_tile_maps(image, plan)
    tile_scores = np.asarray(tile_maps).max(axis=(2, 3))
    assert float(reduce_tile_scores(tile_scores, "max")[0]) == 1.0
    stitched = np.asarray(stitch(tile_maps, plan, map_reduce))[0]
    assert stitched.shape == (20, 20)
    hot = np.argwhere(stitched > 0.5)
    assert {tuple(p) for p in hot} == {(13, 6), (13, 7), (14, 6), (14, 7)}


def test_stitch_rejects_tile_maps_that_do_not_match_the_plan():
    with pytest.raises(ValueError, match="tile_maps"):
        stitch(np.zeros((1, 3, 4, 4)), plan_tiles(6, 6, 4, 3))
    with pytest.raises(ValueError, match="map_reduce"):
        stitch(np.zeros((1, 4, 4, 4)), plan_tiles(6, 6, 4, 3), "median")
