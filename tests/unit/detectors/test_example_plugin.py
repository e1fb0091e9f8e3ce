"""examples/plugin_patch_knn.py: a detector outside the package registers through load_plugins and runs."""

import pathlib

import attrs
import numpy as np
import pytest

import pyimgano
from pyimgano.devices import replicate
from pyimgano.plugins import load_plugins
from pyimgano.registry import get_detector

EXAMPLE = pathlib.Path(__file__).resolve().parents[3] / "examples" / "plugin_patch_knn.py"
NAME = "example_patch_knn"
TINY = dict(backbone="tiny_resnet", pretrained=False, image_size=32, coreset_ratio=0.5, batch_size=4)


@pytest.fixture(scope="module")
def example_state(frames_factory):
    load_plugins([str(EXAMPLE)], entry_points=False)  # a no-op when another test loaded it already
    return pyimgano.fit(NAME, frames_factory(8, seed=1), "rgb_u8_hwc", **TINY)


def test_the_example_registers_its_detector_from_outside_the_package(example_state):
    spec = get_detector(NAME)
    assert spec.fit.__module__.startswith("pyimgano_plugin_plugin_patch_knn_")
    assert {"numpy", "pixel_map"} <= spec.tags
    assert load_plugins([str(EXAMPLE)], entry_points=False) == []  # loading it again changes nothing


@pytest.fixture(scope="module")
def probe(example_state, frames_factory, defect):
    frames = np.concatenate([frames_factory(3, seed=9), defect(frames_factory(1, seed=10)[0], size=8)[None]])
    scores, maps = pyimgano.predict(example_state, frames, "rgb_u8_hwc")
    return frames, np.asarray(scores), np.asarray(maps)


def test_the_example_scores_a_defect_above_normal_frames_with_maps_at_frame_size(probe):
    _, scores, maps = probe
    assert maps.shape == (4, 32, 32) and maps.dtype == np.float32
    assert scores[-1] > scores[:-1].max()


def test_the_example_state_saves_and_loads(example_state, probe, tmp_path):
    loaded = pyimgano.load_state(pyimgano.save_state(example_state, tmp_path / "ex.pyimgano"))
    assert loaded.config == example_state.config
    frames, scores, maps = probe
    loaded_scores, loaded_maps = pyimgano.predict(attrs.evolve(loaded, model=replicate(loaded.model)), frames, "rgb_u8_hwc")
    np.testing.assert_array_equal(np.asarray(loaded_scores), scores)
    np.testing.assert_array_equal(np.asarray(loaded_maps), maps)
