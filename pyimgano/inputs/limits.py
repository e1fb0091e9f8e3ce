"""The decode limit: how many pixels one image file may declare before it is decoded.

A PNG of 2.6 MB can declare 30000x30000 pixels; decoding it takes 2.7 GB, its
anomaly map 3.6 GB. Every image file's header is read first
(:mod:`pyimgano.inputs.headers`) and a file declaring more than the limit is
refused with an :class:`~pyimgano.inputs.ImageTooLargeError` naming the limit,
before any decoder runs. The limit, most specific first:

1. the ``max_pixels`` argument of :func:`~pyimgano.inputs.load_image`;
2. the innermost :func:`image_pixel_limit` block (``pyimgano-infer --max-image-pixels``
   sets one around the whole run, so it covers ``--train-dir`` too);
3. the environment variable ``PYIMGANO_MAX_IMAGE_PIXELS``;
4. :data:`DEFAULT_MAX_PIXELS`, ``8192 * 8192`` (67,108,864): an 8K industrial
   frame (8192 x 8192 line-scan, 7680 x 4320 UHD) passes, a bomb does not.

The file itself may hold at most :func:`max_file_bytes` of the limit (8 bytes per
allowed pixel, the size of uncompressed 16-bit RGBA, plus 16 MiB of headers and
metadata), so reading it is bounded too.
"""

from __future__ import annotations

import contextlib
import contextvars
import operator
import os
from typing import Iterator

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "MAX_PIXELS_ENV",
    "image_pixel_limit",
    "resolve_max_pixels",
    "check_max_pixels",
    "max_file_bytes",
]

DEFAULT_MAX_PIXELS = 8192 * 8192
MAX_PIXELS_ENV = "PYIMGANO_MAX_IMAGE_PIXELS"
_HEADER_ALLOWANCE = 16 * 1024 * 1024

_LIMIT: contextvars.ContextVar[int | None] = contextvars.ContextVar("pyimgano_max_image_pixels", default=None)


def check_max_pixels(value, what: str = "max_pixels") -> int:
    """``value`` as a positive int.

    Raises:
      TypeError: not an integer (bools and floats are refused).
      ValueError: below 1.
    """
    if isinstance(value, bool):
        raise TypeError(f"{what} must be a positive integer (pixels per image), got {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(f"{what} must be a positive integer (pixels per image), got {type(value).__name__}: {value!r}") from None
    if number < 1:
        raise ValueError(f"{what} must be a positive integer (pixels per image), got {number}")
    return number


def _from_environment() -> int | None:
    text = os.environ.get(MAX_PIXELS_ENV)
    if text is None or not text.strip():
        return None
    try:
        return check_max_pixels(int(text.strip()), MAX_PIXELS_ENV)
    except (TypeError, ValueError):
        raise ValueError(
            f"environment variable {MAX_PIXELS_ENV}={text!r} is not a positive integer "
            f"(pixels per image; default {DEFAULT_MAX_PIXELS})"
        ) from None


def resolve_max_pixels(max_pixels: int | None = None) -> int:
    """The limit in force: ``max_pixels``, else the :func:`image_pixel_limit` block, the
    environment variable, the default (module docstring).

    Raises:
      TypeError, ValueError: a ``max_pixels`` or ``PYIMGANO_MAX_IMAGE_PIXELS`` that is
        not a positive integer.
    """
    if max_pixels is not None:
        return check_max_pixels(max_pixels)
    scoped = _LIMIT.get()
    if scoped is not None:
        return scoped
    env = _from_environment()
    return env if env is not None else DEFAULT_MAX_PIXELS


@contextlib.contextmanager
def image_pixel_limit(max_pixels: int | None) -> Iterator[int]:
    """Within the block, image files may declare at most ``max_pixels`` pixels (None: unchanged).

    Context-local (a ``contextvars`` value): threads and asyncio tasks started
    elsewhere keep their own limit. Yields the limit in force.

    Raises:
      TypeError, ValueError: ``max_pixels`` is not a positive integer.
    """
    if max_pixels is None:
        yield resolve_max_pixels()
        return
    token = _LIMIT.set(check_max_pixels(max_pixels))
    try:
        yield _LIMIT.get()
    finally:
        _LIMIT.reset(token)


def max_file_bytes(max_pixels: int) -> int:
    """The largest image file read under a limit of ``max_pixels`` (8 bytes a pixel + 16 MiB)."""
    return 8 * int(max_pixels) + _HEADER_ALLOWANCE
