"""Inference layer: ``infer``, threshold calibration, result records.

    >>> from pyimgano.inference import calibrate_threshold, infer  # doctest: +SKIP
    >>> state = calibrate_threshold(state, normal_frames, input_format="bgr_u8_hwc")
    >>> results = infer(state, frames, input_format="bgr_u8_hwc", include_maps=True)

Tiling is a setting of the state (:func:`pyimgano.with_tiling`); the pure tile
functions live in :mod:`pyimgano.tiling` and the seed guide's ``TiledDetector`` in
the compatibility shell (``from pyimgano.inference.tiling import TiledDetector``
keeps working). See ``docs/inference.md``.
"""

from pyimgano.calibration import calibrate, fit_calibrated, quantile_threshold
from pyimgano.inference.api import as_state, calibrate_threshold, detector_threshold, infer, infer_frames
from pyimgano.inference.results import InferenceResult, NonFiniteScoreError, label_from_score, result_to_jsonable
from pyimgano.tiling import TileConfig, TilePlan, plan_tiles, reduce_tile_scores, stitch, tile, window_weights

__all__ = [
    "infer",
    "infer_frames",
    "calibrate",
    "fit_calibrated",
    "calibrate_threshold",
    "detector_threshold",
    "as_state",
    "InferenceResult",
    "NonFiniteScoreError",
    "label_from_score",
    "result_to_jsonable",
    "quantile_threshold",
    "TileConfig",
    "TilePlan",
    "plan_tiles",
    "tile",
    "stitch",
    "window_weights",
    "reduce_tile_scores",
]
