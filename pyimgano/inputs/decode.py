"""Image files -> canonical RGB / uint8 / HWC frames.

Decoding policy (the same for training and inference, so both see identical pixels):

* Containers: PNG (8/16-bit, gray, gray+alpha, palette, RGB, RGBA), JPEG,
  BMP and TIFF (first page), recognised by their signature bytes, never by
  the file extension.  Anything else is an :class:`ImageLoadError`.
* Pixels are decoded by OpenCV with ``IMREAD_UNCHANGED``, so 16-bit samples
  keep their full precision and are scaled by ``255 / u16_max`` exactly as
  :func:`~pyimgano.inputs.normalize_numpy_image` scales ``u16`` arrays.
* Alpha is **dropped**, not composited: an RGBA pixel ``(r, g, b, a)`` becomes
  ``(r, g, b)``; palette entries keep their colour whatever their transparency.
* Grayscale is repeated to three channels.
* EXIF orientation is **not** applied: pixels come out as stored, the way
  industrial cameras write them.
* A truncated PNG or JPEG is detected from its container structure before
  decoding (some OpenCV versions return partial images silently).
* Bounded: the header's width x height is checked against the decode limit
  (:mod:`pyimgano.inputs.limits`) before any decoder runs, and only regular files
  of a bounded size are read (a FIFO, a device or ``/dev/zero`` behind a symlink
  is refused, never read).
* Quiet: what libpng / libjpeg / libtiff print on stderr goes to the
  ``pyimgano.inputs`` logger at DEBUG level (:mod:`pyimgano.inputs.native_stderr`).
* Error messages name the path and the problem, never the file's bytes (a
  symlink to a secret file must not leak it into an error record).
"""

from __future__ import annotations

import errno
import logging
import os
import stat

import cv2
import numpy as np

from pyimgano.inputs.containers import (
    SUPPORTED_CONTAINERS,
    check_jpeg_structure,
    check_png_structure,
    sniff_container,
)
from pyimgano.inputs.formats import ImageFormat
from pyimgano.inputs.headers import image_dimensions
from pyimgano.inputs.limits import MAX_PIXELS_ENV, max_file_bytes, resolve_max_pixels
from pyimgano.inputs.native_stderr import native_stderr_to_log
from pyimgano.inputs.normalize import check_u16_max, normalize_frames

__all__ = ["ImageLoadError", "ImageTooLargeError", "load_image", "read_regular_file"]

log = logging.getLogger("pyimgano.inputs")

_STRUCTURE_CHECKS = {"PNG": check_png_structure, "JPEG": check_jpeg_structure}
_DECODED_FORMATS = {  # (numpy dtype, channels) -> format of OpenCV's output
    ("uint8", 1): ImageFormat.GRAY_U8_HW,
    ("uint16", 1): ImageFormat.GRAY_U16_HW,
    ("uint8", 3): ImageFormat.BGR_U8_HWC,
    ("uint16", 3): ImageFormat.BGR_U16_HWC,
}


class ImageLoadError(ValueError):
    """A file exists but is not a readable, complete PNG/JPEG/BMP/TIFF image.

    Attributes:
      path: the file, as given (``str``).
      reason: what was wrong with it.
    """

    def __init__(self, path, reason: str):
        self.path = os.fspath(path) if isinstance(path, os.PathLike) else str(path)
        self.reason = reason
        super().__init__(f"cannot load image {self.path!r}: {reason}")


class ImageTooLargeError(ImageLoadError):
    """The file declares more pixels than the decode limit (or is larger than its byte bound).

    Attributes:
      path, reason: as :class:`ImageLoadError`.
      limit: the limit exceeded: pixels (from :func:`load_image`), or bytes
        (from :func:`read_regular_file`).
    """

    def __init__(self, path, reason: str, limit: int):
        self.limit = int(limit)
        super().__init__(path, reason)


def _limit_hint() -> str:
    return f"raise it with max_pixels=, {MAX_PIXELS_ENV} or pyimgano-infer --max-image-pixels"


