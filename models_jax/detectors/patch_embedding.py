"""The first half of PatchCore's feature path, as composable pieces: backbone tap -> locally aware patches.

A patch-memory detector is a composition of four steps; this module holds the
first two, :mod:`models_jax.detectors.memory_bank` the last two::

    feats = tap_features(config.backbone, variables, images, config.layers)   # {tap: f32[B, h, w, C]}
    emb = locally_aware_patches([feats[t] for t in config.layers], patch_size=3,
                                pretrain_embed_dim=1024, target_embed_dim=152)   # f32[B, h0, w0, D]
    bank = coreset_memory_bank(collect_embeddings(...), ratio, key=key)          # fit
    dists, idx = nearest_patch_distances(emb, bank)                              # predict

Every function here is a pure ``jnp`` function meant to be called inside a
detector's own ``jit`` (shapes and static options are Python values). A variant
(another backbone, another pooling, another scorer) swaps one step; see
``examples/plugin_patch_knn.py``.
"""

from __future__ import annotations

import functools
from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from models_jax.backbones import build_backbone
from models_jax.ops import adaptive_avg_pool_matrix

__all__ = [
    "backbone_micro_batch",
    "tap_features",
    "neighbourhood_patches",
    "align_to_grid",
    "patch_projection_kernel",
    "channel_mean_kernel",
    "AGGREGATIONS",
    "locally_aware_patches",
]

#: How a neighbourhood becomes one patch vector (see :func:`locally_aware_patches`).
AGGREGATIONS = ("adaptive_pool", "channel_mean")

_HI = jax.lax.Precision.HIGHEST


def backbone_micro_batch(batch: int, micro_batch: int | str | None = "auto") -> int:
    """Images per backbone pass inside a batch of ``batch`` images (see :func:`tap_features`).

    ``"auto"``: 1 when tracing for the CPU (JAX's default device, else its default
    backend), the whole batch on accelerators; ``None``: the whole batch; an int:
    at most that many.
    """
    if micro_batch is None:
        return batch
    if micro_batch == "auto":
        default = jax.config.jax_default_device
        platform = getattr(default, "platform", default) or jax.default_backend()
        return 1 if str(platform).lower() == "cpu" else batch
    if isinstance(micro_batch, bool) or not isinstance(micro_batch, int) or micro_batch < 1:
        raise ValueError(f"micro_batch must be a positive int, 'auto' or None, got {micro_batch!r}")
    return min(micro_batch, batch)


def tap_features(
    backbone: str,
    backbone_variables,
    images: jax.Array,
    taps: Sequence[str],
    *,
    micro_batch: int | str | None = "auto",
) -> Mapping[str, jax.Array]:
    """The named feature maps of ``backbone`` for ``images``.

    Args:
      backbone: a registered backbone name (``models_jax.backbones.list_backbones``).
      backbone_variables: its ``{"params", "batch_stats"}``.
      images: f32[B, H, W, 3], resized and normalised for the backbone.
      taps: tap names (static); only the layers up to the deepest one are computed.
      micro_batch: images per backbone pass (static; :func:`backbone_micro_batch`).
        ``"auto"`` runs the backbone one image at a time (a ``lax.map`` inside the
        program) on the CPU and on the whole batch elsewhere. The result is the same;
        on XLA:CPU a batch-1 pass keeps the activations in cache: EfficientNet-Lite0
        on 16 images at 224 px took 177 ms instead of 267 ms, and its working memory
        fell from 148 to 19 MiB (``docs/performance.md``).

    Returns:
      ``{tap: f32[B, h, w, C]}`` for grid taps (``f32[B, C]`` for pooled taps such as ``logits``).

    Raises:
      ValueError: unknown backbone or tap names (at trace time), a bad ``micro_batch``.
    """
    module = build_backbone(backbone)
    taps = tuple(taps)
    step = backbone_micro_batch(images.shape[0], micro_batch)
    if step >= images.shape[0]:
        return module.apply(backbone_variables, images, taps=taps)

    def one(image):  # vmapped by lax.map over chunks of ``step`` images
        return jax.tree.map(lambda a: a[0], module.apply(backbone_variables, image[None], taps=taps))

    return jax.lax.map(one, images, batch_size=step)


