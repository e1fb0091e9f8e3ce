"""Inference layer: ``infer``, threshold calibration, result records, tiling.

    >>> from pyimgano.inference import calibrate_threshold, infer  # doctest: +SKIP
    >>> state = calibrate_threshold(state, normal_frames, input_format="bgr_u8_hwc")
    >>> results = infer(state, frames, input_format="bgr_u8_hwc", include_maps=True)

See ``docs/inference.md``.
"""

from pyimgano.inference.api import calibrate_threshold, detector_threshold, infer
from pyimgano.inference.results import InferenceResult, label_from_score, result_to_jsonable
from pyimgano.inference.threshold import quantile_threshold
from pyimgano.inference.tiling import (
    TileConfig,
    TiledDetector,
    TilePlan,
    plan_tiles,
    reduce_tile_scores,
    stitch,
    tile,
    window_weights,
)

__all__ = [
    "infer",
    "calibrate_threshold",
    "detector_threshold",
    "InferenceResult",
    "label_from_score",
    "result_to_jsonable",
    "quantile_threshold",
    "TiledDetector",
    "TileConfig",
    "TilePlan",
    "plan_tiles",
    "tile",
    "stitch",
    "window_weights",
    "reduce_tile_scores",
]