def read_regular_file(path, max_bytes: int, what: str = "image") -> bytes:
    """The bytes of the regular file ``path``, at most ``max_bytes`` of them.

    The path is opened non-blocking and checked with ``fstat``: a directory, FIFO,
    socket or device (``/dev/zero`` behind a symlink) is refused without reading.

    Raises:
      FileNotFoundError: nothing at ``path``.
      ImageLoadError: not a regular file, unreadable, or larger than ``max_bytes``
        (then an :class:`ImageTooLargeError`).
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, f"{what} file not found", os.fspath(path)) from None
    except OSError as exc:  # no permission, a dangling loop, an I/O error
        raise ImageLoadError(path, f"the file cannot be read ({exc.strerror or type(exc).__name__})") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise ImageLoadError(path, "not a regular file (a directory, device, FIFO or socket); refused unread")
    with os.fdopen(fd, "rb") as handle:
        if info.st_size > max_bytes:
            raise ImageTooLargeError(
                path, f"the file holds {info.st_size:,} bytes, above the {max_bytes:,} bytes allowed",
                max_bytes,
            )
        try:
            # Sized from fstat (plus one byte to notice growth), not from the limit: read(n)
            # reserves n bytes before reading.
            data = handle.read(info.st_size + 1)
        except OSError as exc:
            raise ImageLoadError(path, f"the file cannot be read ({exc.strerror or type(exc).__name__})") from None
    if len(data) > max_bytes:
        raise ImageTooLargeError(path, f"the file grew past {max_bytes:,} bytes while being read", max_bytes)
    return data


def _check_dimensions(path, data: bytes, container: str, limit: int) -> None:
    try:
        width, height = image_dimensions(data, container)
    except ValueError as exc:
        raise ImageLoadError(path, str(exc)) from None
    if width < 1 or height < 1:
        raise ImageLoadError(path, f"the {container} header declares an empty image ({width} x {height})")
    if width * height > limit:
        raise ImageTooLargeError(
            path,
            f"the {container} header declares {width} x {height} = {width * height:,} pixels, above the decode "
            f"limit of {limit:,} pixels ({_limit_hint()})",
            limit,
        )


def _decode_pixels(path, data: bytes) -> np.ndarray:
    try:
        with native_stderr_to_log(log, os.fspath(path) if isinstance(path, os.PathLike) else str(path)):
            pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise ImageLoadError(path, f"the decoder failed ({str(exc).strip().splitlines()[-1]})") from exc
    if pixels is None:
        raise ImageLoadError(path, "the decoder could not read it (corrupt or truncated)")
    return pixels


def load_image(path: str | os.PathLike, *, u16_max: int | None = None, max_pixels: int | None = None) -> np.ndarray:
    """Decode an image file to a canonical frame.

    Args:
      path: a PNG, JPEG, BMP or TIFF file.
      u16_max: full-scale value of 16-bit files (1..65535, default 65535; 4095
        for 12-bit data stored in 16-bit PNG/TIFF). Ignored for 8-bit files.
      max_pixels: the decode limit (width x height declared by the header); None
        takes the one in force (:func:`~pyimgano.inputs.resolve_max_pixels`:
        ``image_pixel_limit`` block, ``PYIMGANO_MAX_IMAGE_PIXELS``, default 8192 x 8192).

    Returns:
      ``u8[H, W, 3]`` RGB, C-contiguous (alpha dropped, gray repeated).

    Raises:
      TypeError: ``path`` is not a str or ``os.PathLike``; ``u16_max`` is not an int.
      FileNotFoundError: no file at ``path`` (the message names it).
      ImageLoadError: (a ``ValueError``) the file is unreadable, not an image
        of a supported container, truncated, corrupt, has an unsupported sample
        type, or holds 16-bit values above ``u16_max``; the message names the path.
        It is never a regular file's content: nothing of the file is quoted.
      ImageTooLargeError: (an ``ImageLoadError``) the header declares more than
        ``max_pixels`` pixels, or the file is larger than the limit's byte bound;
        the message names the limit.
      ValueError: ``u16_max`` outside 1..65535, a bad ``max_pixels`` or
        ``PYIMGANO_MAX_IMAGE_PIXELS``.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"image path must be a str or os.PathLike, got {type(path).__name__}: {path!r}")
    full_scale = check_u16_max(u16_max)
    limit = resolve_max_pixels(max_pixels)
    try:
        data = read_regular_file(path, max_file_bytes(limit))
    except ImageTooLargeError as exc:
        raise ImageTooLargeError(
            path, f"{exc.reason} by the decode limit of {limit:,} pixels ({_limit_hint()})", limit
        ) from None
    if not data:
        raise ImageLoadError(path, "the file is empty")
    container = sniff_container(data)
    if container is None:
        raise ImageLoadError(
            path, f"not a {', '.join(SUPPORTED_CONTAINERS)} file (unknown signature; the extension is not trusted)"
        )
    if container in _STRUCTURE_CHECKS:
        try:
            _STRUCTURE_CHECKS[container](data)
        except ValueError as exc:
            raise ImageLoadError(path, str(exc)) from None
    _check_dimensions(path, data, container, limit)
    pixels = _decode_pixels(path, data)
    if pixels.shape[0] * pixels.shape[1] > limit:  # a decoder that disagreed with the header
        raise ImageTooLargeError(
            path, f"decoded {pixels.shape[1]} x {pixels.shape[0]} pixels, above the decode limit of {limit:,}", limit
        )
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels = pixels[..., :3]  # BGRA -> BGR: alpha dropped, never composited
    elif pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    fmt = _DECODED_FORMATS.get((pixels.dtype.name, channels))
    if fmt is None:
        raise ImageLoadError(
            path,
            f"unsupported pixel layout: {channels} channel(s) of {pixels.dtype}; "
            "accepted 1, 3 or 4 channels of 8 or 16 bits",
        )
    if fmt.dtype == "u16" and int(pixels.max()) > full_scale:
        raise ImageLoadError(
            path,
            f"16-bit samples reach {int(pixels.max())}, above u16_max={full_scale} "
            "(set u16_max to the sensor's full scale)",
        )
    return normalize_frames(pixels, fmt, full_scale)
