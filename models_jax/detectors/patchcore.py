"""PatchCore (Roth et al., "Towards Total Recall in Industrial Anomaly Detection", CVPR 2022).

Pipeline, as in the paper and its reference implementation (patchcore-inspection):

1. Features from two backbone stages (default: the deepest taps at strides 8
   and 16, i.e. ``layer2``/``layer3`` of a ResNet).
2. Locally aware patch features: every position's 3x3 neighbourhood (zero
   padded, flattened channel-major like ``torch.nn.Unfold``) per stage.
3. The coarser stage is upsampled bilinearly (half-pixel centres) to the finest
   grid.
4. Each stage's ``C*9`` vector is adaptively average-pooled to
   ``pretrain_embed_dim``, the stages are concatenated and pooled again to
   ``target_embed_dim`` (``adaptive_avg_pool1d`` semantics).
5. The memory bank holds every training patch; a greedy k-center coreset of
   ``coreset_ratio`` of it is kept, chosen on a random projection to
   ``coreset_projection_dim`` dimensions.
6. A test patch's score is the Euclidean distance to its nearest bank entry.
   The image score is the largest patch score, re-weighted as in the paper's
   eq. 7: ``s = (1 - exp(s*) / sum_{m in N_b(m*)} exp(||m_test* - m||)) * s*``
   where ``N_b(m*)`` are the ``num_neighbors`` bank entries nearest to the
   nearest neighbour ``m*`` of the most anomalous test patch (``m*`` itself
   included, as in anomalib).
7. The anomaly map is the patch-score grid upsampled bilinearly to the model
   input size and blurred with a Gaussian of sigma 4.

Departures, and why:

- Distances are Euclidean (the paper's ``||.||_2``); patchcore-inspection's
  FAISS index returns squared distances.  Image AUROC is unaffected (monotone),
  maps differ only by that monotone transform before blurring.
- The map is finally resized (bilinear) from the model input size to the size
  of the frame the caller passed, so ``anomaly_maps`` matches the input frames.
- The default backbone is EfficientNet-Lite0 (the one with offline ImageNet
  weights here) instead of WideResNet-50-2; its stride-8/16 stages are thinner
  (40/112 channels), so the default embedding dimensions are smaller (see
  :class:`PatchCoreConfig`).
"""

from __future__ import annotations

from functools import partial
from typing import Iterable

import attrs
import jax
import jax.numpy as jnp
import numpy as np

from models_jax.backbones import build_backbone
from models_jax.detectors.common import (
    BackboneFeatureConfig,
    Prediction,
    pad_batch,
    positive,
    shape_anomaly_maps,
)
from models_jax.ops import (
    adaptive_avg_pool_last,
    greedy_coreset,
    nearest_neighbors,
    nearest_neighbors_across,
    take_rows_across,
)

__all__ = ["PatchCoreConfig", "PatchCoreState", "fit", "predict", "predict_bank_sharded", "embed_patches"]


def _ratio(_inst, attribute, value) -> None:
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{attribute.name} must be in (0, 1], got {value!r}")


@attrs.frozen
class PatchCoreConfig(BackboneFeatureConfig):
    """PatchCore hyper-parameters (hashable: passed to ``jit`` as static)."""

    LAYER_STRIDES = (8, 16)

    patch_size: int = attrs.field(default=3, validator=positive)
    pretrain_embed_dim: int = attrs.field(default=1024, validator=positive)
    target_embed_dim: int = attrs.field(default=1024, validator=positive)
    coreset_ratio: float = attrs.field(default=0.1, validator=_ratio)
    coreset_projection_dim: int | None = attrs.field(default=128, validator=positive)
    num_neighbors: int = attrs.field(default=9, validator=positive)
    blur_sigma: float = attrs.field(default=4.0)
    batch_size: int = attrs.field(default=16, validator=positive)
    knn_chunk: int = attrs.field(default=4096, validator=positive)
    seed: int = 0

    def __attrs_post_init__(self) -> None:
        if self.patch_size % 2 != 1:
            raise ValueError(f"patch_size must be odd (a centred neighbourhood), got {self.patch_size}")
        if self.blur_sigma < 0:
            raise ValueError(f"blur_sigma must be >= 0, got {self.blur_sigma}")


