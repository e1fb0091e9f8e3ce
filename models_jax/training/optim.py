"""Optimisers for the trained detectors: one optax chain built from a few named settings.

``clip -> weight decay -> optimiser -> learning-rate schedule``:

- gradient clipping by global norm (``grad_clip_norm``, None = off), applied to
  the raw gradients as ``torch.nn.utils.clip_grad_norm_`` is before a step;
- coupled L2 weight decay (``weight_decay * params`` added to the gradient, what
  ``torch.optim.SGD(weight_decay=...)`` and ``Adam(weight_decay=...)`` do);
- ``"sgd"`` (heavy-ball momentum, torch's convention) or ``"adam"``;
- a schedule over the whole run's steps (:data:`SCHEDULES`): ``"constant"``,
  ``"cosine"`` (cosine decay to 0), or ``"step"`` (x0.2 at 80 % and again at
  90 % of the steps: DRAEM's ``MultiStepLR``).
"""

from __future__ import annotations

import optax

__all__ = ["OPTIMIZERS", "SCHEDULES", "make_schedule", "make_optimizer"]

OPTIMIZERS: tuple[str, ...] = ("sgd", "adam")
SCHEDULES: tuple[str, ...] = ("constant", "cosine", "step")

_STEP_MILESTONES = (0.8, 0.9)
_STEP_FACTOR = 0.2


def make_schedule(name: str, lr: float, total_steps: int) -> optax.Schedule:
    """The learning rate as a function of the step count.

    Raises:
      ValueError: unknown ``name`` (accepted ones listed), ``lr <= 0`` or ``total_steps < 1``.
    """
    if name not in SCHEDULES:
        raise ValueError(f"unknown lr_schedule {name!r}; accepted: {list(SCHEDULES)}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    if name == "constant":
        return optax.constant_schedule(lr)
    if name == "cosine":
        return optax.cosine_decay_schedule(lr, decay_steps=total_steps)
    boundaries = {max(1, int(round(m * total_steps))): _STEP_FACTOR for m in _STEP_MILESTONES}
    return optax.piecewise_constant_schedule(lr, boundaries)


def make_optimizer(
    name: str,
    *,
    lr: float,
    total_steps: int,
    schedule: str = "constant",
    momentum: float = 0.9,
    betas: tuple[float, float] = (0.9, 0.999),
    weight_decay: float = 0.0,
    grad_clip_norm: float | None = None,
) -> optax.GradientTransformation:
    """An optax transformation: clip -> weight decay -> ``name`` with the scheduled learning rate.

    Args:
      name: ``"sgd"`` or ``"adam"``.
      lr: peak learning rate.
      total_steps: optimiser steps of the whole run (the schedule's horizon).
      schedule: one of :data:`SCHEDULES`.
      momentum: SGD momentum (0 disables it).
      betas: Adam's ``(b1, b2)``.
      weight_decay: coupled L2 coefficient (0 disables it).
      grad_clip_norm: clip gradients to this global norm (None disables it).

    Raises:
      ValueError: unknown names or out-of-range values (the message names them).
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; accepted: {list(OPTIMIZERS)}")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
    if grad_clip_norm is not None and not grad_clip_norm > 0:
        raise ValueError(f"grad_clip_norm must be > 0 or None, got {grad_clip_norm!r}")
    rate = make_schedule(schedule, lr, total_steps)
    parts = []
    if grad_clip_norm is not None:
        parts.append(optax.clip_by_global_norm(grad_clip_norm))
    if weight_decay > 0:
        parts.append(optax.add_decayed_weights(weight_decay))
    if name == "sgd":
        parts.append(optax.sgd(rate, momentum=momentum or None))
    else:
        parts.append(optax.adam(rate, b1=betas[0], b2=betas[1]))
    return optax.chain(*parts)
