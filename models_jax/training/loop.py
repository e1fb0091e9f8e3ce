"""The epoch loop: deterministic data order, progress, logging, a checkpoint every epoch, resume.

:func:`run_training` drives a jitted ``train_step`` (:func:`~models_jax.training.make_train_step`)
over a materialised training set for ``epochs`` epochs:

- **Data order** is a pure function of ``key`` and the epoch: epoch ``e`` visits
  ``jax.random.permutation(fold_in(order_key, e), N)`` in consecutive batches of
  ``batch_size`` (the last ``N mod batch_size`` images of that order are left out of
  that epoch, so every step has one shape and BatchNorm never sees a tiny batch;
  the next epoch's order differs). Step ``i`` of epoch ``e`` gets the key
  ``fold_in(fold_in(step_key, e), i)``.
- **Checkpoints**: after every epoch the trained part of the state
  (:func:`~models_jax.training.checkpoint_arrays`), the epoch count, a ``run``
  description and the per-epoch metrics go to a :class:`CheckpointStore` (the shell
  writes them atomically, :mod:`pyimgano.checkpoints`).
- **Resume**: when the store already holds a checkpoint of the same ``run``, training
  continues after its epoch. Because data order and step keys depend only on
  ``(key, epoch, step)``, and the restored arrays are bit-exact, the final weights
  equal those of an uninterrupted run (same devices, same XLA build). A checkpoint of
  another run (other config, data, key or device count) is refused with an error.
- **Progress**: ``progress(n)`` with ``n`` growing to ``N`` in proportion to the
  optimiser steps done (the unit of the ``fit`` progress contract), and one
  ``logging`` INFO line per epoch on the ``models_jax.training`` logger.

Memory: the training set lives on the host as one array (``N*H*W*3*4`` bytes for
f32 images: 164 MB for 209 images at 256x256); one batch at a time is on the devices.
"""

from __future__ import annotations

import json
import logging
import math
import time
from typing import Any, Callable, Iterable, Mapping, Protocol

import attrs
import jax
import numpy as np

from models_jax.training.state import TrainState, checkpoint_arrays, restore_train_state
from models_jax.training.step import DataParallel

__all__ = [
    "Checkpoint",
    "CheckpointStore",
    "TrainingResult",
    "collect_batches",
    "steps_per_epoch",
    "epoch_order",
    "run_training",
]

logger = logging.getLogger("models_jax.training")


@attrs.frozen
class Checkpoint:
    """What is saved after an epoch: the trained arrays and where the run stands."""

    arrays: Mapping[str, np.ndarray]  # from checkpoint_arrays
    epoch: int  # epochs completed
    run: Mapping[str, Any]  # JSON-able description of the run; a resume must match it exactly
    history: tuple[Mapping[str, float], ...]  # per-epoch mean metrics, oldest first


class CheckpointStore(Protocol):
    """Where checkpoints go (implemented by the shell, e.g. :class:`pyimgano.checkpoints.CheckpointDir`)."""

    def load(self) -> Checkpoint | None:
        """The latest checkpoint, or None when there is none yet."""

    def save(self, checkpoint: Checkpoint) -> None:
        """Replace the latest checkpoint (atomically: a reader sees the old one or the new one)."""


@attrs.frozen
class TrainingResult:
    """The trained state, the per-epoch metrics, and how many epochs came from a checkpoint."""

    state: TrainState
    history: tuple[Mapping[str, float], ...]
    resumed_epochs: int


def collect_batches(batches: Iterable[np.ndarray]) -> np.ndarray:
    """Concatenate an iterable of ``f32[B, ...]`` batches (consumed once) into ``f32[N, ...]``.

    Raises:
      ValueError: the iterable is empty or the batches disagree in shape.
    """
    chunks = [np.asarray(b, np.float32) for b in batches]
    if not chunks or sum(len(c) for c in chunks) == 0:
        raise ValueError("training needs at least one image, got none")
    shapes = sorted({c.shape[1:] for c in chunks})
    if len(shapes) > 1:
        raise ValueError(f"training batches must share one image shape, got {shapes}")
    return np.concatenate(chunks, axis=0)


def steps_per_epoch(num_examples: int, batch_size: int) -> tuple[int, int]:
    """``(effective batch, steps per epoch)``: ``min(batch_size, N)`` and ``N // that``."""
    if num_examples < 1 or batch_size < 1:
        raise ValueError(f"need num_examples >= 1 and batch_size >= 1, got {num_examples}, {batch_size}")
    batch = min(batch_size, num_examples)
    return batch, num_examples // batch


def epoch_order(order_key: jax.Array, epoch: int, num_examples: int) -> np.ndarray:
    """The visiting order ``i64[N]`` of epoch ``epoch`` (a pure function of its arguments)."""
    return np.asarray(jax.random.permutation(jax.random.fold_in(order_key, epoch), num_examples))


