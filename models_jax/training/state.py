"""``TrainState``: everything a training step reads and writes, as one pytree, and its flat array form.

A train state holds the trained ``params``, the BatchNorm running statistics
``batch_stats`` (``{}`` for models without BatchNorm), the optax ``opt_state``,
the global ``step`` counter and ``frozen``: variables the loss reads but never
trains (a teacher network, a frozen encoder).

:func:`checkpoint_arrays` turns the trained part (everything but ``frozen``,
which the caller rebuilds from its inputs) into ``{"params/conv1/kernel": array,
"opt_state/0/mu/conv1/kernel": array, ..., "step": array}`` for a tensor file;
:func:`restore_train_state` puts such arrays back into a template state built
the same way, and refuses any missing, unexpected or mis-shaped entry.
Neither does IO: the shell (:mod:`pyimgano.checkpoints`) reads and writes files.
"""

from __future__ import annotations

from typing import Any, Mapping

import attrs
import jax
import jax.numpy as jnp
import numpy as np
import optax

__all__ = ["TrainState", "create_train_state", "checkpoint_arrays", "restore_train_state"]


@attrs.frozen
class TrainState:
    """The state a jitted ``train_step`` maps to its successor (a pytree; every field is data)."""

    step: jax.Array  # i32[], optimiser steps taken
    params: Any  # trained parameters (nested dict of f32 arrays)
    batch_stats: Any  # BatchNorm running statistics of the trained model, {} if none
    opt_state: Any  # optax state of ``params``
    frozen: Any  # read by the loss, never trained or checkpointed (e.g. teacher variables), {} if none


jax.tree_util.register_dataclass(
    TrainState, data_fields=["step", "params", "batch_stats", "opt_state", "frozen"], meta_fields=[]
)

_CHECKPOINTED = ("step", "params", "batch_stats", "opt_state")


def create_train_state(
    params, optimizer: optax.GradientTransformation, *, batch_stats=None, frozen=None
) -> TrainState:
    """A step-0 state: ``optimizer.init(params)`` and the given statistics / frozen variables."""
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        batch_stats={} if batch_stats is None else batch_stats,
        opt_state=optimizer.init(params),
        frozen={} if frozen is None else frozen,
    )


def _key_name(entry) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(entry, attr):
            return str(getattr(entry, attr))
    raise TypeError(f"unsupported pytree path entry {entry!r}")  # pragma: no cover - jax key types are fixed


def _flat(state: TrainState) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for field in _CHECKPOINTED:
        leaves, _ = jax.tree_util.tree_flatten_with_path(getattr(state, field))
        for path, leaf in leaves:
            name = "/".join([field, *(_key_name(p) for p in path)])
            if name in flat:
                raise ValueError(f"two train-state leaves share the name {name!r}")
            flat[name] = leaf
    return flat


def checkpoint_arrays(state: TrainState) -> dict[str, np.ndarray]:
    """The trained part of ``state`` as host arrays named by their ``/``-joined pytree paths.

    ``frozen`` is left out. Names are stable for a given model and optimiser
    (``params/...``, ``batch_stats/...``, ``opt_state/<index>/<field>/...``, ``step``).
    """
    return {name: np.array(leaf, order="C") for name, leaf in _flat(state).items()}


def restore_train_state(template: TrainState, arrays: Mapping[str, np.ndarray]) -> TrainState:
    """``template`` with every checkpointed leaf replaced by ``arrays[name]`` (``frozen`` kept).

    Args:
      template: a state of the same model and optimiser (e.g. from :func:`create_train_state`).
      arrays: names and arrays as written by :func:`checkpoint_arrays`.

    Returns:
      The restored state; leaves are host-to-device copies with the template's dtypes.

    Raises:
      ValueError: listing every missing, unexpected, mis-shaped or mis-typed entry.
    """
    expected = _flat(template)
    missing = sorted(set(expected) - set(arrays))
    extra = sorted(set(arrays) - set(expected))
    wrong = [
        f"{name}: {np.shape(arrays[name])} {np.asarray(arrays[name]).dtype} vs "
        f"{np.shape(leaf)} {jnp.asarray(leaf).dtype}"
        for name, leaf in expected.items()
        if name in arrays
        and (np.shape(arrays[name]) != np.shape(leaf) or np.asarray(arrays[name]).dtype != jnp.asarray(leaf).dtype)
    ]
    if missing or extra or wrong:
        raise ValueError(
            f"checkpoint does not fit this model/optimiser: missing {missing}, unexpected {extra}, mismatches {wrong}"
        )
    fields = {}
    for field in _CHECKPOINTED:
        leaves, treedef = jax.tree_util.tree_flatten_with_path(getattr(template, field))
        values = [
            jnp.asarray(arrays["/".join([field, *(_key_name(p) for p in path)])]) for path, _ in leaves
        ]
        fields[field] = jax.tree_util.tree_unflatten(treedef, values)
    return attrs.evolve(template, **fields)
