"""Converted weights on disk: safetensors files with a small string metadata header.

Layout: one tensor per Flax leaf, named by its path joined with ``/``
(``params/layer1_0/conv1/kernel``, ``batch_stats/bn1/mean``); the safetensors
``__metadata__`` holds ``format="pyimgano-weights"``, ``arch``,
``source_sha256`` and ``converter_version`` (all strings).  safetensors is a
plain header + raw bytes format: loading it executes nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np
import safetensors
import safetensors.numpy

from pyimgano.fileio import atomic_write_bytes, flatten_tree, unflatten_tree

__all__ = ["WEIGHTS_FORMAT", "REQUIRED_METADATA", "save_variables", "load_variables"]

WEIGHTS_FORMAT = "pyimgano-weights"
REQUIRED_METADATA: tuple[str, ...] = ("format", "arch", "source_sha256", "converter_version")


def save_variables(path: str | os.PathLike, variables: Mapping, metadata: Mapping[str, str]) -> Path:
    """Write nested Flax ``variables`` (numpy or jax leaves) to a safetensors file, atomically.

    ``metadata`` must hold string values for ``arch``, ``source_sha256`` and
    ``converter_version``; ``format`` is set to ``"pyimgano-weights"``.  The
    file is written to a temporary sibling and moved over ``path`` with
    ``os.replace``, so readers never see a partial file.  Parent directories
    are created.

    Returns:
      The written path.

    Raises:
      ValueError: a metadata key/value is not a string, a required key is
        missing, ``format`` names another format, or a variable name contains ``/``.
    """
    meta = dict(metadata)
    if meta.setdefault("format", WEIGHTS_FORMAT) != WEIGHTS_FORMAT:
        raise ValueError(f"metadata format must be {WEIGHTS_FORMAT!r}, got {meta['format']!r}")
    bad = [f"{k!r}: {v!r}" for k, v in meta.items() if not isinstance(k, str) or not isinstance(v, str)]
    if bad:
        raise ValueError(f"metadata keys and values must be strings; offending entries: {bad}")
    missing = [k for k in REQUIRED_METADATA if k not in meta]
    if missing:
        raise ValueError(f"metadata lacks required keys {missing}; required: {list(REQUIRED_METADATA)}")
    flat = flatten_tree(variables)
    # np.array, not ascontiguousarray: the latter turns 0-d leaves into shape (1,).
    tensors = {name: np.array(leaf, order="C") for name, leaf in flat.items()}
    blob = safetensors.numpy.save(tensors, metadata=meta)
    target = Path(path)
    atomic_write_bytes(target, blob)
    return target


def load_variables(path: str | os.PathLike) -> tuple[dict, dict[str, str]]:
    """Read a file written by :func:`save_variables`.

    Returns:
      ``(variables, metadata)``: nested ``{"params": ..., "batch_stats": ...}``
      of numpy arrays (bit-exact copies of what was saved) and the metadata
      dict of strings.

    Raises:
      FileNotFoundError: ``path`` does not exist.
      ValueError: not a safetensors file, or not one written by pyimgano
        (``format`` metadata missing or different, required keys missing).
    """
    target = Path(path)
    if not target.is_file():
        raise FileNotFoundError(f"weights file {str(target)!r} does not exist")
    try:
        with safetensors.safe_open(str(target), framework="np") as f:
            metadata = dict(f.metadata() or {})
            flat = {name: f.get_tensor(name) for name in f.keys()}
    except (safetensors.SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"{str(target)!r} is not a readable safetensors weights file ({err})") from err
    if metadata.get("format") != WEIGHTS_FORMAT:
        raise ValueError(
            f"{str(target)!r} is not a pyimgano weights file (metadata format {metadata.get('format')!r}, "
            f"expected {WEIGHTS_FORMAT!r}); convert checkpoints with pyimgano-convert-weights"
        )
    missing = [k for k in REQUIRED_METADATA if k not in metadata]
    if missing:
        raise ValueError(f"{str(target)!r} metadata lacks {missing}")
    return unflatten_tree(flat), metadata
