"""SoftPatch (Jiang et al., "SoftPatch: Unsupervised Anomaly Detection with Noisy Data", NeurIPS 2022).

PatchCore's memory bank built from a training set that may contain some
defective images ("noise"). As in the paper and its reference implementation
(TencentYoutuResearch/AnomalyDetection-SoftPatch):

1. Locally aware patch features exactly as PatchCore
   (:func:`~models_jax.detectors.patch_embedding.locally_aware_patches` of the
   stride-8/16 taps).
2. **Patch-level denoising.** The training patches are projected to
   ``weight_projection_dim`` dimensions (a random linear map, like the coreset's).
   At every grid position, each image's patch is scored against the patches of
   the other training images *at the same position*:

   - ``weight_method="lof"`` (the paper's default): the Local Outlier Factor with
     ``lof_k`` neighbours (:func:`models_jax.ops.local_outlier_factor`);
   - ``weight_method="nearest"``: the distance to the nearest other patch, plus 1.

   The ``noise_fraction`` (the paper's threshold tau, 0.15) of patches with the
   largest outlier scores over the whole set are discarded.
3. A greedy k-center coreset of ``coreset_ratio`` times *all* the patches is
   selected among the kept ones (:func:`~models_jax.detectors.memory_bank.coreset_memory_bank`);
   each bank row keeps its outlier score, clamped at 0, as its weight.
4. **Soft re-weighting.** A test patch's score is its distance to the nearest
   bank row times that row's weight (``soft_weight=True``): patches matched to
   atypical training patches score higher. The image score is the largest patch
   score; the map is the patch-score grid upsampled bilinearly to the model input
   size and blurred with a Gaussian of sigma 4.

Departures, and why:

- Discarded patches are removed before the coreset. The reference keeps them in
  the pool with a sampling weight of 0, which excludes them from every step of
  its approximate greedy sampler except the first pick (made from unweighted
  distances to 10 random start points, so it can be a discarded patch); here no
  discarded patch can enter the bank.
- The reference's ``main.py`` passes ``--lof_k 6`` under a misspelled keyword that
  is ignored, so its runs use the constructor default 5; ``lof_k`` defaults to 5.
- The projection for the outlier scores is Gaussian ``N(0, 1/d)`` (as the coreset's)
  rather than an untrained ``torch.nn.Linear``; LOF is invariant to the scale of the
  projection, the ``nearest`` weights are not (they are in projected units).
- The reference's ``gaussian`` weighting (a Mahalanobis distance per position) is
  not implemented.
- Default backbone EfficientNet-Lite0 and smaller embedding sizes, as for PatchCore;
  maps are finally resized to the size of the caller's frames.
"""

from __future__ import annotations

from functools import partial
from typing import Iterable

import attrs
import jax
import jax.numpy as jnp
import numpy as np

from models_jax.detectors.common import (
    BackboneFeatureConfig,
    Prediction,
    non_negative,
    odd,
    positive,
    shape_anomaly_maps,
)
from models_jax.detectors.memory_bank import (
    collect_embeddings,
    coreset_memory_bank,
    coreset_size,
    nearest_patch_distances,
)
from models_jax.detectors.patch_embedding import locally_aware_patches, tap_features
from models_jax.ops import local_outlier_factor, nearest_other_distance, random_projection

__all__ = [
    "WEIGHT_METHODS",
    "SoftPatchConfig",
    "SoftPatchState",
    "fit",
    "predict",
    "embed_patches",
    "patch_rows",
    "patch_outlier_scores",
]

#: How training patches are scored against the other images' patches at their position.
WEIGHT_METHODS = ("lof", "nearest")


def _unit_interval(_inst, attribute, value) -> None:
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{attribute.name} must be in (0, 1], got {value!r}")


def _noise_fraction(_inst, attribute, value) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{attribute.name} must be in [0, 1), got {value!r}")


