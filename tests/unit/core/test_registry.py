"""The open registry (register_detector / unregister_detector) and pyimgano.plugins.load_plugins
(by file, module name or entry point)."""

import sys
import textwrap

import attrs
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pyimgano
from models_jax.detectors.common import BackboneFeatureConfig, Prediction
from pyimgano import plugins
from pyimgano.plugins import PluginError, load_plugins
from pyimgano.registry import (
    DETECTORS,
    get_detector,
    list_detectors,
    register_detector,
    spec_for_config,
    unregister_detector,
)

BUILT_INS = [
    "vision_anomalydino",
    "vision_padim",
    "vision_patchcore",
    "vision_score_ensemble",
    "vision_softpatch",
    "vision_spade",
]


# A detector with no backbone maths: the per-pixel distance to the mean training image.
@attrs.frozen
class MeanImageConfig(BackboneFeatureConfig):
    backbone: str = "tiny_resnet"
    layers: tuple = attrs.field(default=None, converter=attrs.Converter(lambda v, c: ("layer1",), takes_self=True))
    pretrained: bool = False
    image_size: tuple = (16, 16)
    batch_size: int = 4
    seed: int = 0


@attrs.frozen
class MeanImageState:
    config: MeanImageConfig
    mean: jax.Array  # f32[H, W, 3]


jax.tree_util.register_dataclass(MeanImageState, data_fields=["mean"], meta_fields=["config"])


def mean_fit(config, batches, *, key, backbone_variables, progress=None):
    stacked = np.concatenate([np.asarray(b) for b in batches])
    return MeanImageState(config=config, mean=jnp.asarray(stacked.mean(0)))


def mean_predict(state, images, out_hw):
    maps = jnp.sqrt(jnp.sum((images - state.mean) ** 2, axis=-1))
    maps = jax.image.resize(maps, (maps.shape[0], *out_hw), "bilinear")
    return Prediction(scores=jnp.max(maps, axis=(1, 2)), maps=maps)


@pytest.fixture
def toy():
    spec = register_detector(
        "test_mean_image", MeanImageConfig, mean_fit, mean_predict, state_cls=MeanImageState,
        tags={"numpy", "pixel_map"}, aliases=("test_mean_alias",), description="toy", paper="none",
    )
    yield spec
    unregister_detector("test_mean_image")


def test_the_built_in_detectors_are_in_the_table_with_their_tags():
    assert set(BUILT_INS) <= set(list_detectors())
    assert "vision_score_ensemble" in list_detectors(["ensemble"]) and "vision_patchcore" not in list_detectors(["ensemble"])
    with pytest.raises(TypeError):
        DETECTORS["x"] = None  # a read-only view: registration goes through register_detector


def test_a_registered_detector_fits_scores_and_resolves_by_name_alias_and_config(toy, frames_factory, defect):
    assert get_detector("test_mean_alias") is toy and spec_for_config(MeanImageConfig()) is toy
    assert "test_mean_image" in list_detectors(["pixel_map"])
    state = pyimgano.fit("test_mean_alias", frames_factory(4, seed=1), "rgb_u8_hwc")
    assert state.detector == "test_mean_image"
    clean = frames_factory(1, seed=2)[0]
    scores = np.asarray(pyimgano.score(state, [clean, defect(clean, size=10)], "rgb_u8_hwc"))
    assert scores[1] > scores[0]


def test_duplicates_are_refused_and_leave_the_table_unchanged(toy):
    before = dict(DETECTORS)
    with pytest.raises(ValueError, match="already registered"):
        register_detector("test_mean_image", MeanImageConfig, mean_fit, mean_predict)
    with pytest.raises(ValueError, match="already registered"):
        register_detector("test_other", MeanImageConfig, mean_fit, mean_predict, aliases=("vision_patchcore",))
    with pytest.raises(ValueError, match="already registered"):
        register_detector("test_other", MeanImageConfig, mean_fit, mean_predict, aliases=("test_other",))
    assert dict(DETECTORS) == before


