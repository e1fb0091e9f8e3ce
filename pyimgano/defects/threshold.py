"""Pixel (defect) threshold: where it comes from, calibration from normal maps, provenance (SPEC section 7).

Every defects result carries the threshold it used and a provenance dict
saying where it came from, so a deployed mask can be audited::

    {"method": "fixed", "source": "explicit"}          # --pixel-threshold / config.pixel_threshold
    {"method": "fixed", "source": "infer_config"}      # infer_config.json defects.pixel_threshold
    {"method": "normal_map_max_quantile", "source": "holdout",
     "q": 0.999, "n_maps": 42, "n_pixels": 34020000}   # quantile of normal maps' maxima
    {"method": "normal_pixel_quantile", "source": "train_dir",
     "q": 0.999, "n_maps": 12, "n_pixels": 786432}     # quantile of all normal pixels pooled

Two calibration methods (``q`` is ``DefectsConfig.pixel_normal_quantile``):

* ``normal_map_max_quantile`` (the automatic default): the ``q`` quantile of the
  largest value of each normal map (within the ROI). It bounds the share of
  normal images that show any defect region at about ``1 - q``, which is what
  a line needs: good parts without defects.
* ``normal_pixel_quantile`` (the seed's method): the ``q`` quantile of all normal
  pixels pooled. By construction about ``1 - q`` of every normal image's pixels
  lie above it (0.1 % of a 900x900 map is 810 pixels), so most good parts show
  small regions; use it with area / score filters, or for pixel-level metrics.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable, Mapping

import attrs
import numpy as np

from pyimgano.defects.config import DefectsConfig
from pyimgano.defects.geometry import roi_pixel_box
from pyimgano.defects.stages import as_anomaly_map

__all__ = [
    "PIXEL_CALIBRATION_METHODS",
    "PixelThresholdDecision",
    "decide_pixel_threshold",
    "calibrate_pixel_threshold",
    "resolve_pixel_threshold",
    "calibrate_normal_pixel_quantile",
    "calibrate_normal_map_max_quantile",
    "MISSING_THRESHOLD_MESSAGE",
]

#: Calibration methods; the first is used when the strategy is automatic (None).
PIXEL_CALIBRATION_METHODS: tuple[str, ...] = ("normal_map_max_quantile", "normal_pixel_quantile")

MISSING_THRESHOLD_MESSAGE = (
    "defects need a pixel threshold and none was provided; provide one of: "
    "--pixel-threshold FLOAT (a fixed value), "
    "a saved state or infer-config that carries a pixel threshold (defects.pixel_threshold), or "
    "--train-dir DIR of normal images to calibrate one "
    "(quantile --pixel-normal-quantile, default 0.999, of the normal maps' maxima)"
)


def _check_q(q) -> float:
    if not (isinstance(q, numbers.Real) and not isinstance(q, bool) and 0.0 < float(q) < 1.0):
        raise ValueError(f"pixel normal quantile q={q!r} is not accepted; accepted: a number in (0, 1)")
    return float(q)


def _as_float32_text(value) -> float:
    # Shortest float that reads back to the same float32: thresholding is unchanged and the JSON is clean.
    return float(str(np.float32(value)))


def _roi_values(normal_maps: Iterable[Any], roi_xyxy_norm):
    """Yield each map's ROI pixels (raveled, float32)."""
    for m in normal_maps:
        arr = as_anomaly_map(m)
        x0, y0, x1, y1 = roi_pixel_box(arr.shape, roi_xyxy_norm)
        yield arr[y0:y1, x0:x1].ravel()


def calibrate_normal_pixel_quantile(
    normal_maps: Iterable[Any], *, q: float = 0.999, roi_xyxy_norm=None
) -> tuple[float, int, int]:
    """Quantile ``q`` of the pixels of normal anomaly maps, pooled.

    Maps are consumed one at a time (a generator that computes each map is
    fine); only the selected pixels of each are kept, as float32, and the
    quantile (numpy's default linear interpolation) is taken once over their
    concatenation. That holds ``4 * n_pixels`` bytes (200 maps of 256x256 are
    52 MB); maps may differ in shape. With a ROI only pixels inside it count.

    Returns:
      ``(threshold, n_maps, n_pixels)``.

    Raises:
      ValueError: ``q`` outside (0, 1), no maps, a map that is not 2-D finite real, or a bad ROI.
    """
    q = _check_q(q)
    chunks = list(_roi_values(normal_maps, roi_xyxy_norm))
    if not chunks:
        raise ValueError("normal_pixel_quantile calibration got no normal maps (is --train-dir empty?)")
    pixels = np.concatenate(chunks)
    return _as_float32_text(np.quantile(pixels, q)), len(chunks), int(pixels.size)


def calibrate_normal_map_max_quantile(
    normal_maps: Iterable[Any], *, q: float = 0.999, roi_xyxy_norm=None
) -> tuple[float, int, int]:
    """Quantile ``q`` (linear interpolation) of the per-map maxima of normal anomaly maps.

    Only one number per map is kept, so any number of maps of any size fits in
    memory. With a ROI each map's maximum is taken inside it.

    Returns:
      ``(threshold, n_maps, n_pixels)``.

    Raises:
      ValueError: ``q`` outside (0, 1), no maps, a bad map or ROI.
    """
    q = _check_q(q)
    maxima, n_pixels = [], 0
    for values in _roi_values(normal_maps, roi_xyxy_norm):
        maxima.append(float(values.max()))
        n_pixels += int(values.size)
    if not maxima:
        raise ValueError("normal_map_max_quantile calibration got no normal maps (is --train-dir empty?)")
    return _as_float32_text(np.quantile(np.asarray(maxima), q)), len(maxima), n_pixels


