"""Folder-scale batch scoring on a Ray cluster: ``ray.data`` feeds work to a pool of actors, each with its own JAX scorer.

:func:`map_in_order` sends string payloads (one batch of inputs each) through
``num_workers`` actors and yields their string results in payload order, streamed as
they finish. An actor is a process with its own JAX runtime: it builds its worker once
(``factory(*args)``: load the state, select devices, compile on first use) and then
calls it once per payload. ``pyimgano-infer --ray-workers N`` builds on it (each actor
runs the command's own batch step, so records are those of one process).

Ray is an optional extra: ``pip install 'pyimgano[ray]'``; :func:`require_ray` says so
when it is absent. Without ``address`` a local Ray instance with ``num_workers`` CPUs is
started for the call and stopped after it (usage statistics off, no dashboard); with
``address`` (``"auto"`` or ``HOST:PORT``) the call joins a running cluster, whose
workers must be able to import pyimgano and read the inputs (a shared filesystem).
"""

from __future__ import annotations

import logging
import os
from typing import Any, Callable, Iterator, Sequence

__all__ = ["RAY_MISSING", "require_ray", "map_in_order"]

RAY_MISSING = "Ray batch scoring needs the ray extra: pip install 'pyimgano[ray]' (ray[data] >= 2.50)"

log = logging.getLogger("pyimgano")


def require_ray():
    """The ``ray`` module with ``ray.data`` loaded; ``ImportError`` with the install hint when absent."""
    try:
        import ray
        import ray.data  # noqa: F401 - needs the data extra (pandas, pyarrow)
    except ImportError as exc:
        raise ImportError(f"{RAY_MISSING} ({exc})") from None
    return ray


class _Actor:
    """A ``map_batches`` callable class: one per Ray actor, holding one worker."""

    def __init__(self, factory: Callable[..., Callable[[str], str]], args: tuple):
        self.worker = factory(*args)

    def __call__(self, batch: dict) -> dict:
        return {"result": [self.worker(str(payload)) for payload in batch["payload"]]}


def map_in_order(
    payloads: Sequence[str],
    factory: Callable[..., Callable[[str], str]],
    args: tuple = (),
    *,
    num_workers: int,
    address: str | None = None,
    show_progress: bool = False,
) -> Iterator[str]:
    """``worker(payload)`` for every payload on ``num_workers`` Ray actors, results in payload order.

    Args:
      payloads: strings, one unit of work each (e.g. a JSON batch of input paths).
      factory, args: ``factory(*args)`` runs once in each actor and returns the worker,
        a callable ``str -> str``; both must be importable (module-level) or picklable.
      num_workers: actors (each reserves one CPU).
      address: a running cluster (``"auto"``, ``"HOST:PORT"``); None starts a local one.
      show_progress: Ray Data's progress bars on stderr.

    Raises:
      ImportError: Ray is not installed (:data:`RAY_MISSING`).
      ValueError: ``num_workers < 1``.
    """
    if int(num_workers) < 1:
        raise ValueError(f"num_workers must be >= 1, got {num_workers!r}")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no network calls from a scoring job
    ray = require_ray()
    started = not ray.is_initialized()
    if started:
        kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
        if address is None:
            kwargs["num_cpus"] = int(num_workers)
        ray.init(address=address, **kwargs)
    try:
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = bool(show_progress)
        dataset = ray.data.from_items([{"payload": p} for p in payloads], override_num_blocks=max(1, len(payloads)))
        results = dataset.map_batches(_Actor, fn_constructor_args=(factory, tuple(args)), batch_size=1,
                                      concurrency=int(num_workers), num_cpus=1)
        for row in results.iter_rows():
            yield str(row["result"])
    finally:
        if started:
            ray.shutdown()
