"""Image-level metrics: AUROC, average precision, the ROC curve, and the confusion counts,
precision, recall and F1 of a fixed threshold.

Conventions: label 1 = anomalous, 0 = normal; a higher score means more anomalous.
Everything is exact (no binning) and numpy-only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pyimgano.metrics._validate import labels_and_scores, require_both_classes

__all__ = [
    "image_auroc",
    "average_precision",
    "f1_at_threshold",
    "auroc_from_samples",
    "confusion_at_threshold",
    "precision_recall_f1",
    "roc_curve",
]


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


def confusion_at_threshold(labels: Any, scores: Any, threshold: float) -> dict[str, int]:
    """Confusion counts of the decision ``score > threshold`` (anomalous) against ``labels``.

    Args:
        labels: int/bool[N], 1 = anomalous.
        scores: float[N].
        threshold: a real number; the strict ``>`` matches the inference label rule.

    Returns:
        ``{"tp", "fp", "tn", "fn"}`` as Python ints (positive = anomalous); they sum to N.

    Raises:
        ValueError: mismatched lengths, non-binary labels, NaN scores or a NaN threshold.
    """
    y, s = labels_and_scores(labels, scores)
    t = float(threshold)
    if np.isnan(t):
        raise ValueError("threshold is NaN")
    predicted = s > t
    return {
        "tp": int(np.sum(predicted & y)),
        "fp": int(np.sum(predicted & ~y)),
        "tn": int(np.sum(~predicted & ~y)),
        "fn": int(np.sum(~predicted & y)),
    }


def precision_recall_f1(labels: Any, scores: Any, threshold: float) -> dict[str, float]:
    """Precision, recall and F1 of ``score > threshold`` (positive = anomalous).

    ``precision = TP / (TP + FP)``, ``recall = TP / (TP + FN)``, ``F1 = 2TP / (2TP + FP + FN)``;
    a zero denominator gives 0.0 (scikit-learn's ``zero_division`` default).

    Raises:
        ValueError: as :func:`confusion_at_threshold`.
    """
    c = confusion_at_threshold(labels, scores, threshold)
    tp, fp, fn = c["tp"], c["fp"], c["fn"]
    return {
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
    }


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
    return precision_recall_f1(labels, scores, threshold)["f1"]


def roc_curve(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ROC curve of ``score >= t`` for every distinct score ``t`` (descending).

    Returns:
        ``(fpr, tpr, thresholds)``, f64[K + 1] each for K distinct scores: the first point is
        (0, 0) at threshold ``+inf``, the last (1, 1). Every distinct score is kept
        (scikit-learn's ``roc_curve(..., drop_intermediate=False)``).

    Raises:
        ValueError: mismatched lengths, non-binary labels, a single class, NaN scores.
    """
    y, s = labels_and_scores(labels, scores)
    require_both_classes(y, "roc_curve")
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    run_ends = np.flatnonzero(np.append(s_sorted[1:] != s_sorted[:-1], True))
    tp = np.cumsum(y_sorted)[run_ends]
    fp = (run_ends + 1) - tp
    tpr = np.concatenate([[0.0], tp / tp[-1]])
    fpr = np.concatenate([[0.0], fp / fp[-1]])
    thresholds = np.concatenate([[np.inf], s_sorted[run_ends].astype(np.float64)])
    return fpr, tpr, thresholds
