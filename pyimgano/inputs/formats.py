"""Declared in-memory image formats.

An :class:`ImageFormat` says, for an array handed to the library, which
channel order (``rgb``, ``bgr``, ``gray``), sample type (``u8``, ``u16``,
``f32`` in [0, 1]) and axis layout (``hwc``, ``chw``, ``hw``) it has.  The
library never infers any of these from the data: an OpenCV frame and a PIL
frame of the same shape and dtype differ only in the declaration.

The set of formats is closed (:data:`IMAGE_FORMATS`); each one is a named
constant on the class (``ImageFormat.BGR_U8_HWC``) and parses from its name
(``parse_image_format("bgr_u8_hwc")``).
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import numpy as np

__all__ = ["ImageFormat", "IMAGE_FORMATS", "parse_image_format"]

# (color, dtype, layout) of every accepted format, in documentation order.
_TABLE: tuple[tuple[str, str, str], ...] = (
    ("bgr", "u8", "hwc"),
    ("rgb", "u8", "hwc"),
    ("rgb", "f32", "chw"),
    ("gray", "u8", "hw"),
    ("gray", "u16", "hw"),
    ("rgb", "u16", "hwc"),
    ("bgr", "u16", "hwc"),
    ("rgb", "f32", "hwc"),
    ("bgr", "f32", "hwc"),
)

_NUMPY_DTYPES = {"u8": np.dtype(np.uint8), "u16": np.dtype(np.uint16), "f32": np.dtype(np.float32)}


@attrs.frozen
class ImageFormat:
    """One declared image format, e.g. ``bgr_u8_hwc`` (OpenCV frames).

    Attributes:
      color: ``"rgb"``, ``"bgr"`` or ``"gray"``.
      dtype: ``"u8"`` (uint8, 0..255), ``"u16"`` (uint16, 0..u16_max) or
        ``"f32"`` (float32, values in [0, 1]).
      layout: ``"hwc"``, ``"chw"`` (color formats) or ``"hw"`` (gray).
      name: ``f"{color}_{dtype}_{layout}"``; also ``str(fmt)``.

    Raises:
      ValueError: the combination is not one of :data:`IMAGE_FORMATS`.
    """

    color: str
    dtype: str
    layout: str
    name: str = attrs.field(
        init=False, default=attrs.Factory(lambda s: f"{s.color}_{s.dtype}_{s.layout}", takes_self=True)
    )

    BGR_U8_HWC: ClassVar[ImageFormat]
    RGB_U8_HWC: ClassVar[ImageFormat]
    RGB_F32_CHW: ClassVar[ImageFormat]
    GRAY_U8_HW: ClassVar[ImageFormat]
    GRAY_U16_HW: ClassVar[ImageFormat]
    RGB_U16_HWC: ClassVar[ImageFormat]
    BGR_U16_HWC: ClassVar[ImageFormat]
    RGB_F32_HWC: ClassVar[ImageFormat]
    BGR_F32_HWC: ClassVar[ImageFormat]

    def __attrs_post_init__(self) -> None:
        if (self.color, self.dtype, self.layout) not in _TABLE:
            accepted = ", ".join("_".join(row) for row in _TABLE)
            raise ValueError(f"unsupported image format {self.name!r}; accepted: {accepted}")

    def __str__(self) -> str:
        return self.name

    @classmethod
    def all(cls) -> tuple[ImageFormat, ...]:
        """Every accepted format, in documentation order."""
        return IMAGE_FORMATS

    @property
    def numpy_dtype(self) -> np.dtype:
        """The numpy dtype arrays of this format must have (``uint8``, ``uint16``, ``float32``)."""
        return _NUMPY_DTYPES[self.dtype]

    @property
    def frame_ndim(self) -> int:
        """Dimensions of one frame: 2 for ``hw``, 3 for ``hwc``/``chw``; a batch has one more."""
        return 2 if self.layout == "hw" else 3

    @property
    def frame_shape(self) -> str:
        """One frame's shape in letters, e.g. ``"(H, W, 3)"``."""
        return {"hwc": "(H, W, 3)", "chw": "(3, H, W)", "hw": "(H, W)"}[self.layout]

    @property
    def value_range(self) -> str:
        """The accepted sample values, in words."""
        return {"u8": "0..255", "u16": "0..u16_max (default 65535)", "f32": "[0, 1], finite"}[self.dtype]


IMAGE_FORMATS: tuple[ImageFormat, ...] = tuple(ImageFormat(*row) for row in _TABLE)
for _fmt in IMAGE_FORMATS:
    setattr(ImageFormat, _fmt.name.upper(), _fmt)
del _fmt

_BY_NAME = {fmt.name: fmt for fmt in IMAGE_FORMATS}


def parse_image_format(value: str | ImageFormat) -> ImageFormat:
    """The :class:`ImageFormat` constant for ``value``.

    Args:
      value: an ``ImageFormat`` or its name (``"bgr_u8_hwc"``; case and
        surrounding spaces are ignored).

    Returns:
      The named constant (``parse_image_format("bgr_u8_hwc") is ImageFormat.BGR_U8_HWC``).

    Raises:
      ValueError: an unknown name, including ``"auto"``: formats are declared, never guessed.
      TypeError: ``value`` is neither a str nor an ``ImageFormat``.
    """
    if isinstance(value, ImageFormat):
        return _BY_NAME[value.name]
    if not isinstance(value, str):
        raise TypeError(f"image format must be an ImageFormat or its name (str), got {type(value).__name__}: {value!r}")
    key = value.strip().lower()
    if key not in _BY_NAME:
        hint = " (formats are declared, never guessed)" if key == "auto" else ""
        raise ValueError(f"unknown image format {value!r}{hint}; accepted: {', '.join(_BY_NAME)}")
    return _BY_NAME[key]
