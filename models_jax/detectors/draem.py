"""DRAEM (Zavrtanik et al., "DRAEM -- A discriminatively trained reconstruction embedding for
surface anomaly detection", ICCV 2021).

As in the paper and the authors' code:

1. Training images get simulated anomalies on the fly (:mod:`models_jax.ops.anomaly_synthesis`:
   Perlin-noise masks blending a texture into half of the images).
2. The reconstructive sub-network maps the augmented image back to the clean one;
   the discriminative sub-network segments the anomaly from the concatenation of the
   augmented image and its reconstruction (:mod:`models_jax.nets.draem`).
3. Loss: ``L2(rec, clean) + (1 - SSIM(rec, clean)) + focal(segmentation, mask)``
   (SSIM with an 11x11 Gaussian window, focal loss with gamma 2).
4. Adam, learning rate 1e-4, batch 8, 700 epochs, the rate x0.2 at 80 % and 90 % of
   training; 256x256 inputs scaled to [0, 1]; widths 128 (reconstructive) and 64
   (discriminative).
5. The anomaly map is the discriminative network's softmax probability of the
   anomalous class; the image score is the maximum of that map after a 21x21 mean
   filter.

Departures, and why:

- No DTD textures can be downloaded, so the anomaly textures are generated
  procedurally, and every masked pixel is guaranteed to change; see
  :mod:`models_jax.ops.anomaly_synthesis`.
- Network widths, epochs and image size are config fields (``reconstructive_width``,
  ``discriminative_width``, ``epochs``, ``image_size``) so the model can be trained
  on a CPU at reduced settings; the defaults are the paper's.
- Upsampling in the networks uses half-pixel centres (the reference ``align_corners=True``).
- Maps are finally resized to the size of the frames the caller passed.
"""

from __future__ import annotations

from functools import partial
from typing import ClassVar, Iterable

import attrs
import jax
import jax.numpy as jnp
import numpy as np
import optax

from models_jax.detectors.common import Prediction, as_image_size, positive
from models_jax.detectors.training_config import check_training_fields, trained_variable_specs
from models_jax.nets import DraemNet
from models_jax.ops.anomaly_synthesis import synthesize_anomalies
from models_jax.ops.ssim import ssim
from models_jax.training import CheckpointStore, fit_trained, jitted_init, make_optimizer

__all__ = [
    "DraemConfig",
    "DraemState",
    "fit",
    "predict",
    "state_shapes",
    "build_net",
    "init_trainable",
    "training_loss",
    "build_optimizer",
    "focal_loss",
]


@attrs.frozen
class DraemConfig:
    """DRAEM hyper-parameters, the paper's by default (hashable: passed to ``jit`` as static).

    DRAEM has no pretrained backbone: images are resized to ``image_size`` and scaled to
    [0, 1] (``INPUT_NORMALIZATION = "none"``).
    """

    INPUT_NORMALIZATION: ClassVar[str] = "none"

    image_size: tuple[int, int] = attrs.field(default=(256, 256), converter=as_image_size)
    interpolation: str = "bilinear"
    reconstructive_width: int = attrs.field(default=128, validator=positive)
    discriminative_width: int = attrs.field(default=64, validator=positive)
    anomaly_probability: float = 0.5
    score_window: int = attrs.field(default=21, validator=positive)
    epochs: int = 700
    lr: float = 1e-4
    batch_size: int = 8
    lr_schedule: str = "step"
    grad_clip_norm: float | None = attrs.field(default=None, validator=positive)
    seed: int = 0

    def __attrs_post_init__(self) -> None:
        check_training_fields(self, size_multiple=32)
        if not 0.0 <= self.anomaly_probability <= 1.0:
            raise ValueError(f"anomaly_probability must be in [0, 1], got {self.anomaly_probability!r}")
        if self.score_window % 2 != 1:
            raise ValueError(f"score_window must be odd (a centred mean filter), got {self.score_window}")


@attrs.frozen
class DraemState:
    """A trained DRAEM detector (a pytree; ``config`` is static)."""

    config: DraemConfig
    variables: dict  # both sub-networks' {"params", "batch_stats"}


jax.tree_util.register_dataclass(DraemState, data_fields=["variables"], meta_fields=["config"])


def build_net(config: DraemConfig, *, train: bool = False) -> DraemNet:
    """Both sub-networks at the config's widths."""
    return DraemNet(config.reconstructive_width, config.discriminative_width, train=train)


def init_trainable(config: DraemConfig, key: jax.Array, frozen) -> tuple[dict, dict]:
    """Random variables ``(params, batch_stats)`` of both sub-networks."""
    del frozen
    variables = jitted_init(build_net, config)(key, jnp.zeros((1, *config.image_size, 3), jnp.float32))
    return variables["params"], variables["batch_stats"]


