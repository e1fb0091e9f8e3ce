"""``fit_trained``: the shared ``fit`` body of the trained detectors.

A trained detector module supplies three pure functions of its (hashable) config:

- ``init(config, key, frozen) -> (params, batch_stats)``: fresh trainable variables;
- ``loss(config, params, batch_stats, frozen, images, key) -> (loss, (batch_stats, metrics))``;
- ``optimizer(config, total_steps) -> optax.GradientTransformation``;

and :func:`fit_trained` does the rest: materialise the prepared images (``batches``
is consumed once; the epochs need them again), choose the data-parallel placement,
build and jit the step (one compilation per config, step count and placement, reused
by later fits), and run :func:`~models_jax.training.run_training` with the run
description that guards resumes: the config, a SHA-256 of the training images and
(added by the loop) the key and device count.
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any, Callable, Iterable

import attrs
import jax
import numpy as np

from models_jax.keys import rbg_key
from models_jax.training.loop import CheckpointStore, TrainingResult, collect_batches, run_training, steps_per_epoch
from models_jax.training.state import create_train_state
from models_jax.training.step import data_parallel_for, make_train_step

__all__ = ["config_description", "compiled_train_step", "jitted_init", "fit_trained"]


def config_description(config) -> dict[str, Any]:
    """The attrs config as plain JSON values (tuples become lists)."""
    return json.loads(json.dumps(attrs.asdict(config), sort_keys=True, default=str))


@functools.lru_cache(maxsize=32)
def jitted_init(build: Callable, config) -> Callable:
    """``jax.jit(build(config).init)``, compiled once per ``(build, config)`` and reused by later fits."""
    return jax.jit(build(config).init)


@functools.lru_cache(maxsize=32)
def compiled_train_step(loss: Callable, optimizer: Callable, config, total_steps: int, batch: int):
    """``(optimizer, jitted train_step, placement)`` for a detector's ``loss``/``optimizer`` functions.

    Built once per ``(loss, optimizer, config, total_steps, batch)`` and reused, so
    fitting the same config again (a resume, a re-run) compiles nothing new.
    """
    parallel = data_parallel_for(batch)
    opt = optimizer(config, total_steps)
    step = make_train_step(functools.partial(loss, config), opt, parallel)
    return opt, step, parallel


def fit_trained(
    config,
    batches: Iterable[np.ndarray],
    *,
    key: jax.Array,
    frozen,
    init: Callable,
    loss: Callable,
    optimizer: Callable,
    checkpoints: CheckpointStore | None = None,
    progress: Callable[[int], None] | None = None,
) -> TrainingResult:
    """Train a detector's networks on prepared images; returns the :class:`TrainingResult`.

    Args:
      config: the detector config (hashable; fields ``epochs`` and ``batch_size`` are read).
      batches: iterable of ``f32[B, H, W, 3]`` prepared images, consumed once and kept
        in host memory as one ``f32[N, H, W, 3]`` array for the epochs.
      key: the fit's PRNG key; turned into an ``rbg`` key (:func:`models_jax.keys.rbg_key`,
        fast to compile on CPU) and split into an initialisation key and the run key.
      frozen: variables the loss reads but does not train (``{}`` if none).
      init, loss, optimizer: the detector's functions (see the module docstring).
      checkpoints: optional store for per-epoch checkpoints and resume.
      progress: optional ``progress(n)``, ``n`` up to the number of images.

    Raises:
      ValueError: no images, or a checkpoint of another run.
      FloatingPointError: the loss diverged.
    """
    images = collect_batches(batches)
    batch, steps = steps_per_epoch(len(images), config.batch_size)
    total_steps = config.epochs * steps
    opt, step, parallel = compiled_train_step(loss, optimizer, config, total_steps, batch)
    init_key, run_key = jax.random.split(rbg_key(key))
    params, batch_stats = init(config, init_key, frozen)
    state = create_train_state(params, opt, batch_stats=batch_stats, frozen=frozen)
    run = {
        "config": config_description(config),
        "images_sha256": hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest(),
        "image_shape": list(images.shape[1:]),
    }
    return run_training(
        state,
        step,
        images,
        key=run_key,
        epochs=config.epochs,
        batch_size=batch,
        parallel=parallel,
        run=run,
        checkpoints=checkpoints,
        progress=progress,
    )
