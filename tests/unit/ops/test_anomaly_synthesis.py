"""Simulated anomalies, Perlin noise and SSIM: the pieces of DRAEM's training."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models_jax.detectors.draem import focal_loss
from models_jax.keys import rbg_key
from models_jax.ops.anomaly_synthesis import MAX_OPACITY, procedural_texture, synthesize_anomalies
from models_jax.ops.perlin import perlin_noise, random_lattice
from models_jax.ops.ssim import ssim

_SYNTHESIZE = jax.jit(synthesize_anomalies)


def test_with_probability_one_most_images_get_an_anomaly_and_the_draws_are_reproducible():
    images = jnp.full((8, 32, 32, 3), 0.5, jnp.float32)
    key = rbg_key(jax.random.key(0))
    augmented, masks = _SYNTHESIZE(key, images, 1.0)
    assert int(jnp.sum(jnp.any(masks > 0, axis=(1, 2)))) >= 4  # an empty Perlin threshold happens, rarely
    again, _ = _SYNTHESIZE(key, images, 1.0)
    np.testing.assert_array_equal(np.asarray(augmented), np.asarray(again))
    other, _ = _SYNTHESIZE(rbg_key(jax.random.key(1)), images, 1.0)
    assert not np.array_equal(np.asarray(augmented), np.asarray(other))


def test_masked_pixels_move_at_least_the_minimum_visible_step():
    images = jnp.full((8, 32, 32, 3), 0.3, jnp.float32)
    augmented, masks = _SYNTHESIZE(rbg_key(jax.random.key(2)), images, 1.0)
    change = np.max(np.abs(np.asarray(augmented) - 0.3), axis=-1)[np.asarray(masks) > 0]
    assert change.size > 0 and change.min() >= (1 - MAX_OPACITY) * 0.05 - 1e-6


def test_procedural_textures_are_colour_images_in_the_unit_range():
    texture = np.asarray(jax.jit(procedural_texture, static_argnums=1)(rbg_key(jax.random.key(3)), (32, 32)))
    assert texture.shape == (32, 32, 3) and texture.min() >= 0.0 and texture.max() <= 1.0
    assert texture.std() > 0.01


def test_perlin_noise_is_smooth_at_low_resolution_and_zero_on_the_lattice():
    lattice = random_lattice(jax.random.key(0))
    noise = np.asarray(jax.jit(perlin_noise, static_argnums=1)(lattice, (64, 64), 2.0, 2.0))
    assert noise.shape == (64, 64) and np.abs(noise).max() <= np.sqrt(2.0)
    assert noise[0, 0] == 0.0 and noise[32, 32] == pytest.approx(0.0, abs=1e-6)  # lattice points
    assert np.abs(np.diff(noise, axis=0)).max() < 0.2


def test_ssim_is_one_for_identical_images_and_lower_for_noisy_ones():
    rng = np.random.default_rng(0)
    a = jnp.asarray(rng.uniform(0, 1, (2, 24, 24, 3)).astype(np.float32))
    assert float(ssim(a, a)) == pytest.approx(1.0, abs=1e-5)
    noisy = jnp.clip(a + 0.3 * jnp.asarray(rng.normal(size=a.shape).astype(np.float32)), 0, 1)
    assert float(ssim(a, noisy)) < 0.9
    with pytest.raises(ValueError, match="one shape"):
        ssim(a, a[:, :10])


def test_focal_loss_matches_its_formula_and_down_weights_easy_pixels():
    logits = jnp.array([[[[0.0, 2.0], [3.0, 0.0]]]])  # B=1, H=1, W=2, 2 classes
    masks = jnp.array([[[1.0, 1.0]]])
    p1 = jax.nn.softmax(logits, axis=-1)[..., 1][0, 0]
    expected = np.mean([-((1 - p) ** 2) * np.log(p) for p in np.asarray(p1)])
    assert float(focal_loss(logits, masks)) == pytest.approx(expected, rel=1e-5)
    easy = float(focal_loss(jnp.array([[[[0.0, 6.0]]]]), jnp.array([[[1.0]]])))
    plain_ce = -np.log(float(jax.nn.softmax(jnp.array([0.0, 6.0]))[1]))
    assert easy < 0.01 * plain_ce
