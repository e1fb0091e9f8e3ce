"""Structural similarity (Wang et al. 2004) with an 11x11 Gaussian window, as DRAEM's loss uses it."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["ssim"]


def _window_1d(size: int, sigma: float) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - size // 2
    g = np.exp(-(x**2) / (2.0 * sigma**2))
    return (g / g.sum()).astype(np.float32)


def _filter(x: jax.Array, window: np.ndarray) -> jax.Array:
    """Separable filtering of ``f32[N, H, W, 1]`` with zero "same" padding (torch ``conv2d(padding=size//2)``)."""
    k = len(window)
    pad = k // 2
    dn = ("NHWC", "HWIO", "NHWC")
    x = jax.lax.conv_general_dilated(x, window.reshape(k, 1, 1, 1), (1, 1), ((pad, pad), (0, 0)), dimension_numbers=dn)
    return jax.lax.conv_general_dilated(x, window.reshape(1, k, 1, 1), (1, 1), ((0, 0), (pad, pad)), dimension_numbers=dn)


def ssim(a: jax.Array, b: jax.Array, *, window_size: int = 11, sigma: float = 1.5, data_range: float = 1.0) -> jax.Array:
    """Mean SSIM ``f32[]`` of two image batches ``f32[B, H, W, C]`` (per channel, averaged over everything).

    Constants ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2`` with ``L = data_range``; local
    statistics under a normalised Gaussian window (zero padding at the borders).

    Raises:
      ValueError: the shapes differ or are not 4-D.
    """
    if a.shape != b.shape or a.ndim != 4:
        raise ValueError(f"ssim needs two f32[B, H, W, C] batches of one shape, got {a.shape} and {b.shape}")
    window = _window_1d(window_size, sigma)
    bsz, h, w, c = a.shape

    def planes(x):  # [B, H, W, C] -> [B*C, H, W, 1]
        return jnp.transpose(x, (0, 3, 1, 2)).reshape(bsz * c, h, w, 1)

    x, y = planes(a.astype(jnp.float32)), planes(b.astype(jnp.float32))
    mu_x, mu_y = _filter(x, window), _filter(y, window)
    sxx = _filter(x * x, window) - mu_x**2
    syy = _filter(y * y, window) - mu_y**2
    sxy = _filter(x * y, window) - mu_x * mu_y
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    value = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return jnp.mean(value)
