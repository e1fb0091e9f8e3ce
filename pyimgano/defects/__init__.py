"""Defects export: anomaly map -> binary mask + regions, with auditable pixel thresholds.

Host-side numpy/OpenCV only (no jax).  SPEC section 7; user guide in ``docs/defects.md``.

Public API (all importable from ``pyimgano.defects``)::

    DefectsConfig(**fields)                                  # attrs, frozen, validated
    DefectsConfig.from_mapping(d) -> DefectsConfig           # flat snake_case or the seed's nested JSON
    DefectsConfig.to_mapping() -> dict                       # flat, JSON types (infer_config.json "defects")
    config_from_infer_config(block) -> (DefectsConfig, float | None)
        # splits an infer_config.json "defects" block: the config WITHOUT pixel_threshold,
        # and that block's pixel_threshold, to pass as resolve_pixel_threshold(infer_config_value=...)

    decide_pixel_threshold(config, *, existing=None, infer_config_value=None, can_calibrate=False)
        -> PixelThresholdDecision(value, provenance) or (calibrate_method, q)
        # explicit config.pixel_threshold       -> {"method": "fixed", "source": "explicit"}
        # strategy normal_map_max_quantile / normal_pixel_quantile + normal images (overrides a value)
        # existing (a state's value)            -> its provenance
        # infer_config_value                    -> {"method": "fixed", "source": "infer_config"}
        # strategy None (auto) + normal images  -> calibrate normal_map_max_quantile
        # otherwise ValueError naming the ways to provide one.
    resolve_pixel_threshold(config, *, infer_config_value=None, normal_maps=None, source="train_dir")
        -> (float, provenance: dict)    # decide, then calibrate on normal_maps when asked
    calibrate_pixel_threshold(normal_maps, *, method, q, roi_xyxy_norm=None, source=...)
        -> (float, {"method", "source", "q", "n_maps", "n_pixels"})
    calibrate_normal_map_max_quantile / calibrate_normal_pixel_quantile(normal_maps, *, q=0.999, roi_xyxy_norm=None)
        -> (float, n_maps: int, n_pixels: int)

    extract_defects(anomaly_map, config, *, pixel_threshold=None, pixel_threshold_provenance=None,
                    image_hw=None) -> DefectsResult
        # anomaly_map: real [H, W]; threshold = pixel_threshold arg, else config.pixel_threshold,
        # else ValueError (resolve it first).  image_hw=(H_img, W_img) adds "bbox_xyxy_image".
    DefectsResult  (attrs frozen): mask u8[H, W] 0/255, regions list[dict], map_stats_roi {"max","mean"},
                   pixel_threshold float, pixel_threshold_provenance dict, space {"type","shape"}
    DefectsResult.to_jsonable(*, mask=None) -> dict  # plain python types; mask=save_mask(...)'s dict

    save_mask(path, mask, fmt="png") -> {"path", "shape", "dtype", "encoding"}   # atomic write
    render_overlay(image_rgb_u8, anomaly_map, mask, *, alpha=0.5, vmin=None, vmax=None) -> u8[H, 3W, 3]
    save_overlay(path, image_rgb_u8, anomaly_map, mask, **render_kwargs) -> str  # PNG, atomic

    DEFECT_PRESETS: Mapping[str, DefectsConfig]   # "industrial-defects-fp40"
    get_defects_preset(name) -> DefectsConfig      # ValueError listing the names

    scale_bbox_xyxy(bbox_xyxy, *, src_hw, dst_hw) -> list[int]
    roi_pixel_box(shape_hw, roi_xyxy_norm) / roi_mask(shape_hw, roi_xyxy_norm)

Region dict keys: ``id`` (component label, raster order of first pixel, 1-based), ``bbox_xyxy``
(inclusive map pixels), ``area``, ``centroid_xy``, ``bbox_area``, ``fill_ratio``, ``aspect_ratio``,
``solidity``, ``score_max``, ``score_mean`` (raw input map values), ``merged_from_ids`` (merged
regions only), ``bbox_xyxy_image`` (when ``image_hw`` is given).
"""

from pyimgano.defects.config import (
    MAP_SMOOTHING_METHODS,
    MASK_FORMATS,
    PIXEL_THRESHOLD_STRATEGIES,
    SORT_KEYS,
    DefectsConfig,
    config_from_infer_config,
)
from pyimgano.defects.export import render_overlay, save_mask, save_overlay
from pyimgano.defects.extract import DefectsResult, extract_defects
from pyimgano.defects.geometry import roi_mask, roi_pixel_box, scale_bbox_xyxy
from pyimgano.defects.presets import DEFECT_PRESETS, get_defects_preset
from pyimgano.defects.threshold import (
    PIXEL_CALIBRATION_METHODS,
    PixelThresholdDecision,
    calibrate_normal_map_max_quantile,
    calibrate_normal_pixel_quantile,
    calibrate_pixel_threshold,
    decide_pixel_threshold,
    resolve_pixel_threshold,
)

__all__ = [
    "DefectsConfig",
    "DefectsResult",
    "DEFECT_PRESETS",
    "MAP_SMOOTHING_METHODS",
    "MASK_FORMATS",
    "PIXEL_THRESHOLD_STRATEGIES",
    "SORT_KEYS",
    "calibrate_normal_pixel_quantile",
    "calibrate_normal_map_max_quantile",
    "calibrate_pixel_threshold",
    "decide_pixel_threshold",
    "PixelThresholdDecision",
    "PIXEL_CALIBRATION_METHODS",
    "config_from_infer_config",
    "extract_defects",
    "get_defects_preset",
    "render_overlay",
    "resolve_pixel_threshold",
    "roi_mask",
    "roi_pixel_box",
    "save_mask",
    "save_overlay",
    "scale_bbox_xyxy",
]
