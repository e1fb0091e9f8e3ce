"""Device placement for scoring: shard a batch over all local devices, replicate a state.

On one device these are no-ops. Batches are padded to a multiple of the device
count by the callers (:mod:`pyimgano.api`), so the batch axis always divides.
"""

from __future__ import annotations

import functools

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = ["local_mesh", "device_count", "shard_batch", "replicate", "data_parallel"]


@functools.lru_cache(maxsize=None)
def local_mesh() -> Mesh:
    """A 1-D mesh over this process's devices, axis name ``"batch"``."""
    return Mesh(np.asarray(jax.local_devices()), ("batch",))


def device_count() -> int:
    return len(jax.local_devices())


def shard_batch(array: np.ndarray) -> jax.Array:
    """Put ``array`` on the devices split along axis 0 (which must divide by the device count)."""
    if device_count() == 1:
        return jax.device_put(array)
    return jax.device_put(array, NamedSharding(local_mesh(), PartitionSpec("batch")))


def replicate(tree):
    """A copy of ``tree`` replicated on every local device (so jit never re-copies it per call)."""
    if device_count() == 1:
        return jax.device_put(tree)
    return jax.device_put(tree, NamedSharding(local_mesh(), PartitionSpec()))


def data_parallel(fn):
    """``fn(model, images)`` run data-parallel over the local devices (call it inside ``jit``).

    Each device scores its own slice of the batch axis against the replicated
    ``model``; outputs are concatenated along axis 0. There is no cross-device
    communication: letting the partitioner propagate a batch sharding through a
    detector instead inserts all-gathers (kNN, blur), and on XLA:CPU with few
    cores those collectives can leave every device waiting on the others (seen
    with a 16k-row PatchCore bank on 2 host devices). On one device ``fn`` is
    returned unchanged. The batch must divide by the device count.
    """
    if device_count() == 1:
        return fn
    return jax.shard_map(
        fn, mesh=local_mesh(), in_specs=(PartitionSpec(), PartitionSpec("batch")),
        out_specs=PartitionSpec("batch"), check_vma=False,
    )
