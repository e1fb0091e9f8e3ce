"""Declared-format arrays -> canonical RGB / uint8 / HWC frames.

Canonical form is what every detector sees: ``u8[H, W, 3]`` RGB, C-contiguous
(or ``u8[N, H, W, 3]`` for a batch).  Conversions are exact and documented:

* ``u8``: copied unchanged (channel order / layout fixed up only);
* ``f32`` in [0, 1]: ``np.rint(x * 255)`` computed in float32, so ties round
  to even (``0.5 -> 128``; ``0.3 -> 76`` because ``float32(0.3) * 255`` is
  exactly ``76.5`` in float32);
* ``u16``: ``np.rint(x * 255 / u16_max)`` in float64 (``u16_max`` 65535 by
  default, 4095 for a 12-bit sensor: ``4095 -> 255``, ``2048 -> 128``);
* gray is repeated to three channels, ``chw`` is transposed, ``bgr`` reversed.

Nothing is clipped and nothing is guessed: a value outside the declared range
is an error, not a saturated pixel.
"""

from __future__ import annotations

import operator

import numpy as np

from pyimgano.inputs.formats import ImageFormat, parse_image_format

__all__ = ["normalize_numpy_image", "normalize_frames", "check_frames_shape", "check_u16_max", "DEFAULT_U16_MAX"]

DEFAULT_U16_MAX = 65535


def check_u16_max(u16_max) -> int:
    """The full-scale value for 16-bit samples: ``u16_max`` or the default 65535.

    Raises:
      TypeError: ``u16_max`` is not an integer (a bool or float is refused).
      ValueError: ``u16_max`` is outside 1..65535.
    """
    if u16_max is None:
        return DEFAULT_U16_MAX
    if isinstance(u16_max, bool):
        raise TypeError(f"u16_max must be an int in 1..65535, got {u16_max!r}")
    try:
        value = operator.index(u16_max)
    except TypeError:
        raise TypeError(f"u16_max must be an int in 1..65535, got {type(u16_max).__name__}: {u16_max!r}") from None
    if not 1 <= value <= 65535:
        raise ValueError(f"u16_max must be in 1..65535 (e.g. 4095 for 12-bit sensors), got {value}")
    return value


def _describe(array: np.ndarray) -> str:
    return f"{array.dtype} array of shape {tuple(array.shape)}"


def _expected(fmt: ImageFormat) -> str:
    batch = "(N, " + fmt.frame_shape[1:]
    return f"{fmt.numpy_dtype} {fmt.frame_shape} or a batch {batch}, values {fmt.value_range}"


def _as_array(image, fmt: ImageFormat, where: str) -> np.ndarray:
    if isinstance(image, np.ndarray):
        return image
    # Device arrays (jax, torch CPU tensors) expose __array__ plus a shape and
    # dtype; nested lists and scalars do not, and are refused.
    if hasattr(image, "__array__") and hasattr(image, "shape") and hasattr(image, "dtype"):
        return np.asarray(image)
    raise TypeError(
        f"{where}declared {fmt.name}: expected a numpy array ({_expected(fmt)}), got {type(image).__name__}"
    )


# A batch of gray frames whose last axis has one of these sizes is refused: (H, W, 3) or
# (H, W, 1) declared gray is far more likely a colour or channel-last image than H frames
# 3 pixels wide (such frames can still be passed as a list of (H, W) arrays).
_CHANNEL_LIKE = (1, 3, 4)


def check_frames_shape(array, fmt: ImageFormat, where: str = "") -> None:
    """Raise ValueError unless ``array``'s dtype, ndim, channels and size fit a frame or batch of ``fmt``.

    Values are not looked at (see :func:`normalize_frames`).
    """

    def fail(problem: str) -> ValueError:
        return ValueError(f"{where}declared {fmt.name}: expected {_expected(fmt)}; got {_describe(array)} ({problem})")

    # Byte order is not part of the format: a big-endian uint16 raw dump is still u16.
    if array.dtype.kind != fmt.numpy_dtype.kind or array.dtype.itemsize != fmt.numpy_dtype.itemsize:
        raise fail(f"dtype must be {fmt.numpy_dtype}")
    if array.ndim not in (fmt.frame_ndim, fmt.frame_ndim + 1):
        raise fail(f"ndim must be {fmt.frame_ndim} for one frame or {fmt.frame_ndim + 1} for a batch")
    channel_axis = {"hwc": -1, "chw": -3, "hw": None}[fmt.layout]
    if channel_axis is not None and array.shape[channel_axis] != 3:
        axis = "the last axis (C of H, W, C)" if fmt.layout == "hwc" else "axis C of (C, H, W)"
        raise fail(f"{axis} must hold 3 channels, it holds {array.shape[channel_axis]}")
    if fmt.layout == "hw" and array.ndim == 3 and array.shape[-1] in _CHANNEL_LIKE:
        raise fail(
            f"as a batch this would be {array.shape[0]} frames {array.shape[-1]} pixel(s) wide; the last axis "
            "looks like colour channels: declare an hwc format, squeeze an (H, W, 1) axis, or pass frames "
            "this narrow as a list of (H, W) arrays"
        )
    if array.size == 0:
        raise fail("the array is empty")


