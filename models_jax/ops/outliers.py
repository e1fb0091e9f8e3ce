"""Outlier scores of points within small sets: the Local Outlier Factor and the nearest-other distance.

SoftPatch scores every training patch against the patches of the other
training images at the same grid position; these are those scores for one set
``f32[N, D]`` (vmap or ``lax.map`` them over positions).

:func:`local_outlier_factor` follows Breunig et al. (2000) exactly as
``sklearn.neighbors.LocalOutlierFactor(n_neighbors=k).fit(X).negative_outlier_factor_``
(negated): each point's ``k`` nearest *other* points (the point itself is
excluded by index, so duplicates count as neighbours at distance 0),
``reach(a, b) = max(d(a, b), k_distance(b))``,
``lrd(a) = 1 / (mean_b reach(a, b) + 1e-10)``, ``LOF(a) = mean_b lrd(b) / lrd(a)``.
Neighbours are chosen on matmul-form distances; their distances are then
recomputed from difference vectors so exact duplicates give exactly 0.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["local_outlier_factor", "nearest_other_distance"]

_HI = jax.lax.Precision.HIGHEST


def _neighbours(points: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
    """The ``k`` nearest other points of every point: (distances f32[N, k] ascending, indices i32[N, k])."""
    n = points.shape[0]
    sq = jnp.sum(points * points, axis=-1)
    d2 = jnp.maximum(sq[:, None] - 2.0 * jnp.matmul(points, points.T, precision=_HI) + sq[None, :], 0.0)
    d2 = jnp.where(jnp.eye(n, dtype=bool), jnp.inf, d2)
    _, idx = jax.lax.top_k(-d2, k)
    diff = points[:, None, :] - points[idx]
    return jnp.sqrt(jnp.sum(diff * diff, axis=-1)), idx


def _check(points, k: int) -> int:
    if points.ndim != 2:
        raise ValueError(f"points must be f32[N, D], got shape {points.shape}")
    n = points.shape[0]
    if n < 2:
        raise ValueError(f"outlier scores need at least 2 points, got {n}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return min(int(k), n - 1)


def local_outlier_factor(points: jax.Array, k: int) -> jax.Array:
    """LOF of every point of ``points: f32[N, D]`` among the others, f32[N] (about 1 for inliers).

    ``k`` is clipped to ``N - 1`` (as scikit-learn does). Traceable; ``k`` is static.

    Raises:
      ValueError: ``points`` not 2-D, fewer than 2 points, or ``k < 1``.
    """
    k = _check(points, k)
    points = points.astype(jnp.float32)
    dist, idx = _neighbours(points, k)
    k_distance = dist[:, -1]
    reach = jnp.maximum(dist, k_distance[idx])
    lrd = 1.0 / (jnp.mean(reach, axis=1) + 1e-10)
    return jnp.mean(lrd[idx], axis=1) / lrd


def nearest_other_distance(points: jax.Array) -> jax.Array:
    """Euclidean distance of every point of ``points: f32[N, D]`` to its nearest other point, f32[N].

    Raises:
      ValueError: ``points`` not 2-D or fewer than 2 points.
    """
    _check(points, 1)
    dist, _ = _neighbours(points.astype(jnp.float32), 1)
    return dist[:, 0]
