"""PaDiM (Defard et al., "PaDiM: a Patch Distribution Modeling Framework for
Anomaly Detection and Localization", ICPR 2021).

As in the paper and anomalib's implementation:

1. Features from the first three backbone stages (default: the deepest taps at
   strides 4, 8 and 16, i.e. ``layer1``..``layer3`` of a ResNet), the coarser
   ones upsampled (nearest) to the finest grid and concatenated.
2. A random subset of ``d_reduced`` channels, drawn once from ``key``.
3. Per grid position a multivariate Gaussian: mean and unbiased covariance over
   the training images, regularised with ``covariance_eps * I``.
4. The anomaly score of a test patch is its Mahalanobis distance to its
   position's Gaussian, ``|L^{-1}(x - mu)|`` with the inverse Cholesky factor
   of the covariance computed once at fit time (a matmul in ``jit``; see
   :mod:`models_jax.ops.gaussian_stats` for why not a solve per call).
5. The map is the distance grid upsampled bilinearly to the model input size
   and blurred with a Gaussian of sigma 4; the image score is the map maximum.

Departures: the map is finally resized to the size of the frames the caller
passed.  ``projection_fit_samples`` (accepted by the compatibility shell for
the earlier PyTorch library, which fitted a Gaussian random projection) has no
effect: the paper's random channel subset needs no fitting samples.  The
default backbone is EfficientNet-Lite0 (offline ImageNet weights).
"""

from __future__ import annotations

from functools import partial
from typing import Iterable

import attrs
import jax
import jax.numpy as jnp
import numpy as np

from models_jax.backbones import get_backbone_spec, init_backbone_variables
from models_jax.detectors.common import (
    BackboneFeatureConfig,
    Prediction,
    backbone_variable_specs,
    non_negative,
    pad_batch,
    positive,
    shape_anomaly_maps,
)
from models_jax.detectors.patch_embedding import tap_features
from models_jax.ops import accumulate_moments, finalize_gaussian, init_moments, inverse_cholesky_factor, mahalanobis

__all__ = ["PaDiMConfig", "PaDiMState", "fit", "predict", "embed_positions", "state_shapes"]


@attrs.frozen
class PaDiMConfig(BackboneFeatureConfig):
    """PaDiM hyper-parameters (hashable: passed to ``jit`` as static)."""

    LAYER_STRIDES = (4, 8, 16)

    d_reduced: int = attrs.field(default=100, validator=positive)
    covariance_eps: float = attrs.field(default=0.01, validator=positive)
    blur_sigma: float = attrs.field(default=4.0, validator=non_negative)
    batch_size: int = attrs.field(default=16, validator=positive)
    seed: int = 0

    def __attrs_post_init__(self) -> None:
        spec = get_backbone_spec(self.backbone)
        layers = self.layers
        total = sum(spec.channels(tap) for tap in layers)
        if self.d_reduced > total:
            raise ValueError(
                f"d_reduced={self.d_reduced} exceeds the {total} channels of {self.backbone} taps {list(layers)}"
            )


@attrs.frozen
class PaDiMState:
    """A fitted PaDiM detector (a pytree; ``config`` is static)."""

    config: PaDiMConfig
    backbone_variables: dict
    channel_index: jax.Array  # i32[d]
    mean: jax.Array  # f32[P, d]
    inv_cholesky: jax.Array  # f32[P, d, d], L^{-1} for L L^T = the regularised covariance


jax.tree_util.register_dataclass(
    PaDiMState, data_fields=["backbone_variables", "channel_index", "mean", "inv_cholesky"], meta_fields=["config"]
)


def embed_positions(config: PaDiMConfig, backbone_variables, images: jax.Array, channel_index) -> jax.Array:
    """Selected concatenated features, f32[B, h, w, d] on the finest tapped grid."""
    feats = tap_features(config.backbone, backbone_variables, images, config.layers)
    first = feats[config.layers[0]]
    b, h, w = first.shape[:3]
    grids = [first]
    for tap in config.layers[1:]:
        grid = feats[tap]
        grids.append(jax.image.resize(grid, (b, h, w, grid.shape[-1]), method="nearest"))
    return jnp.take(jnp.concatenate(grids, axis=-1), channel_index, axis=-1)