def _check_array(array: np.ndarray, fmt: ImageFormat, u16_max: int, where: str) -> None:
    """Raise ValueError unless ``array`` is a frame or batch of ``fmt`` with in-range values."""

    def fail(problem: str) -> ValueError:
        return ValueError(f"{where}declared {fmt.name}: expected {_expected(fmt)}; got {_describe(array)} ({problem})")

    check_frames_shape(array, fmt, where)
    if fmt.dtype == "f32":
        finite = np.isfinite(array)
        if not finite.all():
            raise fail(f"{int(array.size - np.count_nonzero(finite))} non-finite values (NaN/inf)")
        low, high = float(array.min()), float(array.max())
        if low < 0.0 or high > 1.0:
            raise fail(f"values span [{low:.6g}, {high:.6g}], outside [0, 1]")
    elif fmt.dtype == "u16":
        high = int(array.max())
        if high > u16_max:
            raise fail(f"max value {high} exceeds u16_max={u16_max}")


def _to_u8(array: np.ndarray, fmt: ImageFormat, u16_max: int) -> np.ndarray:
    if fmt.dtype == "u8":
        return array
    if fmt.dtype == "f32":
        # float32 arithmetic on purpose: the contract is np.rint(x * 255) on the
        # declared float32 values (0.3 -> 76), not on their float64 widening.
        scaled = np.rint(array.astype(np.float32, copy=False) * np.float32(255))
    else:
        # float64 represents x*255 exactly and rounds the quotient correctly, so
        # true ties (none exist for 65535) go to even as documented.
        scaled = np.rint(array.astype(np.float64) * 255.0 / float(u16_max))
    return scaled.astype(np.uint8)


def normalize_numpy_image(image, *, input_format, u16_max: int | None = None) -> np.ndarray:
    """Convert a frame (or a batch of frames) of a declared format to canonical RGB/u8/HWC.

    Whether ``image`` is one frame or a batch is decided by its ndim against
    the format's layout only: ``hwc``/``chw`` frames have 3 dims, ``hw`` frames
    2; one more leading dim is a batch ``N``.

    Args:
      image: ``np.ndarray`` of ``input_format``: e.g. ``u8[H, W, 3]`` for
        ``bgr_u8_hwc``, ``f32[3, H, W]`` in [0, 1] for ``rgb_f32_chw``,
        ``u16[H, W]`` for ``gray_u16_hw``; or a batch with a leading ``N``.
        Arrays exposing ``__array__`` (jax / CPU torch) are converted first.
      input_format: an :class:`ImageFormat` or its name. Required; never guessed.
      u16_max: full-scale value of 16-bit samples (1..65535, default 65535;
        4095 for a 12-bit sensor). Validated always, used by ``u16`` formats only.

    Returns:
      ``u8[H, W, 3]`` (or ``u8[N, H, W, 3]``) RGB, C-contiguous, never a view of ``image``.

    Raises:
      TypeError: ``image`` is not an array, or ``input_format``/``u16_max`` has the wrong type.
      ValueError: unknown format name; wrong dtype, ndim or channel count; an
        empty array; a gray batch ``(N, H, W)`` whose last axis holds 1, 3 or 4
        (it looks like a colour image); float values outside [0, 1] or
        non-finite; u16 values above ``u16_max``.  The message names the declared format, what it expects and
        what arrived.
    """
    return normalize_frames(image, parse_image_format(input_format), check_u16_max(u16_max))


def normalize_frames(image, fmt: ImageFormat, u16_max: int, where: str = "") -> np.ndarray:
    """:func:`normalize_numpy_image` for a parsed format and checked ``u16_max``.

    ``where`` prefixes error messages (``"frame 3: "``) so a caller converting a
    list can say which element was rejected.
    """
    source = _as_array(image, fmt, where)
    _check_array(source, fmt, u16_max, where)
    out = _to_u8(source.astype(fmt.numpy_dtype, copy=False), fmt, u16_max)  # native byte order
    if fmt.layout == "chw":
        out = np.moveaxis(out, -3, -1)
    if fmt.color == "gray":
        out = np.repeat(out[..., None], 3, axis=-1)
    elif fmt.color == "bgr":
        out = out[..., ::-1]
    if np.may_share_memory(out, source):
        return np.array(out, dtype=np.uint8, order="C", copy=True)
    return np.ascontiguousarray(out, dtype=np.uint8)
