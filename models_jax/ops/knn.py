"""Exact k-nearest-neighbour search against a memory bank, in bounded memory.

The bank is searched in ``lax.scan`` steps over equal chunks: ``ceil(M / rows)``
chunks of ``ceil(M / n_chunks)`` rows, so the padding is fewer rows than there are
chunks (a fixed chunk size of 4096 on a 16,385-row bank ran a fifth chunk holding one
real row, 20 % of the work wasted). ``rows`` is ``bank_chunk`` or fewer
(:func:`step_rows`): XLA:CPU writes each step's ``Q x rows`` distance block to memory,
so the rows per step shrink as the queries grow, keeping that block within
:data:`BLOCK_ELEMENTS` (8 MiB). For a batch of 16 PatchCore images (12,544 queries)
a 4096-row step needed a 165 MiB block; 160-row steps need 8 MiB and were no slower
(smaller blocks stay in cache; ``docs/performance.md``).

- ``k == 1`` (PatchCore's patch scores): each step computes ``|m|^2 - 2 q.m`` for the
  chunk and reduces it to one minimum per *group* of ``GROUP`` consecutive bank rows
  (a plain min-reduction, cheaper than an arg-min's variadic reduction over the
  ``Q x rows`` block).  The carry keeps each query's best
  group; a second pass computes exact distances, from difference vectors, to the
  ``GROUP`` rows of that group and picks the nearest.  The selection is the exact
  arg-min up to float rounding of the matmul form (as before), and the returned
  distance is computed from differences, so duplicates give exactly 0.
- ``k > 1``: a running top-k over ``[Q, k + chunk]`` per chunk (the re-weighting's
  handful of queries).

:func:`nearest_neighbors_sharded` runs the same search with the bank's rows spread
over the devices of a mesh and merges the per-device results.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

__all__ = [
    "nearest_neighbors",
    "nearest_neighbors_sharded",
    "nearest_neighbors_across",
    "take_rows_across",
    "pairwise_sq_distances",
    "chunk_layout",
    "step_rows",
    "BLOCK_ELEMENTS",
    "GROUP",
]

_HI = jax.lax.Precision.HIGHEST

#: Bank rows per group of the ``k == 1`` search (the refinement pass looks at one group per query).
GROUP = 32
# Queries per vectorised step of the refinement pass (bounds its ``[block, GROUP, D]`` gather).
_REFINE_BLOCK = 1024
#: Upper bound of one search step's ``queries x bank rows`` distance block, in f32 elements (8 MiB).
BLOCK_ELEMENTS = 1 << 21
# Fewest bank rows per step (below that the per-step overhead shows), unless bank_chunk asks for fewer.
_MIN_STEP_ROWS = 128


def pairwise_sq_distances(queries: jax.Array, bank: jax.Array) -> jax.Array:
    """f32[Q, M] squared Euclidean distances, clamped at 0 (matmul form)."""
    q2 = jnp.sum(queries * queries, axis=-1, keepdims=True)
    m2 = jnp.sum(bank * bank, axis=-1)
    cross = jnp.matmul(queries, bank.T, precision=_HI)
    return jnp.maximum(q2 - 2.0 * cross + m2[None, :], 0.0)


def chunk_layout(m: int, bank_chunk: int, multiple: int = 1) -> tuple[int, int]:
    """``(n_chunks, rows_per_chunk)`` for a bank of ``m`` rows: ``ceil(m / bank_chunk)`` equal
    chunks whose size is a multiple of ``multiple``; the padding ``n*rows - m`` is then below
    ``n * multiple`` rows (instead of up to a whole chunk)."""
    n = -(-m // max(1, min(bank_chunk, m)))
    rows = -(-m // n)
    rows = -(-rows // multiple) * multiple
    return n, rows


def step_rows(queries: int, bank_chunk: int, multiple: int = 1) -> int:
    """Bank rows per search step for ``queries`` queries: ``bank_chunk`` at most, and few enough that
    the ``queries x rows`` distance block holds at most :data:`BLOCK_ELEMENTS` values (but not fewer
    than 128 rows, nor than ``multiple``); rounded down to a multiple of ``multiple``."""
    rows = min(int(bank_chunk), max(_MIN_STEP_ROWS, BLOCK_ELEMENTS // max(1, int(queries))))
    return max(multiple, rows // multiple * multiple)


def _check(queries, bank, k: int, bank_chunk: int) -> None:
    if queries.ndim != 2 or bank.ndim != 2 or queries.shape[1] != bank.shape[1]:
        raise ValueError(f"expected queries f32[Q, D] and bank f32[M, D], got {queries.shape} and {bank.shape}")
    if not 1 <= k <= bank.shape[0]:
        raise ValueError(f"k must be in [1, {bank.shape[0]}] (the bank size), got {k}")
    if bank_chunk <= 0:
        raise ValueError(f"bank_chunk must be > 0, got {bank_chunk}")


def _padded_chunks(bank: jax.Array, queries: int, bank_chunk: int, multiple: int):
    """Bank rows as ``f32[n, rows, D]`` plus their squared norms ``f32[n, rows]`` (+inf on padding),
    ``rows`` from :func:`step_rows` for ``queries`` queries."""
    m, d = bank.shape
    n, rows = chunk_layout(m, step_rows(queries, bank_chunk, multiple), multiple)
    pad = n * rows - m
    norms = jnp.pad(jnp.sum(bank * bank, axis=-1), (0, pad), constant_values=jnp.inf)
    bank_p = jnp.pad(bank, ((0, pad), (0, 0)))
    return bank_p, bank_p.reshape(n, rows, d), norms.reshape(n, rows)


def _nearest_sq(queries: jax.Array, bank: jax.Array, bank_chunk: int, index_offset) -> tuple[jax.Array, jax.Array]:
    """k = 1: exact squared distance f32[Q, 1] and index i32[Q, 1] (+ ``index_offset``)."""
    m, d = bank.shape
    q = queries.shape[0]
    group = min(GROUP, m)
    bank_p, chunks, norms = _padded_chunks(bank, q, bank_chunk, group)
    rows = chunks.shape[1]

    def step(carry, xs):
        best, best_group = carry
        bank_c, norms_c, first_group = xs
        # |q|^2 is the same for every row of a query, so it is left out of the selection.
        partial = norms_c[None, :] - 2.0 * jnp.matmul(queries, bank_c.T, precision=_HI)
        group_min = jnp.min(partial.reshape(q, rows // group, group), axis=2)  # fused with the matmul
        local = jnp.argmin(group_min, axis=1).astype(jnp.int32)
        value = jnp.min(group_min, axis=1)
        better = value < best
        return (jnp.where(better, value, best), jnp.where(better, first_group + local, best_group)), None

    init = (jnp.full((q,), jnp.inf, jnp.float32), jnp.zeros((q,), jnp.int32))
    firsts = jnp.arange(chunks.shape[0], dtype=jnp.int32) * (rows // group)
    (_, best_group), _ = jax.lax.scan(step, init, (chunks, norms, firsts))

    def refine(args):
        query, grp = args
        index = grp * group + jnp.arange(group, dtype=jnp.int32)
        diff = bank_p[index] - query[None, :]
        sq = jnp.where(index < m, jnp.sum(diff * diff, axis=-1), jnp.inf)
        j = jnp.argmin(sq)
        return sq[j], index[j]

    sq, index = jax.lax.map(refine, (queries, best_group), batch_size=max(1, min(_REFINE_BLOCK, q)))
    return sq[:, None], index[:, None] + index_offset


def _topk_sq(queries: jax.Array, bank: jax.Array, k: int, bank_chunk: int, index_offset) -> tuple[jax.Array, jax.Array]:
    """Smallest-k squared distances and bank indices (+ ``index_offset``)."""
    if k == 1:
        return _nearest_sq(queries, bank, bank_chunk, index_offset)
    q = queries.shape[0]
    _, chunks, norms = _padded_chunks(bank, q, bank_chunk, 1)
    chunk = chunks.shape[1]
    q2 = jnp.sum(queries * queries, axis=-1, keepdims=True)

    def step(carry, xs):
        best_d, best_i = carry
        bank_c, norms_c, start = xs
        # +inf norms on padding rows keep them out of the top-k.
        dist = jnp.maximum(q2 - 2.0 * jnp.matmul(queries, bank_c.T, precision=_HI) + norms_c[None, :], 0.0)
        all_d = jnp.concatenate([best_d, dist], axis=1)
        neg, pos = jax.lax.top_k(-all_d, k)
        # Positions < k are the carried best; the rest index into this chunk.  (Mapping
        # positions back avoids materialising a [Q, k + chunk] index array.)
        kept = jnp.take_along_axis(best_i, jnp.minimum(pos, k - 1), axis=1)
        return (-neg, jnp.where(pos < k, kept, start + pos - k)), None

    init = (jnp.full((q, k), jnp.inf, jnp.float32), jnp.zeros((q, k), jnp.int32))
    starts = jnp.arange(chunks.shape[0], dtype=jnp.int32) * chunk
    (best_d, best_i), _ = jax.lax.scan(step, init, (chunks, norms, starts))
    return best_d, best_i + index_offset


def nearest_neighbors(queries: jax.Array, bank: jax.Array, *, k: int = 1, bank_chunk: int = 4096):
    """The ``k`` nearest bank rows of every query, exactly.

    Args:
      queries: f32[Q, D].
      bank: f32[M, D].
      k: neighbours per query, ``1 <= k <= M`` (static).
      bank_chunk: the most bank rows per search step (static); fewer when ``Q`` is large
        (:func:`step_rows`), so one step's distance block stays within :data:`BLOCK_ELEMENTS`.

    Returns:
      ``(distances f32[Q, k], indices i32[Q, k])``, Euclidean distances ascending
      (recomputed from difference vectors, so exact duplicates give exactly 0).

    Raises:
      ValueError: mismatched shapes, ``k`` out of range, non-positive chunk.
    """
    _check(queries, bank, k, bank_chunk)
    return _nearest_neighbors(queries, bank, int(k), int(bank_chunk))


@functools.partial(jax.jit, static_argnums=(2, 3))
def _nearest_neighbors(queries, bank, k, bank_chunk):
    queries = queries.astype(jnp.float32)
    bank = bank.astype(jnp.float32)
    sq, idx = _topk_sq(queries, bank, k, bank_chunk, 0)
    if k == 1:
        return jnp.sqrt(sq), idx  # already from difference vectors
    # The matmul form selects the neighbours; their distances are recomputed from the
    # difference vectors, because |q|^2 - 2 q.m + |m|^2 cancels catastrophically for
    # near-duplicates (a training patch against its own bank entry).
    diff = queries[:, None, :] - bank[idx]
    return jnp.sqrt(jnp.sum(diff * diff, axis=-1)), idx


def nearest_neighbors_sharded(
    queries: jax.Array, bank: jax.Array, mesh: Mesh, *, k: int = 1, bank_chunk: int = 4096, axis: str = "bank"
):
    """:func:`nearest_neighbors` with the bank's rows sharded over ``mesh`` axis ``axis``.

    Every device searches its own rows (replicated queries), then the per-device
    top-k lists are gathered and merged, so no device ever holds the whole bank.
    The bank size must divide by the axis size (pad with :func:`pad_bank` style
    far-away rows otherwise; see ``docs``). Returns the same as :func:`nearest_neighbors`.

    Raises:
      ValueError: as :func:`nearest_neighbors`, or a bank that does not split evenly.
    """
    _check(queries, bank, k, bank_chunk)
    n_dev = mesh.shape[axis]
    if bank.shape[0] % n_dev:
        raise ValueError(f"bank rows ({bank.shape[0]}) must divide evenly over the {n_dev} devices of axis {axis!r}")
    rows_per = bank.shape[0] // n_dev
    if k > rows_per:
        raise ValueError(f"k={k} exceeds the {rows_per} bank rows held per device")

    @functools.partial(
        jax.shard_map, mesh=mesh, in_specs=(P(), P(axis)), out_specs=(P(), P()), check_vma=False
    )
    def search(q, b):
        offset = jax.lax.axis_index(axis) * rows_per
        d, i = _topk_sq(q, b, k, bank_chunk, offset)
        all_d = jax.lax.all_gather(d, axis, axis=1, tiled=True)  # f32[Q, n_dev*k]
        all_i = jax.lax.all_gather(i, axis, axis=1, tiled=True)
        neg, pos = jax.lax.top_k(-all_d, k)
        return -neg, jnp.take_along_axis(all_i, pos, axis=1)

    bank = jax.device_put(bank.astype(jnp.float32), NamedSharding(mesh, P(axis)))
    sq, idx = search(queries.astype(jnp.float32), bank)
    return jnp.sqrt(sq), idx


# -- searching a bank whose rows are sharded, from inside ``shard_map`` -------------------------


def nearest_neighbors_across(queries: jax.Array, local_bank: jax.Array, axis: str, *, k: int = 1, bank_chunk: int = 4096):
    """:func:`nearest_neighbors` of this device's queries against a bank sharded over ``axis``.

    Call it inside ``jax.shard_map``: every device holds its own ``queries f32[Q, D]``
    (the same ``Q`` on each) and its block of bank rows ``local_bank f32[M/n, D]``
    (device ``i`` holds global rows ``i*M/n ...``). The queries of all devices are
    gathered, each device searches its rows for all of them (exact distances of its
    candidates from difference vectors), and an all-to-all sends every device the
    candidates for its own queries, of which it keeps the ``k`` nearest. No device
    ever holds more than its rows of the bank.

    Returns:
      ``(distances f32[Q, k], indices i32[Q, k])`` for this device's queries, global row
      indices, ascending; equal to the search against the whole bank (ties aside).
    """
    n = jax.lax.axis_size(axis)
    rows = local_bank.shape[0]
    q = queries.shape[0]
    offset = jax.lax.axis_index(axis) * rows
    everyone = jax.lax.all_gather(queries, axis, tiled=True)  # f32[n*Q, D]
    _, index = _topk_sq(everyone, local_bank, min(k, rows), bank_chunk, 0)
    diff = everyone[:, None, :] - local_bank[index]
    sq = jnp.sum(diff * diff, axis=-1)  # exact, like nearest_neighbors
    # [n*Q, k] -> device j receives rows j*Q..(j+1)*Q from every device: [n, Q, k].
    sq = jax.lax.all_to_all(sq.reshape(n, q, -1), axis, 0, 0, tiled=False)
    index = jax.lax.all_to_all((index + offset).reshape(n, q, -1), axis, 0, 0, tiled=False)
    sq = jnp.moveaxis(sq, 0, 1).reshape(q, -1)  # f32[Q, n*k], device-major
    index = jnp.moveaxis(index, 0, 1).reshape(q, -1)
    neg, pos = jax.lax.top_k(-sq, k)
    return jnp.sqrt(-neg), jnp.take_along_axis(index, pos, axis=1)


def take_rows_across(local_bank: jax.Array, indices: jax.Array, axis: str) -> jax.Array:
    """``bank[indices]`` for a bank sharded over ``axis`` (inside ``jax.shard_map``).

    ``indices i32[...]`` are this device's global row indices (the same shape on every
    device); returns ``f32[..., D]``. Each device contributes the rows it holds and a
    reduce-scatter hands every device its own.
    """
    n = jax.lax.axis_size(axis)
    rows = local_bank.shape[0]
    everyone = jax.lax.all_gather(indices.reshape(-1), axis, tiled=True)  # i32[n*K]
    local = everyone - jax.lax.axis_index(axis) * rows
    mine = (local >= 0) & (local < rows)
    picked = jnp.where(mine[:, None], local_bank[jnp.clip(local, 0, rows - 1)], 0.0)
    own = jax.lax.psum_scatter(picked.reshape(n, -1, local_bank.shape[1]), axis, scatter_dimension=0, tiled=False)
    return own.reshape(indices.shape + (local_bank.shape[1],))
