"""DRAEM's simulated anomalies: Perlin-noise masks that blend procedurally generated textures into images.

For each image (Zavrtanik et al., ICCV 2021, section 3.3 and the authors' code):

1. With probability ``probability`` (0.5 in DRAEM) the image gets an anomaly; otherwise
   it is returned unchanged with an empty mask.
2. A Perlin noise map with ``2**k`` cells per axis (``k`` uniform in 0..5 per axis),
   rotated by an angle uniform in [-90, 90) degrees, thresholded at 0.5, is the mask.
3. An anomaly texture is blended into the masked pixels with a random opacity
   ``beta ~ U[0, 0.8)``: ``I_a = (1 - M) * I + (1 - beta) * M * A + beta * M * I``.

Departures, and why:

- DRAEM's textures come from the DTD dataset, which cannot be downloaded here. The
  texture ``A`` is generated: fractal Perlin noise (3 octaves) or a marble-like
  sine pattern warped by such noise, mapped between two random colours, with a
  random gamma, brightness and inversion standing in for DRAEM's random
  ``imgaug`` colour augmentations of the texture.
- Inside the mask, every pixel is guaranteed to change: where the texture is within
  :data:`MIN_CONTRAST` of the image in every channel, the texture value is moved half
  the range away (``x + 0.5`` below mid-grey, ``x - 0.5`` above). An unchanged pixel
  labelled anomalous would teach the segmentation network to flag normal pixels; so
  the mask is exactly the set of altered pixels (tested).
- The mask is rotated by rotating the noise's sampling coordinates rather than warping
  the thresholded image, and the image itself is not rotated (DRAEM's optional
  rotation augmentation of the input is left out).

Images are ``f32[..., H, W, 3]`` with values in [0, 1] (``vision_draem``'s input scaling).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from models_jax.ops.perlin import fractal_noise, perlin_noise, random_lattice

__all__ = ["MIN_CONTRAST", "MASK_THRESHOLD", "MAX_OPACITY", "procedural_texture", "synthesize_anomaly", "synthesize_anomalies"]

#: Smallest per-pixel texture/image difference (max over channels) kept as is.
MIN_CONTRAST = 0.05
#: Perlin values above this are anomalous (DRAEM's threshold).
MASK_THRESHOLD = 0.5
#: The image's opacity ``beta`` over the texture is drawn from ``U[0, MAX_OPACITY)``.
MAX_OPACITY = 0.8
_MAX_SCALE_EXPONENT = 6  # cells per axis 2**k, k in [0, 6)


_TEXTURE_DRAWS = 10
_OCTAVES = 3


def _texture_from(u: jax.Array, lattices: jax.Array, shape: tuple[int, int]) -> jax.Array:
    """The texture for uniform draws ``u f32[_TEXTURE_DRAWS]`` and ``_OCTAVES`` gradient lattices."""
    h, w = shape
    res = 2.0 ** jnp.floor(u[0] * 4.0)  # 1..8 cells, 3 octaves up to 32
    noise = fractal_noise(lattices, shape, res)
    noise = (noise - noise.min()) / jnp.maximum(noise.max() - noise.min(), 1e-6)
    yy, xx = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32) / h, jnp.arange(w, dtype=jnp.float32) / w, indexing="ij")
    freq = 2.0 + 10.0 * u[1]
    phi = jnp.pi * u[2]
    marble = 0.5 + 0.5 * jnp.sin(2.0 * jnp.pi * (freq * (xx * jnp.cos(phi) + yy * jnp.sin(phi)) + 2.0 * noise))
    pattern = jnp.where(u[3] < 0.5, marble, noise)
    low, high = u[4:7], jnp.stack([u[7], u[8], u[4] * u[8]])  # two RGB colours
    texture = low + (high - low) * pattern[..., None]
    gamma = jnp.exp(jnp.log(0.5) + (jnp.log(2.0) - jnp.log(0.5)) * u[9])
    texture = jnp.clip(texture, 0.0, 1.0) ** gamma
    gain = 0.8 + 0.4 * u[5]
    texture = jnp.clip(texture * gain, 0.0, 1.0)
    return jnp.where(u[6] < 0.5, 1.0 - texture, texture)


def procedural_texture(key: jax.Array, shape: tuple[int, int]) -> jax.Array:
    """A random colour texture ``f32[H, W, 3]`` in [0, 1] (see the module docstring)."""
    k_draws, k_lattice = jax.random.split(key)
    return _texture_from(jax.random.uniform(k_draws, (_TEXTURE_DRAWS,)), random_lattice(k_lattice, _OCTAVES), shape)


def _visible(texture: jax.Array, image: jax.Array) -> jax.Array:
    """The texture, moved half the range away from the image where it is within MIN_CONTRAST of it."""
    close = jnp.max(jnp.abs(texture - image), axis=-1, keepdims=True) < MIN_CONTRAST
    far = jnp.where(image < 0.5, image + 0.5, image - 0.5)
    return jnp.where(close, far, texture)


def synthesize_anomaly(key: jax.Array, image: jax.Array, probability: float = 0.5) -> tuple[jax.Array, jax.Array]:
    """One simulated anomaly: ``image f32[H, W, 3]`` in [0, 1] -> ``(augmented f32[H, W, 3], mask f32[H, W])``.

    ``mask`` is 1 exactly where ``augmented`` differs from ``image`` (in some channel).
    """
    # Two random draws per image (scalars, lattices): each threefry call site costs compile time on CPU.
    k_draws, k_lattices = jax.random.split(key)
    u = jax.random.uniform(k_draws, (5 + _TEXTURE_DRAWS,))
    lattices = random_lattice(k_lattices, 1 + _OCTAVES)
    h, w = image.shape[:2]
    scales = 2.0 ** jnp.floor(u[0:2] * _MAX_SCALE_EXPONENT)  # 2**k, k uniform in 0.._MAX_SCALE_EXPONENT-1
    angle = jnp.pi * (u[2] - 0.5)
    noise = perlin_noise(lattices[0], (h, w), scales[0], scales[1], angle)
    mask = (noise > MASK_THRESHOLD) & (u[3] < probability)
    texture = _visible(_texture_from(u[5:], lattices[1:], (h, w)), image)
    beta = MAX_OPACITY * u[4]
    blended = image + (1.0 - beta) * (texture - image)
    augmented = jnp.where(mask[..., None], blended, image)
    return augmented, mask.astype(jnp.float32)


def synthesize_anomalies(key: jax.Array, images: jax.Array, probability: float = 0.5) -> tuple[jax.Array, jax.Array]:
    """A batch of simulated anomalies: ``images f32[B, H, W, 3]`` in [0, 1] ->
    ``(augmented f32[B, H, W, 3], masks f32[B, H, W])``, one independent draw per image.

    Raises:
      ValueError: ``images`` is not ``[B, H, W, 3]``.
    """
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be f32[B, H, W, 3], got shape {images.shape}")
    keys = jax.random.split(key, images.shape[0])
    return jax.vmap(synthesize_anomaly, in_axes=(0, 0, None))(keys, images.astype(jnp.float32), probability)
