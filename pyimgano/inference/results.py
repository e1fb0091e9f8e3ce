"""The one output record of inference: :class:`InferenceResult`, its label rule and JSON form."""

from __future__ import annotations

import math
from typing import Any

import attrs
import numpy as np

__all__ = ["InferenceResult", "NonFiniteScoreError", "label_from_score", "result_to_jsonable"]


class NonFiniteScoreError(ValueError):
    """A score is NaN or infinite: no decision can be taken from it (fail closed, never label 0).

    Attributes:
      indices: positions of the non-finite scores in the call (empty when raised by
        :func:`label_from_score`).
      results: one :class:`InferenceResult` per frame of the call, ``None`` at ``indices``
        (empty when raised by :func:`label_from_score`), so a caller can keep the others.
    """

    def __init__(self, message: str, indices=(), results=()):
        super().__init__(message)
        self.indices = tuple(indices)
        self.results = tuple(results)


@attrs.frozen
class InferenceResult:
    """Result for one image.

    Attributes:
      score: image anomaly score (higher = more anomalous).
      label: ``1`` when ``score > threshold``, ``0`` otherwise, ``None`` when the
        detector carries no threshold.
      anomaly_map: ``f32[H, W]`` at the input image size, or ``None`` (maps not
        requested, or the detector has no pixel maps).
    """

    score: float = attrs.field(converter=float)
    label: int | None = None
    # Arrays have no useful ``==``; results compare by score and label only.
    anomaly_map: np.ndarray | None = attrs.field(default=None, eq=False, repr=False)


def label_from_score(score: float, threshold: float | None) -> int | None:
    """``1`` iff ``score > threshold`` (strict), ``0`` otherwise, ``None`` without a threshold.

    Strict ``>`` so that a threshold calibrated as a quantile of normal scores labels
    the normal image sitting exactly on it as normal.

    Fails closed: a NaN score is never ``> threshold``, so labelling it would pass
    the part as normal; a non-finite score (or threshold) raises instead.

    Raises:
      NonFiniteScoreError: (a ``ValueError``) ``score`` or ``threshold`` is NaN or infinite.
    """
    if threshold is None:
        return None
    score, threshold = float(score), float(threshold)
    if not math.isfinite(threshold):
        raise NonFiniteScoreError(f"threshold is {threshold}; a non-finite threshold cannot label anything")
    if not math.isfinite(score):
        raise NonFiniteScoreError(f"score is {score}; a non-finite score cannot be labelled (failing closed)")
    return int(score > threshold)


def _plain(value: Any) -> Any:
    """Numpy scalars / arrays / tuples -> plain Python (json.dumps-able) values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def result_to_jsonable(result: InferenceResult, *, map_path: str | None = None) -> dict[str, Any]:
    """A dict of plain Python types for one result (for ``json.dumps`` / JSONL).

    Keys: ``score`` (float; NaN/inf become ``None`` so the output stays valid JSON),
    ``label`` (only when the result has one), ``anomaly_map`` (only when the result
    has a map, or ``map_path`` is given) as ``{"shape": [H, W], "dtype": "float32"[, "path": str]}``
    — the map's values never go into JSON.

    Raises:
      TypeError: ``result`` is not an :class:`InferenceResult`.
    """
    if not isinstance(result, InferenceResult):
        raise TypeError(f"result_to_jsonable expects an InferenceResult, got {type(result).__name__}")
    score = float(result.score)
    out: dict[str, Any] = {"score": score if math.isfinite(score) else None}
    if result.label is not None:
        out["label"] = int(result.label)
    if result.anomaly_map is not None or map_path is not None:
        info: dict[str, Any] = {}
        if result.anomaly_map is not None:
            amap = np.asarray(result.anomaly_map)
            info["shape"] = [int(d) for d in amap.shape]
            info["dtype"] = str(amap.dtype)
        if map_path is not None:
            info["path"] = str(map_path)
        out["anomaly_map"] = info
    return out
