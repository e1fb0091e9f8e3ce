"""``extract_defects``: the ordered defects pipeline of SPEC section 7.

border ignore -> smoothing -> threshold (plain ``>=`` or hysteresis) ->
open/close -> component filters -> fill holes -> ROI gate -> 8-connected
regions -> merge nearby (regions list only) -> sort -> ``max_regions``.
"""

from __future__ import annotations

import copy
import math
import numbers
from typing import Any, Sequence

import attrs
import numpy as np

from pyimgano.defects.config import DefectsConfig
from pyimgano.defects.geometry import roi_mask, roi_pixel_box, scale_bbox_xyxy
from pyimgano.defects.regions import (
    component_records,
    f32_to_float,
    filter_components,
    label_components,
    merge_nearby_records,
    records_to_regions,
    sort_regions,
)
from pyimgano.defects.stages import (
    as_anomaly_map,
    fill_holes,
    hysteresis_threshold,
    ignore_border,
    interior_mask,
    open_close,
    smooth_map,
    threshold_map,
)
from pyimgano.defects.threshold import MISSING_THRESHOLD_MESSAGE

__all__ = ["DefectsResult", "extract_defects", "hysteresis_bounds"]


@attrs.frozen(eq=False)
class DefectsResult:
    """Output of :func:`extract_defects`.

    Attributes:
      mask: ``u8[H, W]``, 255 for defect pixels, 0 elsewhere (map grid).
      regions: list of region dicts (see :mod:`pyimgano.defects`), sorted.
      map_stats_roi: ``{"max": float, "mean": float}`` of the raw map inside
        the ROI (the whole map without one).
      pixel_threshold: the threshold used (plain float).
      pixel_threshold_provenance: where it came from (plain python types).
      space: ``{"type": "anomaly_map", "shape": [H, W]}``, the coordinate
        space of the mask, ``bbox_xyxy`` and ``centroid_xy``.
    """

    mask: np.ndarray  # u8[H, W] in {0, 255}
    regions: list
    map_stats_roi: dict
    pixel_threshold: float
    pixel_threshold_provenance: dict
    space: dict

    def to_jsonable(self, *, mask: dict | None = None) -> dict[str, Any]:
        """The JSONL ``defects`` block: plain python types, a deep copy.

        Args:
          mask: optional mask artifact dict (what :func:`pyimgano.defects.save_mask`
            returns: ``path, shape, dtype, encoding``), emitted as ``"mask"``.
        """
        out: dict[str, Any] = {
            "space": copy.deepcopy(self.space),
            "pixel_threshold": float(self.pixel_threshold),
            "pixel_threshold_provenance": copy.deepcopy(self.pixel_threshold_provenance),
            "regions": copy.deepcopy(self.regions),
            "map_stats_roi": dict(self.map_stats_roi),
        }
        if mask is not None:
            out["mask"] = dict(mask)
        return out


def hysteresis_bounds(config: DefectsConfig, pixel_threshold: float) -> tuple[float, float]:
    """``(low, high)``: high defaults to the pixel threshold, low to ``0.5 * high``.

    For a negative high, ``0.5 * high`` would exceed it, so the default low is
    capped at high (a low above high would make hysteresis drop everything).
    """
    high = float(pixel_threshold if config.hysteresis_high is None else config.hysteresis_high)
    low = min(0.5 * high, high) if config.hysteresis_low is None else float(config.hysteresis_low)
    if low > high:
        raise ValueError(f"hysteresis low threshold {low} must be <= high threshold {high}")
    return low, high


def _check_image_hw(image_hw: Sequence[int]) -> tuple[int, int]:
    try:
        hw = tuple(image_hw)
    except TypeError:
        hw = ()
    if len(hw) != 2 or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0 for v in hw):
        raise ValueError(f"image_hw must be (height, width) with positive integers, got {image_hw!r}")
    return int(hw[0]), int(hw[1])


