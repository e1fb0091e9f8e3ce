"""Greedy k-center coreset selection (PatchCore, Sec. 3.2 / Algorithm 1).

Starting from one random row, repeatedly add the row farthest from everything
selected so far, ``argmax_m min_c ||psi(m) - psi(c)||``, where ``psi`` is a
random linear projection (Johnson-Lindenstrauss) to ``projection_dim``
dimensions that makes each step cheap.  The loop is a ``lax.fori_loop`` that
keeps one running ``min distance`` per row, so a step costs one pass over the
projected bank.

Speed: a dense step reads the whole projected bank (84 MB for bottle's 164k
patches, more than the CPU cache), so 16k steps are memory-bound.  The
selection runs instead in phases over an *active set*: the ``active_size``
rows farthest from the coreset.  Rows outside it have min distances at most
``theta`` (the largest outside value), and min distances only shrink, so while
the best active row beats ``theta`` it is also the best row overall: the phase
makes exactly the dense algorithm's choices (up to exact float ties).  When it
no longer beats ``theta``, every row's min distance is lowered by the phase's
new centres in a few large matmuls (compute-bound, fast) and a new active set
is drawn.  Those matmuls take 64 centres at a time: XLA:CPU writes out the
``M x block`` distance block, 40 MiB for bottle's 164k patches (256 centres
needed 160 MiB, the largest buffer of the whole fit, for no gain in speed).
``greedy_coreset`` is a Python driver over these jitted phases.

Departures from patchcore-inspection: the projection is Gaussian
``N(0, 1/projection_dim)`` rather than the default init of an untrained
``torch.nn.Linear``; both are JL projections.  The reference's "approximate"
sampler averages distances from 10 random starting points to initialise; this
is the exact greedy algorithm from a single random start, as in the paper.
Already selected rows are masked so indices stay unique even with duplicate
rows in the bank.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["random_projection", "greedy_coreset", "coreset_coverage"]

_HI = jax.lax.Precision.HIGHEST


def random_projection(features: jax.Array, projection_dim: int | None, *, key: jax.Array) -> jax.Array:
    """``features f32[M, D] @ R``, ``R ~ N(0, 1/projection_dim)`` of shape ``[D, projection_dim]``.

    Returns the features unchanged when ``projection_dim`` is None or not smaller than D.
    """
    d = features.shape[1]
    if projection_dim is None or projection_dim >= d:
        return features.astype(jnp.float32)
    if projection_dim <= 0:
        raise ValueError(f"projection_dim must be > 0 or None, got {projection_dim}")
    proj = jax.random.normal(key, (d, projection_dim), jnp.float32) / jnp.sqrt(float(projection_dim))
    return jnp.matmul(features.astype(jnp.float32), proj, precision=_HI)


def _sq_dists_to(points: jax.Array, sq_norms: jax.Array, center: jax.Array) -> jax.Array:
    return jnp.maximum(sq_norms - 2.0 * jnp.matmul(points, center, precision=_HI) + jnp.dot(center, center), 0.0)


@partial(jax.jit, static_argnums=(1,))
def _top_k(values: jax.Array, k: int):
    # Alone in its program, XLA:CPU runs top_k as its TopK kernel (4 ms for 4,097 of 164k rows);
    # fused with even a slice of its output it falls back to a full sort (52 ms, 19 times a fit).
    return jax.lax.top_k(values, k)


def _pick_active(min_d: jax.Array, size: int):
    """``(top_index, top_values)``: the ``size`` rows with the largest bound in ``top_index[:-1]``,
    and the largest bound left outside them in ``top_values[-1]`` (sliced inside :func:`_greedy_phase`)."""
    m = min_d.shape[0]
    if size >= m:
        return np.arange(m + 1, dtype=np.int32), np.full((m + 1,), -np.inf, np.float32)
    values, index = _top_k(min_d, size + 1)
    return index, values


@jax.jit
def _greedy_phase(points, sq_norms, min_d, top_index, top_values, selected, t):
    """Greedy steps on the active rows while their best beats every row outside them."""
    n = selected.shape[0]
    active, outside_max = top_index[:-1].astype(jnp.int32), top_values[-1]
    rows = points[active]
    rows_sq = sq_norms[active]
    act_d = min_d[active]

    def cond(state):
        t_cur, t_start, _, act_d = state
        # The first step always runs so a phase makes progress even on exact ties.
        return (t_cur < n) & ((jnp.max(act_d) > outside_max) | (t_cur == t_start))

    def body(state):
        t_cur, t_start, selected, act_d = state
        j = jnp.argmax(act_d)
        act_d = jnp.minimum(act_d, _sq_dists_to(rows, rows_sq, rows[j])).at[j].set(-1.0)
        return t_cur + 1, t_start, selected.at[t_cur].set(active[j]), act_d

    t_end, _, selected, act_d = jax.lax.while_loop(cond, body, (t, t, selected, act_d))
    return selected, t_end, min_d.at[active].set(act_d)


@partial(jax.jit, static_argnums=(5,))
def _refresh(points, sq_norms, min_d, selected, span, block):
    """Lower every row's bound by the centres ``selected[span[0]:span[1]]`` (blocks of matmuls)."""
    t0, t1 = span[0], span[1]
    n = selected.shape[0]

    def body(b, min_d):
        pos = t0 + b * block + jnp.arange(block)
        valid = pos < t1
        centers = points[selected[jnp.minimum(pos, n - 1)]]
        d = sq_norms[:, None] - 2.0 * jnp.matmul(points, centers.T, precision=_HI) + jnp.sum(centers**2, axis=1)[None]
        d = jnp.where(valid[None], jnp.maximum(d, 0.0), jnp.inf)
        return jnp.minimum(min_d, jnp.min(d, axis=1))

    n_blocks = (t1 - t0 + block - 1) // block
    min_d = jax.lax.fori_loop(0, n_blocks, body, min_d)
    return min_d.at[selected[jnp.minimum(jnp.arange(n), t1 - 1)]].set(-1.0)


