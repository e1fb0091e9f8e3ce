"""Input discovery for the CLIs: files, directories, globs and ``.npy`` frame files.

Rules (documented in ``docs/cli.md``):

* a file is taken as given (any extension; decoding decides whether it is an image);
* a directory is searched recursively for files with an image extension
  (:data:`IMAGE_EXTENSIONS`, case-insensitive; ``.npy`` too when an
  ``--input-format`` is declared), sorted by their path relative to it, hidden
  files and folders skipped;
* anything else containing ``*``, ``?`` or ``[`` is a glob (``**`` recurses), its
  matches sorted;
* a ``.npy`` file needs ``--input-format``: it holds one frame of that format, or a
  batch with one more leading axis (one input per frame, named ``file.npy[i]``). A
  ``.npy`` file that cannot be read (pickled objects, corrupt, a FIFO) or has the wrong
  shape is one input that fails when loaded, so ``--continue-on-error`` records it and
  goes on.

Repeated ``--input`` values keep their order; a path found twice is scored once.
"""

from __future__ import annotations

import glob
import os
import stat
from pathlib import Path
from typing import Iterable

import attrs
import numpy as np

from pyimgano.inputs import (
    MAX_PIXELS_ENV,
    ImageTooLargeError,
    load_image,
    normalize_numpy_image,
    parse_image_format,
    resolve_max_pixels,
)

__all__ = ["IMAGE_EXTENSIONS", "InputItem", "InputError", "discover_inputs", "load_item"]

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
_GLOB_CHARS = ("*", "?", "[")


class InputError(ValueError):
    """A bad ``--input`` / ``--train-dir`` value (missing path, empty folder, bad ``.npy``)."""


@attrs.frozen
class InputItem:
    """One input to score.

    Attributes:
      path: the file (as discovered, not resolved).
      frame: index into a batched ``.npy`` file, else None.
      root: the folder its ``--input`` value named (a folder itself, a glob's fixed
        prefix, or a file's parent); artifact names keep the path relative to it.
    """

    path: str
    frame: int | None = None
    root: str | None = None

    @property
    def name(self) -> str:
        """What records call this input: the path, plus ``[i]`` for a frame of a ``.npy`` batch."""
        return self.path if self.frame is None else f"{self.path}[{self.frame}]"

    @property
    def relative_stem(self) -> str:
        """The path relative to ``root`` without its extension, ``/``-separated (``good/000``);
        ``_i`` appended for batch frames."""
        root = self.root if self.root is not None else os.path.dirname(self.path)
        rel = os.path.relpath(self.path, root) if root else self.path
        if rel.startswith(".."):
            rel = os.path.basename(self.path)
        stem = Path(rel).with_suffix("").as_posix()
        return stem if self.frame is None else f"{stem}_{self.frame}"

    @property
    def is_npy(self) -> bool:
        return self.path.lower().endswith(".npy")


def _is_hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def _walk_dir(folder: Path, extensions: tuple[str, ...]) -> list[str]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if name.startswith(".") or not name.lower().endswith(extensions):
                continue
            found.append(os.path.join(root, name))
    # Sorted by the path relative to the folder so the order is the same on every machine.
    return sorted(found, key=lambda p: Path(p).relative_to(folder).as_posix())


def _glob_root(pattern: str) -> str:
    """The fixed folder in front of a glob pattern's first magic component."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts:
        if any(c in part for c in _GLOB_CHARS):
            break
        fixed.append(part)
    return str(Path(*fixed)) if fixed else "."


def _npy_reason(exc: BaseException) -> str:
    """Why numpy could not read a ``.npy`` file, in words that quote nothing of its content."""
    if "allow_pickle" in str(exc) or "Python objects" in str(exc):
        return "it holds Python objects (pickled data), which are never loaded"
    return f"not a readable .npy array file (corrupt or truncated; {type(exc).__name__})"


def _open_npy(path: str) -> np.ndarray:
    """A read-only memory map of a regular ``.npy`` file (no pickle); InputError otherwise."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise InputError(f"cannot read .npy frame file {path!r}: {exc.strerror or type(exc).__name__}") from None
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"cannot read .npy frame file {path!r}: not a regular file; refused unread")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - numpy raises ValueError/OSError/EOFError/... for bad files
        raise InputError(f"cannot read .npy frame file {path!r}: {_npy_reason(exc)}") from None


def _npy_items(path: str, fmt, root: str) -> list[InputItem]:
    """One input per frame of a readable ``.npy`` batch; a file that cannot be read or has the
    wrong shape is one input that fails when loaded (an error record under --continue-on-error)."""
    if fmt is None:
        raise InputError(
            f"{path!r} is a .npy frame file: declare its layout with --input-format "
            "(e.g. bgr_u8_hwc, rgb_f32_chw); formats are never guessed"
        )
    try:
        arr = _open_npy(path)
    except InputError:
        return [InputItem(path, root=root)]
    if arr.ndim == fmt.frame_ndim + 1 and arr.shape[0] > 0:
        return [InputItem(path, i, root=root) for i in range(arr.shape[0])]
    return [InputItem(path, root=root)]