def state_shapes(config: PaDiMConfig) -> dict[str, tuple[tuple, str]]:
    """``{array path: (shape, dtype)}`` of a fitted state of ``config``.

    The number of positions ``P`` comes from ``jax.eval_shape`` of the fit's embedding
    at ``config.image_size`` (nothing is computed).
    """
    variables = jax.eval_shape(lambda key: init_backbone_variables(config.backbone, key=key), jax.random.key(0))
    image = jax.ShapeDtypeStruct((1, *config.image_size, 3), jnp.float32)
    d = config.d_reduced
    grid = jax.eval_shape(lambda v, x: embed_positions(config, v, x, jnp.arange(d)), variables, image)
    positions = grid.shape[1] * grid.shape[2]
    shapes = backbone_variable_specs(config.backbone)
    shapes.update(
        channel_index=((d,), "int32"), mean=((positions, d), "float32"), inv_cholesky=((positions, d, d), "float32")
    )
    return shapes


@partial(jax.jit, static_argnums=0)
def _embed_flat(config, backbone_variables, images, channel_index):
    emb = embed_positions(config, backbone_variables, images, channel_index)
    return emb.reshape(emb.shape[0], -1, emb.shape[-1])


def fit(
    config: PaDiMConfig,
    batches: Iterable[np.ndarray],
    *,
    key: jax.Array,
    backbone_variables,
    progress=None,
) -> PaDiMState:
    """Fit the per-position Gaussians from batches of prepared training images.

    Args:
      config: detector configuration.
      batches: iterable of f32[B, H, W, 3] at ``config.image_size``, normalised for the backbone.
      key: PRNG key that draws the channel subset.
      backbone_variables: ``{"params", "batch_stats"}`` of ``config.backbone``.
      progress: optional callable ``progress(n_images_done)``.

    Raises:
      ValueError: when ``batches`` is empty.
    """
    variables = jax.device_put(backbone_variables)
    spec = get_backbone_spec(config.backbone)
    total = sum(spec.channels(tap) for tap in config.layers)
    channel_index = jnp.sort(jax.random.choice(key, total, (config.d_reduced,), replace=False)).astype(jnp.int32)
    moments = None
    n_images = 0
    for batch in batches:
        valid = len(batch)
        feats = _embed_flat(
            config, variables, jnp.asarray(pad_batch(batch, config.batch_size), jnp.float32), channel_index
        )
        feats = feats[:valid]
        if moments is None:
            moments = init_moments(feats.shape[1], feats.shape[2])
        moments = accumulate_moments(moments, feats)
        n_images += len(batch)
        if progress is not None:
            progress(n_images)
    if moments is None:
        raise ValueError("PaDiM needs at least one training image, got none")
    mean, cov = finalize_gaussian(moments, config.covariance_eps)
    return PaDiMState(
        config=config,
        backbone_variables=variables,
        channel_index=channel_index,
        mean=mean,
        inv_cholesky=inverse_cholesky_factor(cov),
    )


@partial(jax.jit, static_argnums=(2,))
def _predict(state: PaDiMState, images: jax.Array, out_hw: tuple[int, int]) -> Prediction:
    config = state.config
    emb = embed_positions(config, state.backbone_variables, images, state.channel_index)
    b, h, w, d = emb.shape
    dist = mahalanobis(emb.reshape(b, h * w, d), state.mean, state.inv_cholesky).reshape(b, h, w)
    maps = shape_anomaly_maps(dist, config.image_size, config.image_size, config.blur_sigma)
    scores = jnp.max(maps, axis=(1, 2))
    if tuple(out_hw) != tuple(config.image_size):
        maps = jax.image.resize(maps, (b, *out_hw), method="bilinear", antialias=True)
    return Prediction(scores=scores.astype(jnp.float32), maps=maps.astype(jnp.float32))


def predict(state: PaDiMState, images: jax.Array, out_hw: tuple[int, int] | None = None) -> Prediction:
    """Scores f32[B] and maps f32[B, *out_hw] for prepared images f32[B, H, W, 3]."""
    out_hw = tuple(state.config.image_size) if out_hw is None else (int(out_hw[0]), int(out_hw[1]))
    return _predict(state, images, out_hw)
