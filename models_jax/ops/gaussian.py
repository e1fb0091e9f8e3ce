"""Gaussian blur of anomaly maps with ``scipy.ndimage.gaussian_filter`` semantics.

PatchCore's reference implementation blurs its maps with
``scipy.ndimage.gaussian_filter(map, sigma=4)``: a separable kernel truncated at
``4 * sigma`` (radius ``int(4 * sigma + 0.5)``), normalised to sum 1, with the
``reflect`` (half-sample symmetric, ``d c b a | a b c d``) boundary.  Here the
separable filter is one constant ``f32[H, H]`` and one ``f32[W, W]`` matrix
with the boundary folded in, so a blur is two matmuls: exact for any radius
(even larger than the map) and fast on matrix units.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["gaussian_kernel_1d", "blur_matrix", "gaussian_blur"]


def gaussian_kernel_1d(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """The normalised f64 1-D kernel of length ``2 * int(truncate*sigma + 0.5) + 1``."""
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma!r}")
    radius = int(truncate * float(sigma) + 0.5)
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (offsets / float(sigma)) ** 2)
    return kernel / kernel.sum()


def _reflect_index(index: np.ndarray, size: int) -> np.ndarray:
    period = 2 * size
    index = np.mod(index, period)
    return np.where(index >= size, period - 1 - index, index)


@functools.lru_cache(maxsize=64)
def blur_matrix(size: int, sigma: float, truncate: float = 4.0) -> np.ndarray:
    """f32[size, size] ``B`` with ``(B @ v)[i] = sum_j k[j] * v[reflect(i + j - r)]``."""
    kernel = gaussian_kernel_1d(sigma, truncate)
    radius = (len(kernel) - 1) // 2
    matrix = np.zeros((size, size), np.float64)
    rows = np.arange(size)
    for j, weight in enumerate(kernel):
        np.add.at(matrix, (rows, _reflect_index(rows + j - radius, size)), weight)
    out = matrix.astype(np.float32)
    out.setflags(write=False)
    return out


def gaussian_blur(maps: jax.Array, sigma: float, truncate: float = 4.0) -> jax.Array:
    """Blur ``maps: f32[B, H, W]`` (or ``f32[H, W]``) with a Gaussian of ``sigma`` pixels.

    ``sigma == 0`` returns the maps unchanged.

    Raises:
      ValueError: negative ``sigma``.
    """
    sigma = float(sigma)
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    if sigma == 0:
        return maps
    h, w = maps.shape[-2:]
    rows = jnp.asarray(blur_matrix(int(h), sigma, truncate))
    cols = jnp.asarray(blur_matrix(int(w), sigma, truncate))
    hi = jax.lax.Precision.HIGHEST
    out = jnp.matmul(rows, maps, precision=hi)
    return jnp.matmul(out, cols.T, precision=hi)