@attrs.frozen
class SoftPatchConfig(BackboneFeatureConfig):
    """SoftPatch hyper-parameters (hashable: passed to ``jit`` as static)."""

    LAYER_STRIDES = (8, 16)

    patch_size: int = attrs.field(default=3, validator=[positive, odd])
    pretrain_embed_dim: int = attrs.field(default=1024, validator=positive)
    target_embed_dim: int = attrs.field(default=1024, validator=positive)
    coreset_ratio: float = attrs.field(default=0.1, validator=_unit_interval)
    coreset_projection_dim: int | None = attrs.field(default=128, validator=positive)
    weight_method: str = attrs.field(default="lof", validator=attrs.validators.in_(WEIGHT_METHODS))
    lof_k: int = attrs.field(default=5, validator=positive)
    noise_fraction: float = attrs.field(default=0.15, validator=_noise_fraction)
    weight_projection_dim: int | None = attrs.field(default=128, validator=positive)
    soft_weight: bool = True
    blur_sigma: float = attrs.field(default=4.0, validator=non_negative)
    batch_size: int = attrs.field(default=16, validator=positive)
    knn_chunk: int = attrs.field(default=4096, validator=positive)
    seed: int = 0


@attrs.frozen
class SoftPatchState:
    """A fitted SoftPatch detector (a pytree; ``config`` is static)."""

    config: SoftPatchConfig
    backbone_variables: dict  # the backbone's {"params", "batch_stats"}
    memory_bank: jax.Array  # f32[M, D], denoised coreset
    bank_weights: jax.Array  # f32[M], outlier score of each bank row (clamped at 0)


jax.tree_util.register_dataclass(
    SoftPatchState, data_fields=["backbone_variables", "memory_bank", "bank_weights"], meta_fields=["config"]
)


def embed_patches(config: SoftPatchConfig, backbone_variables, images: jax.Array) -> jax.Array:
    """PatchCore's locally aware patch embeddings, f32[B, h, w, D]."""
    feats = tap_features(config.backbone, backbone_variables, images, config.layers)
    return locally_aware_patches(
        [feats[tap] for tap in config.layers],
        patch_size=config.patch_size,
        pretrain_embed_dim=config.pretrain_embed_dim,
        target_embed_dim=config.target_embed_dim,
    )


@partial(jax.jit, static_argnums=0)
def patch_rows(config: SoftPatchConfig, backbone_variables, images: jax.Array) -> jax.Array:
    """Per-image patch embeddings f32[B, h*w, D] of prepared images (jitted; what ``fit`` collects)."""
    emb = embed_patches(config, backbone_variables, images)
    return emb.reshape(emb.shape[0], -1, emb.shape[-1])


@partial(jax.jit, static_argnums=(1, 2, 3))
def _outlier_scores(projected, method: str, k: int, positions_per_step: int):
    by_position = jnp.swapaxes(projected, 0, 1)  # f32[P, N, d]
    if method == "lof":
        score = lambda points: local_outlier_factor(points, k)  # noqa: E731
    else:
        score = lambda points: nearest_other_distance(points) + 1.0  # noqa: E731
    return jnp.swapaxes(jax.lax.map(score, by_position, batch_size=positions_per_step), 0, 1)


def patch_outlier_scores(
    embeddings: np.ndarray,
    *,
    method: str = "lof",
    k: int = 5,
    projection_dim: int | None = 128,
    key: jax.Array,
    positions_per_step: int = 16,
) -> np.ndarray:
    """Outlier score of every training patch among the same-position patches of the other images.

    Args:
      embeddings: f32[N, P, D], ``P`` patch positions of ``N`` training images.
      method: ``"lof"`` (Local Outlier Factor, ``k`` neighbours) or ``"nearest"``
        (distance to the nearest other patch + 1).
      projection_dim: random projection size before scoring (None: raw features).
      key: PRNG key of the projection.
      positions_per_step: positions scored together (memory ``positions x N x N``).

    Returns:
      f32[N, P] scores (about 1 for typical patches, larger for outliers).

    Raises:
      ValueError: fewer than 2 images, not 3-D, or an unknown ``method``.
    """
    if method not in WEIGHT_METHODS:
        raise ValueError(f"unknown weight method {method!r}; accepted: {list(WEIGHT_METHODS)}")
    embeddings = np.asarray(embeddings, np.float32)
    if embeddings.ndim != 3:
        raise ValueError(f"embeddings must be f32[N, P, D], got shape {embeddings.shape}")
    n, p, d = embeddings.shape
    if n < 2:
        raise ValueError(f"SoftPatch scores each patch against the other training images; got {n} image(s)")
    projected = random_projection(jnp.asarray(embeddings.reshape(-1, d)), projection_dim, key=key)
    projected = projected.reshape(n, p, -1)
    return np.asarray(_outlier_scores(projected, method, int(k), int(positions_per_step)))


def fit(
    config: SoftPatchConfig,
    batches: Iterable[np.ndarray],
    *,
    key: jax.Array,
    backbone_variables,
    progress=None,
) -> SoftPatchState:
    """Build the denoised, weighted memory bank from batches of prepared training images.

    Args:
      config: the detector configuration.
      batches: iterable of f32[B, H, W, 3] at ``config.image_size``, normalised for the
        backbone; consumed once (all patch embeddings are then held on the host,
        as for PatchCore).
      key: PRNG key of the outlier-score projection and the coreset.
      backbone_variables: ``{"params", "batch_stats"}`` of ``config.backbone``.
      progress: optional callable ``progress(n_images_done)``.

    Raises:
      ValueError: no training image, or only one (outlier scores need others).
    """
    weight_key, coreset_key = jax.random.split(key)
    variables = jax.device_put(backbone_variables)
    embeddings = collect_embeddings(
        lambda images: patch_rows(config, variables, images), batches, batch_size=config.batch_size, progress=progress
    )  # f32[N, P, D]
    weights = patch_outlier_scores(
        embeddings,
        method=config.weight_method,
        k=config.lof_k,
        projection_dim=config.weight_projection_dim,
        key=weight_key,
    ).reshape(-1)
    patches = embeddings.reshape(-1, embeddings.shape[-1])
    del embeddings
    # Linear interpolation, as torch.quantile in the reference; patches above it are noise.
    cutoff = np.quantile(weights.astype(np.float64), 1.0 - config.noise_fraction)
    kept = np.flatnonzero(weights <= cutoff)
    n_select = min(coreset_size(patches.shape[0], config.coreset_ratio), kept.size)
    bank, selected = coreset_memory_bank(
        patches[kept], n_select, key=coreset_key, projection_dim=config.coreset_projection_dim
    )
    bank_weights = np.maximum(weights[kept][selected], 0.0).astype(np.float32)
    return SoftPatchState(
        config=config,
        backbone_variables=variables,
        memory_bank=jnp.asarray(bank),
        bank_weights=jnp.asarray(bank_weights),
    )


@partial(jax.jit, static_argnums=(2,))
def _predict(state: SoftPatchState, images: jax.Array, out_hw: tuple[int, int]) -> Prediction:
    config = state.config
    emb = embed_patches(config, state.backbone_variables, images)
    dists, idx = nearest_patch_distances(emb, state.memory_bank, k=1, bank_chunk=config.knn_chunk)
    patch_scores = dists[..., 0]
    if config.soft_weight:
        patch_scores = patch_scores * state.bank_weights[idx[..., 0]]
    scores = jnp.max(patch_scores.reshape(patch_scores.shape[0], -1), axis=1)
    maps = shape_anomaly_maps(patch_scores, config.image_size, out_hw, config.blur_sigma)
    return Prediction(scores=scores.astype(jnp.float32), maps=maps)


def predict(state: SoftPatchState, images: jax.Array, out_hw: tuple[int, int] | None = None) -> Prediction:
    """Scores f32[B] and maps f32[B, *out_hw] for prepared images f32[B, H, W, 3].

    ``out_hw`` defaults to the model input size.
    """
    out_hw = tuple(state.config.image_size) if out_hw is None else (int(out_hw[0]), int(out_hw[1]))
    return _predict(state, images, out_hw)
