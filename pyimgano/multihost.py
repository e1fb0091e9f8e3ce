"""Scoring on many hosts under ``jax.distributed``: one process per host, results gathered in order.

Every process joins the cluster (:func:`join`), loads the same state and scores its own
share of the work on its local devices with the ordinary library calls (the batch is
sharded over the process's devices as on one machine; no program spans hosts). Results
travel between processes with JAX's own collectives
(``jax.experimental.multihost_utils.process_allgather``; on CPU through gloo), so no
shared filesystem is needed for them. A :class:`Cluster` is what the drivers use:

- ``rank`` / ``size`` / ``is_leader``: this process's index, the process count, rank 0;
- ``exchange(obj)``: every process passes a JSON-able value and gets every process's
  value, in rank order (collective: all processes must call it the same number of times);
- ``all_ok(flag)``: True when the flag is True on every process (a collective check
  before work that one process does for all, such as preparing an output folder).

:data:`LOCAL` is the one-process cluster (``exchange`` returns ``[obj]`` without copying),
so a driver has one code path. ``pyimgano-infer --distributed`` deals batches round-robin
over the processes and writes on rank 0 exactly the JSONL of a one-process run
(``docs/scaling.md``); ``examples/multihost_score.py`` runs 2 processes on one machine.
"""

from __future__ import annotations

import io
import json
import os
import sys
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils

__all__ = ["Cluster", "DistributedCluster", "LOCAL", "join", "leave"]


def _keep_stdout_for_python() -> None:
    """Point file descriptor 1 at stderr for native code, and ``sys.stdout`` at the real stdout.

    gloo (the CPU collectives) prints "[Gloo] Rank N is connected to 1 peer ranks..." on
    file descriptor 1 from C++, at moments of its own choosing (connections complete on
    background threads); stdout carries JSONL records. So the original stdout is kept on a
    new descriptor for Python's ``sys.stdout``, and descriptor 1 becomes stderr.
    """
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    try:
        records = os.dup(1)
        os.dup2(2, 1)
    except OSError:  # no file descriptor 1 or 2: nothing native can print there either
        return
    sys.stdout = io.TextIOWrapper(os.fdopen(records, "wb", buffering=0), encoding=sys.stdout.encoding or "utf-8",
                                  errors=getattr(sys.stdout, "errors", None) or "strict", line_buffering=True,
                                  write_through=True)


class Cluster:
    """A single process: the identity of every collective."""

    rank = 0
    size = 1

    @property
    def is_leader(self) -> bool:
        return self.rank == 0

    def exchange(self, obj: Any) -> list[Any]:
        """Every process's ``obj`` in rank order (here: ``[obj]``)."""
        return [obj]

    def all_ok(self, flag: bool) -> bool:
        """True when ``flag`` is True on every process."""
        return bool(flag)

    def share(self, count: int) -> range:
        """The work items ``0..count-1`` this process handles: ``rank, rank + size, ...`` (round-robin)."""
        return range(self.rank, count, self.size)


LOCAL = Cluster()


class DistributedCluster(Cluster):
    """This process in a ``jax.distributed`` cluster (create it with :func:`join`)."""

    def __init__(self):
        self._allgather = multihost_utils.process_allgather
        self.rank = jax.process_index()
        self.size = jax.process_count()

    def _gather(self, array: np.ndarray) -> np.ndarray:
        return np.asarray(self._allgather(array))

    def _gather_bytes(self, data: bytes) -> list[bytes]:
        lengths = self._gather(np.array([len(data)], np.int64)).reshape(-1)
        buffer = np.zeros(max(1, int(lengths.max())), np.uint8)
        buffer[: len(data)] = np.frombuffer(data, np.uint8)
        everyone = self._gather(buffer).reshape(self.size, -1)
        return [everyone[i, : int(n)].tobytes() for i, n in enumerate(lengths)]

    def exchange(self, obj: Any) -> list[Any]:
        payload = json.dumps(obj, allow_nan=True).encode("utf-8")
        return [json.loads(part.decode("utf-8")) for part in self._gather_bytes(payload)]

    def all_ok(self, flag: bool) -> bool:
        return bool(self._gather(np.array([1 if flag else 0], np.int32)).min() == 1)


def join(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    clean_stdout: bool = True,
) -> Cluster:
    """Join the ``jax.distributed`` cluster (call before any other JAX use) and return this process's :class:`Cluster`.

    Arguments left None are detected by JAX from the scheduler's environment (SLURM,
    Open MPI, Kubernetes, Cloud TPU, ``JAX_COORDINATOR_ADDRESS``). On CPU the cross-process
    collectives use gloo, which prints connection messages on file descriptor 1; with
    ``clean_stdout`` (default) descriptor 1 is pointed at stderr first and ``sys.stdout``
    is rebound to the original stdout, so only Python's output reaches it (take
    ``sys.stdout`` again after this call). A cluster of one process returns :data:`LOCAL`.

    Raises:
      RuntimeError: JAX cannot reach the coordinator or was already initialised.
    """
    # Harmless on GPU/TPU (their collectives do not use it); needed for CPU hosts.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if clean_stdout:
        _keep_stdout_for_python()
    jax.distributed.initialize(coordinator, num_processes=num_processes, process_id=process_id)
    return LOCAL if jax.process_count() == 1 else DistributedCluster()


def leave(cluster: Cluster) -> None:
    """Leave the cluster joined by :func:`join` (a no-op for :data:`LOCAL`)."""
    if isinstance(cluster, DistributedCluster):
        jax.distributed.shutdown()
