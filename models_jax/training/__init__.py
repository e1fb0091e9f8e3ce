"""The one small trainer shared by the trained detectors (STFPM, Reverse Distillation, DRAEM, autoencoder).

- :mod:`~models_jax.training.state` -- ``TrainState`` (params, BatchNorm statistics,
  optax state, step, frozen variables) and its flat array form for checkpoints.
- :mod:`~models_jax.training.optim` -- optax chain: clipping, weight decay, SGD/Adam, schedules.
- :mod:`~models_jax.training.step` -- the jitted pure ``train_step`` and data-parallel placement.
- :mod:`~models_jax.training.loop` -- epochs, deterministic order, progress, logging,
  per-epoch checkpoints and resume (through a store the shell provides; no IO here).
- :mod:`~models_jax.training.driver` -- ``fit_trained``, the shared body of the detectors' ``fit``.

See ``docs/training.md``.
"""

from models_jax.training.driver import compiled_train_step, config_description, fit_trained, jitted_init
from models_jax.training.loop import (
    Checkpoint,
    CheckpointStore,
    TrainingResult,
    collect_batches,
    epoch_order,
    run_training,
    steps_per_epoch,
)
from models_jax.training.optim import OPTIMIZERS, SCHEDULES, make_optimizer, make_schedule
from models_jax.training.state import TrainState, checkpoint_arrays, create_train_state, restore_train_state
from models_jax.training.step import DataParallel, LossFn, data_parallel_for, make_train_step

__all__ = [
    "compiled_train_step",
    "config_description",
    "fit_trained",
    "jitted_init",
    "Checkpoint",
    "CheckpointStore",
    "TrainingResult",
    "collect_batches",
    "epoch_order",
    "run_training",
    "steps_per_epoch",
    "OPTIMIZERS",
    "SCHEDULES",
    "make_optimizer",
    "make_schedule",
    "TrainState",
    "checkpoint_arrays",
    "create_train_state",
    "restore_train_state",
    "DataParallel",
    "LossFn",
    "data_parallel_for",
    "make_train_step",
]
