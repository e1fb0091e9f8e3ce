"""Writing files safely, and flattening nested mappings for tensor files.

A neutral leaf module (it imports nothing from pyimgano, models_jax or
weights_convert) used by every writer in the project: detector states,
converted weights, maps, masks, overlays, reports and profiles.

* :func:`atomic_write_bytes` writes a temporary sibling, fsyncs it and moves it
  over the target with ``os.replace``: readers see the old file or the
  complete new one, never a half-written file. The file gets the permissions
  a plain ``open(path, "w")`` would give (``0o666`` minus the process umask),
  not ``mkstemp``'s private ``0o600``. The temporary file is named after its
  target (``.tmp-<name>.<random>.part``), so what a killed writer left behind
  can be found and removed (:func:`stale_temp_files`) without touching anyone
  else's files.
* :func:`flatten_tree` / :func:`unflatten_tree` turn nested mappings of arrays
  into ``{"a/b/leaf": array}`` and back (safetensors stores flat names).
"""

from __future__ import annotations

import glob
import io
import json
import math
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, Mapping

import numpy as np

__all__ = [
    "TEMP_PREFIX",
    "TEMP_SUFFIX",
    "atomic_write_bytes",
    "stale_temp_files",
    "remove_stale_temp_files",
    "atomic_write_json",
    "atomic_write_npy",
    "json_plain",
    "flatten_tree",
    "unflatten_tree",
]

#: Temporary files are named ``.tmp-<target name>.<random>.part`` in the destination folder.
TEMP_PREFIX = ".tmp-"
TEMP_SUFFIX = ".part"
_TEMP_NAME_CHARS = 64  # of the target's name, so a temp name stays well under NAME_MAX

_UMASK_LOCK = threading.Lock()


def _current_umask() -> int:
    """The process umask (read from /proc where possible: setting it to read it is racy)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> str:
    """Write ``data`` to ``path`` atomically; parent folders are created.

    A temporary sibling (``.tmp-*.part``) is written, flushed and fsynced, given
    ``0o666 & ~umask`` permissions, then moved over ``path`` with ``os.replace``.
    On any error the temporary file is removed and the error re-raised; the
    previous content of ``path`` (if any) is untouched.

    Returns:
      The path as a string.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=TEMP_SUFFIX, dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _temp_prefix(path: str) -> str:
    return f"{TEMP_PREFIX}{os.path.basename(path)[:_TEMP_NAME_CHARS]}."


def stale_temp_files(path: str | os.PathLike) -> list[str]:
    """Temporary files :func:`atomic_write_bytes` left beside ``path`` when its process was killed.

    Only names of ``path``'s own pattern (``.tmp-<name>.<random>.part``) are listed.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    pattern = glob.escape(_temp_prefix(path)) + "*" + glob.escape(TEMP_SUFFIX)
    return sorted(p for p in glob.glob(os.path.join(glob.escape(folder), pattern)) if os.path.isfile(p))


def remove_stale_temp_files(paths) -> list[str]:
    """Remove :func:`stale_temp_files` of every target in ``paths``; returns what was removed."""
    removed = []
    for target in paths:
        for stale in stale_temp_files(target):
            try:
                os.unlink(stale)
                removed.append(stale)
            except FileNotFoundError:
                pass
    return removed


def json_plain(value: Any) -> Any:
    """Plain JSON types: numpy scalars/arrays to Python, tuples to lists, NaN/inf to None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, np.ndarray):
        return json_plain(value.tolist())
    if isinstance(value, Mapping):
        return {str(k): json_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def atomic_write_json(path: str | os.PathLike, payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` as indented JSON with sorted keys, atomically (see :func:`atomic_write_bytes`)."""
    text = json.dumps(json_plain(payload), sort_keys=True, indent=2, allow_nan=False) + "\n"
    return Path(atomic_write_bytes(path, text.encode("utf-8")))


def atomic_write_npy(path: str | os.PathLike, array) -> str:
    """Save an array as ``.npy`` (no pickle) atomically; returns the path as a string."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(np.asarray(array)), allow_pickle=False)
    return atomic_write_bytes(path, buf.getvalue())


def flatten_tree(tree: Mapping, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": x}}`` -> ``{"a/b": x}`` (keys joined with ``/``, leaves unchanged)."""
    flat: dict[str, Any] = {}
    for name, value in tree.items():
        path = f"{prefix}/{name}" if prefix else str(name)
        if isinstance(value, Mapping):
            flat.update(flatten_tree(value, path))
        else:
            flat[path] = value
    return flat


def unflatten_tree(flat: Mapping[str, Any]) -> dict:
    """Inverse of :func:`flatten_tree`."""
    nested: dict = {}
    for path, value in flat.items():
        node = nested
        *parents, leaf = path.split("/")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested
