"""Checks shared by the configs of the trained detectors (``epochs``, ``lr``, ``batch_size``, ...).

Every trained detector config (STFPM, Reverse Distillation, DRAEM, autoencoder)
declares the same training fields with its paper's defaults -- ``epochs``, ``lr``,
``batch_size``, ``lr_schedule``, ``grad_clip_norm``, ``seed`` -- and calls
:func:`check_training_fields` from ``__attrs_post_init__``.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import jax
import numpy as np

from models_jax.training import SCHEDULES

__all__ = ["TRAINING_FIELDS", "check_training_fields", "trained_variable_specs"]

#: Fields every trained detector config has (``pyimgano.fit(name, ..., epochs=3, lr=1e-3)``).
TRAINING_FIELDS: tuple[str, ...] = ("epochs", "lr", "batch_size", "lr_schedule", "grad_clip_norm", "seed", "image_size")


def check_training_fields(config, *, size_multiple: int = 1) -> None:
    """Validate the training fields of ``config`` (and that ``image_size`` divides by ``size_multiple``).

    Raises:
      ValueError: naming the field, its value and what is accepted.
    """
    if not isinstance(config.epochs, int) or isinstance(config.epochs, bool) or config.epochs < 1:
        raise ValueError(f"epochs must be an int >= 1, got {config.epochs!r}")
    if not isinstance(config.batch_size, int) or isinstance(config.batch_size, bool) or config.batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {config.batch_size!r}")
    if not float(config.lr) > 0:
        raise ValueError(f"lr must be > 0, got {config.lr!r}")
    if config.lr_schedule not in SCHEDULES:
        raise ValueError(f"unknown lr_schedule {config.lr_schedule!r}; accepted: {list(SCHEDULES)}")
    if config.grad_clip_norm is not None and not float(config.grad_clip_norm) > 0:
        raise ValueError(f"grad_clip_norm must be > 0 or None, got {config.grad_clip_norm!r}")
    h, w = config.image_size
    if h % size_multiple or w % size_multiple:
        raise ValueError(
            f"{type(config).__name__} needs image_size divisible by {size_multiple} "
            f"(its network halves the resolution that often), got {(h, w)}"
        )


def _flat_specs(tree: Mapping, prefix: str) -> dict[str, tuple[tuple[int, ...], str]]:
    flat: dict[str, tuple[tuple[int, ...], str]] = {}
    for name, value in tree.items():
        path = f"{prefix}/{name}"
        if isinstance(value, Mapping):
            flat.update(_flat_specs(value, path))
        else:
            flat[path] = (tuple(value.shape), np.dtype(value.dtype).name)
    return flat


def trained_variable_specs(
    config, init: Callable[..., Any], frozen: Any, prefix: str
) -> dict[str, tuple[tuple[int, ...], str]]:
    """``{"<prefix>/params/...": (shape, dtype)}`` of the variables ``init`` makes for ``config``.

    For a trained detector's ``state_shapes`` hook: ``init(config, key, frozen) ->
    (params, batch_stats)`` is traced with ``jax.eval_shape`` (no weights made);
    ``frozen`` may itself be abstract (``jax.ShapeDtypeStruct`` leaves).
    """
    params, batch_stats = jax.eval_shape(lambda key: init(config, key, frozen), jax.random.PRNGKey(0))
    return _flat_specs({"params": params, "batch_stats": batch_stats}, prefix)