def focal_loss(logits: jax.Array, masks: jax.Array, gamma: float = 2.0) -> jax.Array:
    """Mean focal loss (Lin et al. 2017) of 2-class ``logits f32[B, H, W, 2]`` against ``masks f32[B, H, W]`` in {0, 1}."""
    log_p = jax.nn.log_softmax(logits, axis=-1)
    log_pt = jnp.where(masks > 0.5, log_p[..., 1], log_p[..., 0])
    return jnp.mean(-((1.0 - jnp.exp(log_pt)) ** gamma) * log_pt)


def state_shapes(config: DraemConfig) -> dict[str, tuple[tuple, str]]:
    """``{array path: (shape, dtype)}`` of a fitted state of ``config`` (traced, nothing computed)."""
    return trained_variable_specs(config, init_trainable, {}, "variables")


def training_loss(config: DraemConfig, params, batch_stats, frozen, images, key):
    """DRAEM's loss of a clean batch ``f32[B, H, W, 3]`` in [0, 1] -> ``(loss, (batch_stats, metrics))``."""
    del frozen
    augmented, masks = synthesize_anomalies(key, images, config.anomaly_probability)
    (reconstruction, logits), updates = build_net(config, train=True).apply(
        {"params": params, "batch_stats": batch_stats}, augmented, mutable=["batch_stats"]
    )
    l2 = jnp.mean((reconstruction - images) ** 2)
    ssim_loss = 1.0 - ssim(reconstruction, images)
    focal = focal_loss(logits, masks)
    return l2 + ssim_loss + focal, (updates["batch_stats"], {"l2": l2, "ssim_loss": ssim_loss, "focal": focal})


def build_optimizer(config: DraemConfig, total_steps: int) -> optax.GradientTransformation:
    """Adam with DRAEM's step schedule by default."""
    return make_optimizer(
        "adam", lr=config.lr, total_steps=total_steps, schedule=config.lr_schedule, grad_clip_norm=config.grad_clip_norm
    )


def fit(
    config: DraemConfig,
    batches: Iterable[np.ndarray],
    *,
    key: jax.Array,
    backbone_variables=None,
    progress=None,
    checkpoints: CheckpointStore | None = None,
) -> DraemState:
    """Train both sub-networks on batches of normal images.

    Args:
      config: the detector configuration.
      batches: iterable of f32[B, H, W, 3] at ``config.image_size`` with values in [0, 1];
        consumed once and held in host memory for the epochs (``N*H*W*3*4`` bytes).
      key: PRNG key (initialisation, data order, simulated anomalies).
      backbone_variables: unused (DRAEM has no backbone); accepted for the common contract.
      progress: optional ``progress(n)``, ``n`` growing to the number of images.
      checkpoints: optional store: a checkpoint after every epoch, resume from the last one.

    Raises:
      ValueError: no images, or a checkpoint of another run.
      FloatingPointError: the loss diverged.
    """
    del backbone_variables
    result = fit_trained(
        config,
        batches,
        key=key,
        frozen={},
        init=init_trainable,
        loss=training_loss,
        optimizer=build_optimizer,
        checkpoints=checkpoints,
        progress=progress,
    )
    return DraemState(config=config, variables={"params": result.state.params, "batch_stats": result.state.batch_stats})


def _mean_filter(maps: jax.Array, size: int) -> jax.Array:
    """``avg_pool2d(size, stride 1, padding size//2)`` with zeros counted (torch's default)."""
    pad = size // 2
    total = jax.lax.reduce_window(maps, 0.0, jax.lax.add, (1, size, size), (1, 1, 1), ((0, 0), (pad, pad), (pad, pad)))
    return total / float(size * size)


@partial(jax.jit, static_argnums=(2,))
def _predict(state: DraemState, images: jax.Array, out_hw: tuple[int, int]) -> Prediction:
    config = state.config
    _, logits = build_net(config).apply(state.variables, images)
    maps = jax.nn.softmax(logits, axis=-1)[..., 1]
    scores = jnp.max(_mean_filter(maps, config.score_window), axis=(1, 2))
    if tuple(out_hw) != tuple(config.image_size):
        maps = jax.image.resize(maps, (maps.shape[0], *out_hw), method="bilinear", antialias=True)
    return Prediction(scores=scores.astype(jnp.float32), maps=maps.astype(jnp.float32))


def predict(state: DraemState, images: jax.Array, out_hw: tuple[int, int] | None = None) -> Prediction:
    """Scores f32[B] and maps f32[B, *out_hw] for images f32[B, H, W, 3] in [0, 1] (``out_hw`` default: model size)."""
    out_hw = tuple(state.config.image_size) if out_hw is None else (int(out_hw[0]), int(out_hw[1]))
    return _predict(state, images, out_hw)
