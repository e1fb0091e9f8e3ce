"""Checks shared by the configs of the trained detectors (``epochs``, ``lr``, ``batch_size``, ...).

Every trained detector config (STFPM, Reverse Distillation, DRAEM, autoencoder)
declares the same training fields with its paper's defaults -- ``epochs``, ``lr``,
``batch_size``, ``lr_schedule``, ``grad_clip_norm``, ``seed`` -- and calls
:func:`check_training_fields` from ``__attrs_post_init__``.
"""

from __future__ import annotations

from models_jax.training import SCHEDULES

__all__ = ["TRAINING_FIELDS", "check_training_fields"]

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
