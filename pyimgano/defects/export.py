"""Mask and overlay files for defects (host-side numpy/OpenCV).

Every write is atomic: bytes go to a temporary file in the destination folder,
which then replaces the target with ``os.replace``, so a crash never leaves a
half-written mask or overlay behind.
"""

from __future__ import annotations

import io
import os
from typing import Any

import cv2
import numpy as np

from pyimgano.defects.config import MASK_FORMATS
from pyimgano.defects.stages import as_anomaly_map
from pyimgano.fileio import atomic_write_bytes

__all__ = ["save_mask", "render_overlay", "save_overlay"]

# Colours (RGB) of the mask panel: fill blended at _MASK_FILL_ALPHA, outline drawn solid.
_MASK_FILL_RGB = (255, 0, 0)
_MASK_OUTLINE_RGB = (255, 255, 0)
_MASK_FILL_ALPHA = 0.4


def _as_mask_u8(mask: Any) -> np.ndarray:
    arr = np.asarray(mask)
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"mask must be a non-empty 2-D array [H, W], got shape {arr.shape}")
    if arr.dtype == bool:
        return np.where(arr, np.uint8(255), np.uint8(0))
    if not np.issubdtype(arr.dtype, np.integer) or not np.isin(arr, (0, 255)).all():
        raise ValueError("mask must be bool or integers in {0, 255} (u8[H, W] from extract_defects)")
    return arr.astype(np.uint8)


def save_mask(path: str | os.PathLike, mask: Any, fmt: str = "png") -> dict[str, Any]:
    """Write a defect mask as an 8-bit PNG (0/255) or a ``.npy`` of ``u8[H, W]``.

    Args:
      path: destination file (the extension is not changed or checked).
      mask: ``u8[H, W]`` in {0, 255} or ``bool[H, W]``.
      fmt: ``png`` or ``npy``.

    Returns:
      ``{"path": str, "shape": [H, W], "dtype": "uint8", "encoding": fmt}``,
      the JSONL ``mask`` block (callers may rewrite ``path`` relative to their
      output folder).

    Raises:
      ValueError: unknown ``fmt`` or a mask that is not 2-D 0/255.
    """
    if fmt not in MASK_FORMATS:
        raise ValueError(f"mask format {fmt!r} is not accepted; accepted: {list(MASK_FORMATS)}")
    m = _as_mask_u8(mask)
    if fmt == "png":
        ok, buf = cv2.imencode(".png", m)
        if not ok:  # pragma: no cover - OpenCV encodes any u8 2-D array
            raise RuntimeError(f"OpenCV could not encode a {m.shape} mask as PNG")
        data = buf.tobytes()
    else:
        bio = io.BytesIO()
        np.save(bio, m, allow_pickle=False)
        data = bio.getvalue()
    written = atomic_write_bytes(path, data)
    return {"path": written, "shape": [int(m.shape[0]), int(m.shape[1])], "dtype": "uint8", "encoding": fmt}


def _as_image_rgb(image: Any) -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise ValueError(f"image must be uint8 RGB [H, W, 3] (or gray [H, W]), got dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"image must be uint8 RGB [H, W, 3] (or gray [H, W]), got shape {arr.shape}")
    return np.ascontiguousarray(arr)


def render_overlay(
    image_rgb_u8: Any,
    anomaly_map: Any,
    mask: Any,
    *,
    alpha: float = 0.5,
    vmin: float | None = None,
    vmax: float | None = None,
) -> np.ndarray:
    """Three panels side by side for false-positive review, ``u8[H, 3W, 3]`` RGB.

    Panels: the original image; the anomaly map as a JET heat map blended over
    it (``alpha`` weight on the heat map); the mask filled (red, 40 %) and
    outlined (yellow, 1 px contours) over the original.  Map and mask are in
    map space and are resized to the image (bilinear for the map, nearest for
    the mask).  The heat map spans ``[vmin, vmax]`` (default: the map's own
    min and max; pass the pixel threshold range to compare images).

    Raises:
      ValueError: image not uint8 ``[H, W, 3]``/``[H, W]``, bad map, mask not
        2-D 0/255 or of a different shape than the map, ``alpha`` outside [0, 1].
    """
    img = _as_image_rgb(image_rgb_u8)
    amap = as_anomaly_map(anomaly_map)
    m = _as_mask_u8(mask)
    if m.shape != amap.shape:
        raise ValueError(f"mask shape {m.shape} differs from anomaly_map shape {amap.shape}")
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    h, w = img.shape[:2]
    lo = float(amap.min()) if vmin is None else float(vmin)
    hi = float(amap.max()) if vmax is None else float(vmax)
    scale = 1.0 / (hi - lo) if hi > lo else 0.0
    norm = np.clip((amap - lo) * scale, 0.0, 1.0)
    norm = cv2.resize(norm, (w, h), interpolation=cv2.INTER_LINEAR)
    heat_bgr = cv2.applyColorMap(np.round(norm * 255.0).astype(np.uint8), cv2.COLORMAP_JET)
    heat = cv2.cvtColor(heat_bgr, cv2.COLOR_BGR2RGB)
    blend = cv2.addWeighted(heat, float(alpha), img, 1.0 - float(alpha), 0.0)

    m_img = cv2.resize(m, (w, h), interpolation=cv2.INTER_NEAREST)
    fill = img.copy()
    fg = m_img > 0
    fill_colour = np.array(_MASK_FILL_RGB, dtype=np.float32)
    fill[fg] = np.round(
        img[fg].astype(np.float32) * (1.0 - _MASK_FILL_ALPHA) + fill_colour * _MASK_FILL_ALPHA
    ).astype(np.uint8)
    contours, _ = cv2.findContours(m_img, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(fill, contours, -1, _MASK_OUTLINE_RGB, 1)
    return np.concatenate([img, blend, fill], axis=1)


def save_overlay(path: str | os.PathLike, image_rgb_u8: Any, anomaly_map: Any, mask: Any, **render_kwargs: Any) -> str:
    """:func:`render_overlay` written as PNG (atomic); returns the path.

    Raises:
      ValueError: as :func:`render_overlay`.
    """
    panel = render_overlay(image_rgb_u8, anomaly_map, mask, **render_kwargs)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(panel, cv2.COLOR_RGB2BGR))
    if not ok:  # pragma: no cover
        raise RuntimeError("OpenCV could not encode the overlay as PNG")
    return atomic_write_bytes(path, buf.tobytes())
