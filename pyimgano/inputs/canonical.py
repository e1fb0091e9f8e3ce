"""Whatever a caller hands to ``fit`` / ``score`` / ``infer`` -> a list of canonical frames."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from pyimgano.inputs.decode import load_image
from pyimgano.inputs.formats import IMAGE_FORMATS, parse_image_format
from pyimgano.inputs.normalize import check_frames_shape, check_u16_max, normalize_frames

__all__ = ["canonicalize_images", "canonical_batches", "input_items", "is_path", "group_by_size"]


def is_path(item) -> bool:
    """True for ``str`` / ``os.PathLike`` (an image file), False for arrays and anything else."""
    return isinstance(item, (str, os.PathLike))


def _is_array(item) -> bool:
    return isinstance(item, np.ndarray) or (
        hasattr(item, "__array__") and hasattr(item, "shape") and hasattr(item, "dtype")
    )


def _require_format(input_format):
    if input_format is None:
        names = ", ".join(fmt.name for fmt in IMAGE_FORMATS)
        raise ValueError(f"array inputs require input_format (formats are declared, never guessed); accepted: {names}")
    return parse_image_format(input_format)


def canonicalize_images(images, *, input_format=None, u16_max: int | None = None) -> list[np.ndarray]:
    """Canonical ``u8[H, W, 3]`` RGB frames from arrays of one declared format, or from image files.

    Args:
      images: one of
        * an array of ``input_format``: one frame (e.g. ``u8[H, W, 3]``) or a
          batch with a leading ``N`` (decided by ndim, see
          :func:`~pyimgano.inputs.normalize_numpy_image`);
        * a sequence of single frames of ``input_format`` (sizes may differ);
        * one path (``str`` / ``os.PathLike``) or a sequence of paths, decoded
          with :func:`~pyimgano.inputs.load_image`.
      input_format: an :class:`ImageFormat` or its name; required for arrays,
        must be None for paths (a file's header says what it holds).
      u16_max: full-scale value of 16-bit data (arrays and files), default 65535.

    Returns:
      A list with one C-contiguous ``u8[H, W, 3]`` RGB array per frame, in input order.
      An empty sequence gives an empty list.

    Raises:
      TypeError: paths and arrays mixed; an element that is neither; a non-iterable.
      ValueError: arrays without ``input_format``; paths with one; any frame
        rejected by ``normalize_numpy_image`` (the message names its index).
      FileNotFoundError, ImageLoadError: a path that is missing or not a readable image.
    """
    full_scale = check_u16_max(u16_max)
    if _is_array(images):
        batch = normalize_frames(images, _require_format(input_format), full_scale)
        return [batch] if batch.ndim == 3 else list(batch)
    if is_path(images):
        images = [images]
    elif isinstance(images, (bytes, bytearray)) or not isinstance(images, Iterable):
        raise TypeError(
            f"images must be an array, a path, or a sequence of arrays or paths; got {type(images).__name__}"
        )
    items = list(images)
    paths = [is_path(item) for item in items]
    if any(paths) and not all(paths):
        path_at, other_at = paths.index(True), paths.index(False)
        raise TypeError(
            f"paths and arrays may not be mixed in one call: item {path_at} is a path, "
            f"item {other_at} is a {type(items[other_at]).__name__}; pass one kind"
        )
    if items and all(paths):
        if input_format is not None:
            raise ValueError(
                f"input_format={str(input_format)!r} applies to arrays only; image files are decoded "
                "from their headers, pass input_format=None"
            )
        return [load_image(path, u16_max=full_scale) for path in items]
    if not items:
        return []
    fmt = _require_format(input_format)
    frames = []
    for index, item in enumerate(items):
        if not _is_array(item):
            raise TypeError(
                f"item {index}: expected an array of format {fmt.name} or a path, got {type(item).__name__}"
            )
        where = f"item {index}: "
        if np.ndim(item) != fmt.frame_ndim:
            raise ValueError(
                f"{where}declared {fmt.name}: a sequence holds single {fmt.numpy_dtype} frames of shape "
                f"{fmt.frame_shape}; got a {item.dtype} array of shape {tuple(np.shape(item))} "
                "(pass a batch as one array, not inside a list)"
            )
        frames.append(normalize_frames(item, fmt, full_scale, where))
    return frames


def group_by_size(frames) -> list[list[int]]:
    """Indices of ``frames`` per distinct ``(H, W)``, sizes in first-seen order, indices ascending."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i, frame in enumerate(frames):
        groups.setdefault(tuple(frame.shape[:2]), []).append(i)
    return list(groups.values())


def input_items(images, *, input_format=None) -> Sequence:
    """A sliceable sequence of single inputs (paths or frames), without decoding anything.

    One path, one frame (an array whose ndim is the format's frame ndim), a batch
    array ``(N, ...)``, or a sequence of paths or frames. Paths and arrays may not be
    mixed; arrays need ``input_format``.

    Raises:
      TypeError: paths and arrays mixed; an unsupported type.
      ValueError: arrays without ``input_format``; an array whose dtype, ndim or
        channel count does not fit it, or an empty array (the message gives the
        array's own shape).
    """
    if is_path(images):
        return [images]
    if _is_array(images):
        fmt = _require_format(input_format)
        arr = np.asarray(images)
        # The whole array is checked here, so a bad shape is reported as it was passed,
        # never as the shape of a slice of it.
        check_frames_shape(arr, fmt)
        return [arr] if arr.ndim == fmt.frame_ndim else arr
    if isinstance(images, (bytes, bytearray)) or not isinstance(images, Iterable):
        raise TypeError(
            f"images must be an array, a path, or a sequence of arrays or paths; got {type(images).__name__}"
        )
    items = list(images)
    kinds = {is_path(item) for item in items}
    if len(kinds) > 1:
        raise TypeError("paths and arrays may not be mixed in one call; pass one kind")
    if items and not is_path(items[0]):
        _require_format(input_format)
    return items


def _chunks(images, input_format, batch_size: int) -> Iterator[Sequence]:
    """Slices of a sequence / array, or lists taken from any other iterable as it yields them."""
    if is_path(images) or _is_array(images) or isinstance(images, Sequence):
        items = input_items(images, input_format=input_format)
        for start in range(0, len(items), batch_size):
            yield items[start : start + batch_size]
        return
    if isinstance(images, (bytes, bytearray)) or not isinstance(images, Iterable):
        raise TypeError(
            f"images must be an array, a path, or a sequence of arrays or paths; got {type(images).__name__}"
        )
    iterator = iter(images)
    while chunk := list(itertools.islice(iterator, batch_size)):
        yield chunk


def canonical_batches(
    images, *, input_format=None, batch_size: int, u16_max: int | None = None
) -> Iterator[list[np.ndarray]]:
    """Decode and canonicalise ``images`` one batch at a time (lists of ``u8[H, W, 3]`` RGB frames).

    The one place where user inputs become canonical frames: only ``batch_size``
    decoded frames are held at once, so a long list of paths streams. ``images``
    may also be any iterable of paths or single frames (a generator reading a
    camera): it is consumed ``batch_size`` items at a time, never listed whole.

    Raises:
      As :func:`input_items` and :func:`canonicalize_images`; TypeError when an
      iterable switches between paths and arrays.
    """
    kind = None
    for chunk in _chunks(images, input_format, batch_size):
        chunk_kind = "paths" if is_path(chunk[0]) else "arrays"
        if kind is not None and chunk_kind != kind:
            raise TypeError("paths and arrays may not be mixed in one call; pass one kind")
        kind = chunk_kind
        fmt = None if chunk_kind == "paths" else input_format
        yield canonicalize_images(chunk if isinstance(chunk, np.ndarray) else list(chunk), input_format=fmt, u16_max=u16_max)
