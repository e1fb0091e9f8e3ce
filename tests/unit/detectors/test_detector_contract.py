"""The contract every step-9 detector meets: shapes and dtypes, determinism, jit == no-jit,
a save/load round trip, and a synthetic defect scoring above normal frames.

All library-level calls score the same five 40x48 frames (``probe_frames``), so each
detector compiles its scoring program once for the whole module."""

import attrs
import jax
import numpy as np
import pytest

import pyimgano
from pyimgano.devices import replicate
from pyimgano.registry import get_detector

from .conftest import DEFECT_YX

NAMES = ["vision_spade", "vision_softpatch", "vision_anomalydino"]


@pytest.mark.parametrize("name", NAMES)
def test_scores_and_maps_have_documented_shapes_and_dtypes_at_the_frame_size(name, probed):
    scores, maps, _ = probed(name)
    assert scores.shape == (5,) and scores.dtype == np.float32
    assert maps.shape == (5, 40, 48) and maps.dtype == np.float32
    assert np.all(np.isfinite(np.asarray(scores))) and np.all(np.isfinite(np.asarray(maps)))


@pytest.mark.parametrize("name", NAMES)
def test_a_synthetic_defect_scores_above_every_normal_frame_and_raises_its_map_there(name, probed):
    scores, maps, size = probed(name)
    scores, maps = np.asarray(scores), np.asarray(maps)
    assert scores[-1] > scores[:-1].max()
    y, x = DEFECT_YX
    region = maps[:, y : y + size, x : x + size].mean(axis=(1, 2))
    assert region[-1] > region[:-1].max()  # the map rises where the defect is, not just anywhere


@pytest.mark.parametrize("name", NAMES)
def test_fit_is_deterministic_for_a_seed(name, fitted, probed, probe_frames, detector_train_frames, tiny_kwargs):
    first = fitted(name)
    again = pyimgano.fit(name, detector_train_frames, "rgb_u8_hwc", key=jax.random.PRNGKey(0), **tiny_kwargs(name))
    for a, b in zip(jax.tree.leaves(first.model), jax.tree.leaves(again.model)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    scores, maps = pyimgano.predict(again, probe_frames(name)[0], "rgb_u8_hwc")
    np.testing.assert_array_equal(np.asarray(scores), np.asarray(probed(name)[0]))
    np.testing.assert_array_equal(np.asarray(maps), np.asarray(probed(name)[1]))


@pytest.mark.parametrize("name", NAMES)
def test_jit_and_no_jit_agree(name, fitted, frames_factory, prepared):
    state = fitted(name)
    images = prepared(state, frames_factory(1, seed=6))
    predict = get_detector(name).predict
    jitted = predict(state.model, images, (32, 32))
    with jax.disable_jit():
        eager = predict(state.model, images, (32, 32))
    np.testing.assert_allclose(np.asarray(jitted.scores), np.asarray(eager.scores), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(jitted.maps), np.asarray(eager.maps), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_a_saved_state_loads_with_its_config_and_scores_identically(name, fitted, probed, probe_frames, tmp_path):
    state = attrs.evolve(fitted(name), threshold=0.5, threshold_provenance={"method": "fixed"})
    loaded = pyimgano.load_state(pyimgano.save_state(state, tmp_path / f"{name}.pyimgano"))
    assert loaded.detector == name and loaded.config == state.config and loaded.threshold == 0.5
    assert type(loaded.model) is type(state.model)
    # Placed like a fitted state (replicated), the loaded one reuses the compiled program.
    loaded = attrs.evolve(loaded, model=replicate(loaded.model))
    scores, maps = pyimgano.predict(loaded, probe_frames(name)[0], "rgb_u8_hwc")
    np.testing.assert_array_equal(np.asarray(scores), np.asarray(probed(name)[0]))
    np.testing.assert_array_equal(np.asarray(maps), np.asarray(probed(name)[1]))


@pytest.mark.parametrize("name", NAMES)
def test_each_detector_is_registered_with_its_capability_tags(name):
    spec = get_detector(name)
    assert {"numpy", "pixel_map", "pretrained_backbone"} <= spec.tags
    assert spec.paper and spec.description
    assert ("requires_checkpoint" in spec.tags) == (name == "vision_anomalydino")
