"""Adaptive average pooling over the last axis, ``torch.nn.functional.adaptive_avg_pool1d`` semantics."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["adaptive_avg_pool_matrix", "adaptive_avg_pool_last"]


@functools.lru_cache(maxsize=64)
def adaptive_avg_pool_matrix(in_dim: int, out_dim: int) -> np.ndarray:
    """f32[in_dim, out_dim] averaging matrix: output ``i`` is the mean of inputs
    ``floor(i*in/out) .. ceil((i+1)*in/out) - 1`` (torch's bins; they overlap,
    and repeat inputs when ``out_dim > in_dim``).

    Raises:
      ValueError: non-positive dimensions.
    """
    if in_dim <= 0 or out_dim <= 0:
        raise ValueError(f"pooling dimensions must be positive, got in_dim={in_dim}, out_dim={out_dim}")
    matrix = np.zeros((in_dim, out_dim), np.float32)
    for i in range(out_dim):
        start = (i * in_dim) // out_dim
        end = -((-(i + 1) * in_dim) // out_dim)  # ceil division
        matrix[start:end, i] = 1.0 / (end - start)
    matrix.setflags(write=False)
    return matrix


def adaptive_avg_pool_last(x: jax.Array, out_dim: int) -> jax.Array:
    """Pool ``x: f32[..., C]`` to ``f32[..., out_dim]`` (identity when ``C == out_dim``).

    When ``C`` is a multiple of ``out_dim`` the bins are disjoint and equal, a
    reshape + mean.  Otherwise each bin is a difference of a running sum
    (O(C) per vector; the dense averaging matrix would cost ``C x out_dim``
    multiply-adds per patch, more than the backbone itself).
    """
    in_dim = int(x.shape[-1])
    out_dim = int(out_dim)
    if in_dim == out_dim:
        return x
    if in_dim % out_dim == 0:
        return jnp.mean(x.reshape(*x.shape[:-1], out_dim, in_dim // out_dim), axis=-1)
    i = np.arange(out_dim)
    starts = (i * in_dim) // out_dim
    ends = -((-(i + 1) * in_dim) // out_dim)
    csum = jnp.cumsum(x.astype(jnp.float32), axis=-1)
    csum = jnp.concatenate([jnp.zeros_like(csum[..., :1]), csum], axis=-1)
    sums = jnp.take(csum, jnp.asarray(ends), axis=-1) - jnp.take(csum, jnp.asarray(starts), axis=-1)
    return sums / jnp.asarray(ends - starts, jnp.float32)
