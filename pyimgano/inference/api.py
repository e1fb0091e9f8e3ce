"""``infer`` and ``calibrate_threshold``: the embedding-friendly layer over the functional core.

Both accept a :class:`~pyimgano.DetectorState` or any object that can give one
through ``__pyimgano_state__()`` (the compatibility objects of
:mod:`pyimgano.models`: ``create_model(...)`` detectors and ``TiledDetector``).
This layer never imports those classes; it only speaks that protocol. Inputs are
image paths, or arrays of one declared ``input_format`` (no format is ever guessed),
canonicalised once here and scored by :func:`pyimgano.scoring.predict_frames`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from pyimgano.calibration import DEFAULT_QUANTILE, calibrate
from pyimgano.inference.results import InferenceResult, NonFiniteScoreError, label_from_score
from pyimgano.inputs import canonical_batches
from pyimgano.scoring import UNSET, predict_frames
from pyimgano.state import DetectorState

__all__ = ["infer", "infer_frames", "calibrate_threshold", "detector_threshold", "as_state", "DEFAULT_BATCH_SIZE"]

DEFAULT_BATCH_SIZE = 16


def as_state(detector) -> DetectorState:
    """The :class:`DetectorState` behind ``detector``: itself, or ``detector.__pyimgano_state__()``.

    Raises:
      TypeError: neither a state nor an object of the protocol.
      RuntimeError: a compatibility object that is not fitted yet.
    """
    if isinstance(detector, DetectorState):
        return detector
    method = getattr(type(detector), "__pyimgano_state__", None)
    if method is None:
        raise TypeError(
            "expected a DetectorState, a create_model(...) detector or a TiledDetector, "
            f"got {type(detector).__name__}"
        )
    return method(detector)


def detector_threshold(detector) -> float | None:
    """The image threshold carried by a state / compatibility object / tiled detector, or None."""
    return as_state(detector).threshold


def _check_batch_size(batch_size) -> int:
    if batch_size is None:
        return DEFAULT_BATCH_SIZE
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    return int(batch_size)


def infer_frames(
    state: DetectorState,
    frames: Sequence[np.ndarray],
    *,
    include_maps: bool = False,
    postprocess=None,
    batch_size: int | None = None,
) -> list[InferenceResult]:
    """:func:`infer` for frames that are already canonical ``u8[H, W, 3]`` RGB (no conversion at all).

    Use it when frames were decoded elsewhere (``pyimgano.inputs.load_image``,
    :func:`pyimgano.inputs.canonical_batches`). Arguments as :func:`infer`.

    Raises:
      NonFiniteScoreError: a frame scored NaN or infinite (its position is named);
        no label is taken from it. The error's ``results`` hold the other frames'
        results (``None`` at its ``indices``).
    """
    post = UNSET if postprocess is None else postprocess
    scores, maps = predict_frames(state, frames, want_maps=include_maps, batch_size=batch_size, postprocess=post)
    bad = [i for i, value in enumerate(scores) if not np.isfinite(value)]
    results = [
        None if i in bad else InferenceResult(
            score=float(value),
            label=label_from_score(float(value), state.threshold),
            anomaly_map=None if maps is None else maps[i],
        )
        for i, value in enumerate(scores)
    ]
    if bad:
        raise NonFiniteScoreError(
            f"frame {bad[0]} of {len(scores)} scored {float(scores[bad[0]])} ({len(bad)} non-finite score(s)); "
            "no label is given to a non-finite score (failing closed)",
            indices=bad,
            results=results,
        )
    return results


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
      postprocess: a callable on one map (e.g. ``AnomalyMapPostprocess``) that replaces the
        state's post-processing; None uses the state's (if any). Maps only, never scores.
      batch_size: images decoded and scored per step (default 16); results keep input order
        and do not depend on it.
      u16_max: full-scale value of 16-bit inputs.

    Labels are ``1 if score > threshold else 0`` when the detector carries a threshold,
    ``None`` otherwise. Frames of different sizes may be mixed. A state with tiling is
    scored tile by tile. A non-finite score is an error, never a label (fail closed).

    Raises:
      TypeError: an unknown detector type; paths and arrays mixed.
      ValueError: arrays without ``input_format``, bad frames, bad ``batch_size``.
      NonFiniteScoreError: (a ``ValueError``) a frame scored NaN or infinite.
      RuntimeError: a ``create_model`` object that is not fitted.
    """
    state = as_state(detector_or_state)
    batch_size = _check_batch_size(batch_size)
    if postprocess is not None and not callable(postprocess):
        raise TypeError(f"postprocess must be callable (e.g. AnomalyMapPostprocess), got {type(postprocess).__name__}")
    results: list[InferenceResult] = []
    for chunk in canonical_batches(images, input_format=input_format, batch_size=batch_size, u16_max=u16_max):
        results.extend(
            infer_frames(state, chunk, include_maps=include_maps, postprocess=postprocess, batch_size=batch_size)
        )
    return results


def calibrate_threshold(
    detector_or_state,
    normal_images,
    *,
    input_format=None,
    quantile: float = DEFAULT_QUANTILE,
    batch_size: int | None = None,
    u16_max: int | None = None,
):
    """Set the image threshold to the ``quantile`` (linear interpolation) of scores on normal images.

    For a state: returns a new :class:`DetectorState` (the input is unchanged), as
    :func:`pyimgano.calibrate`. For a ``create_model`` object or a ``TiledDetector``
    (the seed guide's flow): sets its ``threshold_`` / ``threshold_provenance_`` and
    returns it. Provenance: ``{"method": "quantile", "quantile": q, "source":
    "normal_images", "count": n}``.

    Raises:
      ValueError: ``quantile`` outside [0, 1], no images, arrays without ``input_format``.
    """
    state = as_state(detector_or_state)
    new = calibrate(
        state, normal_images, input_format, quantile=quantile, batch_size=_check_batch_size(batch_size), u16_max=u16_max
    )
    if isinstance(detector_or_state, DetectorState):
        return new
    return type(detector_or_state).__pyimgano_calibrated__(detector_or_state, new)
