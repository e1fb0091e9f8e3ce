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
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import cv2
import numpy as np

from pyimgano.inputs.containers import (
    SUPPORTED_CONTAINERS,
    check_jpeg_structure,
    check_png_structure,
    sniff_container,
)
from pyimgano.inputs.formats import ImageFormat
from pyimgano.inputs.normalize import check_u16_max, normalize_frames

__all__ = ["ImageLoadError", "load_image"]

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


def _read_bytes(path) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, "image file not found", os.fspath(path)) from None
    except OSError as exc:  # a directory, no permission, an I/O error
        raise ImageLoadError(path, f"the file cannot be read ({exc.strerror or exc})") from exc


def _decode_pixels(path, data: bytes) -> np.ndarray:
    try:
        pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise ImageLoadError(path, f"the decoder failed ({str(exc).strip().splitlines()[-1]})") from exc
    if pixels is None:
        raise ImageLoadError(path, "the decoder could not read it (corrupt or truncated)")
    return pixels


def load_image(path: str | os.PathLike, *, u16_max: int | None = None) -> np.ndarray:
    """Decode an image file to a canonical frame.

    Args:
      path: a PNG, JPEG, BMP or TIFF file.
      u16_max: full-scale value of 16-bit files (1..65535, default 65535; 4095
        for 12-bit data stored in 16-bit PNG/TIFF). Ignored for 8-bit files.

    Returns:
      ``u8[H, W, 3]`` RGB, C-contiguous (alpha dropped, gray repeated).

    Raises:
      TypeError: ``path`` is not a str or ``os.PathLike``; ``u16_max`` is not an int.
      FileNotFoundError: no file at ``path`` (the message names it).
      ImageLoadError: (a ``ValueError``) the file is unreadable, not an image
        of a supported container, truncated, corrupt, has an unsupported sample
        type, or holds 16-bit values above ``u16_max``; the message names the path.
      ValueError: ``u16_max`` outside 1..65535.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"image path must be a str or os.PathLike, got {type(path).__name__}: {path!r}")
    full_scale = check_u16_max(u16_max)
    data = _read_bytes(path)
    if not data:
        raise ImageLoadError(path, "the file is empty")
    container = sniff_container(data)
    if container is None:
        raise ImageLoadError(
            path, f"not a {', '.join(SUPPORTED_CONTAINERS)} file (starts with {data[:8]!r})"
        )
    if container in _STRUCTURE_CHECKS:
        try:
            _STRUCTURE_CHECKS[container](data)
        except ValueError as exc:
            raise ImageLoadError(path, str(exc)) from None
    pixels = _decode_pixels(path, data)
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
