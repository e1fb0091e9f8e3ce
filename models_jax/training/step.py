"""The pure training step and its data-parallel placement.

:func:`make_train_step` turns a loss function and an optax optimiser into one
jit-compiled ``train_step(train_state, batch, key) -> (train_state, metrics)``.
With several local devices (:func:`data_parallel_for`), the batch is split along
its first axis over a 1-D mesh and the state is replicated; ``jit`` partitions the
step (GSPMD), so gradients, the loss and BatchNorm batch statistics are means over
the whole global batch, exactly as on one device up to floating-point summation
order. Everything random inside the step comes from ``key``.
"""

from __future__ import annotations

from typing import Any, Callable

import attrs
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from models_jax.training.state import TrainState

__all__ = ["LossFn", "DataParallel", "data_parallel_for", "make_train_step"]

#: ``loss_fn(params, batch_stats, frozen, batch, key) -> (loss f32[], (new_batch_stats, metrics))``
#: where ``metrics`` is a dict of f32[] scalars (the loss is added as ``"loss"``).
LossFn = Callable[[Any, Any, Any, Any, jax.Array], tuple[jax.Array, tuple[Any, dict]]]


@attrs.frozen
class DataParallel:
    """Where training arrays live: on one device (``mesh`` None) or over a 1-D ``"batch"`` mesh."""

    mesh: Mesh | None

    @property
    def num_devices(self) -> int:
        return 1 if self.mesh is None else int(self.mesh.devices.size)

    def replicate(self, tree):
        """``tree`` copied to every device of the mesh (the default device without one)."""
        if self.mesh is None:
            return jax.device_put(tree)
        return jax.device_put(tree, NamedSharding(self.mesh, PartitionSpec()))

    def split(self, tree):
        """``tree``'s arrays split along axis 0 over the mesh (which must divide it)."""
        if self.mesh is None:
            return jax.device_put(tree)
        return jax.device_put(tree, NamedSharding(self.mesh, PartitionSpec("batch")))


def data_parallel_for(batch_size: int, devices=None) -> DataParallel:
    """The widest data-parallel placement for ``batch_size``: the most local devices that divide it.

    Args:
      batch_size: the global batch of every step.
      devices: candidate devices (default ``jax.local_devices()``).

    Returns:
      A :class:`DataParallel` over ``d`` devices, ``d`` the largest count <= the
      number of devices with ``batch_size % d == 0`` (no mesh when ``d`` is 1).
    """
    devices = list(jax.local_devices() if devices is None else devices)
    count = max(d for d in range(1, len(devices) + 1) if batch_size % d == 0)
    if count == 1:
        return DataParallel(mesh=None)
    return DataParallel(mesh=Mesh(np.asarray(devices[:count]), ("batch",)))


def make_train_step(
    loss_fn: LossFn, optimizer: optax.GradientTransformation, parallel: DataParallel | None = None
) -> Callable[[TrainState, Any, jax.Array], tuple[TrainState, dict]]:
    """A jit-compiled pure ``train_step(train_state, batch, key) -> (train_state, metrics)``.

    One step: ``loss_fn``'s value and gradient with respect to ``params``, the
    optimiser update, new BatchNorm statistics from the loss's auxiliary output,
    ``step + 1``. ``metrics`` holds the loss function's metrics plus ``loss`` and
    ``grad_norm`` (global norm of the raw gradient), all f32[] on the device.

    With ``parallel`` over several devices, pass ``batch`` split
    (``parallel.split``) and the state replicated (``parallel.replicate``).
    """

    def train_step(state: TrainState, batch, key: jax.Array):
        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        (loss, (batch_stats, metrics)), grads = grad_fn(state.params, state.batch_stats, state.frozen, batch, key)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        new_state = TrainState(
            step=state.step + 1,
            params=optax.apply_updates(state.params, updates),
            batch_stats=batch_stats,
            opt_state=opt_state,
            frozen=state.frozen,
        )
        metrics = {name: jnp.asarray(value, jnp.float32) for name, value in metrics.items()}
        metrics.update(loss=jnp.asarray(loss, jnp.float32), grad_norm=optax.tree.norm(grads))
        return new_state, metrics

    if parallel is None or parallel.mesh is None:
        return jax.jit(train_step)
    replicated = NamedSharding(parallel.mesh, PartitionSpec())
    split = NamedSharding(parallel.mesh, PartitionSpec("batch"))
    return jax.jit(train_step, in_shardings=(replicated, split, replicated), out_shardings=(replicated, replicated))