@partial(jax.jit, static_argnums=(1, 2))
def _start(features, n: int, projection_dim: int | None, key):
    """One program for the set-up (projection, random start, first bounds): as separate eager
    operations each compiled on its own, they took about 2 s of a bottle fit."""
    proj_key, start_key = jax.random.split(key)
    points = random_projection(features, projection_dim, key=proj_key)
    start = jax.random.randint(start_key, (), 0, points.shape[0], dtype=jnp.int32)
    sq_norms = jnp.sum(points * points, axis=1)
    selected = jnp.zeros((n,), jnp.int32).at[0].set(start)
    min_d = _sq_dists_to(points, sq_norms, points[start]).at[start].set(-1.0)
    return points, sq_norms, selected, min_d


def _greedy(points, sq_norms, selected, min_d, active_size: int, block: int = 64) -> jax.Array:
    """Exact greedy k-center from :func:`_start`'s state, in phases over an active set (module docstring)."""
    m, n = points.shape[0], selected.shape[0]
    t = 1
    while t < n:
        top_index, top_values = _pick_active(min_d, min(active_size, m))
        selected, t_end, min_d = _greedy_phase(points, sq_norms, min_d, top_index, top_values, selected, np.int32(t))
        t_end = int(t_end)
        if t_end >= n:
            break
        min_d = _refresh(points, sq_norms, min_d, selected, np.array([t, t_end], np.int32), block)
        t = t_end
    return selected


def greedy_coreset(
    features: jax.Array, n: int, *, key: jax.Array, projection_dim: int | None = 128, active_size: int = 4096
) -> jax.Array:
    """Indices i32[n] of a greedy k-center coreset of ``features: f32[M, D]``, in selection order.

    Args:
      features: the memory bank.
      n: coreset size, ``1 <= n <= M`` (static: one compile per size).
      key: splits into the projection key and the random start row.
      projection_dim: JL projection size used for the distances (None: raw features).
      active_size: rows kept in the fast inner loop (a speed knob; the result is the same).

    Returns:
      Unique row indices; the first ``j`` of them are exactly the coreset of size ``j``
      for the same key (greedy prefixes nest).

    Raises:
      ValueError: ``n`` out of range or bad shapes.
    """
    if features.ndim != 2:
        raise ValueError(f"features must be f32[M, D], got shape {features.shape}")
    m = features.shape[0]
    if not 1 <= n <= m:
        raise ValueError(f"coreset size must be in [1, {m}], got {n}")
    return _greedy(*_start(features, int(n), projection_dim, key), int(active_size))


def coreset_coverage(features: jax.Array, indices: jax.Array) -> jax.Array:
    """max over rows of the distance to the nearest selected row (the k-center radius)."""
    from models_jax.ops.knn import nearest_neighbors

    dists, _ = nearest_neighbors(features, features[indices], k=1)
    return jnp.max(dists)
