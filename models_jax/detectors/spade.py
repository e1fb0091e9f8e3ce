"""SPADE (Cohen & Hoshen, "Sub-Image Anomaly Detection with Deep Pyramid Correspondences", arXiv 2005.02357, 2020).

Two stages, as in the paper and the widely used reference re-implementation
(byungjae89/SPADE-pytorch):

1. **Image level.** Every image is described by the global average pool of the
   backbone's deepest feature map (``image_layer``; ResNet ``avgpool`` features in
   the paper). The image score is the mean Euclidean distance to its
   ``k_images`` nearest training images.
2. **Pixel level.** For each tap of the feature pyramid (default: the deepest taps
   at strides 4, 8 and 16, i.e. ResNet ``layer1``..``layer3``), the gallery is the
   features at *all* positions of those ``k_images`` nearest training images; a
   test position's distance is the mean distance to its ``k_pixels`` (the paper's
   kappa, 1) nearest gallery features. Each tap's distance grid is upsampled
   bilinearly to the model input size, the taps are averaged with equal weights,
   and the map is blurred with a Gaussian of sigma 4.

The fitted state is the training set itself (no training): the pooled image
features ``f32[N, C]`` and every pyramid tap of every training image
``f32[N, h, w, C]``. Memory and scoring cost grow with N; ``k_images`` bounds the
pixel-level cost per test image to ``k_images * h * w`` gallery rows per tap.

Departures, and why:

- Per-tap distances averaged after upsampling, as the reference implementation
  does; the paper's text can also be read as concatenating the pyramid levels
  into one descriptor. Averaging keeps every level's weight equal whatever its
  channel count.
- ``k_images`` defaults to 50 (the paper's MVTec setting), clipped to the number
  of training images; the reference re-implementation uses 5.
- The default backbone is EfficientNet-Lite0 (offline ImageNet weights) instead of
  WideResNet-50-2: its stride-4/8/16 stages have 24/40/112 channels and its image
  descriptor is the 1280-channel ``features`` map, pooled.
- The map is finally resized (bilinear) to the size of the caller's frames.
"""

from __future__ import annotations

from functools import partial
from typing import Iterable

import attrs
import jax
import jax.numpy as jnp
import numpy as np

from models_jax.backbones import get_backbone_spec
from models_jax.detectors.common import BackboneFeatureConfig, Prediction, non_negative, positive
from models_jax.detectors.memory_bank import collect_embeddings
from models_jax.detectors.patch_embedding import align_to_grid, tap_features
from models_jax.ops import gaussian_blur, nearest_neighbors

__all__ = ["SPADEConfig", "SPADEState", "fit", "predict", "image_descriptors", "describe_images"]


def _image_layer_for(value, config) -> str:
    """attrs converter (takes self): None -> the backbone's deepest grid tap; else a validated grid tap."""
    spec = get_backbone_spec(config.backbone)
    if value is None:
        return spec.grid_taps[-1]
    if value not in spec.grid_taps:
        raise ValueError(
            f"image_layer {value!r} is not a grid tap of {config.backbone!r}; accepted: {list(spec.grid_taps)}"
        )
    return str(value)


@attrs.frozen
class SPADEConfig(BackboneFeatureConfig):
    """SPADE hyper-parameters (hashable: passed to ``jit`` as static).

    ``layers`` are the pixel-level pyramid taps (default: strides 4, 8, 16);
    ``image_layer`` the tap pooled into the image descriptor (default: the deepest).
    """

    LAYER_STRIDES = (4, 8, 16)

    image_layer: str | None = attrs.field(default=None, converter=attrs.Converter(_image_layer_for, takes_self=True))
    k_images: int = attrs.field(default=50, validator=positive)
    k_pixels: int = attrs.field(default=1, validator=positive)
    blur_sigma: float = attrs.field(default=4.0, validator=non_negative)
    batch_size: int = attrs.field(default=16, validator=positive)
    knn_chunk: int = attrs.field(default=4096, validator=positive)
    seed: int = 0


@attrs.frozen
class SPADEState:
    """A fitted SPADE detector (a pytree; ``config`` is static)."""

    config: SPADEConfig
    backbone_variables: dict  # the backbone's {"params", "batch_stats"}
    image_features: jax.Array  # f32[N, C_img], pooled image descriptors of the training images
    gallery: dict  # {tap: f32[N, h, w, C]}, the pyramid of every training image


jax.tree_util.register_dataclass(
    SPADEState, data_fields=["backbone_variables", "image_features", "gallery"], meta_fields=["config"]
)