def test_bad_tags_names_and_classes_are_refused():
    with pytest.raises(ValueError, match="unknown tags"):
        register_detector("test_bad", MeanImageConfig, mean_fit, mean_predict, tags={"gpu_only"})
    with pytest.raises(ValueError, match="without spaces"):
        register_detector("test bad", MeanImageConfig, mean_fit, mean_predict)

    @attrs.define  # mutable: unhashable, so it cannot be a static jit argument
    class Mutable:
        x: int = 0

    with pytest.raises(TypeError, match="not hashable"):
        register_detector("test_bad", Mutable, mean_fit, mean_predict)
    with pytest.raises(TypeError, match="callable"):
        register_detector("test_bad", MeanImageConfig, mean_fit, "predict")
    assert "test_bad" not in DETECTORS


def test_unregister_removes_every_name_of_the_detector():
    register_detector("test_gone", MeanImageConfig, mean_fit, mean_predict, aliases=("test_gone_too",))
    assert unregister_detector("test_gone_too").name == "test_gone"
    assert "test_gone" not in DETECTORS and "test_gone_too" not in DETECTORS
    with pytest.raises(ValueError, match="unknown detector"):
        unregister_detector("test_gone")


PLUGIN = textwrap.dedent(
    """
    from pyimgano.registry import register_detector
    from tests_toy_support import MeanImageConfig, mean_fit, mean_predict

    register_detector("{name}", MeanImageConfig, mean_fit, mean_predict, tags={{"numpy"}})
    """
)


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """A folder on sys.path holding ``tests_toy_support`` (this module's toy detector pieces)."""
    support = tmp_path / "tests_toy_support.py"
    support.write_text(f"from {__name__} import MeanImageConfig, mean_fit, mean_predict\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    modules_before = set(sys.modules)
    registered = []
    yield tmp_path, registered
    for name in registered:
        if name in DETECTORS:
            unregister_detector(name)
    for module in set(sys.modules) - modules_before:
        del sys.modules[module]


def test_a_plugin_file_registers_once_however_often_it_is_loaded(plugin_dir):
    folder, registered = plugin_dir
    path = folder / "my_detector.py"
    path.write_text(PLUGIN.format(name="test_from_file"))
    registered.append("test_from_file")
    assert load_plugins([str(path)], entry_points=False) == ["test_from_file"]
    assert load_plugins([str(path)], entry_points=False) == []  # same file: a no-op, not a duplicate error
    assert get_detector("test_from_file").config_cls is MeanImageConfig


def test_a_plugin_module_name_is_imported(plugin_dir):
    folder, registered = plugin_dir
    (folder / "tests_toy_plugin.py").write_text(PLUGIN.format(name="test_from_module"))
    registered.append("test_from_module")
    assert load_plugins(["tests_toy_plugin"], entry_points=False) == ["test_from_module"]


def test_entry_points_of_the_group_are_discovered(plugin_dir):
    folder, registered = plugin_dir
    (folder / "tests_toy_plugin_ep.py").write_text(
        "def register():\n" + textwrap.indent(PLUGIN.format(name="test_from_entry_point"), "    ")
    )
    dist = folder / "toy_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[{plugins.ENTRY_POINT_GROUP}]\ntoy = tests_toy_plugin_ep:register\n")
    registered.append("test_from_entry_point")
    assert load_plugins() == ["test_from_entry_point"]


def test_plugin_failures_name_the_plugin(plugin_dir, tmp_path):
    folder, _ = plugin_dir
    broken = folder / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(PluginError, match=r"broken\.py.*RuntimeError: boom"):
        load_plugins([str(broken)], entry_points=False)
    with pytest.raises(PluginError, match="does not exist"):
        load_plugins([str(tmp_path / "missing.py")], entry_points=False)
    with pytest.raises(PluginError, match="no_such_module_xyz"):
        load_plugins(["no_such_module_xyz"], entry_points=False)
