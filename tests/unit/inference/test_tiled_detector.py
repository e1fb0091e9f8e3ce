import numpy as np
import pytest

import pyimgano
from pyimgano.inference import calibrate_threshold, infer
from pyimgano.models import TiledDetector
from pyimgano.models import create_model


@pytest.fixture(scope="module")
def big_frames(frames_factory, defect):
    """Two 64x80 frames; the second has a defect near its bottom-right corner."""
    frames = frames_factory(2, size=(64, 80), seed=5)
    frames[1] = defect(frames[1], 48, 62)
    return frames


@pytest.fixture(scope="module")
def tiled(tiny_state):
    return TiledDetector(tiny_state, tile_size=32, stride=24, score_reduce="max", map_reduce="hann")


def test_tiled_maps_cover_the_full_frame_and_localise_the_defect(tiled, big_frames):
    scores, maps = tiled.tiled_predict(big_frames)
    assert scores.shape == (2,) and maps.shape == (2, 64, 80) and maps.dtype == np.float32
    assert scores[1] > scores[0]
    y, x = np.unravel_index(maps[1].argmax(), maps[1].shape)
    assert 40 <= y < 64 and 54 <= x < 80


def test_tiled_scores_are_the_max_over_tile_scores(tiny_state, tiled, big_frames):
    plan = tiled.plan_for(64, 80)
    tiles = [big_frames[1][y : y + 32, x : x + 32] for y, x in plan.origins]
    tile_scores = np.asarray(pyimgano.score(tiny_state, np.stack(tiles), "rgb_u8_hwc"))
    assert tiled.decision_function(big_frames[1:])[0] == pytest.approx(tile_scores.max(), rel=1e-4)


def test_infer_through_a_tiled_detector_keeps_order_and_calibrates_its_own_threshold(tiled, big_frames):
    assert tiled.threshold_ is None
    results = infer(tiled, big_frames, input_format="rgb_u8_hwc", include_maps=True, batch_size=1)
    np.testing.assert_allclose([r.score for r in results], tiled.decision_function(big_frames), rtol=1e-5)
    assert all(r.anomaly_map.shape == (64, 80) and r.label is None for r in results)
    returned = calibrate_threshold(tiled, big_frames[:1], input_format="rgb_u8_hwc", quantile=0.5)
    assert returned is tiled and tiled.threshold_ == pytest.approx(results[0].score, rel=1e-5)
    assert tiled.threshold_provenance_["method"] == "quantile"
    tiled.threshold_ = None


def test_wrapping_an_unfitted_compat_object_uses_it_once_fitted(tiny_patchcore_kwargs, frames_factory):
    detector = create_model("vision_patchcore", **tiny_patchcore_kwargs)
    wrapped = TiledDetector(detector=detector, tile_size=32, score_reduce="topk_mean", score_topk=0.5)
    assert wrapped.supports_maps
    with pytest.raises(RuntimeError, match="not fitted"):
        wrapped.decision_function(frames_factory(1))
    detector.fit(frames_factory(6, seed=1))
    assert wrapped.decision_function(frames_factory(1, size=(40, 40))).shape == (1,)


def test_tiled_detector_needs_exactly_one_detector(tiny_state):
    with pytest.raises(TypeError, match="exactly one"):
        TiledDetector(tile_size=32)
    with pytest.raises(TypeError, match="exactly one"):
        TiledDetector(tiny_state, detector=tiny_state, tile_size=32)
    with pytest.raises(TypeError, match="DetectorState"):
        TiledDetector(object(), tile_size=32)
    with pytest.raises(ValueError, match="stride"):
        TiledDetector(tiny_state, tile_size=32, stride=40)
