"""``vision_ae``: a convolutional autoencoder with a reconstruction-error map.

The model of the workbench's ``micro-finetune-autoencoder`` recipe: small, trained
from scratch in a few epochs on the normal images of one product.

- Network: :class:`models_jax.nets.ConvAutoencoder` (widths ``widths``, a
  ``latent_channels`` bottleneck at ``image_size / 2**len(widths)``), inputs scaled
  to [0, 1] (no backbone, ``INPUT_NORMALIZATION = "none"``).
- Loss: mean squared reconstruction error; Adam.
- Map: the per-pixel squared error averaged over the RGB channels, smoothed with a
  Gaussian of ``blur_sigma`` model pixels; the image score is the map's maximum
  (a small defect raises the maximum where it would hardly move the mean error).

No paper is followed: a plain autoencoder is the reconstruction baseline of the
MVTec AD paper (Bergmann et al., CVPR 2019), whose L2 variant this is.
"""

from __future__ import annotations

from functools import partial
from typing import ClassVar, Iterable

import attrs
import jax
import jax.numpy as jnp
import numpy as np
import optax

from models_jax.detectors.common import Prediction, as_image_size, non_negative, positive, tuple_or_none
from models_jax.detectors.training_config import check_training_fields, trained_variable_specs
from models_jax.nets import ConvAutoencoder
from models_jax.ops import gaussian_blur
from models_jax.training import CheckpointStore, fit_trained, jitted_init, make_optimizer

__all__ = [
    "AutoencoderConfig",
    "AutoencoderState",
    "fit",
    "predict",
    "state_shapes",
    "build_net",
    "init_trainable",
    "training_loss",
    "build_optimizer",
]


@attrs.frozen
class AutoencoderConfig:
    """Autoencoder hyper-parameters (hashable: passed to ``jit`` as static)."""

    INPUT_NORMALIZATION: ClassVar[str] = "none"

    image_size: tuple[int, int] = attrs.field(default=(128, 128), converter=as_image_size)
    interpolation: str = "bilinear"
    widths: tuple[int, ...] = attrs.field(default=(16, 32, 64, 128), converter=tuple_or_none)
    latent_channels: int = attrs.field(default=32, validator=positive)
    blur_sigma: float = attrs.field(default=4.0, validator=non_negative)
    epochs: int = 20
    lr: float = 1e-3
    batch_size: int = 16
    lr_schedule: str = "constant"
    grad_clip_norm: float | None = attrs.field(default=None, validator=positive)
    seed: int = 0

    def __attrs_post_init__(self) -> None:
        if not self.widths or any(not isinstance(w, int) or w < 1 for w in self.widths):
            raise ValueError(f"widths must be a non-empty tuple of positive ints, got {self.widths!r}")
        check_training_fields(self, size_multiple=2 ** len(self.widths))


@attrs.frozen
class AutoencoderState:
    """A trained autoencoder detector (a pytree; ``config`` is static)."""

    config: AutoencoderConfig
    variables: dict  # {"params", "batch_stats"}


jax.tree_util.register_dataclass(AutoencoderState, data_fields=["variables"], meta_fields=["config"])


def build_net(config: AutoencoderConfig, *, train: bool = False) -> ConvAutoencoder:
    """The autoencoder module for ``config``."""
    return ConvAutoencoder(config.widths, config.latent_channels, train=train)


def init_trainable(config: AutoencoderConfig, key: jax.Array, frozen) -> tuple[dict, dict]:
    """Random variables ``(params, batch_stats)``."""
    del frozen
    variables = jitted_init(build_net, config)(key, jnp.zeros((1, *config.image_size, 3), jnp.float32))
    return variables["params"], variables["batch_stats"]


def state_shapes(config: AutoencoderConfig) -> dict[str, tuple[tuple, str]]:
    """``{array path: (shape, dtype)}`` of a fitted state of ``config`` (traced, nothing computed)."""
    return trained_variable_specs(config, init_trainable, {}, "variables")


def training_loss(config: AutoencoderConfig, params, batch_stats, frozen, images, key):
    """Mean squared reconstruction error of a batch ``f32[B, H, W, 3]`` -> ``(loss, (batch_stats, metrics))``."""
    del frozen, key
    reconstruction, updates = build_net(config, train=True).apply(
        {"params": params, "batch_stats": batch_stats}, images, mutable=["batch_stats"]
    )
    return jnp.mean((reconstruction - images) ** 2), (updates["batch_stats"], {})


def build_optimizer(config: AutoencoderConfig, total_steps: int) -> optax.GradientTransformation:
    """Adam."""
    return make_optimizer(
        "adam", lr=config.lr, total_steps=total_steps, schedule=config.lr_schedule, grad_clip_norm=config.grad_clip_norm
    )


def fit(
    config: AutoencoderConfig,
    batches: Iterable[np.ndarray],
    *,
    key: jax.Array,
    backbone_variables=None,
    progress=None,
    checkpoints: CheckpointStore | None = None,
) -> AutoencoderState:
    """Train the autoencoder on batches of normal images.

    Args:
      config: the detector configuration.
      batches: iterable of f32[B, H, W, 3] at ``config.image_size`` with values in [0, 1];
        consumed once and held in host memory for the epochs (``N*H*W*3*4`` bytes).
      key: PRNG key (initialisation, data order).
      backbone_variables: unused (no backbone); accepted for the common contract.
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
    variables = {"params": result.state.params, "batch_stats": result.state.batch_stats}
    return AutoencoderState(config=config, variables=variables)


@partial(jax.jit, static_argnums=(2,))
def _predict(state: AutoencoderState, images: jax.Array, out_hw: tuple[int, int]) -> Prediction:
    config = state.config
    reconstruction = build_net(config).apply(state.variables, images)
    errors = jnp.mean((reconstruction - images) ** 2, axis=-1)
    maps = gaussian_blur(errors, config.blur_sigma)
    scores = jnp.max(maps, axis=(1, 2))
    if tuple(out_hw) != tuple(config.image_size):
        maps = jax.image.resize(maps, (maps.shape[0], *out_hw), method="bilinear", antialias=True)
    return Prediction(scores=scores.astype(jnp.float32), maps=maps.astype(jnp.float32))


def predict(state: AutoencoderState, images: jax.Array, out_hw: tuple[int, int] | None = None) -> Prediction:
    """Scores f32[B] and maps f32[B, *out_hw] for images f32[B, H, W, 3] in [0, 1] (``out_hw`` default: model size)."""
    out_hw = tuple(state.config.image_size) if out_hw is None else (int(out_hw[0]), int(out_hw[1]))
    return _predict(state, images, out_hw)
