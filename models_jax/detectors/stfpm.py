"""STFPM (Wang et al., "Student-Teacher Feature Pyramid Matching for Anomaly Detection", BMVC 2021).

As in the paper and the authors' code (gdwang08/STFPM):

1. The teacher is a pretrained backbone, frozen; the student has the identical
   architecture and is initialised at random. Both are tapped at three pyramid
   levels (default: the deepest taps at strides 4, 8 and 16 -- ``layer1..3`` of a
   ResNet-18 in the paper).
2. Features are L2-normalised along channels at every position. The training
   loss is ``sum over levels of mean over (images, positions) of ||t_hat - s_hat||^2``
   (the authors' code; the paper writes the same with a factor 1/2, which only
   rescales the learning rate).
3. Optimiser: SGD, learning rate 0.4, momentum 0.9, weight decay 1e-4; batch 32;
   100 epochs; 256x256 inputs.
4. The anomaly map is the product over levels of the per-position
   ``||t_hat - s_hat||^2`` upsampled bilinearly to the input size; the image score
   is the maximum of the map.

Departures, and why:

- The default backbone is EfficientNet-Lite0 (the backbone with offline ImageNet
  weights here; taps ``stage2/stage3/stage5``) instead of ResNet-18. The student
  is a Lite0 without drop-connect.
- The authors keep the epoch with the lowest loss on a 20 % validation split of
  the training images; here the last epoch is kept (the library holds out its own
  calibration split, :func:`pyimgano.fit_calibrated`, and a fixed epoch count keeps
  resumed and uninterrupted runs identical).
- The student's BatchNorm uses batch statistics while training and the running
  statistics (torch momentum 0.1) at inference, as ``student.train()/eval()`` do.
- Maps are upsampled to the model input size (the authors' code goes through
  64x64) and finally resized to the size of the frames the caller passed.
"""

from __future__ import annotations

from functools import partial
from typing import Iterable

import attrs
import jax
import jax.numpy as jnp
import numpy as np
import optax

from models_jax.backbones import build_backbone, init_backbone_variables
from models_jax.detectors.common import (
    BackboneFeatureConfig,
    Prediction,
    as_image_size,
    backbone_variable_specs,
    positive,
)
from models_jax.detectors.training_config import check_training_fields, trained_variable_specs
from models_jax.training import CheckpointStore, fit_trained, make_optimizer

__all__ = [
    "STFPMConfig",
    "STFPMState",
    "fit",
    "predict",
    "state_shapes",
    "init_trainable",
    "training_loss",
    "build_optimizer",
    "layer_distances",
]


@attrs.frozen
class STFPMConfig(BackboneFeatureConfig):
    """STFPM hyper-parameters, the paper's by default (hashable: passed to ``jit`` as static)."""

    LAYER_STRIDES = (4, 8, 16)

    image_size: tuple[int, int] = attrs.field(default=(256, 256), converter=as_image_size)
    epochs: int = 100
    lr: float = 0.4
    batch_size: int = 32
    momentum: float = attrs.field(default=0.9)
    weight_decay: float = attrs.field(default=1e-4)
    lr_schedule: str = "constant"
    grad_clip_norm: float | None = attrs.field(default=None, validator=positive)
    seed: int = 0

    def __attrs_post_init__(self) -> None:
        check_training_fields(self)
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")


@attrs.frozen
class STFPMState:
    """A trained STFPM detector (a pytree; ``config`` is static)."""

    config: STFPMConfig
    teacher_variables: dict  # the frozen backbone's {"params", "batch_stats"}
    student_variables: dict  # the trained student's {"params", "batch_stats"}


jax.tree_util.register_dataclass(
    STFPMState, data_fields=["teacher_variables", "student_variables"], meta_fields=["config"]
)


def _normalized(features: jax.Array) -> jax.Array:
    # F.normalize(dim=1): x / max(||x||, 1e-12)
    norm = jnp.sqrt(jnp.sum(features * features, axis=-1, keepdims=True))
    return features / jnp.maximum(norm, 1e-12)


def layer_distances(teacher_features: dict, student_features: dict, layers: tuple[str, ...]) -> list[jax.Array]:
    """Per level, ``||t_hat - s_hat||^2`` at every position: a list of f32[B, h, w] (shallow first)."""
    return [
        jnp.sum((_normalized(teacher_features[t]) - _normalized(student_features[t])) ** 2, axis=-1) for t in layers
    ]


def init_trainable(config: STFPMConfig, key: jax.Array, frozen) -> tuple[dict, dict]:
    """Random student variables ``(params, batch_stats)`` (the backbone's seeded init)."""
    variables = init_backbone_variables(config.backbone, key=key)
    return variables["params"], variables["batch_stats"]


