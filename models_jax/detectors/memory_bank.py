"""The second half of PatchCore's feature path: memory bank -> nearest-neighbour scorer.

- :func:`collect_embeddings` (host driver, fit time): runs a jitted embedding
  function over the training batches, one batch in memory at a time, in fixed
  batch shapes (one compile).
- :func:`coreset_memory_bank` (fit time): PatchCore's greedy k-center coreset of
  a fraction of the patches (:func:`models_jax.ops.greedy_coreset`).
- :func:`nearest_patch_distances` (inside ``jit``): exact kNN of every test patch
  against the bank, chunked over the bank.
- :class:`ShardedBank` (inside ``shard_map``): one device's block of a bank whose rows
  are sharded over a mesh axis; :func:`nearest_patch_distances` and
  :func:`reweighted_max_score` take it in place of the bank array and reduce their
  searches and lookups across the devices.
- :func:`reweighted_max_score` (inside ``jit``): PatchCore's eq. 7 image score.
- :func:`top_fraction_mean` (inside ``jit``): the mean of the largest patch scores
  (AnomalyDINO's "mean of the top 1 %").

See :mod:`models_jax.detectors.patch_embedding` for the first half and the
composition; ``examples/plugin_patch_knn.py`` composes a variant.
"""

from __future__ import annotations

from typing import Callable, Iterable

import jax
import jax.numpy as jnp
import numpy as np

from models_jax.detectors.common import CountedBatches, pad_batch
from models_jax.ops import greedy_coreset, nearest_neighbors, nearest_neighbors_across, take_rows_across

__all__ = [
    "ShardedBank",
    "collect_embeddings",
    "coreset_size",
    "coreset_memory_bank",
    "nearest_patch_distances",
    "reweighted_max_score",
    "top_fraction_mean",
]


