"""Image-level metrics: AUROC, average precision, F1 at a fixed threshold.

Conventions: label 1 = anomalous, 0 = normal; a higher score means more anomalous.
Everything is exact (no binning) and numpy-only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pyimgano.metrics._validate import labels_and_scores, require_both_classes

__all__ = ["image_auroc", "average_precision", "f1_at_threshold", "auroc_from_samples"]


def auroc_from_samples(positive_scores: np.ndarray, negative_scores: np.ndarray) -> float:
    """Exact AUROC = P(positive > negative) + 0.5 * P(positive == negative) (Mann-Whitney U / (P*N)).

    Args:
        positive_scores: f[P] scores of anomalous samples, P >= 1, no NaN.
        negative_scores: f[N] scores of normal samples, N >= 1, no NaN.

    Returns:
        AUROC as a Python float in [0, 1].

    Only the negatives are sorted (one copy); each positive is located by binary search, so
    memory stays at one copy of the negatives even for millions of pixels.
    """
    negatives = np.sort(np.asarray(negative_scores).ravel())
    positives = np.asarray(positive_scores).ravel()
    below = np.searchsorted(negatives, positives, side="left")
    not_above = np.searchsorted(negatives, positives, side="right")
    # Integer sums are exact; 2U avoids the 0.5 until the final division.
    twice_u = 2 * int(below.sum(dtype=np.int64)) + int((not_above - below).sum(dtype=np.int64))
    return twice_u / (2 * positives.size * negatives.size)


def image_auroc(labels: Any, scores: Any) -> float:
    """Area under the ROC curve of image scores.

    Args:
        labels: int/bool[N], 1 = anomalous, 0 = normal; both classes must be present.
        scores: float[N], higher = more anomalous; no NaN.

    Returns:
        AUROC in [0, 1]; tied scores across classes count one half (the trapezoidal ROC area).

    Raises:
        ValueError: mismatched lengths, non-binary labels, a single class, NaN scores.
    """
    y, s = labels_and_scores(labels, scores)
    require_both_classes(y, "image_auroc")
    return auroc_from_samples(s[y], s[~y])


def average_precision(labels: Any, scores: Any) -> float:
    """Average precision, the step-wise definition used by scikit-learn.

    ``AP = sum_k (R_k - R_{k-1}) * P_k`` over the distinct score values taken as thresholds in
    descending order, where ``P_k``/``R_k`` are precision/recall when every sample with
    ``score >= threshold_k`` is called anomalous. Tied samples enter together, so equivalently
    ``AP = mean over positives i of precision(score >= score_i)``. No interpolation.

    Args:
        labels: int/bool[N], 1 = anomalous; at least one anomalous sample.
        scores: float[N], higher = more anomalous; no NaN.

    Returns:
        AP in (0, 1].

    Raises:
        ValueError: mismatched lengths, non-binary labels, no anomalous sample, NaN scores.
    """
    y, s = labels_and_scores(labels, scores)
    n_pos = int(y.sum())
    if n_pos == 0:
        raise ValueError(f"average_precision needs at least one anomalous (1) label, got none in {y.size} samples")
    order = np.argsort(-s, kind="stable")
    s_sorted = s[order]
    y_sorted = y[order]
    # Last index of each run of equal scores: the point where a threshold has taken in all ties.
    run_ends = np.flatnonzero(np.append(s_sorted[1:] != s_sorted[:-1], True))
    tp = np.cumsum(y_sorted)[run_ends]
    predicted = run_ends + 1
    new_tp = np.diff(tp, prepend=0)
    return float(np.sum(new_tp * (tp / predicted)) / n_pos)


def f1_at_threshold(labels: Any, scores: Any, threshold: float) -> float:
    """F1 of the decision ``score > threshold`` (anomalous) against ``labels``.

    Args:
        labels: int/bool[N], 1 = anomalous.
        scores: float[N].
        threshold: a real number; the strict ``>`` matches the inference label rule.

    Returns:
        ``2TP / (2TP + FP + FN)``; 0.0 when there are no anomalous labels and none predicted
        (no true positive is possible; scikit-learn's ``zero_division`` default gives the same).

    Raises:
        ValueError: mismatched lengths, non-binary labels, NaN scores or a NaN threshold.
    """
    y, s = labels_and_scores(labels, scores)
    t = float(threshold)
    if np.isnan(t):
        raise ValueError("threshold is NaN")
    predicted = s > t
    tp = int(np.sum(predicted & y))
    fp = int(np.sum(predicted & ~y))
    fn = int(np.sum(~predicted & y))
    denominator = 2 * tp + fp + fn
    return 0.0 if denominator == 0 else 2 * tp / denominator
