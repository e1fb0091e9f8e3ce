"""Reverse Distillation (Deng & Li, "Anomaly Detection via Reverse Distillation from One-Class
Embedding", CVPR 2022).

As in the paper:

1. A frozen pretrained encoder (teacher) is tapped at three levels (default: the
   deepest taps at strides 4, 8, 16 -- ``layer1..3`` of the paper's WideResNet-50).
2. A trainable one-class bottleneck embedding (OCBE) fuses the three levels
   (multi-scale feature fusion) and compresses them with residual blocks into a
   low-resolution embedding; a trainable decoder (the student) reconstructs the
   encoder's three levels from it, deepest first (:mod:`models_jax.nets.reverse_distillation`).
3. Loss (paper eq. 2-3): for every level, the mean over positions of the cosine
   distance ``1 - cos(f_E, f_D)`` between encoder and decoder vectors, summed over
   levels and averaged over the batch.
4. Adam, learning rate 0.005, betas (0.5, 0.999), batch 16, 200 epochs, 256x256 inputs.
5. The anomaly map is the sum over levels of the per-position cosine distance,
   each upsampled bilinearly to the input size, smoothed with a Gaussian of
   sigma 4; the image score is the map's maximum.

Departures, and why:

- The default encoder is EfficientNet-Lite0 (taps ``stage2/stage3/stage5``, 24/40/112
  channels; offline ImageNet weights) instead of WideResNet-50-2, so the bottleneck
  and decoder are sized from the encoder's taps (``embed_channels`` defaults to twice
  the deepest tap's channels, as 2048 = 2 x 1024 for WRN-50) and use basic residual
  blocks (``oce_blocks``/``decoder_blocks`` 2, the reference's ResNet-18 layout).
- The decoder's stage outputs are linear (Lite0's stage outputs are signed; a final
  ReLU would bound the cosine similarity below 1), see :class:`~models_jax.nets.ReverseDecoder`.
- The loss is the paper's per-position cosine distance; the authors' released code
  computes one cosine over each whole flattened feature map instead.
- Maps are finally resized to the size of the frames the caller passed.
"""

from __future__ import annotations

from functools import partial
from typing import Iterable

import attrs
import jax
import jax.numpy as jnp
import numpy as np
import optax

from models_jax.backbones import build_backbone, get_backbone_spec, init_backbone_variables
from models_jax.detectors.common import (
    BackboneFeatureConfig,
    Prediction,
    as_image_size,
    backbone_variable_specs,
    non_negative,
    positive,
)
from models_jax.detectors.training_config import check_training_fields, trained_variable_specs
from models_jax.nets import ReverseDistillationNet
from models_jax.ops import gaussian_blur
from models_jax.training import CheckpointStore, fit_trained, jitted_init, make_optimizer

__all__ = [
    "ReverseDistillationConfig",
    "ReverseDistillationState",
    "fit",
    "predict",
    "state_shapes",
    "build_net",
    "init_trainable",
    "training_loss",
    "build_optimizer",
    "cosine_distances",
]


def _default_embed(config) -> int:
    return 2 * get_backbone_spec(config.backbone).channels(config.layers[-1])


@attrs.frozen
class ReverseDistillationConfig(BackboneFeatureConfig):
    """Reverse Distillation hyper-parameters, the paper's by default (hashable, static under ``jit``)."""

    LAYER_STRIDES = (4, 8, 16)

    image_size: tuple[int, int] = attrs.field(default=(256, 256), converter=as_image_size)
    embed_channels: int = attrs.field(default=attrs.Factory(_default_embed, takes_self=True), validator=positive)
    oce_blocks: int = attrs.field(default=2, validator=positive)
    decoder_blocks: int = attrs.field(default=2, validator=positive)
    blur_sigma: float = attrs.field(default=4.0, validator=non_negative)
    epochs: int = 200
    lr: float = 0.005
    batch_size: int = 16
    betas: tuple[float, float] = attrs.field(default=(0.5, 0.999), converter=tuple)
    lr_schedule: str = "constant"
    grad_clip_norm: float | None = attrs.field(default=None, validator=positive)
    seed: int = 0

    def __attrs_post_init__(self) -> None:
        spec = get_backbone_spec(self.backbone)
        strides = [spec.stride(tap) for tap in self.layers]
        if any(b != 2 * a for a, b in zip(strides, strides[1:])):
            raise ValueError(
                f"Reverse Distillation needs encoder taps at doubling strides (e.g. 4, 8, 16); "
                f"{list(self.layers)} of {self.backbone} are at strides {strides}"
            )
        check_training_fields(self, size_multiple=2 * strides[-1])
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas!r}")


@attrs.frozen
class ReverseDistillationState:
    """A trained Reverse Distillation detector (a pytree; ``config`` is static)."""

    config: ReverseDistillationConfig
    backbone_variables: dict  # the frozen encoder's {"params", "batch_stats"}
    net_variables: dict  # the trained bottleneck + decoder's {"params", "batch_stats"}


jax.tree_util.register_dataclass(
    ReverseDistillationState, data_fields=["backbone_variables", "net_variables"], meta_fields=["config"]
)


def build_net(config: ReverseDistillationConfig, *, train: bool = False) -> ReverseDistillationNet:
    """The bottleneck + decoder module for ``config``."""
    spec = get_backbone_spec(config.backbone)
    return ReverseDistillationNet(
        tap_channels=tuple(spec.channels(t) for t in config.layers),
        embed_channels=config.embed_channels,
        oce_blocks=config.oce_blocks,
        decoder_blocks=config.decoder_blocks,
        train=train,
    )


def _encode(config, backbone_variables, images) -> list[jax.Array]:
    feats = build_backbone(config.backbone).apply(backbone_variables, images, taps=config.layers)
    return [feats[t] for t in config.layers]


