"""Pixels of a split: decoded canonical frames, optionally resized (the workbench's ``dataset.resize``)."""

from __future__ import annotations

import os
from typing import Sequence

import cv2
import numpy as np

from pyimgano.inputs import load_image

__all__ = ["check_resize", "load_frame", "load_frames", "resize_to"]


def check_resize(size) -> tuple[int, int] | None:
    """``None`` or a ``(height, width)`` pair of positive integers.

    Raises:
        ValueError: anything else (the message names the value).
    """
    if size is None:
        return None
    try:
        height, width = size
    except (TypeError, ValueError):
        raise ValueError(f"resize must be null or [height, width], got {size!r}") from None
    for v in (height, width):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"resize must be null or [height, width] of positive integers, got {size!r}")
    return int(height), int(width)


def resize_to(frame: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """``frame`` (``u8[H, W, 3]`` or ``f32[H, W]``) at ``size_hw``: area averaging when it shrinks
    (no aliasing), bilinear when it grows; the same size returns the input."""
    h, w = size_hw
    if frame.shape[:2] == (h, w):
        return frame
    shrink = h <= frame.shape[0] and w <= frame.shape[1]
    return cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def load_frame(path: str | os.PathLike, resize: Sequence[int] | None = None) -> np.ndarray:
    """One image as a canonical ``u8[H, W, 3]`` RGB frame, resized to ``resize`` = (h, w) when given.

    Raises:
        pyimgano.inputs.ImageLoadError: the file cannot be read or decoded.
    """
    frame = load_image(path)
    size = check_resize(resize)
    return frame if size is None else resize_to(frame, size)


def load_frames(paths: Sequence[str | os.PathLike], resize: Sequence[int] | None = None) -> list[np.ndarray]:
    """:func:`load_frame` for each path, in order."""
    return [load_frame(p, resize) for p in paths]
