"""A detector written outside the package: a PatchCore variant composed from the public pieces.

``example_patch_knn`` reuses PatchCore's feature path but swaps two of its steps:

- pooling: each tap is smoothed with a ``pool_size`` x ``pool_size`` average
  (stride 1) instead of PatchCore's 3x3 unfold + adaptive channel pooling, and the
  taps are concatenated on the finest grid (all channels kept);
- scorer: a patch scores the *mean* distance to its ``k`` nearest bank rows
  (instead of the nearest only), and the image score is the mean of its top
  ``top_fraction`` patch scores (instead of PatchCore's re-weighted maximum).

The backbone tap (:func:`tap_features`), grid alignment (:func:`align_to_grid`),
memory bank (:func:`collect_embeddings`, :func:`coreset_memory_bank`) and kNN
(:func:`nearest_patch_distances`) are the ones PatchCore itself is built from.

Importing this module registers the detector; that is all a plugin does::

    pyimgano-infer --plugin examples/plugin_patch_knn.py --model example_patch_knn \\
        --train-dir good/ --input new/

    >>> from pyimgano.plugins import load_plugins
    >>> load_plugins(["examples/plugin_patch_knn.py"])          # doctest: +SKIP
    ['example_patch_knn']

Run it as a script for an offline demo on synthetic frames (random backbone
weights: it shows the plumbing, not accuracy)::

    python examples/plugin_patch_knn.py
"""

from __future__ import annotations

from functools import partial

import attrs
import jax
import jax.numpy as jnp
import numpy as np

from models_jax.detectors.common import BackboneFeatureConfig, Prediction, positive, shape_anomaly_maps
from models_jax.detectors.memory_bank import (
    collect_embeddings,
    coreset_memory_bank,
    coreset_size,
    nearest_patch_distances,
    top_fraction_mean,
)
from models_jax.detectors.patch_embedding import align_to_grid, tap_features
import pyimgano
from pyimgano.metrics import image_auroc
from pyimgano.registry import register_detector

__all__ = ["NAME", "PatchKnnConfig", "PatchKnnState", "fit", "predict"]

NAME = "example_patch_knn"


@attrs.frozen
class PatchKnnConfig(BackboneFeatureConfig):
    """Hyper-parameters (frozen and hashable: the config is a static ``jit`` argument)."""

    LAYER_STRIDES = (8, 16)

    pool_size: int = attrs.field(default=3, validator=positive)
    coreset_ratio: float = 0.1
    k: int = attrs.field(default=3, validator=positive)
    top_fraction: float = 0.05
    blur_sigma: float = 4.0
    batch_size: int = attrs.field(default=16, validator=positive)
    seed: int = 0

    def __attrs_post_init__(self) -> None:
        if not 0.0 < self.coreset_ratio <= 1.0:
            raise ValueError(f"coreset_ratio must be in (0, 1], got {self.coreset_ratio}")
        if not 0.0 < self.top_fraction <= 1.0:
            raise ValueError(f"top_fraction must be in (0, 1], got {self.top_fraction}")


@attrs.frozen
class PatchKnnState:
    """The fitted detector: a pytree whose only static field is ``config``."""

    config: PatchKnnConfig
    backbone_variables: dict
    memory_bank: jax.Array  # f32[M, D]


jax.tree_util.register_dataclass(PatchKnnState, data_fields=["backbone_variables", "memory_bank"], meta_fields=["config"])


def _embed(config: PatchKnnConfig, variables, images: jax.Array) -> jax.Array:
    """f32[B, h, w, D]: average-pooled taps, aligned to the finest grid and concatenated."""
    feats = tap_features(config.backbone, variables, images, config.layers)
    grid_hw = feats[config.layers[0]].shape[1:3]
    k = config.pool_size
    pooled = [
        align_to_grid(
            jax.lax.reduce_window(feats[tap], 0.0, jax.lax.add, (1, k, k, 1), (1, 1, 1, 1), "SAME") / (k * k), grid_hw
        )
        for tap in config.layers
    ]
    return jnp.concatenate(pooled, axis=-1)


@partial(jax.jit, static_argnums=0)
def _embed_jit(config: PatchKnnConfig, variables, images):
    return _embed(config, variables, images)


def fit(config: PatchKnnConfig, batches, *, key, backbone_variables, progress=None) -> PatchKnnState:
    """Memory bank of pooled patch features (greedy coreset of ``coreset_ratio`` of them)."""
    variables = jax.device_put(backbone_variables)
    emb = collect_embeddings(
        lambda x: _embed_jit(config, variables, x), batches, batch_size=config.batch_size, progress=progress
    )
    patches = emb.reshape(-1, emb.shape[-1])
    bank, _ = coreset_memory_bank(patches, coreset_size(len(patches), config.coreset_ratio), key=key)
    return PatchKnnState(config=config, backbone_variables=variables, memory_bank=jnp.asarray(bank))


@partial(jax.jit, static_argnums=2)
def _predict(state: PatchKnnState, images, out_hw):
    config = state.config
    dists, _ = nearest_patch_distances(
        _embed(config, state.backbone_variables, images), state.memory_bank, k=min(config.k, state.memory_bank.shape[0])
    )
    patch_scores = jnp.mean(dists, axis=-1)  # f32[B, h, w]
    maps = shape_anomaly_maps(patch_scores, config.image_size, out_hw, config.blur_sigma)
    return Prediction(scores=top_fraction_mean(patch_scores, config.top_fraction), maps=maps)


def predict(state: PatchKnnState, images, out_hw=None) -> Prediction:
    """Scores f32[B] and maps f32[B, *out_hw] for prepared images f32[B, H, W, 3]."""
    out_hw = tuple(state.config.image_size) if out_hw is None else (int(out_hw[0]), int(out_hw[1]))
    return _predict(state, images, out_hw)


register_detector(
    NAME,
    PatchKnnConfig,
    fit,
    predict,
    state_cls=PatchKnnState,
    tags={"numpy", "pixel_map", "pretrained_backbone"},
    description="Example plugin: average-pooled taps, coreset bank, mean-of-k-nearest scorer",
    paper="(example) a PatchCore variant composed from models_jax.detectors pieces",
)


def _demo() -> None:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:64] / 64.0

    def frame(defect: bool) -> np.ndarray:
        base = 0.5 + 0.2 * np.sin(2 * np.pi * (4 * xx + rng.uniform(0, 0.05))) * np.cos(2 * np.pi * 3 * yy)
        img = np.clip(np.stack([base, 0.9 * base, 0.7 * base], -1) + rng.normal(0, 0.02, (64, 64, 3)), 0, 1)
        img = (img * 255).astype(np.uint8)
        if defect:
            img[20:30, 30:40] = (250, 40, 200)
        return img

    train = np.stack([frame(False) for _ in range(12)])
    test = np.stack([frame(i % 2 == 1) for i in range(8)])
    labels = np.arange(8) % 2
    state = pyimgano.fit(NAME, train, "rgb_u8_hwc", backbone="resnet18", pretrained=False, image_size=64)
    scores = np.asarray(pyimgano.score(state, test, "rgb_u8_hwc"))
    print(f"{NAME}: bank {state.model.memory_bank.shape}, image AUROC {image_auroc(labels, scores):.3f}")


if __name__ == "__main__":
    _demo()
