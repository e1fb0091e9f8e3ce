"""Training checkpoints on disk: the shell side of :class:`models_jax.training.CheckpointStore`.

A checkpoint directory holds two files, both replaced atomically after every epoch
(:func:`pyimgano.fileio.atomic_write_bytes`):

- ``checkpoint.safetensors`` -- the trained arrays (parameters, BatchNorm statistics,
  optimiser state, step) under their ``/``-joined pytree paths, and a JSON header
  (``format``, ``schema_version``, ``epoch``, ``run``, ``history``). No pickle.
  This file alone decides what a resume continues from.
- ``training.json`` -- the same header as readable JSON (epochs done, per-epoch
  loss and seconds, the run description), for people and reports.

``pyimgano.fit(..., checkpoint_dir=DIR)`` uses one; re-running the same call after an
interruption resumes after the last completed epoch (see ``docs/training.md``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import attrs
import numpy as np

from models_jax.training import Checkpoint
from pyimgano._version import __version__
from pyimgano.fileio import atomic_write_bytes, atomic_write_json

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_SCHEMA_VERSION", "CHECKPOINT_FILE", "SUMMARY_FILE", "CheckpointDir"]

CHECKPOINT_FORMAT = "pyimgano-training-checkpoint"
CHECKPOINT_SCHEMA_VERSION = 1
CHECKPOINT_FILE = "checkpoint.safetensors"
SUMMARY_FILE = "training.json"


@attrs.frozen
class CheckpointDir:
    """A directory holding the latest training checkpoint (created on the first save)."""

    path: Path = attrs.field(converter=lambda p: Path(os.fspath(p)))

    @property
    def checkpoint_file(self) -> Path:
        return self.path / CHECKPOINT_FILE

    def load(self) -> Checkpoint | None:
        """The saved checkpoint, or None when the directory has none.

        Raises:
          ValueError: the file is unreadable, not a pyimgano training checkpoint, or of a newer schema.
        """
        from safetensors import safe_open

        path = self.checkpoint_file
        if not path.is_file():
            return None
        try:
            with safe_open(str(path), framework="numpy") as handle:
                metadata = handle.metadata() or {}
                arrays = {name: handle.get_tensor(name) for name in handle.keys()}
            header = {k: json.loads(metadata[k]) for k in ("epoch", "run", "history")}
        except Exception as exc:  # safetensors has its own error types; a missing key is a KeyError
            raise ValueError(f"{path} is not a readable pyimgano training checkpoint: {exc}") from exc
        if metadata.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path} is not a pyimgano training checkpoint (format={metadata.get('format')!r})")
        version = int(metadata.get("schema_version", "0"))
        if version > CHECKPOINT_SCHEMA_VERSION:
            raise ValueError(
                f"{path} has checkpoint schema {version}, newer than this pyimgano ({__version__}) reads "
                f"({CHECKPOINT_SCHEMA_VERSION})"
            )
        return Checkpoint(
            arrays=arrays, epoch=int(header["epoch"]), run=header["run"], history=tuple(header["history"])
        )

    def save(self, checkpoint: Checkpoint) -> None:
        """Write ``checkpoint`` over the previous one (atomically), then the readable summary."""
        from safetensors.numpy import save

        header = {"epoch": int(checkpoint.epoch), "run": checkpoint.run, "history": list(checkpoint.history)}
        metadata = {
            "format": CHECKPOINT_FORMAT,
            "schema_version": str(CHECKPOINT_SCHEMA_VERSION),
            "pyimgano_version": __version__,
            **{k: json.dumps(v, sort_keys=True) for k, v in header.items()},
        }
        arrays = {name: np.array(value, order="C") for name, value in checkpoint.arrays.items()}
        atomic_write_bytes(self.checkpoint_file, save(arrays, metadata=metadata))
        atomic_write_json(
            self.path / SUMMARY_FILE,
            {"format": CHECKPOINT_FORMAT, "schema_version": CHECKPOINT_SCHEMA_VERSION, **header},
        )