@attrs.frozen
class PatchCoreState:
    """A fitted PatchCore detector (a pytree; ``config`` is static)."""

    config: PatchCoreConfig
    backbone_variables: dict  # the backbone's {"params", "batch_stats"}
    memory_bank: jax.Array  # f32[M, D]


jax.tree_util.register_dataclass(
    PatchCoreState, data_fields=["backbone_variables", "memory_bank"], meta_fields=["config"]
)


def embed_patches(config: PatchCoreConfig, backbone_variables, images: jax.Array) -> jax.Array:
    """Locally aware patch embeddings, f32[B, h, w, D] on the finest tapped grid.

    ``images`` are f32[B, H, W, 3], already resized and normalised for the backbone.
    """
    module = build_backbone(config.backbone)
    feats = module.apply(backbone_variables, images, taps=config.layers)
    ref_h, ref_w = feats[config.layers[0]].shape[1:3]
    k = config.patch_size
    per_layer = []
    for tap in config.layers:
        grid = feats[tap]
        # (c, ky, kx) channel-major flattening, like torch.nn.Unfold with zero padding.
        patches = jax.lax.conv_general_dilated_patches(
            grid, (k, k), (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        if patches.shape[1:3] != (ref_h, ref_w):
            patches = jax.image.resize(
                patches, (patches.shape[0], ref_h, ref_w, patches.shape[-1]), method="bilinear", antialias=False
            )
        per_layer.append(adaptive_avg_pool_last(patches, config.pretrain_embed_dim))
    stacked = jnp.concatenate(per_layer, axis=-1)
    return adaptive_avg_pool_last(stacked, config.target_embed_dim)


@partial(jax.jit, static_argnums=0)
def _embed_flat(config: PatchCoreConfig, backbone_variables, images: jax.Array) -> jax.Array:
    emb = embed_patches(config, backbone_variables, images)
    return emb.reshape(-1, emb.shape[-1])


def fit(
    config: PatchCoreConfig,
    batches: Iterable[np.ndarray],
    *,
    key: jax.Array,
    backbone_variables,
    progress=None,
) -> PatchCoreState:
    """Build the memory bank from batches of prepared training images.

    Args:
      config: the detector configuration.
      batches: iterable of f32[B, H, W, 3] arrays at ``config.image_size``,
        normalised for the backbone. Consumed once, one batch in memory at a time.
      key: PRNG key for the coreset's random projection and start point.
      backbone_variables: ``{"params", "batch_stats"}`` of ``config.backbone``
        (from :func:`pyimgano.weights.backbone_variables_for`).
      progress: optional callable ``progress(n_images_done)``.

    Returns:
      The fitted :class:`PatchCoreState`.

    Raises:
      ValueError: when ``batches`` is empty.
    """
    variables = jax.device_put(backbone_variables)
    chunks = []
    n_images = 0
    for batch in batches:
        valid = len(batch)
        padded = pad_batch(batch, config.batch_size)
        emb = _embed_flat(config, variables, jnp.asarray(padded, jnp.float32))
        chunks.append(np.asarray(emb[: valid * (emb.shape[0] // len(padded))]))
        n_images += len(batch)
        if progress is not None:
            progress(n_images)
    if not chunks:
        raise ValueError("PatchCore needs at least one training image, got none")
    bank = np.concatenate(chunks, axis=0)
    del chunks
    n_select = max(1, int(bank.shape[0] * config.coreset_ratio))
    if n_select < bank.shape[0]:
        selected = greedy_coreset(
            jnp.asarray(bank), n_select, key=key, projection_dim=config.coreset_projection_dim
        )
        bank = bank[np.asarray(selected)]
    return PatchCoreState(config=config, backbone_variables=variables, memory_bank=jnp.asarray(bank))


class _ReplicatedBank:
    """The whole memory bank on this device."""

    def __init__(self, rows: jax.Array, bank_chunk: int):
        self.rows, self.chunk, self.size = rows, bank_chunk, rows.shape[0]

    def nearest(self, queries, k):
        return nearest_neighbors(queries, self.rows, k=k, bank_chunk=self.chunk)

    def take(self, indices):
        return self.rows[indices]


class _ShardedBank:
    """This device's block of a bank whose rows are sharded over mesh axis ``axis`` (inside shard_map)."""

    def __init__(self, local_rows: jax.Array, bank_chunk: int, axis: str):
        self.rows, self.chunk, self.axis = local_rows, bank_chunk, axis
        self.size = local_rows.shape[0] * jax.lax.axis_size(axis)

    def nearest(self, queries, k):
        return nearest_neighbors_across(queries, self.rows, self.axis, k=k, bank_chunk=self.chunk)

    def take(self, indices):
        return take_rows_across(self.rows, indices, self.axis)


def _reweight(config: PatchCoreConfig, bank, embeddings, patch_scores, nn_index):
    """Paper eq. 7 re-weighting of each image's maximum patch score."""
    b = patch_scores.shape[0]
    flat_scores = patch_scores.reshape(b, -1)
    flat_emb = embeddings.reshape(b, flat_scores.shape[1], -1)
    flat_nn = nn_index.reshape(b, -1)
    arg = jnp.argmax(flat_scores, axis=1)
    s_star = jnp.take_along_axis(flat_scores, arg[:, None], axis=1)[:, 0]
    m_test = jnp.take_along_axis(flat_emb, arg[:, None, None], axis=1)[:, 0]  # f32[B, D]
    m_star = bank.take(jnp.take_along_axis(flat_nn, arg[:, None], axis=1)[:, 0])  # f32[B, D]
    n_support = min(config.num_neighbors, bank.size)
    if n_support < 2:
        return s_star  # a single support sample gives weight 1 - 1 = 0; no re-weighting possible
    _, support = bank.nearest(m_star, n_support)
    support_feats = bank.take(support)  # f32[B, b, D]
    dists = jnp.sqrt(jnp.maximum(jnp.sum((support_feats - m_test[:, None, :]) ** 2, axis=-1), 0.0))
    # Softmax over the support distances; index 0 is m* itself, so its distance equals s*.
    weight = 1.0 - jax.nn.softmax(dists, axis=-1)[:, 0]
    return weight * s_star


def _scores_and_maps(state: PatchCoreState, bank, images: jax.Array, out_hw: tuple[int, int]) -> Prediction:
    config = state.config
    emb = embed_patches(config, state.backbone_variables, images)  # f32[B, h, w, D]
    b, h, w, d = emb.shape
    dists, idx = bank.nearest(emb.reshape(-1, d), 1)
    patch_scores = dists[:, 0].reshape(b, h, w)
    scores = _reweight(config, bank, emb, patch_scores, idx[:, 0])
    maps = shape_anomaly_maps(patch_scores, config.image_size, out_hw, config.blur_sigma)
    return Prediction(scores=scores.astype(jnp.float32), maps=maps)


def predict_bank_sharded(state: PatchCoreState, images: jax.Array, out_hw: tuple[int, int], axis: str) -> Prediction:
    """:func:`predict` for one device of a mesh over which the bank's rows are sharded.

    Call it inside ``jax.shard_map`` (:func:`pyimgano.devices.data_parallel`):
    ``state.memory_bank`` is this device's block of rows and ``images`` its slice of
    the batch; the nearest-neighbour searches and bank lookups are reduced across
    ``axis`` (:func:`~models_jax.ops.nearest_neighbors_across`), so the result equals
    :func:`predict` with the whole bank on one device.
    """
    return _scores_and_maps(state, _ShardedBank(state.memory_bank, state.config.knn_chunk, axis), images, out_hw)


@partial(jax.jit, static_argnums=(2,))
def _predict(state: PatchCoreState, images: jax.Array, out_hw: tuple[int, int]) -> Prediction:
    return _scores_and_maps(state, _ReplicatedBank(state.memory_bank, state.config.knn_chunk), images, out_hw)


def predict(state: PatchCoreState, images: jax.Array, out_hw: tuple[int, int] | None = None) -> Prediction:
    """Scores f32[B] and maps f32[B, *out_hw] for prepared images f32[B, H, W, 3].

    ``out_hw`` defaults to the model input size. Compiles once per
    (config, image batch shape, out_hw); a new state of the same shapes reuses it.
    """
    out_hw = tuple(state.config.image_size) if out_hw is None else (int(out_hw[0]), int(out_hw[1]))
    return _predict(state, images, out_hw)
