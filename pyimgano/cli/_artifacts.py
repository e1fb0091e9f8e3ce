"""Artifact file names and atomic writes.

Names are ``{index:06d}_{stem}.{ext}``. The stem comes from the input's file
name only (never its folders), reduced to ASCII letters, digits, ``-``, ``_``
and ``.`` (anything else becomes ``_``), without leading dots, at most 80
characters; the index prefix keeps names unique even when stems collide or
sanitise to the same text. :func:`artifact_path` then checks that the resolved
path is a direct child of the output folder, so ``../../x.png``, absolute
paths, spaces or unicode can never write outside it.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import numpy as np

from pyimgano.fileio import atomic_write_bytes

__all__ = ["safe_stem", "artifact_name", "artifact_path", "save_npy"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_STEM = 80


def safe_stem(stem: str) -> str:
    """A file-name-safe version of ``stem`` (see the module docstring); never empty."""
    # Only the last path component counts: a stem such as "../../x" keeps "x".
    stem = re.split(r"[\\/]", str(stem))[-1]
    cleaned = _UNSAFE.sub("_", stem).lstrip(".")
    cleaned = re.sub(r"_+", "_", cleaned)[:_MAX_STEM].strip("_")
    return cleaned or "input"


def artifact_name(index: int, stem: str, ext: str) -> str:
    """``{index:06d}_{safe stem}.{ext}``."""
    if int(index) < 0:
        raise ValueError(f"artifact index must be >= 0, got {index}")
    ext = str(ext).lstrip(".")
    if not re.fullmatch(r"[A-Za-z0-9]+", ext):
        raise ValueError(f"artifact extension must be alphanumeric, got {ext!r}")
    return f"{int(index):06d}_{safe_stem(stem)}.{ext}"


def artifact_path(out_dir: str | os.PathLike, index: int, stem: str, ext: str) -> Path:
    """``out_dir / artifact_name(...)``, verified to stay inside ``out_dir``.

    Raises:
      ValueError: the name would resolve outside the folder (cannot happen for
        names built here; the check guards against future changes).
    """
    folder = Path(out_dir)
    path = folder / artifact_name(index, stem, ext)
    if path.resolve().parent != folder.resolve():
        raise ValueError(f"artifact {path} would escape the output folder {folder}")
    return path



def save_npy(path: str | os.PathLike, array: np.ndarray) -> dict:
    """Save an array as ``.npy`` atomically; returns ``{path, shape, dtype}``."""
    arr = np.ascontiguousarray(np.asarray(array))
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    written = atomic_write_bytes(path, buf.getvalue())
    return {"path": written, "shape": [int(d) for d in arr.shape], "dtype": str(arr.dtype)}
