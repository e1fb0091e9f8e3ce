"""AnomalyDINO (Damm et al., "AnomalyDINO: Boosting Patch-based Few-shot Anomaly Detection with DINOv2", WACV 2025).

As in the paper and its reference implementation (dammsi/AnomalyDINO):

1. DINOv2 ViT-S/14 patch tokens after the final LayerNorm (the hub model's
   ``get_intermediate_layers(x)[0]``: our ``patch_tokens`` tap), one per 14x14
   patch, at ``image_size`` (the paper's default 448).
2. The memory bank is every patch token of the (few) normal reference images,
   with no sub-sampling and no masking of the references (``mask_ref_images``
   is off in the reference).
3. A test patch's distance is to its nearest bank token: with
   ``distance="cosine"`` (the paper's default, ``L2_normalized``) the tokens are
   L2-normalised and the distance is ``1 - cos = ||a - b||^2 / 2``; with
   ``"euclidean"`` the plain L2 distance. For ``k_neighbors > 1`` the squared
   distances of the ``k`` nearest are averaged first, as the reference does.
4. Zero-shot background masking (``masking=True``; the paper enables it only for
   objects on plain backgrounds, e.g. MVTec capsule, hazelnut, pill, screw,
   toothbrush, and not for bottle): the first principal component of the test
   image's own tokens, thresholded at ``mask_threshold`` (10); if that keeps at
   most ``mask_min_centre`` (35 %) of the central crop (``mask_border`` = 20 % off
   each side) the sign is flipped; then a 3x3 dilation and a 3x3 closing.
   Masked-out patches get distance 0.
5. The image score is the mean of the top ``top_fraction`` (1 %) of the patch
   distances (``int(P * 0.01)`` patches, the maximum when that is 0); the map is
   the distance grid upsampled bilinearly and blurred with a Gaussian of sigma 4.

Weights: no DINOv2 checkpoint ships with any installed package and nothing is
downloaded, so ``pretrained=True`` (the default) needs ``weights_path`` = a file
converted with ``pyimgano-convert-weights dinov2_vits14_pretrain.pth --arch
dinov2_vits14 -o DST``. With ``pretrained=False`` the backbone is a seeded random
init: the pipeline runs, but its features carry no ImageNet knowledge and
accuracy is not that of the paper (the tests and the bottle benchmark here use
it, and say so).

Departures, and why:

- The reference resizes the smaller image edge to the resolution and crops to a
  multiple of 14, keeping the aspect ratio; here frames are resized to
  ``image_size`` (height, width), which must be multiples of 14.
- The map is blurred with sigma 4 at the model input size (the reference blurs at
  the original image size), then resized to the caller's frames: the same
  convention as every detector here.
- The PCA sign is fixed like scikit-learn's (the component's largest-magnitude
  entry positive) before the centre test, which decides the sign anyway.
- Rotation augmentation of the references (the paper's "agnostic" setting) is not
  implemented; pass rotated references yourself if needed.
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
    as_image_size,
    layers_for,
    non_negative,
    odd,
    positive,
    shape_anomaly_maps,
)
from models_jax.detectors.memory_bank import collect_embeddings, nearest_patch_distances, top_fraction_mean
from models_jax.detectors.patch_embedding import tap_features

__all__ = [
    "DISTANCES",
    "AnomalyDINOConfig",
    "AnomalyDINOState",
    "fit",
    "predict",
    "patch_tokens",
    "bank_tokens",
    "background_mask",
]

#: Patch distances: ``cosine`` (the paper's ``L2_normalized``, 1 - cosine similarity) or ``euclidean``.
DISTANCES = ("cosine", "euclidean")


def _fraction(_inst, attribute, value) -> None:
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{attribute.name} must be in (0, 1], got {value!r}")


def _border(_inst, attribute, value) -> None:
    if not 0.0 <= value < 0.5:
        raise ValueError(f"{attribute.name} must be in [0, 0.5), got {value!r}")


@attrs.frozen
class AnomalyDINOConfig(BackboneFeatureConfig):
    """AnomalyDINO hyper-parameters (hashable: passed to ``jit`` as static).

    ``backbone`` defaults to ``dinov2_vits14`` and ``layers`` to its final-normed
    ``patch_tokens``; ``image_size`` to the paper's 448 (multiples of 14 only).
    """

    LAYER_STRIDES = (14,)
    SIZE_MULTIPLE = 14

    # Redeclared (after the inherited fields) for other defaults; ``layers`` reads ``backbone``.
    backbone: str = "dinov2_vits14"
    layers: tuple[str, ...] = attrs.field(default=None, converter=attrs.Converter(layers_for, takes_self=True))
    image_size: tuple[int, int] = attrs.field(default=(448, 448), converter=as_image_size)
    distance: str = attrs.field(default="cosine", validator=attrs.validators.in_(DISTANCES))
    k_neighbors: int = attrs.field(default=1, validator=positive)
    top_fraction: float = attrs.field(default=0.01, validator=_fraction)
    masking: bool = False
    mask_threshold: float = 10.0
    mask_kernel: int = attrs.field(default=3, validator=[positive, odd])
    mask_border: float = attrs.field(default=0.2, validator=_border)
    mask_min_centre: float = attrs.field(default=0.35, validator=_fraction)
    blur_sigma: float = attrs.field(default=4.0, validator=non_negative)
    batch_size: int = attrs.field(default=8, validator=positive)
    knn_chunk: int = attrs.field(default=4096, validator=positive)
    seed: int = 0

    def __attrs_post_init__(self) -> None:
        if len(self.layers) != 1:
            raise ValueError(f"AnomalyDINO uses one token tap, got layers={list(self.layers)}")
        if self.backbone.startswith("dinov2") and any(side % 14 for side in self.image_size):
            raise ValueError(f"image_size must be a multiple of the patch size 14, got {self.image_size}")


@attrs.frozen
class AnomalyDINOState:
    """A fitted AnomalyDINO detector (a pytree; ``config`` is static)."""

    config: AnomalyDINOConfig
    backbone_variables: dict  # the backbone's {"params"}
    memory_bank: jax.Array  # f32[M, D], every reference patch token (L2-normalised for "cosine")


jax.tree_util.register_dataclass(
    AnomalyDINOState, data_fields=["backbone_variables", "memory_bank"], meta_fields=["config"]
)


def patch_tokens(config: AnomalyDINOConfig, backbone_variables, images: jax.Array) -> jax.Array:
    """The raw patch tokens f32[B, h, w, D] of prepared images f32[B, H, W, 3]."""
    tap = config.layers[0]
    return tap_features(config.backbone, backbone_variables, images, (tap,))[tap]


def _for_distance(config: AnomalyDINOConfig, tokens: jax.Array) -> jax.Array:
    if config.distance == "cosine":
        norm = jnp.sqrt(jnp.sum(tokens * tokens, axis=-1, keepdims=True))
        return tokens / jnp.maximum(norm, 1e-12)  # faiss.normalize_L2 leaves zero vectors at 0 too
    return tokens


def _morph(mask: jax.Array, size: int, op: str) -> jax.Array:
    """Binary dilation (``max``) or erosion (``min``) of f32[h, w] with a square; the border never counts."""
    init = 0.0 if op == "max" else 1.0
    fn = jax.lax.max if op == "max" else jax.lax.min
    pad = size // 2
    return jax.lax.reduce_window(mask, init, fn, (size, size), (1, 1), ((pad, pad), (pad, pad)))


def background_mask(config: AnomalyDINOConfig, tokens: jax.Array) -> jax.Array:
    """The zero-shot foreground mask of one image, bool[h, w], from its tokens f32[h, w, D].

    First principal component of the image's own tokens > ``mask_threshold``; flipped
    when it keeps at most ``mask_min_centre`` of the central crop; then a
    ``mask_kernel`` dilation and closing (OpenCV's default border: it never adds or
    removes pixels).
    """
    h, w, d = tokens.shape
    x = tokens.reshape(-1, d)
    x = x - jnp.mean(x, axis=0, keepdims=True)
    _, vecs = jnp.linalg.eigh(jnp.matmul(x.T, x, precision=jax.lax.Precision.HIGHEST))
    component = vecs[:, -1]
    component = component * jnp.where(component[jnp.argmax(jnp.abs(component))] < 0, -1.0, 1.0)
    first = jnp.matmul(x, component, precision=jax.lax.Precision.HIGHEST).reshape(h, w)
    b = config.mask_border
    top, bottom, left, right = int(h * b), int(h * (1 - b)), int(w * b), int(w * (1 - b))
    mask = first > config.mask_threshold
    centre = mask[top:bottom, left:right]
    flip = jnp.sum(centre) <= centre.size * config.mask_min_centre
    mask = jnp.where(flip, -first > config.mask_threshold, mask).astype(jnp.float32)
    k = config.mask_kernel
    mask = _morph(mask, k, "max")
    mask = _morph(_morph(mask, k, "max"), k, "min")  # closing
    return mask > 0.5


@partial(jax.jit, static_argnums=0)
def bank_tokens(config: AnomalyDINOConfig, backbone_variables, images: jax.Array) -> jax.Array:
    """The memory-bank rows of prepared images: tokens f32[B, h*w, D], L2-normalised for ``"cosine"`` (jitted)."""
    tokens = _for_distance(config, patch_tokens(config, backbone_variables, images))
    return tokens.reshape(tokens.shape[0], -1, tokens.shape[-1])


def fit(
    config: AnomalyDINOConfig,
    batches: Iterable[np.ndarray],
    *,
    key: jax.Array,
    backbone_variables,
    progress=None,
) -> AnomalyDINOState:
    """Store every patch token of the reference (normal) images as the memory bank.

    Args:
      config: the detector configuration.
      batches: iterable of f32[B, H, W, 3] at ``config.image_size`` (ImageNet-normalised
        for DINOv2); consumed once. Few-shot use passes the few references only.
      key: unused (no randomness); accepted for the common ``fit`` contract.
      backbone_variables: ``{"params", "batch_stats"}`` of ``config.backbone``.
      progress: optional callable ``progress(n_images_done)``.

    Raises:
      ValueError: when ``batches`` is empty.
    """
    del key
    variables = jax.device_put(backbone_variables)
    rows = collect_embeddings(
        lambda images: bank_tokens(config, variables, images), batches, batch_size=config.batch_size, progress=progress
    )
    return AnomalyDINOState(
        config=config, backbone_variables=variables, memory_bank=jnp.asarray(rows.reshape(-1, rows.shape[-1]))
    )


@partial(jax.jit, static_argnums=(2,))
def _predict(state: AnomalyDINOState, images: jax.Array, out_hw: tuple[int, int]) -> Prediction:
    config = state.config
    tokens = patch_tokens(config, state.backbone_variables, images)  # f32[B, h, w, D]
    k = min(config.k_neighbors, state.memory_bank.shape[0])
    dists, _ = nearest_patch_distances(
        _for_distance(config, tokens), state.memory_bank, k=k, bank_chunk=config.knn_chunk
    )
    mean_sq = jnp.mean(dists * dists, axis=-1)
    patch_scores = 0.5 * mean_sq if config.distance == "cosine" else jnp.sqrt(mean_sq)
    if config.masking:
        patch_scores = jnp.where(jax.vmap(lambda t: background_mask(config, t))(tokens), patch_scores, 0.0)
    scores = top_fraction_mean(patch_scores, config.top_fraction)
    maps = shape_anomaly_maps(patch_scores, config.image_size, out_hw, config.blur_sigma)
    return Prediction(scores=scores.astype(jnp.float32), maps=maps)


def predict(state: AnomalyDINOState, images: jax.Array, out_hw: tuple[int, int] | None = None) -> Prediction:
    """Scores f32[B] and maps f32[B, *out_hw] for prepared images f32[B, H, W, 3].

    ``out_hw`` defaults to the model input size.
    """
    out_hw = tuple(state.config.image_size) if out_hw is None else (int(out_hw[0]), int(out_hw[1]))
    return _predict(state, images, out_hw)
