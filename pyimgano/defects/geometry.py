"""Pixel geometry shared by the defects stages: ROI rectangles and map -> image boxes.

Conventions: arrays are ``[H, W]`` (row ``y``, column ``x``); boxes are
``[x1, y1, x2, y2]`` with *inclusive* pixel indices; pixel ``(x, y)`` covers the
square ``[x, x+1) x [y, y+1)``.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = ["roi_pixel_box", "roi_mask", "scale_bbox_xyxy"]

# Tolerance for normalised ROI edges: 0.7 * 10 is 7.000000000000001 in floating point,
# and that must still mean "edge at pixel 7", not "include pixel 7".
_EDGE_EPS = 1e-9


def _check_hw(shape_hw: Sequence[int], name: str) -> tuple[int, int]:
    if len(shape_hw) != 2 or any(int(v) != v or int(v) <= 0 for v in shape_hw):
        raise ValueError(f"{name} must be (H, W) with positive integers, got {tuple(shape_hw)!r}")
    return int(shape_hw[0]), int(shape_hw[1])


def roi_pixel_box(shape_hw: Sequence[int], roi_xyxy_norm: Sequence[float] | None) -> tuple[int, int, int, int]:
    """The ROI as a half-open pixel box ``(x0, y0, x1, y1)`` of a ``[H, W]`` map.

    Every pixel the normalised rectangle touches is inside: ``x0 =
    floor(x1_norm * W)`` and ``x1 = ceil(x2_norm * W)`` (exclusive), the same
    for rows, with a 1e-9 tolerance so that edges landing on a pixel boundary
    are not pushed over it by rounding.  A valid ROI (``x1 < x2``) always
    covers at least one pixel.  ``None`` gives the whole map.

    Raises:
      ValueError: ``shape_hw`` is not two positive ints, or the ROI is not four
        numbers with ``0 <= x1 < x2 <= 1`` and ``0 <= y1 < y2 <= 1``.
    """
    h, w = _check_hw(shape_hw, "shape_hw")
    if roi_xyxy_norm is None:
        return 0, 0, w, h
    roi = tuple(float(v) for v in roi_xyxy_norm)
    if len(roi) != 4 or not (0.0 <= roi[0] < roi[2] <= 1.0 and 0.0 <= roi[1] < roi[3] <= 1.0):
        raise ValueError(
            f"roi_xyxy_norm must be [x1, y1, x2, y2] with 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1, got {roi_xyxy_norm!r}"
        )
    x0 = int(math.floor(roi[0] * w + _EDGE_EPS))
    y0 = int(math.floor(roi[1] * h + _EDGE_EPS))
    x1 = int(math.ceil(roi[2] * w - _EDGE_EPS))
    y1 = int(math.ceil(roi[3] * h - _EDGE_EPS))
    x0, y0 = min(max(x0, 0), w - 1), min(max(y0, 0), h - 1)
    x1, y1 = min(max(x1, x0 + 1), w), min(max(y1, y0 + 1), h)
    return x0, y0, x1, y1


def roi_mask(shape_hw: Sequence[int], roi_xyxy_norm: Sequence[float] | None) -> np.ndarray:
    """``bool[H, W]``, True inside :func:`roi_pixel_box` (everywhere when the ROI is None)."""
    h, w = _check_hw(shape_hw, "shape_hw")
    x0, y0, x1, y1 = roi_pixel_box((h, w), roi_xyxy_norm)
    out = np.zeros((h, w), dtype=bool)
    out[y0:y1, x0:x1] = True
    return out


def scale_bbox_xyxy(bbox_xyxy: Sequence[int], *, src_hw: Sequence[int], dst_hw: Sequence[int]) -> list[int]:
    """Map an inclusive box from a ``src`` grid to a ``dst`` grid covering the same image.

    The box's pixel *edges* are scaled and the result is every destination
    pixel the scaled box touches::

        x1_dst = floor(x1 * sx)            sx = W_dst / W_src
        x2_dst = ceil((x2 + 1) * sx) - 1   (likewise for y with sy = H_dst / H_src)

    so map 4x4 ``[1, 1, 2, 2]`` -> image 8x8 ``[2, 2, 5, 5]``.  Integer
    arithmetic keeps it exact; the result always lies inside the destination
    grid and has ``x2 >= x1``.

    Raises:
      ValueError: non-positive shapes, or a box that is not inside ``src``.
    """
    sh, sw = _check_hw(src_hw, "src_hw")
    dh, dw = _check_hw(dst_hw, "dst_hw")
    x1, y1, x2, y2 = (int(v) for v in bbox_xyxy)
    if not (0 <= x1 <= x2 < sw and 0 <= y1 <= y2 < sh):
        raise ValueError(f"bbox_xyxy {list(bbox_xyxy)!r} is not an inclusive box inside a {sh}x{sw} grid")

    def lo(v: int, d: int, s: int) -> int:
        return (v * d) // s

    def hi(v: int, d: int, s: int) -> int:
        return -((-(v + 1) * d) // s) - 1  # ceil((v + 1) * d / s) - 1

    return [lo(x1, dw, sw), lo(y1, dh, sh), hi(x2, dw, sw), hi(y2, dh, sh)]