def _is_typed(key) -> bool:
    return jax.dtypes.issubdtype(getattr(key, "dtype", np.uint32), jax.dtypes.prng_key)


def _plain(value):
    return json.loads(json.dumps(value, sort_keys=True))


def _check_same_run(saved: Mapping, wanted: Mapping, epochs_done: int) -> None:
    saved, wanted = _plain(saved), _plain(wanted)
    if saved == wanted:
        return
    keys = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
    diffs = "; ".join(f"{k}: checkpoint {saved.get(k)!r} vs now {wanted.get(k)!r}" for k in keys)
    raise ValueError(
        f"the checkpoint ({epochs_done} epochs done) belongs to another training run ({diffs}); "
        "resume with the same call, or use another checkpoint directory (or delete this one) to start afresh"
    )


def run_training(
    state: TrainState,
    train_step: Callable,
    data,
    *,
    key: jax.Array,
    epochs: int,
    batch_size: int,
    parallel: DataParallel,
    run: Mapping[str, Any] | None = None,
    checkpoints: CheckpointStore | None = None,
    progress: Callable[[int], None] | None = None,
) -> TrainingResult:
    """Train ``state`` for ``epochs`` epochs over ``data`` (see the module docstring).

    Args:
      state: the step-0 state (also the template a checkpoint is restored into).
      train_step: the jitted ``train_step(state, batch, key) -> (state, metrics)``.
      data: ``f32[N, ...]`` array, or a dict of arrays sharing the leading ``N``.
      key: PRNG key of the run (data order and per-step keys derive from it).
      epochs: number of epochs (>= 1).
      batch_size: images per step (capped at ``N``); must be what ``parallel`` was made for.
      parallel: the placement ``train_step`` was compiled for.
      run: JSON-able description of the run (config, data digest, ...). A checkpoint
        is resumed only when its ``run`` is equal; the key and the device count are added.
      checkpoints: where to save after each epoch and resume from; None = no checkpoints.
      progress: optional callable ``progress(n)``, ``n`` up to ``N``.

    Returns:
      A :class:`TrainingResult`.

    Raises:
      ValueError: bad sizes, empty data, or a checkpoint of another run.
      FloatingPointError: an epoch ended with a non-finite loss (lower ``lr`` or set
        ``grad_clip_norm``).
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    leaves = jax.tree_util.tree_leaves(data)
    n = int(len(leaves[0])) if leaves else 0
    if n == 0 or any(len(leaf) != n for leaf in leaves):
        raise ValueError("training data must be non-empty arrays sharing their first axis")
    batch, steps = steps_per_epoch(n, batch_size)
    if batch % parallel.num_devices:
        raise ValueError(f"batch {batch} does not divide over {parallel.num_devices} devices")
    total = epochs * steps
    key_words = np.asarray(jax.random.key_data(key) if _is_typed(key) else key).tolist()
    run = dict(run or {}, key=key_words, devices=parallel.num_devices, examples=n, batch=batch)
    order_key, step_key = jax.random.split(key)

    start, history = 0, []
    if checkpoints is not None:
        saved = checkpoints.load()
        if saved is not None:
            _check_same_run(saved.run, run, saved.epoch)
            state = restore_train_state(state, saved.arrays)
            start, history = min(int(saved.epoch), epochs), [dict(h) for h in saved.history]
            logger.info("resuming from the checkpoint after epoch %d of %d", start, epochs)
    state = parallel.replicate(state)
    if progress is not None and start:
        progress(n * start * steps // total)

    for epoch in range(start, epochs):
        t0 = time.perf_counter()
        order = epoch_order(order_key, epoch, n)
        epoch_key = jax.random.fold_in(step_key, epoch)
        sums: dict[str, Any] = {}
        for i in range(steps):
            index = order[i * batch : (i + 1) * batch]
            batch_data = jax.tree_util.tree_map(lambda a: a[index], data)
            state, metrics = train_step(state, parallel.split(batch_data), jax.random.fold_in(epoch_key, i))
            sums = metrics if not sums else {k: sums[k] + v for k, v in metrics.items()}
            if progress is not None:
                progress(n * (epoch * steps + i + 1) // total)
        means = {k: float(v) / steps for k, v in sums.items()}
        means["seconds"] = time.perf_counter() - t0
        history.append(means)
        logger.info(
            "epoch %d/%d: %s", epoch + 1, epochs, ", ".join(f"{k} {v:.6g}" for k, v in sorted(means.items()))
        )
        if not math.isfinite(means["loss"]):
            raise FloatingPointError(
                f"training diverged in epoch {epoch + 1} (mean loss {means['loss']}); lower lr or set grad_clip_norm"
            )
        if checkpoints is not None:
            checkpoints.save(
                Checkpoint(arrays=checkpoint_arrays(state), epoch=epoch + 1, run=run, history=tuple(history))
            )
    return TrainingResult(state=state, history=tuple(history), resumed_epochs=start)

