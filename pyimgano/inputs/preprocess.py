"""Canonical frames -> a backbone's input batch ``f32[N, h, w, 3]`` (NHWC).

Three steps, in this order, all on the host:

1. resize every frame to ``size = (h, w)`` with OpenCV and a named
   interpolation (:data:`INTERPOLATIONS`); resizing happens on the uint8
   frame, so its output is rounded and clamped to 0..255 as a PIL/torchvision
   ``Resize`` on a uint8 image is;
2. optionally take a centre crop of ``crop_size`` (offsets rounded like
   torchvision's ``CenterCrop``);
3. normalise per backbone (:data:`NORMALIZATIONS`): ``"imagenet"``
   ``(x/255 - mean)/std``, ``"efficientnet_lite"`` ``(x - 127)/128``, or
   ``"none"`` ``x/255``; arithmetic in float32.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import cv2
import numpy as np

__all__ = [
    "INTERPOLATIONS",
    "NORMALIZATIONS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "prepare_backbone_input",
    "normalize_for_backbone",
    "resize_frame",
]

# "nearest" is OpenCV's NEAREST_EXACT: it samples pixel centres like the other
# modes (plain INTER_NEAREST is shifted by half a pixel), so maps computed at
# the model's size line up with the frame whatever the interpolation.
# "bilinear" and "bicubic" do not antialias when shrinking; "area" does.
_CV2_FLAGS = {
    "nearest": cv2.INTER_NEAREST_EXACT,
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
    "lanczos": cv2.INTER_LANCZOS4,
}
INTERPOLATIONS: tuple[str, ...] = tuple(_CV2_FLAGS)
NORMALIZATIONS: tuple[str, ...] = ("imagenet", "efficientnet_lite", "none")

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def _check_name(kind: str, value, accepted: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in accepted:
        raise ValueError(f"unknown {kind} {value!r}; accepted: {', '.join(accepted)}")
    return value


def _check_hw(name: str, value) -> tuple[int, int]:
    try:
        h, w = value
        hw = (operator.index(h), operator.index(w))
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair of positive ints (H, W), got {value!r}") from None
    if isinstance(h, bool) or isinstance(w, bool) or min(hw) < 1:
        raise ValueError(f"{name} must be a pair of positive ints (H, W), got {value!r}")
    return hw


def normalize_for_backbone(pixels: np.ndarray, normalization: str) -> np.ndarray:
    """Normalise RGB pixel values for a backbone.

    Args:
      pixels: ``u8[..., 3]``, or ``f32[..., 3]`` on the same 0..255 scale, RGB.
      normalization: one of :data:`NORMALIZATIONS`: ``"imagenet"``
        ``(x/255 - (0.485, 0.456, 0.406)) / (0.229, 0.224, 0.225)``;
        ``"efficientnet_lite"`` ``(x - 127) / 128`` (``(v*255 - 127)/128`` for
        ``v = x/255`` in [0, 1]); ``"none"`` ``x / 255``.

    Returns:
      ``f32[..., 3]`` of the same shape.

    Raises:
      ValueError: an unknown normalisation (the message lists the accepted
        ones), a dtype other than uint8/float32, or a last axis other than 3.
    """
    _check_name("normalization", normalization, NORMALIZATIONS)
    pixels = np.asarray(pixels)
    if pixels.dtype not in (np.uint8, np.float32) or pixels.ndim < 1 or pixels.shape[-1] != 3:
        raise ValueError(
            f"normalize_for_backbone expects uint8 or float32 RGB pixels (..., 3) on the 0..255 scale; "
            f"got {pixels.dtype} array of shape {pixels.shape}"
        )
    x = pixels.astype(np.float32)
    if normalization == "imagenet":
        return (x / np.float32(255) - IMAGENET_MEAN) / IMAGENET_STD
    if normalization == "efficientnet_lite":
        return (x - np.float32(127)) / np.float32(128)
    return x / np.float32(255)


def resize_frame(frame: np.ndarray, size: tuple[int, int], interpolation: str = "bilinear") -> np.ndarray:
    """Resize one ``u8[H, W, 3]`` frame to ``u8[h, w, 3]``, ``size = (h, w)``; same size is a no-op copy.

    Raises:
      ValueError: unknown interpolation (accepted ones listed) or a bad ``size``.
    """
    flag = _CV2_FLAGS[_check_name("interpolation", interpolation, INTERPOLATIONS)]
    h, w = _check_hw("size", size)
    if frame.shape[:2] == (h, w):
        return np.array(frame, copy=True)
    return cv2.resize(frame, (w, h), interpolation=flag)  # OpenCV takes (width, height)


def _frames_list(frames) -> list[np.ndarray]:
    if isinstance(frames, np.ndarray):
        if frames.ndim != 4:
            raise ValueError(
                f"frames must be a canonical batch u8[N, H, W, 3] or a list of u8[H, W, 3]; got {frames.dtype} "
                f"array of shape {frames.shape}"
            )
        frames = list(frames)
    elif not isinstance(frames, Sequence) or isinstance(frames, (str, bytes)):
        raise TypeError(f"frames must be an array u8[N, H, W, 3] or a list of u8[H, W, 3], got {type(frames).__name__}")
    if len(frames) == 0:
        raise ValueError("frames is empty; expected at least one canonical u8[H, W, 3] frame")
    for index, frame in enumerate(frames):
        if not isinstance(frame, np.ndarray):
            raise TypeError(f"frame {index}: expected a numpy array u8[H, W, 3], got {type(frame).__name__}")
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3 or frame.size == 0:
            raise ValueError(
                f"frame {index}: expected canonical RGB u8[H, W, 3] (convert with normalize_numpy_image); "
                f"got {frame.dtype} array of shape {frame.shape}"
            )
    return frames


def prepare_backbone_input(
    frames,
    *,
    size: tuple[int, int],
    interpolation: str = "bilinear",
    normalization: str = "imagenet",
    crop_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Resize, centre-crop and normalise canonical frames into one backbone batch.

    Args:
      frames: ``u8[N, H, W, 3]`` RGB, or a list of ``u8[H, W, 3]`` RGB frames (sizes may differ).
      size: ``(h, w)`` every frame is resized to.
      interpolation: one of :data:`INTERPOLATIONS`.
      normalization: one of :data:`NORMALIZATIONS` (the backbone's ``BackboneSpec.normalization``).
      crop_size: optional ``(ch, cw)`` centre crop taken after the resize, at most ``size``.

    Returns:
      ``f32[N, h, w, 3]`` (or ``f32[N, ch, cw, 3]`` with a crop), C-contiguous NHWC.

    Raises:
      ValueError: unknown interpolation/normalisation (accepted names listed),
        a bad size or crop, an empty input, or a frame that is not canonical.
      TypeError: ``frames`` is neither an array nor a list of arrays.
    """
    _check_name("interpolation", interpolation, INTERPOLATIONS)
    _check_name("normalization", normalization, NORMALIZATIONS)
    h, w = _check_hw("size", size)
    frame_list = _frames_list(frames)
    batch = np.stack([resize_frame(frame, (h, w), interpolation) for frame in frame_list])
    if crop_size is not None:
        ch, cw = _check_hw("crop_size", crop_size)
        if ch > h or cw > w:
            raise ValueError(f"crop_size {(ch, cw)} must fit inside size {(h, w)}")
        # torchvision CenterCrop's offsets: int(round((H - h) / 2)).
        top, left = int(round((h - ch) / 2.0)), int(round((w - cw) / 2.0))
        batch = batch[:, top : top + ch, left : left + cw]
    return np.ascontiguousarray(normalize_for_backbone(batch, normalization))
