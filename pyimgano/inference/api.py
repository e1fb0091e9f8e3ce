"""``infer`` and ``calibrate_threshold``: the embedding-friendly layer over the functional core.

Both accept a :class:`~pyimgano.DetectorState`, a compatibility object from
:func:`pyimgano.models.create_model`, or a :class:`~pyimgano.inference.tiling.TiledDetector`
wrapping either. Inputs are image paths, or arrays of one declared ``input_format``
(no format is ever guessed).
"""

from __future__ import annotations

from typing import Sequence

import attrs
import numpy as np

from pyimgano import api
from pyimgano.inference.results import InferenceResult, label_from_score
from pyimgano.inference.threshold import quantile_threshold
from pyimgano.inputs import ImageFormat, canonicalize_images, parse_image_format
from pyimgano.inputs.canonical import group_by_size
from pyimgano.registry import get_detector
from pyimgano.state import DetectorState

__all__ = ["infer", "calibrate_threshold", "detector_threshold", "DEFAULT_BATCH_SIZE"]

DEFAULT_BATCH_SIZE = 16


def _resolve(detector):
    """``(kind, state, tiled)`` for a state, a compatibility object or a TiledDetector."""
    from pyimgano.inference.tiling import TiledDetector
    from pyimgano.models import VisionDetector

    if isinstance(detector, TiledDetector):
        return "tiled", None, detector
    if isinstance(detector, DetectorState):
        return "state", detector, None
    if isinstance(detector, VisionDetector):
        return "compat", detector.with_threshold(), None
    raise TypeError(
        "expected a DetectorState, a create_model(...) detector or a TiledDetector, "
        f"got {type(detector).__name__}"
    )


def detector_threshold(detector) -> float | None:
    """The image threshold carried by a state / compatibility object / tiled detector, or None."""
    kind, state, tiled = _resolve(detector)
    if kind == "tiled":
        return tiled.threshold_
    return state.threshold


def _items(images, input_format) -> Sequence:
    """A sliceable sequence of single inputs (paths or frames), checked for a declared format."""
    items = api._as_items(images)
    if len(items) == 0 or api._is_path(items[0]):
        return items
    if input_format is None:
        names = [str(f) for f in ImageFormat.all()]
        raise ValueError(f"array inputs require input_format (no format is guessed); accepted: {names}")
    fmt = parse_image_format(input_format)
    if isinstance(items, np.ndarray) and items.ndim == fmt.frame_ndim:
        return [items]  # one frame, not a batch: never slice its rows
    return items


def _supports_maps(kind, state, tiled) -> bool:
    if kind == "tiled":
        return tiled.supports_maps
    return "pixel_map" in get_detector(state.detector).tags


def _score_group(kind, state, tiled, frames: list[np.ndarray], want_maps: bool, batch_size: int):
    """Scores f32[n] (and maps f32[n, H, W]) for canonical frames that share one size."""
    if kind == "tiled":
        return tiled.tiled_predict(np.stack(frames), want_maps=want_maps)
    if want_maps:
        scores, maps = api.predict(state, frames, ImageFormat.RGB_U8_HWC, batch_size=batch_size)
        return np.asarray(scores), np.asarray(maps)
    return np.asarray(api.score(state, frames, ImageFormat.RGB_U8_HWC, batch_size=batch_size)), None


def _check_batch_size(batch_size) -> int:
    if batch_size is None:
        return DEFAULT_BATCH_SIZE
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    return int(batch_size)


def infer(
    detector_or_state,
    images,
    *,
    input_format=None,
    include_maps: bool = False,
    postprocess=None,
    batch_size: int | None = None,
    u16_max: int | None = None,
) -> list[InferenceResult]:
    """Score images and return one :class:`InferenceResult` per input, in input order.

    Args:
      detector_or_state: a fitted ``DetectorState``, ``create_model`` object or ``TiledDetector``.
      images: image paths, one frame, a batch array ``(N, ...)`` or a sequence of frames.
      input_format: required for arrays (an ``ImageFormat`` or its name); must be None for paths.
      include_maps: attach ``f32[H, W]`` anomaly maps at each input's size, for detectors
        tagged ``pixel_map`` (``anomaly_map`` stays ``None`` for others).
      postprocess: a callable on one map, e.g. ``AnomalyMapPostprocess``; applied to maps
        only, never to scores or labels.
      batch_size: images decoded and scored per step (default 16); results keep input order
        and do not depend on it.
      u16_max: full-scale value of 16-bit inputs.

    Labels are ``1 if score > threshold else 0`` when the detector carries a threshold,
    ``None`` otherwise. Frames of different sizes may be mixed.

    Raises:
      TypeError: an unknown detector type; paths and arrays mixed.
      ValueError: arrays without ``input_format``, bad frames, bad ``batch_size``.
      RuntimeError: a ``create_model`` object that is not fitted.
    """
    kind, state, tiled = _resolve(detector_or_state)
    items = _items(images, input_format)
    batch_size = _check_batch_size(batch_size)
    if postprocess is not None and not callable(postprocess):
        raise TypeError(f"postprocess must be callable (e.g. AnomalyMapPostprocess), got {type(postprocess).__name__}")
    threshold = detector_threshold(detector_or_state)
    want_maps = bool(include_maps) and _supports_maps(kind, state, tiled)
    results: list[InferenceResult] = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        fmt = None if api._is_path(chunk[0]) else input_format
        canonical = canonicalize_images(list(chunk), input_format=fmt, u16_max=u16_max)
        scores = np.zeros(len(canonical), np.float32)
        maps: list[np.ndarray | None] = [None] * len(canonical)
        for indices in group_by_size(canonical):
            s, m = _score_group(kind, state, tiled, [canonical[i] for i in indices], want_maps, batch_size)
            scores[indices] = s
            if m is not None:
                for j, i in enumerate(indices):
                    one = np.asarray(m[j], dtype=np.float32)
                    maps[i] = np.asarray(postprocess(one), dtype=np.float32) if postprocess is not None else one
        for i, value in enumerate(scores):
            results.append(
                InferenceResult(score=float(value), label=label_from_score(float(value), threshold), anomaly_map=maps[i])
            )
    return results


def calibrate_threshold(
    detector_or_state,
    normal_images,
    *,
    input_format=None,
    quantile: float = 0.995,
    batch_size: int | None = None,
    u16_max: int | None = None,
):
    """Set the image threshold to the ``quantile`` (linear interpolation) of scores on normal images.

    Returns a new :class:`DetectorState` for a state (the input is unchanged); for a
    ``create_model`` object or a ``TiledDetector`` sets ``threshold_`` and
    ``threshold_provenance_`` on it and returns it. Provenance:
    ``{"method": "quantile", "quantile": q, "source": "normal_images", "count": n}``.

    Raises:
      ValueError: ``quantile`` outside [0, 1], no images, arrays without ``input_format``.
    """
    results = infer(
        detector_or_state, normal_images, input_format=input_format, batch_size=batch_size, u16_max=u16_max
    )
    if not results:
        raise ValueError("calibrate_threshold needs at least one normal image, got none")
    scores = np.asarray([r.score for r in results], np.float64)
    threshold, provenance = quantile_threshold(scores, quantile, source="normal_images")
    kind, state, tiled = _resolve(detector_or_state)
    if kind == "state":
        return attrs.evolve(state, threshold=float(threshold), threshold_provenance=provenance)
    target = tiled if kind == "tiled" else detector_or_state
    target.threshold_ = float(threshold)
    target.threshold_provenance_ = provenance
    return target