def neighbourhood_patches(grid: jax.Array, patch_size: int) -> jax.Array:
    """Every position's ``patch_size`` x ``patch_size`` neighbourhood, f32[B, h, w, C*k*k].

    Zero padded at the border and flattened channel-major, ``(c, ky, kx)``, exactly
    like ``torch.nn.Unfold(kernel_size=k, padding=k // 2)`` (PatchCore's "locally aware"
    patch features). ``patch_size=1`` returns ``grid`` unchanged.
    """
    if patch_size == 1:
        return grid
    return jax.lax.conv_general_dilated_patches(
        grid, (patch_size, patch_size), (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


def align_to_grid(grid: jax.Array, hw: tuple[int, int]) -> jax.Array:
    """Bilinear resize (half-pixel centres, no antialiasing: ``F.interpolate(align_corners=False)``)
    of ``grid: f32[B, h, w, C]`` to ``f32[B, *hw, C]``; unchanged when already that size."""
    if tuple(grid.shape[1:3]) == tuple(hw):
        return grid
    return jax.image.resize(grid, (grid.shape[0], *hw, grid.shape[-1]), method="bilinear", antialias=False)


@functools.lru_cache(maxsize=64)
def patch_projection_kernel(
    channels: int, patch_size: int, pretrain_embed_dim: int, n_layers: int, layer: int, target_embed_dim: int
) -> np.ndarray:
    """f32[k, k, C, target] (HWIO): one layer's unfold -> pool -> slice of the final pool, as one kernel.

    Unfolding a ``k x k`` neighbourhood (channel-major, ``C*k*k`` values), pooling it
    to ``pretrain_embed_dim``, and taking this layer's slice of the final pooling to
    ``target_embed_dim`` are all linear, so they compose into a single ``k x k``
    convolution kernel (composed in float64); the embedding is the sum over layers.
    """
    k = patch_size
    pre = adaptive_avg_pool_matrix(channels * k * k, pretrain_embed_dim).astype(np.float64)
    final = adaptive_avg_pool_matrix(n_layers * pretrain_embed_dim, target_embed_dim).astype(np.float64)
    weights = pre @ final[layer * pretrain_embed_dim : (layer + 1) * pretrain_embed_dim]  # [C*k*k, target]
    kernel = weights.reshape(channels, k, k, target_embed_dim).transpose(1, 2, 0, 3).astype(np.float32)
    kernel.setflags(write=False)
    return kernel


@functools.lru_cache(maxsize=64)
def channel_mean_kernel(
    channels: tuple[int, ...], layer: int, patch_size: int, target_embed_dim: int | None
) -> np.ndarray:
    """f32[k, k, C_layer, D] (HWIO): one layer's slice of the ``channel_mean`` embedding.

    Every channel is averaged over the ``k x k`` neighbourhood (zero padded, count including
    the padding, like ``torch.nn.AvgPool2d(k, 1, k // 2)``) and written to its own output
    column: the layers' channels are concatenated, ``D = sum(channels)``. When
    ``target_embed_dim`` is given and differs from that sum, the concatenation is
    adaptively average-pooled to it (composed into the kernel, in float64).
    """
    k = patch_size
    total = int(sum(channels))
    offset = int(sum(channels[:layer]))
    c = int(channels[layer])
    weights = np.zeros((c, total), np.float64)
    weights[np.arange(c), offset + np.arange(c)] = 1.0 / (k * k)
    if target_embed_dim is not None and target_embed_dim != total:
        weights = weights @ adaptive_avg_pool_matrix(total, target_embed_dim).astype(np.float64)
    kernel = np.broadcast_to(weights[None, None], (k, k, *weights.shape)).astype(np.float32)
    kernel.setflags(write=False)
    return kernel


def locally_aware_patches(
    feature_maps: Sequence[jax.Array],
    *,
    patch_size: int = 3,
    pretrain_embed_dim: int = 1024,
    target_embed_dim: int | None = 1024,
    aggregation: str = "adaptive_pool",
) -> jax.Array:
    """PatchCore's patch embedding of several feature maps, f32[B, h0, w0, D] on the first map's grid.

    The reference pipeline (patchcore-inspection): per map :func:`neighbourhood_patches`,
    :func:`align_to_grid` onto the first (finest) map's grid, adaptive average pooling of
    the ``C*k*k`` vector to ``pretrain_embed_dim``; the maps concatenated and pooled again
    to ``target_embed_dim`` (``adaptive_avg_pool1d`` semantics).

    Computed as one ``k x k`` convolution per map (:func:`patch_projection_kernel`) at the
    map's own resolution, the coarser results upsampled bilinearly and summed. That equals
    the reference (every step is linear and the upsampling acts per channel) without
    materialising the ``C*k*k``-wide patches, and the upsampling runs on ``target_embed_dim``
    channels (tested against the reference to float rounding).

    ``aggregation="channel_mean"`` is anomalib's variant instead
    (:func:`channel_mean_kernel`): each channel averaged over the neighbourhood, the
    layers' channels concatenated (width ``sum(C_i)``, or pooled to ``target_embed_dim``
    when that is given and differs), so no channel is mixed with another.

    Args:
      feature_maps: ``f32[B, h_i, w_i, C_i]``, finest first.
      patch_size: odd neighbourhood side.
      pretrain_embed_dim, target_embed_dim: the two pooling sizes (``target_embed_dim`` None:
        ``sum(C_i)``, only with ``channel_mean``).
      aggregation: one of :data:`AGGREGATIONS`.

    Raises:
      ValueError: no feature maps, or an unknown aggregation.
    """
    if not feature_maps:
        raise ValueError("locally_aware_patches needs at least one feature map")
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {aggregation!r}; accepted: {list(AGGREGATIONS)}")
    if aggregation == "adaptive_pool" and target_embed_dim is None:
        raise ValueError("aggregation 'adaptive_pool' needs a target_embed_dim")
    ref_hw = tuple(feature_maps[0].shape[1:3])
    channels = tuple(int(grid.shape[-1]) for grid in feature_maps)
    total = None
    for layer, grid in enumerate(feature_maps):
        if aggregation == "channel_mean":
            kernel = channel_mean_kernel(channels, layer, patch_size, target_embed_dim)
        else:
            kernel = patch_projection_kernel(
                channels[layer], patch_size, pretrain_embed_dim, len(feature_maps), layer, target_embed_dim
            )
        # SAME zero padding, like torch.nn.Unfold(padding=k // 2) in the reference.
        out = jax.lax.conv_general_dilated(
            grid, jnp.asarray(kernel), (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=_HI
        )
        out = align_to_grid(out, ref_hw)
        total = out if total is None else total + out
    return total
