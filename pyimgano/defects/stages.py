"""Map and mask stages of the defects pipeline (host-side numpy/OpenCV).

Each stage is a pure function on ``f32[H, W]`` maps or ``bool[H, W]`` masks;
:func:`pyimgano.defects.extract_defects` chains them in SPEC order.
Connectivity is 8 for foreground everywhere (and 4 for the background when
filling holes, its dual).
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = [
    "as_anomaly_map",
    "interior_mask",
    "ignore_border",
    "smooth_map",
    "threshold_map",
    "hysteresis_threshold",
    "open_close",
    "fill_holes",
]

# cv2.medianBlur handles float32 only for kernels 3 and 5.
_CV2_FLOAT_MEDIAN_KSIZES = (3, 5)
# Rows per block of the numpy median fallback: bounds its window copy to ~rows*W*k*k floats.
_MEDIAN_BLOCK_ROWS = 64


def as_anomaly_map(anomaly_map) -> np.ndarray:
    """Canonical ``f32[H, W]`` C-contiguous copy of a 2-D real, finite map.

    Raises:
      TypeError: not array-like of real numbers.
      ValueError: not 2-D, empty, or containing NaN/inf.
    """
    arr = np.asarray(anomaly_map)
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"anomaly_map must be a real-valued array (f32[H, W]), got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"anomaly_map must be a non-empty 2-D array f32[H, W], got shape {arr.shape}")
    out = np.array(arr, dtype=np.float32, order="C", copy=True)
    if not np.isfinite(out).all():
        bad = int(np.size(out) - np.count_nonzero(np.isfinite(out)))
        raise ValueError(f"anomaly_map of shape {arr.shape} has {bad} non-finite (NaN/inf) values")
    return out


def interior_mask(shape_hw: tuple[int, int], border_px: int) -> np.ndarray:
    """``bool[H, W]``: False within ``border_px`` of any edge (all False if the border covers the map)."""
    h, w = shape_hw
    keep = np.zeros((h, w), dtype=bool)
    b = int(border_px)
    if 2 * b < h and 2 * b < w:
        keep[b : h - b, b : w - b] = True
    return keep


def ignore_border(anomaly_map: np.ndarray, border_px: int) -> np.ndarray:
    """Flatten a ``border_px`` frame of ``f32[H, W]`` to the map minimum.

    The minimum (not 0) is used because maps may be negative after
    normalisation, and a low value keeps edge artefacts from bleeding inward
    through the smoothing that follows.  Masks separately exclude the frame
    (:func:`interior_mask`), so it never becomes foreground whatever the
    threshold.
    """
    if border_px <= 0:
        return anomaly_map
    keep = interior_mask(anomaly_map.shape, border_px)
    out = anomaly_map.copy()
    out[~keep] = anomaly_map.min()
    return out


def _median_numpy(anomaly_map: np.ndarray, ksize: int) -> np.ndarray:
    # Same border rule as cv2.medianBlur (replicate), computed in row blocks to bound memory.
    r = ksize // 2
    padded = np.pad(anomaly_map, r, mode="edge")
    h = anomaly_map.shape[0]
    out = np.empty_like(anomaly_map)
    for y0 in range(0, h, _MEDIAN_BLOCK_ROWS):
        y1 = min(y0 + _MEDIAN_BLOCK_ROWS, h)
        windows = np.lib.stride_tricks.sliding_window_view(padded[y0 : y1 + 2 * r], (ksize, ksize))
        out[y0:y1] = np.median(windows.reshape(windows.shape[0], windows.shape[1], -1), axis=-1)
    return out


def smooth_map(anomaly_map: np.ndarray, method: str, ksize: int, sigma: float) -> np.ndarray:
    """Smooth ``f32[H, W]`` with ``none | median | gaussian | box``.

    median: ``cv2.medianBlur`` (replicated border) for ksize 3/5, an exact
    numpy equivalent for larger odd sizes (OpenCV has no float median beyond
    5).  gaussian: ``cv2.GaussianBlur((ksize, ksize), sigma)``; ksize 0 derives
    the size from sigma, sigma 0 derives it from ksize.  box: ``cv2.blur``
    (normalised mean).  OpenCV's default reflect-101 border for the last two.

    Raises:
      ValueError: unknown method.
    """
    if method == "none":
        return anomaly_map
    if method == "median":
        if ksize in _CV2_FLOAT_MEDIAN_KSIZES:
            return cv2.medianBlur(anomaly_map, ksize)
        return _median_numpy(anomaly_map, ksize)
    if method == "gaussian":
        return cv2.GaussianBlur(anomaly_map, (ksize, ksize), sigmaX=sigma, sigmaY=sigma)
    if method == "box":
        return cv2.blur(anomaly_map, (ksize, ksize))
    raise ValueError(f"map_smoothing={method!r} is not accepted; accepted: ['none', 'median', 'gaussian', 'box']")


def threshold_map(anomaly_map: np.ndarray, threshold: float) -> np.ndarray:
    """``bool[H, W]``: ``map >= threshold`` (SPEC: plain threshold is ``>=``)."""
    return anomaly_map >= np.float32(threshold)


def hysteresis_threshold(anomaly_map: np.ndarray, *, low: float, high: float) -> np.ndarray:
    """``bool[H, W]``: 8-connected components of ``map >= low`` that contain a pixel ``>= high``.

    Raises:
      ValueError: ``low > high``.
    """
    if low > high:
        raise ValueError(f"hysteresis low threshold {low} must be <= high threshold {high}")
    weak = threshold_map(anomaly_map, low)
    strong = threshold_map(anomaly_map, high)
    if not strong.any():
        return np.zeros_like(weak)
    _, labels = cv2.connectedComponents(weak.view(np.uint8), connectivity=8, ltype=cv2.CV_32S)
    seeded = np.zeros(int(labels.max()) + 1, dtype=bool)
    seeded[labels[strong]] = True
    seeded[0] = False
    return seeded[labels]


def open_close(mask: np.ndarray, *, open_ksize: int, close_ksize: int) -> np.ndarray:
    """Binary opening then closing of ``bool[H, W]`` with square kernels (size <= 1 skips).

    OpenCV's default morphology border leaves pixels at the map edge neither
    eroded nor grown by the frame outside the map.
    """
    out = mask.view(np.uint8)
    if open_ksize > 1:
        out = cv2.morphologyEx(out, cv2.MORPH_OPEN, np.ones((open_ksize, open_ksize), np.uint8))
    if close_ksize > 1:
        out = cv2.morphologyEx(out, cv2.MORPH_CLOSE, np.ones((close_ksize, close_ksize), np.uint8))
    return out.astype(bool)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill background of ``bool[H, W]`` not 4-connected to the map edge.

    4-connected background is the dual of 8-connected foreground, so a hole
    is exactly what an 8-connected ring encloses.  ``cv2.floodFill`` marks the
    outside from a one-pixel background frame added around the mask.
    """
    h, w = mask.shape
    canvas = np.zeros((h + 2, w + 2), dtype=np.uint8)
    canvas[1:-1, 1:-1] = mask
    flood_mask = np.zeros((h + 4, w + 4), dtype=np.uint8)
    cv2.floodFill(canvas, flood_mask, (0, 0), 2, flags=4)
    return canvas[1:-1, 1:-1] != 2
