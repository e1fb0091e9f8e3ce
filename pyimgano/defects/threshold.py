"""Pixel threshold resolution with provenance (SPEC section 7).

Every defects result carries the threshold it used and a provenance dict
saying where it came from, so a deployed mask can be audited::

    {"method": "fixed", "source": "explicit"}          # --pixel-threshold / config.pixel_threshold
    {"method": "fixed", "source": "infer_config"}      # infer_config.json defects.pixel_threshold
    {"method": "normal_pixel_quantile", "source": "train_dir",
     "q": 0.999, "n_maps": 12, "n_pixels": 786432}     # quantile of normal pixels
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable

import numpy as np

from pyimgano.defects.config import DefectsConfig
from pyimgano.defects.geometry import roi_pixel_box
from pyimgano.defects.stages import as_anomaly_map

__all__ = ["resolve_pixel_threshold", "calibrate_normal_pixel_quantile", "MISSING_THRESHOLD_MESSAGE"]

MISSING_THRESHOLD_MESSAGE = (
    "defects need a pixel threshold and none was provided; provide one of: "
    "--pixel-threshold FLOAT (a fixed value), "
    "an infer-config whose defects block sets defects.pixel_threshold, or "
    "--train-dir DIR with --pixel-threshold-strategy normal_pixel_quantile "
    "(calibrate the quantile --pixel-normal-quantile, default 0.999, of normal pixels)"
)


def calibrate_normal_pixel_quantile(
    normal_maps: Iterable[Any], *, q: float = 0.999, roi_xyxy_norm=None
) -> tuple[float, int, int]:
    """Quantile ``q`` of the pixels of anomaly maps of normal images.

    Maps are consumed one at a time (a generator that computes each map is
    fine); only the selected pixels of each are kept, as float32, and the
    quantile (numpy's default linear interpolation) is taken once over their
    concatenation.  That holds ``4 * n_pixels`` bytes, which is modest for
    calibration sets (200 maps of 256x256 are 52 MB); maps may differ in shape.
    Pixels are the raw map values (before border ignore or smoothing); with a
    ROI only pixels inside it (:func:`roi_pixel_box` of each map) count.

    Args:
      normal_maps: iterable of real ``[H, W]`` maps.
      q: quantile in (0, 1).
      roi_xyxy_norm: None or ``[x1, y1, x2, y2]`` fractions of each map.

    Returns:
      ``(threshold, n_maps, n_pixels)``.

    Raises:
      ValueError: ``q`` outside (0, 1), no maps, a map that is not 2-D finite
        real, or a bad ROI.
    """
    if not (isinstance(q, numbers.Real) and not isinstance(q, bool) and 0.0 < float(q) < 1.0):
        raise ValueError(f"pixel normal quantile q={q!r} is not accepted; accepted: a number in (0, 1)")
    chunks: list[np.ndarray] = []
    n_maps = 0
    for m in normal_maps:
        arr = as_anomaly_map(m)
        x0, y0, x1, y1 = roi_pixel_box(arr.shape, roi_xyxy_norm)
        chunks.append(arr[y0:y1, x0:x1].ravel())
        n_maps += 1
    if n_maps == 0:
        raise ValueError("normal_pixel_quantile calibration got no normal maps (is --train-dir empty?)")
    pixels = np.concatenate(chunks)
    # Shortest float that reads back to the same float32: thresholding is unchanged and the JSON is clean.
    value = float(str(np.float32(np.quantile(pixels, float(q)))))
    return value, n_maps, int(pixels.size)


def _finite(value: Any, what: str) -> float:
    if not (isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def resolve_pixel_threshold(
    config: DefectsConfig,
    *,
    infer_config_value: float | None = None,
    normal_maps: Iterable[Any] | None = None,
) -> tuple[float, dict[str, Any]]:
    """Choose the pixel threshold and say where it came from.

    Order (SPEC section 7):

    1. ``config.pixel_threshold`` (the CLI's ``--pixel-threshold``):
       ``{"method": "fixed", "source": "explicit"}``.
    2. ``config.pixel_threshold_strategy == "normal_pixel_quantile"`` and
       ``normal_maps`` given: the quantile, even when an infer-config value
       exists (a train-dir quantile request overrides it).
    3. ``infer_config_value`` (an infer-config's ``defects.pixel_threshold``,
       see :func:`pyimgano.defects.config_from_infer_config`):
       ``{"method": "fixed", "source": "infer_config"}``.
    4. strategy None (auto) and ``normal_maps`` given:
       ``calibrate_normal_pixel_quantile(normal_maps,
       q=config.pixel_normal_quantile, roi_xyxy_norm=config.roi_xyxy_norm)``
       with ``{"method": "normal_pixel_quantile", "source": "train_dir", "q",
       "n_maps", "n_pixels"}``.  Strategies ``fixed`` and ``infer_config``
       never calibrate.
    5. Otherwise ``ValueError`` (:data:`MISSING_THRESHOLD_MESSAGE`).

    ``normal_maps`` is iterated only in cases 2 and 4, so a lazy generator
    costs nothing when a fixed value wins.

    Returns:
      ``(threshold, provenance)``; provenance values are plain python types.

    Raises:
      ValueError: no threshold can be resolved (the message names the three
        ways to provide one), a non-finite ``infer_config_value``, or a
        calibration error.
    """
    if not isinstance(config, DefectsConfig):
        raise TypeError(f"config must be a DefectsConfig, got {type(config).__name__}")
    if config.pixel_threshold is not None:
        return float(config.pixel_threshold), {"method": "fixed", "source": "explicit"}
    strategy = config.pixel_threshold_strategy

    def quantile() -> tuple[float, dict[str, Any]]:
        q = float(config.pixel_normal_quantile)
        value, n_maps, n_pixels = calibrate_normal_pixel_quantile(
            normal_maps, q=q, roi_xyxy_norm=config.roi_xyxy_norm
        )
        return value, {
            "method": "normal_pixel_quantile",
            "source": "train_dir",
            "q": q,
            "n_maps": n_maps,
            "n_pixels": n_pixels,
        }

    if strategy == "normal_pixel_quantile" and normal_maps is not None:
        return quantile()
    if infer_config_value is not None:
        value = _finite(infer_config_value, "infer-config defects.pixel_threshold")
        return value, {"method": "fixed", "source": "infer_config"}
    if strategy is None and normal_maps is not None:
        return quantile()
    detail = "" if strategy is None else f" (pixel_threshold_strategy={strategy!r})"
    raise ValueError(MISSING_THRESHOLD_MESSAGE + detail)