def extract_defects(
    anomaly_map,
    config: DefectsConfig,
    *,
    pixel_threshold: float | None = None,
    pixel_threshold_provenance: dict | None = None,
    image_hw: Sequence[int] | None = None,
) -> DefectsResult:
    """Binary mask and regions of one anomaly map.

    Args:
      anomaly_map: real ``[H, W]`` array (cast to float32), finite.
      config: the pipeline settings.
      pixel_threshold: the threshold, usually from
        :func:`pyimgano.defects.resolve_pixel_threshold`; None uses
        ``config.pixel_threshold``.
      pixel_threshold_provenance: emitted as is; None means
        ``{"method": "fixed", "source": "explicit"}``.
      image_hw: ``(H_img, W_img)`` of the original image: adds
        ``bbox_xyxy_image`` to every region (pixel edges scaled).

    Scores (``score_max``, ``score_mean``, the ``min_score_*`` filters and
    ``map_stats_roi``) use the raw input map; border ignore and smoothing only
    shape the mask.  Border pixels never become foreground.  The ROI gates the
    mask (after fill holes) and never changes a score.

    Returns:
      :class:`DefectsResult`.

    Raises:
      TypeError / ValueError: bad map (not 2-D, non-finite), bad config type,
        no threshold (the message says how to provide one), bad ``image_hw``.
    """
    if not isinstance(config, DefectsConfig):
        raise TypeError(f"config must be a DefectsConfig, got {type(config).__name__}")
    raw = as_anomaly_map(anomaly_map)
    h, w = raw.shape
    if pixel_threshold is None:
        pixel_threshold = config.pixel_threshold
    if pixel_threshold is None:
        raise ValueError(MISSING_THRESHOLD_MESSAGE + " (see pyimgano.defects.resolve_pixel_threshold)")
    if isinstance(pixel_threshold, bool) or not isinstance(pixel_threshold, numbers.Real) or not math.isfinite(pixel_threshold):
        raise ValueError(f"pixel_threshold must be a finite number, got {pixel_threshold!r}")
    thr = float(pixel_threshold)
    provenance = (
        {"method": "fixed", "source": "explicit"}
        if pixel_threshold_provenance is None
        else copy.deepcopy(dict(pixel_threshold_provenance))
    )
    dst_hw = None if image_hw is None else _check_image_hw(image_hw)

    # 1. border ignore: flatten the frame before smoothing, then make it unreachable.
    interior = interior_mask((h, w), config.border_ignore_px)
    work = ignore_border(raw, config.border_ignore_px)
    # 2. smoothing
    work = smooth_map(work, config.map_smoothing, config.map_smoothing_ksize, config.map_smoothing_sigma)
    if config.border_ignore_px > 0:
        # -inf is below any finite threshold, so hysteresis cannot grow through the frame either.
        work = np.where(interior, work, np.float32(-np.inf)).astype(np.float32)
    # 3. threshold
    if config.hysteresis:
        low, high = hysteresis_bounds(config, thr)
        fg = hysteresis_threshold(work, low=low, high=high)
    else:
        fg = threshold_map(work, thr)
    # 4. open / close (closing could bridge into the frame, so re-apply it)
    fg = open_close(fg, open_ksize=config.open_ksize, close_ksize=config.close_ksize) & interior
    # 5. component filters on the raw scores
    fg = filter_components(
        fg,
        raw,
        min_area=config.min_area,
        min_score_max=config.min_score_max,
        min_score_mean=config.min_score_mean,
        min_fill_ratio=config.min_fill_ratio,
        max_aspect_ratio=config.max_aspect_ratio,
        min_solidity=config.min_solidity,
    )
    # 6. fill holes
    if config.fill_holes:
        fg = fill_holes(fg)
    # 7. ROI gate
    if config.roi_xyxy_norm is not None:
        fg = fg & roi_mask((h, w), config.roi_xyxy_norm)
    # 8. regions
    _, labels, stats, centroids = label_components(fg)
    records = component_records(labels, stats, centroids, raw)
    # 9. merge nearby (the mask is left as is)
    if config.merge_nearby:
        records = merge_nearby_records(records, labels, max_gap_px=config.merge_nearby_max_gap_px)
    # 10. sort + max_regions
    regions = sort_regions(records_to_regions(records), config.max_regions_sort_by, config.max_regions)
    if dst_hw is not None:
        for region in regions:
            region["bbox_xyxy_image"] = scale_bbox_xyxy(region["bbox_xyxy"], src_hw=(h, w), dst_hw=dst_hw)

    x0, y0, x1, y1 = roi_pixel_box((h, w), config.roi_xyxy_norm)
    inside = raw[y0:y1, x0:x1]
    stats_roi = {"max": f32_to_float(inside.max()), "mean": float(inside.mean(dtype=np.float64))}
    return DefectsResult(
        mask=np.where(fg, np.uint8(255), np.uint8(0)).astype(np.uint8),
        regions=regions,
        map_stats_roi=stats_roi,
        pixel_threshold=thr,
        pixel_threshold_provenance=provenance,
        space={"type": "anomaly_map", "shape": [int(h), int(w)]},
    )