def cosine_distances(encoded: list[jax.Array], decoded: list[jax.Array]) -> list[jax.Array]:
    """Per level, ``1 - cos(f_E, f_D)`` at every position: a list of f32[B, h, w] (shallow first)."""
    out = []
    for e, d in zip(encoded, decoded):
        dot = jnp.sum(e * d, axis=-1)
        norms = jnp.sqrt(jnp.sum(e * e, axis=-1)) * jnp.sqrt(jnp.sum(d * d, axis=-1))
        out.append(1.0 - dot / jnp.maximum(norms, 1e-8))  # torch.nn.CosineSimilarity's eps
    return out


def init_trainable(config: ReverseDistillationConfig, key: jax.Array, backbone_variables) -> tuple[dict, dict]:
    """Random bottleneck + decoder variables ``(params, batch_stats)``."""
    h, w = config.image_size
    images = jnp.zeros((1, h, w, 3), jnp.float32)
    dummy = [jnp.zeros(f.shape, f.dtype) for f in jax.eval_shape(partial(_encode, config), backbone_variables, images)]
    variables = jitted_init(build_net, config)(key, dummy)
    return variables["params"], variables["batch_stats"]


def state_shapes(config: ReverseDistillationConfig) -> dict[str, tuple[tuple, str]]:
    """``{array path: (shape, dtype)}`` of a fitted state of ``config``: the frozen encoder's
    variables and the bottleneck + decoder's (traced, nothing computed)."""
    encoder = jax.eval_shape(lambda key: init_backbone_variables(config.backbone, key=key), jax.random.PRNGKey(0))
    shapes = backbone_variable_specs(config.backbone)
    shapes.update(trained_variable_specs(config, init_trainable, encoder, "net_variables"))
    return shapes


def training_loss(config: ReverseDistillationConfig, params, batch_stats, backbone_variables, images, key):
    """The paper's loss of a batch ``f32[B, H, W, 3]`` -> ``(loss, (batch_stats, metrics))``."""
    del key  # deterministic step
    encoded = jax.lax.stop_gradient(_encode(config, backbone_variables, images))
    decoded, updates = build_net(config, train=True).apply(
        {"params": params, "batch_stats": batch_stats}, encoded, mutable=["batch_stats"]
    )
    per_level = [jnp.mean(d) for d in cosine_distances(encoded, decoded)]
    metrics = {f"loss_{tap}": value for tap, value in zip(config.layers, per_level)}
    return sum(per_level), (updates["batch_stats"], metrics)


def build_optimizer(config: ReverseDistillationConfig, total_steps: int) -> optax.GradientTransformation:
    """Adam with the paper's betas."""
    return make_optimizer(
        "adam",
        lr=config.lr,
        total_steps=total_steps,
        schedule=config.lr_schedule,
        betas=config.betas,
        grad_clip_norm=config.grad_clip_norm,
    )


def fit(
    config: ReverseDistillationConfig,
    batches: Iterable[np.ndarray],
    *,
    key: jax.Array,
    backbone_variables,
    progress=None,
    checkpoints: CheckpointStore | None = None,
) -> ReverseDistillationState:
    """Train the bottleneck and decoder on batches of prepared normal images.

    Args:
      config: the detector configuration.
      batches: iterable of f32[B, H, W, 3] at ``config.image_size``, normalised for the
        backbone; consumed once and held in host memory for the epochs (``N*H*W*3*4`` bytes).
      key: PRNG key (initialisation, data order).
      backbone_variables: the frozen encoder's ``{"params", "batch_stats"}``.
      progress: optional ``progress(n)``, ``n`` growing to the number of images.
      checkpoints: optional store: a checkpoint after every epoch, resume from the last one.

    Raises:
      ValueError: no images, or a checkpoint of another run.
      FloatingPointError: the loss diverged.
    """
    encoder = jax.device_put(backbone_variables)
    result = fit_trained(
        config,
        batches,
        key=key,
        frozen=encoder,
        init=init_trainable,
        loss=training_loss,
        optimizer=build_optimizer,
        checkpoints=checkpoints,
        progress=progress,
    )
    net = {"params": result.state.params, "batch_stats": result.state.batch_stats}
    return ReverseDistillationState(config=config, backbone_variables=encoder, net_variables=net)


@partial(jax.jit, static_argnums=(2,))
def _predict(state: ReverseDistillationState, images: jax.Array, out_hw: tuple[int, int]) -> Prediction:
    config = state.config
    encoded = _encode(config, state.backbone_variables, images)
    decoded = build_net(config).apply(state.net_variables, encoded)
    b = images.shape[0]
    total = jnp.zeros((b, *config.image_size), jnp.float32)
    for dist in cosine_distances(encoded, decoded):
        total = total + jax.image.resize(dist, (b, *config.image_size), method="bilinear", antialias=False)
    maps = gaussian_blur(total, config.blur_sigma)
    scores = jnp.max(maps, axis=(1, 2))
    if tuple(out_hw) != tuple(config.image_size):
        maps = jax.image.resize(maps, (b, *out_hw), method="bilinear", antialias=True)
    return Prediction(scores=scores.astype(jnp.float32), maps=maps.astype(jnp.float32))


def predict(state: ReverseDistillationState, images: jax.Array, out_hw: tuple[int, int] | None = None) -> Prediction:
    """Scores f32[B] and maps f32[B, *out_hw] for prepared images f32[B, H, W, 3] (``out_hw`` default: model size)."""
    out_hw = tuple(state.config.image_size) if out_hw is None else (int(out_hw[0]), int(out_hw[1]))
    return _predict(state, images, out_hw)