def state_shapes(config: STFPMConfig) -> dict[str, tuple[tuple, str]]:
    """``{array path: (shape, dtype)}`` of a fitted state of ``config``: the teacher's and the
    student's variables of ``config.backbone`` (traced, nothing computed)."""
    shapes = backbone_variable_specs(config.backbone, "teacher_variables")
    shapes.update(trained_variable_specs(config, init_trainable, None, "student_variables"))
    return shapes


def training_loss(config: STFPMConfig, params, batch_stats, teacher_variables, images, key):
    """The STFPM training loss of a batch ``f32[B, H, W, 3]`` -> ``(loss, (batch_stats, metrics))``."""
    del key  # STFPM's training step is deterministic
    teacher = build_backbone(config.backbone)
    student = teacher.clone(train=True) if hasattr(teacher, "train") else teacher
    t_feats = jax.lax.stop_gradient(teacher.apply(teacher_variables, images, taps=config.layers))
    s_feats, updates = student.apply(
        {"params": params, "batch_stats": batch_stats}, images, taps=config.layers, mutable=["batch_stats"]
    )
    per_level = [jnp.mean(d) for d in layer_distances(t_feats, s_feats, config.layers)]
    metrics = {f"loss_{tap}": value for tap, value in zip(config.layers, per_level)}
    return sum(per_level), (updates.get("batch_stats", batch_stats), metrics)


def build_optimizer(config: STFPMConfig, total_steps: int) -> optax.GradientTransformation:
    """SGD with momentum and coupled weight decay (the paper's optimiser)."""
    return make_optimizer(
        "sgd",
        lr=config.lr,
        total_steps=total_steps,
        schedule=config.lr_schedule,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
        grad_clip_norm=config.grad_clip_norm,
    )


def fit(
    config: STFPMConfig,
    batches: Iterable[np.ndarray],
    *,
    key: jax.Array,
    backbone_variables,
    progress=None,
    checkpoints: CheckpointStore | None = None,
) -> STFPMState:
    """Train the student on batches of prepared normal images.

    Args:
      config: the detector configuration.
      batches: iterable of f32[B, H, W, 3] at ``config.image_size``, normalised for the
        backbone; consumed once and held in host memory for the epochs (``N*H*W*3*4`` bytes).
      key: PRNG key (student initialisation, data order).
      backbone_variables: the teacher's ``{"params", "batch_stats"}``.
      progress: optional ``progress(n)``, ``n`` growing to the number of images.
      checkpoints: optional store: a checkpoint after every epoch, resume from the last one.

    Raises:
      ValueError: no images, or a checkpoint of another run.
      FloatingPointError: the loss diverged (lower ``lr`` or set ``grad_clip_norm``).
    """
    teacher = jax.device_put(backbone_variables)
    result = fit_trained(
        config,
        batches,
        key=key,
        frozen=teacher,
        init=init_trainable,
        loss=training_loss,
        optimizer=build_optimizer,
        checkpoints=checkpoints,
        progress=progress,
    )
    student = {"params": result.state.params, "batch_stats": result.state.batch_stats}
    return STFPMState(config=config, teacher_variables=teacher, student_variables=student)


@partial(jax.jit, static_argnums=(2,))
def _predict(state: STFPMState, images: jax.Array, out_hw: tuple[int, int]) -> Prediction:
    config = state.config
    module = build_backbone(config.backbone)
    t_feats = module.apply(state.teacher_variables, images, taps=config.layers)
    s_feats = module.apply(state.student_variables, images, taps=config.layers)
    b = images.shape[0]
    maps = jnp.ones((b, *config.image_size), jnp.float32)
    for dist in layer_distances(t_feats, s_feats, config.layers):
        maps = maps * jax.image.resize(dist, (b, *config.image_size), method="bilinear", antialias=False)
    scores = jnp.max(maps, axis=(1, 2))
    if tuple(out_hw) != tuple(config.image_size):
        maps = jax.image.resize(maps, (b, *out_hw), method="bilinear", antialias=True)
    return Prediction(scores=scores.astype(jnp.float32), maps=maps.astype(jnp.float32))


def predict(state: STFPMState, images: jax.Array, out_hw: tuple[int, int] | None = None) -> Prediction:
    """Scores f32[B] and maps f32[B, *out_hw] for prepared images f32[B, H, W, 3] (``out_hw`` default: model size)."""
    out_hw = tuple(state.config.image_size) if out_hw is None else (int(out_hw[0]), int(out_hw[1]))
    return _predict(state, images, out_hw)