def collect_embeddings(
    embed: Callable[[jax.Array], jax.Array],
    batches: Iterable[np.ndarray],
    *,
    batch_size: int,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Embed every training image: ``f32[N, ...]`` on the host, one row per image.

    Args:
      embed: ``images f32[batch_size, H, W, 3] -> f32[batch_size, ...]`` (or a pytree of
        such arrays, e.g. a dict of feature maps; the result then has the same
        structure), typically a
        module-level jitted function called with the detector's config and variables
        (never a ``jit`` of a closure over the variables: they would be baked into
        the program as constants).
      batches: iterable of f32[b, H, W, 3] prepared images, consumed once. A short
        batch is padded to ``batch_size`` by repeating its last image (one compile),
        and the padding rows are dropped. A :class:`~models_jax.detectors.common.CountedBatches`
        (``pyimgano.fit`` passes one) says how many images there are, so the result is
        allocated once and filled: the embeddings are then held once, not twice while
        they are joined (100 MiB for bottle's PatchCore patches).
      batch_size: the fixed batch shape.
      progress: optional ``progress(n_images_done)``.

    Raises:
      ValueError: ``batches`` is empty, or yields another number of images than it counts.
    """
    sink = _Preallocated(batches.count) if isinstance(batches, CountedBatches) else _Joined()
    done = 0
    pending = None  # the previous batch's (output, valid rows), still on the device
    for batch in batches:
        valid = len(batch)
        out = embed(jnp.asarray(pad_batch(batch, batch_size), jnp.float32))  # dispatched asynchronously
        if pending is not None:  # fetched only now, so preparing this batch overlapped its compute
            sink.add(*pending)
        pending = (out, valid)
        done += valid
        if progress is not None:
            progress(done)
    if pending is not None:
        sink.add(*pending)
    if done == 0:
        raise ValueError("at least one training image is needed, got none")
    return sink.result()


class _Joined:
    """Chunks joined at the end (the image count is not known in advance)."""

    def __init__(self):
        self.chunks = []

    def add(self, out, valid: int) -> None:
        self.chunks.append(jax.tree.map(lambda a: np.asarray(a)[:valid], out))

    def result(self):
        return jax.tree.map(lambda *parts: np.concatenate(parts, axis=0), *self.chunks)


class _Preallocated:
    """Rows written into arrays of the counted size, allocated at the first batch."""

    def __init__(self, count: int):
        self.count, self.filled, self.out = int(count), 0, None

    def add(self, out, valid: int) -> None:
        if self.filled + valid > self.count:
            raise ValueError(f"the batches yielded more than the {self.count} images they count")
        if self.out is None:
            self.out = jax.tree.map(lambda a: np.empty((self.count, *a.shape[1:]), a.dtype), out)
        start = self.filled
        for dst, part in zip(jax.tree.leaves(self.out), jax.tree.leaves(out)):
            dst[start : start + valid] = np.asarray(part)[:valid]
        self.filled += valid

    def result(self):
        if self.filled != self.count:
            raise ValueError(f"the batches yielded {self.filled} images but count {self.count}")
        return self.out


def coreset_size(total: int, ratio: float) -> int:
    """``max(1, int(total * ratio))``: PatchCore's coreset size for ``total`` patches."""
    return max(1, int(total * ratio))


def coreset_memory_bank(
    patches, n_select: int, *, key: jax.Array, projection_dim: int | None = 128
) -> tuple[jax.Array, np.ndarray]:
    """The greedy k-center coreset of ``patches: f32[M, D]``: ``(bank f32[n, D], indices i64[n])``.

    ``n_select >= M`` keeps every patch (in order, no selection run). The
    selection runs on a random projection to ``projection_dim`` (see
    :func:`models_jax.ops.greedy_coreset`); indices are in selection order.
    ``patches`` may be a numpy or a device array; pass a device array and drop your
    host copy to hold one copy of all patches at a time (fit's peak memory).

    Raises:
      ValueError: ``patches`` is not 2-D or empty, or ``n_select < 1``.
    """
    patches = jnp.asarray(patches, jnp.float32)
    if patches.ndim != 2 or patches.shape[0] == 0:
        raise ValueError(f"patches must be a non-empty f32[M, D], got shape {patches.shape}")
    if n_select < 1:
        raise ValueError(f"the coreset needs at least one patch, got n_select={n_select}")
    if n_select >= patches.shape[0]:
        return patches, np.arange(patches.shape[0])
    selected = greedy_coreset(patches, int(n_select), key=key, projection_dim=projection_dim)
    return jnp.take(patches, selected, axis=0), np.asarray(selected).astype(np.int64)


class ShardedBank:
    """This device's rows of a memory bank sharded over mesh axis ``axis`` (use inside ``jax.shard_map``).

    Device ``i`` holds global rows ``i*R ... (i+1)*R - 1`` (``rows f32[R, D]``). Pass it
    where the bank array goes; searches gather every device's queries, search each
    block and merge (:func:`~models_jax.ops.nearest_neighbors_across`), lookups are
    reduce-scattered (:func:`~models_jax.ops.take_rows_across`). Not a pytree: build it
    inside the sharded function from the local block.
    """

    def __init__(self, rows: jax.Array, axis: str):
        self.rows, self.axis = rows, axis

    @property
    def shape(self) -> tuple[int, int]:
        """The global bank shape ``(R * devices, D)``."""
        return (self.rows.shape[0] * jax.lax.axis_size(self.axis), self.rows.shape[1])

    def nearest(self, queries: jax.Array, k: int, bank_chunk: int):
        return nearest_neighbors_across(queries, self.rows, self.axis, k=k, bank_chunk=bank_chunk)

    def take(self, indices: jax.Array) -> jax.Array:
        return take_rows_across(self.rows, indices, self.axis)


def _nearest(memory_bank, queries, k: int, bank_chunk: int):
    if isinstance(memory_bank, ShardedBank):
        return memory_bank.nearest(queries, k, bank_chunk)
    return nearest_neighbors(queries, memory_bank, k=k, bank_chunk=bank_chunk)


def _take(memory_bank, indices):
    return memory_bank.take(indices) if isinstance(memory_bank, ShardedBank) else memory_bank[indices]


def nearest_patch_distances(
    embeddings: jax.Array, memory_bank: jax.Array | ShardedBank, *, k: int = 1, bank_chunk: int = 4096
) -> tuple[jax.Array, jax.Array]:
    """Euclidean distances and indices of the ``k`` nearest bank rows of every patch.

    Args:
      embeddings: f32[B, h, w, D].
      memory_bank: f32[M, D], or a :class:`ShardedBank` inside ``shard_map``.
      k: neighbours per patch, ``1 <= k <= M`` (static).
      bank_chunk: the most bank rows per search step (fewer for many patches: ``models_jax.ops.knn.step_rows``).

    Returns:
      ``(distances f32[B, h, w, k] ascending, indices i32[B, h, w, k])``.

    Raises:
      ValueError: mismatched feature sizes or ``k`` out of range.
    """
    b, h, w, d = embeddings.shape
    dists, idx = _nearest(memory_bank, embeddings.reshape(-1, d), k, bank_chunk)
    return dists.reshape(b, h, w, k), idx.reshape(b, h, w, k)


def reweighted_max_score(
    memory_bank: jax.Array | ShardedBank,
    embeddings: jax.Array,
    patch_scores: jax.Array,
    nn_index: jax.Array,
    *,
    num_neighbors: int,
    bank_chunk: int = 4096,
) -> jax.Array:
    """PatchCore's image score (paper eq. 7), f32[B].

    ``s = (1 - exp(s*) / sum_{m in N_b(m*)} exp(||m_test* - m||)) * s*``: ``s*`` is the
    largest patch score, ``m_test*`` that patch's embedding, ``m*`` its nearest bank
    row and ``N_b(m*)`` the ``num_neighbors`` bank rows nearest to ``m*`` (``m*``
    itself included, as in anomalib). With fewer than 2 support rows the weight is
    undefined and ``s*`` is returned.

    Args:
      memory_bank: f32[M, D], or a :class:`ShardedBank` inside ``shard_map``.
      embeddings: f32[B, h, w, D] test patch embeddings.
      patch_scores: f32[B, h, w] distances to the nearest bank row.
      nn_index: i32[B, h, w] index of that row.
      num_neighbors: support size ``b`` (static).
    """
    b = patch_scores.shape[0]
    flat_scores = patch_scores.reshape(b, -1)
    flat_emb = embeddings.reshape(b, flat_scores.shape[1], -1)
    flat_nn = nn_index.reshape(b, -1)
    arg = jnp.argmax(flat_scores, axis=1)
    s_star = jnp.take_along_axis(flat_scores, arg[:, None], axis=1)[:, 0]
    m_test = jnp.take_along_axis(flat_emb, arg[:, None, None], axis=1)[:, 0]  # f32[B, D]
    m_star = _take(memory_bank, jnp.take_along_axis(flat_nn, arg[:, None], axis=1)[:, 0])  # f32[B, D]
    n_support = min(int(num_neighbors), memory_bank.shape[0])
    if n_support < 2:
        return s_star  # a single support sample gives weight 1 - 1 = 0; no re-weighting possible
    _, support = _nearest(memory_bank, m_star, n_support, bank_chunk)
    support_feats = _take(memory_bank, support)  # f32[B, b, D]
    dists = jnp.sqrt(jnp.maximum(jnp.sum((support_feats - m_test[:, None, :]) ** 2, axis=-1), 0.0))
    # Softmax over the support distances; index 0 is m* itself, so its distance equals s*.
    weight = 1.0 - jax.nn.softmax(dists, axis=-1)[:, 0]
    return weight * s_star


def top_fraction_mean(patch_scores: jax.Array, fraction: float) -> jax.Array:
    """Mean of the ``int(P * fraction)`` largest of each image's ``P`` patch scores, f32[B].

    ``patch_scores: f32[B, ...]``. When ``int(P * fraction)`` is 0 the maximum is
    returned (AnomalyDINO's ``mean_top1p``: the empirical tail value at risk).
    """
    b = patch_scores.shape[0]
    flat = patch_scores.reshape(b, -1)
    count = max(1, int(flat.shape[1] * float(fraction)))
    top, _ = jax.lax.top_k(flat, count)
    return jnp.mean(top, axis=1)