def discover_inputs(specs: Iterable[str], *, input_format=None, what: str = "--input") -> list[InputItem]:
    """Expand ``--input`` values into an ordered, de-duplicated list of :class:`InputItem`.

    Args:
      specs: files, directories or glob patterns, in command-line order.
      input_format: an ``ImageFormat`` (or its name) for ``.npy`` frame files, or None.
      what: the flag name used in error messages.

    Raises:
      InputError: a path that does not exist, a glob or folder that matches no
        image, a ``.npy`` file without ``input_format`` (a ``.npy`` file that cannot
        be read or has the wrong shape is listed as one input; :func:`load_item`
        reports it).
      ValueError: an unknown ``input_format`` name (lists the accepted ones).
    """
    fmt = None if input_format is None else parse_image_format(input_format)
    extensions = IMAGE_EXTENSIONS + ((".npy",) if fmt is not None else ())
    paths: list[tuple[str, str]] = []  # (path, root)
    for spec in specs:
        spec = os.fspath(spec)
        p = Path(spec)
        if p.is_dir():
            found = _walk_dir(p, extensions)
            if not found:
                raise InputError(
                    f"{what} folder {spec!r} contains no images (extensions searched: {list(extensions)})"
                )
            paths.extend((path, spec) for path in found)
        elif p.is_file():
            paths.append((spec, os.path.dirname(spec)))
        elif any(c in spec for c in _GLOB_CHARS):
            found = sorted(m for m in glob.glob(spec, recursive=True) if Path(m).is_file())
            if not found:
                raise InputError(f"{what} pattern {spec!r} matches no file")
            paths.extend((path, _glob_root(spec)) for path in found)
        else:
            raise InputError(f"{what} {spec!r} does not exist (give a file, a folder or a glob pattern)")
    seen: set[str] = set()
    items: list[InputItem] = []
    for path, root in paths:
        key = os.path.normpath(os.path.abspath(path))
        if key in seen:
            continue
        seen.add(key)
        items.extend(_npy_items(path, fmt, root) if path.lower().endswith(".npy") else [InputItem(path, root=root)])
    return items


def _frame_pixels(shape: tuple[int, ...], fmt) -> int:
    height, width = (shape[-2], shape[-1]) if fmt.layout in ("chw", "hw") else (shape[-3], shape[-2])
    return int(height) * int(width)


def load_item(item: InputItem, *, input_format=None, u16_max: int | None = None) -> np.ndarray:
    """Decode one input to a canonical ``u8[H, W, 3]`` RGB frame.

    Image files go through :func:`pyimgano.inputs.load_image` (decode limit included).
    A ``.npy`` file is memory-mapped (never unpickled) and only the item's frame is
    read, after its height x width is checked against the same decode limit.

    Raises:
      FileNotFoundError / ImageLoadError (a ValueError): unreadable image files;
        ImageTooLargeError beyond the decode limit.
      InputError (a ValueError): a ``.npy`` file that is not a regular, readable
        numeric array file, or whose shape does not fit ``input_format`` (one frame
        or a non-empty batch).
      ValueError: a ``.npy`` frame that does not match ``input_format``.
    """
    if not item.is_npy:
        return load_image(item.path, u16_max=u16_max)
    fmt = parse_image_format(input_format)
    arr = _open_npy(item.path)
    if item.frame is None and arr.ndim == fmt.frame_ndim + 1:
        raise InputError(f".npy frame file {item.path!r} holds an empty batch (shape {arr.shape})"
                         if arr.shape[0] == 0 else f".npy frame file {item.path!r} changed since it was listed")
    if arr.ndim not in (fmt.frame_ndim, fmt.frame_ndim + 1):
        raise InputError(
            f".npy frame file {item.path!r} has shape {arr.shape}; --input-format {fmt.name} expects one frame "
            f"{fmt.frame_shape} or a batch (N, ...) of them"
        )
    if item.frame is not None and not (arr.ndim == fmt.frame_ndim + 1 and item.frame < arr.shape[0]):
        raise InputError(f".npy frame file {item.path!r} changed since it was listed (no frame {item.frame})")
    view = arr if item.frame is None else arr[item.frame]
    limit = resolve_max_pixels()
    if view.ndim == fmt.frame_ndim and _frame_pixels(view.shape, fmt) > limit:
        raise ImageTooLargeError(
            item.name, f"the frame is {_frame_pixels(view.shape, fmt):,} pixels, above the decode limit of "
            f"{limit:,} pixels ({MAX_PIXELS_ENV} or pyimgano-infer --max-image-pixels)", limit)
    return normalize_numpy_image(np.asarray(view), input_format=fmt, u16_max=u16_max)