def _all_taps(config: SPADEConfig) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*config.layers, config.image_layer)))


def image_descriptors(config: SPADEConfig, backbone_variables, images: jax.Array):
    """``(pooled f32[B, C_img], {tap: f32[B, h, w, C]})`` of prepared images f32[B, H, W, 3]."""
    feats = tap_features(config.backbone, backbone_variables, images, _all_taps(config))
    pooled = jnp.mean(feats[config.image_layer], axis=(1, 2))
    return pooled, {tap: feats[tap] for tap in config.layers}


@partial(jax.jit, static_argnums=0)
def describe_images(config: SPADEConfig, backbone_variables, images: jax.Array):
    """Jitted :func:`image_descriptors` (what ``fit`` stores)."""
    return image_descriptors(config, backbone_variables, images)


def fit(
    config: SPADEConfig,
    batches: Iterable[np.ndarray],
    *,
    key: jax.Array,
    backbone_variables,
    progress=None,
) -> SPADEState:
    """Store the image descriptors and feature pyramids of the training images.

    Args:
      config: the detector configuration.
      batches: iterable of f32[B, H, W, 3] at ``config.image_size``, normalised for the
        backbone; consumed once.
      key: unused (SPADE has no randomness); accepted for the common ``fit`` contract.
      backbone_variables: ``{"params", "batch_stats"}`` of ``config.backbone``.
      progress: optional callable ``progress(n_images_done)``.

    Raises:
      ValueError: when ``batches`` is empty.
    """
    del key
    variables = jax.device_put(backbone_variables)
    pooled, gallery = collect_embeddings(
        lambda images: describe_images(config, variables, images),
        batches,
        batch_size=config.batch_size,
        progress=progress,
    )
    return SPADEState(
        config=config,
        backbone_variables=variables,
        image_features=jnp.asarray(pooled),
        gallery={tap: jnp.asarray(grid) for tap, grid in gallery.items()},
    )


def _pixel_distances(config: SPADEConfig, gallery: dict, pyramid: dict, neighbours: jax.Array) -> jax.Array:
    """One image: the tap-averaged distance map f32[H, W] at the model input size.

    ``pyramid``: ``{tap: f32[h, w, C]}`` of the test image; ``neighbours``: i32[K] its
    nearest training images.
    """
    maps = []
    for tap in config.layers:
        test = pyramid[tap]
        h, w, c = test.shape
        candidates = gallery[tap][neighbours].reshape(-1, c)  # f32[K*h*w, C]
        dists, _ = nearest_neighbors(
            test.reshape(-1, c), candidates, k=min(config.k_pixels, candidates.shape[0]), bank_chunk=config.knn_chunk
        )
        grid = jnp.mean(dists, axis=1).reshape(1, h, w, 1)
        maps.append(align_to_grid(grid, tuple(config.image_size))[0, :, :, 0])
    return jnp.mean(jnp.stack(maps), axis=0)


@partial(jax.jit, static_argnums=(2,))
def _predict(state: SPADEState, images: jax.Array, out_hw: tuple[int, int]) -> Prediction:
    config = state.config
    pooled, pyramid = image_descriptors(config, state.backbone_variables, images)
    k = min(config.k_images, state.image_features.shape[0])
    image_dists, neighbours = nearest_neighbors(pooled, state.image_features, k=k, bank_chunk=config.knn_chunk)
    scores = jnp.mean(image_dists, axis=1)
    # One image at a time: the gallery of K images' pyramids is gathered per image.
    maps = jax.lax.map(lambda xs: _pixel_distances(config, state.gallery, xs[0], xs[1]), (pyramid, neighbours))
    if config.blur_sigma > 0:
        maps = gaussian_blur(maps, config.blur_sigma)
    if tuple(out_hw) != tuple(config.image_size):
        maps = jax.image.resize(maps, (maps.shape[0], *out_hw), method="bilinear", antialias=True)
    return Prediction(scores=scores.astype(jnp.float32), maps=maps.astype(jnp.float32))


def predict(state: SPADEState, images: jax.Array, out_hw: tuple[int, int] | None = None) -> Prediction:
    """Scores f32[B] and maps f32[B, *out_hw] for prepared images f32[B, H, W, 3].

    ``out_hw`` defaults to the model input size. Compiles once per
    (config, image batch shape, out_hw, number of training images).
    """
    out_hw = tuple(state.config.image_size) if out_hw is None else (int(out_hw[0]), int(out_hw[1]))
    return _predict(state, images, out_hw)
