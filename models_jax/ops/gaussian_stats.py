"""Per-position Gaussian statistics for PaDiM: streamed moments, Cholesky, Mahalanobis.

Moments are accumulated around a fixed shift (the first batch's mean) so the
f32 covariance ``E[(x-s)(x-s)^T] - (m-s)(m-s)^T`` does not lose its digits to
cancellation when features have a large mean.

Scoring uses the inverse Cholesky factor ``L^{-1}`` (computed once at fit time,
``L L^T = cov``), so the Mahalanobis distance is ``|L^{-1}(x - mu)|``: one batched
matmul, the same on every device kind. A batched LAPACK triangular solve at scoring
time was avoided on purpose: on XLA:CPU with several host devices, jaxlib runs its
batch over a shared thread pool and two devices solving at once can each wait for
threads the other holds (seen: PaDiM on bottle with 2 devices stalled at 0% CPU).
``L^{-1}`` is better conditioned than the explicit inverse covariance that
anomalib stores (its condition number is the square root of the covariance's).
"""

from __future__ import annotations

import attrs
import jax
import jax.numpy as jnp

__all__ = [
    "GaussianMoments",
    "init_moments",
    "accumulate_moments",
    "finalize_gaussian",
    "inverse_cholesky_factor",
    "mahalanobis",
]

_HI = jax.lax.Precision.HIGHEST


@attrs.frozen
class GaussianMoments:
    """Running sums over images, per position (P positions, D channels)."""

    count: int
    shift: jax.Array | None  # f32[P, D]
    total: jax.Array  # f32[P, D], sum of (x - shift)
    outer: jax.Array  # f32[P, D, D], sum of (x - shift)(x - shift)^T


def init_moments(num_positions: int, dim: int) -> GaussianMoments:
    """Empty moments for ``num_positions`` positions of ``dim`` channels."""
    return GaussianMoments(
        count=0,
        shift=None,
        total=jnp.zeros((num_positions, dim), jnp.float32),
        outer=jnp.zeros((num_positions, dim, dim), jnp.float32),
    )


@jax.jit
def _accumulate(shift, total, outer, feats):
    centred = feats - shift[None]
    total = total + jnp.sum(centred, axis=0)
    outer = outer + jnp.einsum("bpi,bpj->pij", centred, centred, precision=_HI)
    return total, outer


def accumulate_moments(moments: GaussianMoments, feats: jax.Array) -> GaussianMoments:
    """Add a batch ``feats: f32[B, P, D]`` (B images) to the running moments.

    Raises:
      ValueError: a batch whose (P, D) differs from the moments'.
    """
    feats = jnp.asarray(feats, jnp.float32)
    if feats.ndim != 3 or feats.shape[1:] != moments.total.shape:
        raise ValueError(f"expected features f32[B, {moments.total.shape[0]}, {moments.total.shape[1]}], got {feats.shape}")
    shift = jnp.mean(feats, axis=0) if moments.shift is None else moments.shift
    total, outer = _accumulate(shift, moments.total, moments.outer, feats)
    return GaussianMoments(count=moments.count + int(feats.shape[0]), shift=shift, total=total, outer=outer)


def finalize_gaussian(moments: GaussianMoments, eps: float) -> tuple[jax.Array, jax.Array]:
    """Mean f32[P, D] and unbiased covariance + ``eps * I``, f32[P, D, D].

    With a single image the covariance is ``eps * I`` (no spread to estimate).

    Raises:
      ValueError: no images accumulated.
    """
    n = moments.count
    if n == 0:
        raise ValueError("no training features were accumulated")
    mean_c = moments.total / n
    mean = moments.shift + mean_c
    dim = mean.shape[-1]
    if n > 1:
        cov = (moments.outer - n * jnp.einsum("pi,pj->pij", mean_c, mean_c, precision=_HI)) / (n - 1)
    else:
        cov = jnp.zeros_like(moments.outer)
    cov = 0.5 * (cov + jnp.swapaxes(cov, 1, 2)) + eps * jnp.eye(dim, dtype=jnp.float32)[None]
    return mean, cov


def _lower_triangular_inverse(lower: jax.Array) -> jax.Array:
    """Inverse of lower-triangular ``f32[..., n, n]`` by 2x2 block recursion (batched matmuls only).

    ``[[A, 0], [C, B]]^{-1} = [[A^{-1}, 0], [-B^{-1} C A^{-1}, B^{-1}]]``. On XLA:CPU the batched
    triangular solve against the identity ran about 5x slower than this for PaDiM's
    3,136 positions x 100 x 100 (13.5 s against 2.5 s, measured), and it dominated PaDiM's fit.
    """
    n = lower.shape[-1]
    if n == 1:
        return 1.0 / lower
    h = n // 2
    a_inv = _lower_triangular_inverse(lower[..., :h, :h])
    b_inv = _lower_triangular_inverse(lower[..., h:, h:])
    c_inv = -jnp.matmul(b_inv, jnp.matmul(lower[..., h:, :h], a_inv, precision=_HI), precision=_HI)
    top = jnp.concatenate([a_inv, jnp.zeros(lower.shape[:-2] + (h, n - h), lower.dtype)], axis=-1)
    return jnp.concatenate([top, jnp.concatenate([c_inv, b_inv], axis=-1)], axis=-2)


@jax.jit
def inverse_cholesky_factor(cov: jax.Array) -> jax.Array:
    """``L^{-1}`` f32[P, D, D] (lower triangular) for ``L L^T = cov``, per position."""
    return _lower_triangular_inverse(jnp.linalg.cholesky(cov))


def mahalanobis(feats: jax.Array, mean: jax.Array, inv_chol: jax.Array) -> jax.Array:
    """Mahalanobis distance f32[B, P] of ``feats: f32[B, P, D]`` to per-position Gaussians.

    ``|L^{-1} (x - mu)|`` with ``inv_chol = L^{-1}`` from :func:`inverse_cholesky_factor`.
    """
    # Laid out as P batched [D, D] @ [D, B] products (positions as the batch axis, images
    # as the matmul's columns): XLA:CPU runs this layout as plain batched GEMMs, about 4x
    # faster than the same contraction written "pij,bpj->bpi" (measured, B=16, P=3136, D=100).
    diff = jnp.transpose(feats - mean[None], (1, 2, 0))  # f32[P, D, B]
    z = jax.lax.dot_general(inv_chol, diff, (((2,), (1,)), ((0,), (0,))), precision=_HI)  # f32[P, D, B]
    return jnp.sqrt(jnp.maximum(jnp.sum(z * z, axis=1), 0.0)).T