_CALIBRATORS = {
    "normal_map_max_quantile": calibrate_normal_map_max_quantile,
    "normal_pixel_quantile": calibrate_normal_pixel_quantile,
}


def calibrate_pixel_threshold(
    normal_maps: Iterable[Any], *, method: str, q: float, roi_xyxy_norm=None, source: str = "normal_images"
) -> tuple[float, dict[str, Any]]:
    """``(threshold, provenance)`` of one calibration method over normal maps.

    Raises:
      ValueError: an unknown method (lists the accepted ones) or a calibration error.
    """
    if method not in _CALIBRATORS:
        raise ValueError(f"unknown pixel calibration method {method!r}; accepted: {list(PIXEL_CALIBRATION_METHODS)}")
    value, n_maps, n_pixels = _CALIBRATORS[method](normal_maps, q=q, roi_xyxy_norm=roi_xyxy_norm)
    return value, {"method": method, "source": str(source), "q": float(q), "n_maps": n_maps, "n_pixels": n_pixels}


def _finite(value: Any, what: str) -> float:
    if not (isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return float(value)


@attrs.frozen
class PixelThresholdDecision:
    """Where the pixel threshold comes from: a known value, or a calibration to run.

    Exactly one of ``value`` (with ``provenance``) and ``calibrate_method`` (with ``q``) is set.
    """

    value: float | None = None
    provenance: Mapping[str, Any] | None = attrs.field(default=None, eq=False)
    calibrate_method: str | None = None
    q: float | None = None

    @property
    def calibrates(self) -> bool:
        return self.calibrate_method is not None


def decide_pixel_threshold(
    config: DefectsConfig,
    *,
    existing: tuple[float, Mapping[str, Any] | None] | None = None,
    infer_config_value: float | None = None,
    can_calibrate: bool = False,
) -> PixelThresholdDecision:
    """Choose the pixel threshold's source, in this order (SPEC section 7):

    1. ``config.pixel_threshold`` (``--pixel-threshold``): fixed, ``source: explicit``.
    2. A calibration strategy named explicitly and normal images at hand: calibrate
       (a request overrides any existing value).
    3. ``infer_config_value`` when it differs from ``existing``: fixed, ``source: infer_config``
       (an infer-config layers over the state it names, so an edited value wins).
    4. ``existing``: the value a loaded state carries, with its provenance.
    5. Strategy None (automatic) and normal images at hand: calibrate with
       ``normal_map_max_quantile``. Strategies ``fixed`` / ``infer_config`` never calibrate.
    6. Otherwise ``ValueError`` (:data:`MISSING_THRESHOLD_MESSAGE`).

    Raises:
      ValueError: no source (the message names the ways to provide one), or a
        non-finite existing / infer-config value.
    """
    if not isinstance(config, DefectsConfig):
        raise TypeError(f"config must be a DefectsConfig, got {type(config).__name__}")
    if config.pixel_threshold is not None:
        return PixelThresholdDecision(value=float(config.pixel_threshold), provenance={"method": "fixed", "source": "explicit"})
    strategy = config.pixel_threshold_strategy
    q = float(config.pixel_normal_quantile)
    if strategy in PIXEL_CALIBRATION_METHODS and can_calibrate:
        return PixelThresholdDecision(calibrate_method=strategy, q=q)
    has_existing = existing is not None and existing[0] is not None
    if infer_config_value is not None and not (has_existing and float(existing[0]) == float(infer_config_value)):
        value = _finite(infer_config_value, "infer-config defects.pixel_threshold")
        return PixelThresholdDecision(value=value, provenance={"method": "fixed", "source": "infer_config"})
    if has_existing:
        value = _finite(existing[0], "the state's pixel_threshold")
        return PixelThresholdDecision(value=value, provenance=dict(existing[1] or {"method": "fixed", "source": "state"}))
    if strategy is None and can_calibrate:
        return PixelThresholdDecision(calibrate_method=PIXEL_CALIBRATION_METHODS[0], q=q)
    detail = "" if strategy is None else f" (pixel_threshold_strategy={strategy!r})"
    raise ValueError(MISSING_THRESHOLD_MESSAGE + detail)


def resolve_pixel_threshold(
    config: DefectsConfig,
    *,
    infer_config_value: float | None = None,
    normal_maps: Iterable[Any] | None = None,
    source: str = "train_dir",
) -> tuple[float, dict[str, Any]]:
    """:func:`decide_pixel_threshold`, then run the calibration it asks for on ``normal_maps``.

    ``normal_maps`` is iterated only when a calibration is chosen, so a lazy
    generator costs nothing when a fixed value wins.

    Returns:
      ``(threshold, provenance)``; provenance values are plain python types.

    Raises:
      ValueError: as :func:`decide_pixel_threshold`, or a calibration error.
    """
    decision = decide_pixel_threshold(
        config, infer_config_value=infer_config_value, can_calibrate=normal_maps is not None
    )
    if not decision.calibrates:
        return decision.value, dict(decision.provenance)
    return calibrate_pixel_threshold(
        normal_maps, method=decision.calibrate_method, q=decision.q, roi_xyxy_norm=config.roi_xyxy_norm, source=source
    )
