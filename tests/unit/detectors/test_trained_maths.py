"""The distances behind the trained detectors' maps, and config checks (no network compiled)."""

import jax.numpy as jnp
import numpy as np
import pytest

from models_jax.detectors.reverse_distillation import ReverseDistillationConfig, cosine_distances
from models_jax.detectors.stfpm import layer_distances


def test_stfpm_distance_is_zero_for_parallel_features_and_two_for_opposite_ones():
    t = jnp.asarray(np.random.default_rng(0).normal(size=(2, 3, 4, 5)).astype(np.float32))
    same, opposite = layer_distances({"a": t, "b": t}, {"a": 3.0 * t, "b": -t}, ("a", "b"))
    assert same.shape == (2, 3, 4)
    np.testing.assert_allclose(np.asarray(same), 0.0, atol=1e-6)
    np.testing.assert_allclose(np.asarray(opposite), 4.0, rtol=1e-5)  # ||u - (-u)||^2 for unit u


def test_reverse_distillation_distance_is_one_minus_cosine_per_position():
    e = jnp.asarray([[[[1.0, 0.0], [1.0, 1.0]]]])  # B=1, h=1, w=2, C=2
    d = jnp.asarray([[[[0.0, 2.0], [2.0, 2.0]]]])
    (dist,) = cosine_distances([e], [d])
    np.testing.assert_allclose(np.asarray(dist), [[[1.0, 0.0]]], atol=1e-6)


def test_reverse_distillation_needs_taps_at_doubling_strides():
    with pytest.raises(ValueError, match="doubling strides"):
        ReverseDistillationConfig(backbone="tiny_resnet", pretrained=False, layers=("layer1", "layer3"), image_size=64)
    config = ReverseDistillationConfig(backbone="tiny_resnet", pretrained=False, image_size=64)
    assert config.layers == ("layer1", "layer2", "layer3") and config.embed_channels == 64
