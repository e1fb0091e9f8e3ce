"""Tap selection, pruning, init and loading, on the tiny test ResNet."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models_jax.backbones import (
    backbone_variable_shapes,
    build_backbone,
    get_backbone_spec,
    init_backbone_variables,
)


@pytest.fixture(scope="module")
def tiny():
    return build_backbone("tiny_resnet"), init_backbone_variables("tiny_resnet", key=jax.random.key(0))


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
