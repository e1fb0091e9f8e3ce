import attrs
import jax
import numpy as np
import pytest

import pyimgano
from pyimgano import api, scoring


@pytest.mark.parametrize("which", ["patchcore_state", "padim_state"])
def test_score_and_maps_have_documented_shapes_and_dtypes(which, request, frames_factory):
    state = request.getfixturevalue(which)
    frames = frames_factory(3, size=40, seed=5)
    scores = pyimgano.score(state, frames, "rgb_u8_hwc")
    maps = pyimgano.anomaly_maps(state, frames, "rgb_u8_hwc")
    assert scores.shape == (3,) and scores.dtype == np.float32
    assert maps.shape == (3, 40, 40) and maps.dtype == np.float32
    assert np.all(np.isfinite(np.asarray(maps)))


@pytest.mark.parametrize("which", ["patchcore_state", "padim_state"])
def test_a_defect_scores_higher_than_the_clean_frame(which, request, frames_factory, defect):
    state = request.getfixturevalue(which)
    clean = frames_factory(1, seed=9)[0]
    scores = np.asarray(pyimgano.score(state, [clean, defect(clean)], "rgb_u8_hwc"))
    assert scores[1] > scores[0]


def test_bgr_frames_score_like_their_rgb_twins(patchcore_state, frames_factory):
    frames = frames_factory(2, seed=3)
    rgb = pyimgano.score(patchcore_state, frames, "rgb_u8_hwc")
    bgr = pyimgano.score(patchcore_state, frames[..., ::-1].copy(), "bgr_u8_hwc")
    np.testing.assert_array_equal(np.asarray(rgb), np.asarray(bgr))


def test_fit_is_deterministic_for_a_fixed_key(train_frames, frames_factory, tiny_patchcore_kwargs):
    key = jax.random.PRNGKey(7)
    a = pyimgano.fit("vision_patchcore", train_frames, "rgb_u8_hwc", key=key, **tiny_patchcore_kwargs)
    b = pyimgano.fit("vision_patchcore", train_frames, "rgb_u8_hwc", key=key, **tiny_patchcore_kwargs)
    np.testing.assert_array_equal(np.asarray(a.model.memory_bank), np.asarray(b.model.memory_bank))
    frames = frames_factory(2, seed=4)
    np.testing.assert_array_equal(
        np.asarray(pyimgano.score(a, frames, "rgb_u8_hwc")), np.asarray(pyimgano.score(b, frames, "rgb_u8_hwc"))
    )


@pytest.mark.parametrize("which", ["patchcore_state", "padim_state"])
def test_jit_and_no_jit_agree(which, request, frames_factory):
    state = request.getfixturevalue(which)
    frames = frames_factory(2, seed=6)
    scores, maps = pyimgano.predict(state, frames, "rgb_u8_hwc")
    with jax.disable_jit():
        scores_nojit, maps_nojit = pyimgano.predict(state, frames, "rgb_u8_hwc")
    np.testing.assert_allclose(np.asarray(scores), np.asarray(scores_nojit), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(maps), np.asarray(maps_nojit), rtol=1e-4, atol=1e-4)


def test_a_second_batch_of_the_same_shape_does_not_retrace(patchcore_state, frames_factory):
    pyimgano.score(patchcore_state, frames_factory(2, seed=10), "rgb_u8_hwc")
    pyimgano.anomaly_maps(patchcore_state, frames_factory(2, seed=10), "rgb_u8_hwc")
    scores_cache = scoring.run_scores._cache_size()
    maps_cache = scoring.run_predict._cache_size()
    pyimgano.score(patchcore_state, frames_factory(2, seed=11), "rgb_u8_hwc")
    pyimgano.anomaly_maps(patchcore_state, frames_factory(2, seed=11), "rgb_u8_hwc")
    # A re-thresholded state is a new pytree, but the threshold is not traced.
    calibrated = attrs.evolve(patchcore_state, threshold=1.5)
    pyimgano.score(calibrated, frames_factory(2, seed=12), "rgb_u8_hwc")
    assert scoring.run_scores._cache_size() == scores_cache
    assert scoring.run_predict._cache_size() == maps_cache


def test_batches_are_chunked_without_changing_scores(patchcore_state, frames_factory):
    frames = frames_factory(5, seed=13)
    whole = pyimgano.score(patchcore_state, frames, "rgb_u8_hwc", batch_size=8)
    chunked = pyimgano.score(patchcore_state, frames, "rgb_u8_hwc", batch_size=2)
    np.testing.assert_allclose(np.asarray(whole), np.asarray(chunked), rtol=1e-5, atol=1e-5)


def test_frames_of_mixed_size_are_scored_but_maps_need_one_size(patchcore_state, frames_factory):
    frames = [frames_factory(1, size=32)[0], frames_factory(1, size=48)[0]]
    assert pyimgano.score(patchcore_state, frames, "rgb_u8_hwc").shape == (2,)
    with pytest.raises(ValueError, match="one size"):
        pyimgano.anomaly_maps(patchcore_state, frames, "rgb_u8_hwc")


def test_paths_and_arrays_may_not_be_mixed(patchcore_state, tmp_path, frames_factory):
    with pytest.raises(TypeError, match="mixed"):
        pyimgano.score(patchcore_state, [str(tmp_path / "a.png"), frames_factory(1)[0]], "rgb_u8_hwc")


def test_unknown_detector_and_option_names_are_listed(frames_factory):
    with pytest.raises(ValueError, match="vision_patchcore"):
        pyimgano.fit("vision_nope", frames_factory(1), "rgb_u8_hwc")
    with pytest.raises(ValueError, match="coreset_ratio"):
        pyimgano.fit("vision_patchcore", frames_factory(1), "rgb_u8_hwc", coreset_fraction=0.1)


def test_an_empty_training_set_is_rejected(tiny_patchcore_kwargs):
    with pytest.raises(ValueError, match="at least one"):
        pyimgano.fit("vision_patchcore", [], "rgb_u8_hwc", **tiny_patchcore_kwargs)


def test_score_rejects_something_that_is_not_a_state(frames_factory):
    with pytest.raises(TypeError, match="DetectorState"):
        pyimgano.score({"memory_bank": 1}, frames_factory(1), "rgb_u8_hwc")


COLLECTIVES = ("all-gather", "all-reduce", "all-to-all", "collective-permute", "reduce-scatter")


@pytest.mark.parametrize("which", ["patchcore_state", "padim_state"])
def test_multi_device_scoring_is_pure_data_parallel(which, request, frames_factory):
    """Each device scores its own slice: the compiled program holds no collective and no
    LAPACK call (both can stall XLA:CPU host devices waiting on each other's threads),
    and results equal per-frame scoring."""
    from pyimgano.devices import device_count, shard_batch

    state = request.getfixturevalue(which)
    assert device_count() == 2, "tests/conftest.py sets two host devices"
    images = shard_batch(np.zeros((4, 32, 32, 3), np.float32))
    for fn, args in ((scoring.run_predict, (state.detector, state.model, images, (32, 32))),
                     (scoring.run_scores, (state.detector, state.model, images))):
        text = fn.lower(*args).compile().as_text()
        assert not [c for c in COLLECTIVES if c in text], fn.__name__
        assert "lapack" not in text, fn.__name__
    frames = frames_factory(4, seed=9)
    together = np.asarray(pyimgano.score(state, frames, "rgb_u8_hwc"))
    alone = np.concatenate([np.asarray(pyimgano.score(state, frames[i : i + 1], "rgb_u8_hwc")) for i in range(4)])
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-5)
