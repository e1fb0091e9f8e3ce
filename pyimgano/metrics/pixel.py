"""Pixel-level metrics: pooled pixel AUROC and AUPRO (MVTec AD's per-region overlap).

AUPRO follows Bergmann et al., "The MVTec Anomaly Detection Dataset" (IJCV 2021) and MVTec's
evaluation code (``pro_curve_util.py``): every connected component of every ground-truth mask
is one region (8-connectivity, as MVTec's ``scipy.ndimage.label`` with a 3x3 structure of
ones); at a threshold ``t`` a pixel is predicted anomalous when ``score >= t``; the PRO is the
mean over all regions of the fraction of the region's pixels predicted anomalous; the FPR is
the fraction of all defect-free pixels (over all images) predicted anomalous. The curve has
one point per distinct score, plus (0, 0) and (1, 1); it is integrated with the trapezoidal
rule up to ``fpr_limit`` (linearly interpolated there) and divided by ``fpr_limit``.
Departure from the reference: curve values are float64 (MVTec casts FPRs to float32).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from pyimgano.metrics._validate import mask_map_pairs
from pyimgano.metrics.classification import auroc_from_samples

__all__ = ["pixel_auroc", "pro_curve", "aupro"]


def pixel_auroc(masks: Any, maps: Any) -> float:
    """AUROC over all pixels of all images pooled together.

    Args:
        masks: bool/0-1[N, H, W] (or [H, W], or a sequence of 2-D masks), True = defect pixel.
        maps: float[N, H, W] anomaly maps of the same shape(s); no NaN.

    Returns:
        Exact rank AUROC (ties count one half) as a Python float.

    Raises:
        ValueError: shape mismatch, non-binary masks, NaN in maps, or the pooled pixels lack
            either defect or defect-free pixels.

    Memory: one copy of the defect-free scores (sorted) plus the defect scores.
    """
    pairs = mask_map_pairs(masks, maps)
    n_pos = sum(int(m.sum()) for m, _ in pairs)
    n_total = sum(m.size for m, _ in pairs)
    if n_pos == 0 or n_pos == n_total:
        present = "no defect pixel" if n_pos == 0 else "no defect-free pixel"
        raise ValueError(
            f"pixel_auroc needs both defect (1) and defect-free (0) pixels, got {present} in {n_total} pixels"
        )
    positives = np.concatenate([a[m] for m, a in pairs])
    negatives = np.concatenate([a[~m] for m, a in pairs])
    return auroc_from_samples(positives, negatives)


def _collect_regions(pairs):
    """Scores of defect-free pixels; scores and 1/area weights of defect pixels; region count."""
    ok_scores, defect_scores, defect_weights = [], [], []
    n_regions = 0
    for mask, amap in pairs:
        ok_scores.append(amap[~mask])
        if not mask.any():
            continue
        count, labels, stats, _ = cv2.connectedComponentsWithStats(
            mask.astype(np.uint8), connectivity=8, ltype=cv2.CV_32S
        )
        n_regions += count - 1
        # Each pixel of a region of area A adds 1/A to that region's overlap when it turns positive.
        inverse_area = 1.0 / np.maximum(stats[:, cv2.CC_STAT_AREA], 1).astype(np.float64)
        defect_scores.append(amap[mask])
        defect_weights.append(inverse_area[labels[mask]])
    ok = np.concatenate(ok_scores)
    if ok.size == 0:
        raise ValueError("AUPRO needs defect-free pixels, but every pixel of every mask is a defect")
    if n_regions == 0:
        raise ValueError("AUPRO needs at least one defect region, but every mask is empty")
    return ok, np.concatenate(defect_scores), np.concatenate(defect_weights), n_regions


def _curve(ok, defect, weights, n_regions, thresholds_desc):
    """(fpr, pro) for ``score >= t`` at each threshold of a descending array."""
    ok_sorted = np.sort(ok)
    order = np.argsort(defect, kind="stable")
    defect_sorted = defect[order]
    # suffix[i] = sum of weights of the defect pixels at sorted position >= i (0 at the end):
    # the summed region overlap once every score from position i upward is positive.
    suffix = np.append(np.cumsum(weights[order][::-1])[::-1], 0.0)
    false_pos = ok_sorted.size - np.searchsorted(ok_sorted, thresholds_desc, side="left")
    fprs = false_pos / ok_sorted.size
    pros = suffix[np.searchsorted(defect_sorted, thresholds_desc, side="left")] / n_regions
    # Summation order can push a value a hair above 1 (as MVTec notes); clip like the reference.
    np.clip(pros, 0.0, 1.0, out=pros)
    # Once every defect pixel is positive each region's overlap is exactly 1; the float sum of
    # 1/area weights can miss that by an ulp, which would keep a perfect map below AUPRO 1.
    pros[thresholds_desc <= defect_sorted[0]] = 1.0
    return fprs, pros


def _thresholds(ok, defect, num_thresholds):
    if num_thresholds is None:
        return np.unique(np.concatenate([ok, defect]))[::-1]
    low = min(ok.min(), defect.min())
    high = max(ok.max(), defect.max())
    if not (np.isfinite(low) and np.isfinite(high)):
        # Evenly spaced thresholds between infinite ends are all NaN/inf: no usable curve.
        raise ValueError("binned AUPRO (num_thresholds set) needs finite map values; use num_thresholds=None")
    return np.linspace(high, low, num_thresholds)


def _check_num_thresholds(num_thresholds):
    if num_thresholds is None:
        return None
    if isinstance(num_thresholds, bool) or not isinstance(num_thresholds, (int, np.integer)) or num_thresholds < 2:
        raise ValueError(f"num_thresholds must be None (exact) or an integer >= 2, got {num_thresholds!r}")
    return int(num_thresholds)


def pro_curve(masks: Any, maps: Any, *, num_thresholds: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The per-region-overlap curve.

    Args:
        masks: bool/0-1[N, H, W] (or a sequence of 2-D masks) with at least one defect region
            and at least one defect-free pixel overall.
        maps: float[N, H, W] anomaly maps, same shape(s); no NaN.
        num_thresholds: None (default) evaluates every distinct score, exactly as MVTec's code;
            an integer k >= 2 evaluates k thresholds spaced evenly between the lowest and the
            highest score (anomalib's binned mode), for speed.

    Returns:
        ``(fprs, pros)``: f64[K] each, FPR non-decreasing, starting at (0, 0), ending at (1, 1).

    Raises:
        ValueError: bad shapes/values (see :func:`pixel_auroc`), no region, no defect-free pixel,
            or a bad ``num_thresholds``.
    """
    num_thresholds = _check_num_thresholds(num_thresholds)
    ok, defect, weights, n_regions = _collect_regions(mask_map_pairs(masks, maps))
    fprs, pros = _curve(ok, defect, weights, n_regions, _thresholds(ok, defect, num_thresholds))
    return np.concatenate([[0.0], fprs, [1.0]]), np.concatenate([[0.0], pros, [1.0]])


def _area_up_to(x: np.ndarray, y: np.ndarray, x_max: float) -> float:
    """Trapezoidal area under (x, y) for x in [0, x_max]; x ascending (repeats allowed), x[-1] >= x_max."""
    keep = x <= x_max
    area = float(np.sum(0.5 * (y[keep][1:] + y[keep][:-1]) * np.diff(x[keep])))
    last = int(np.flatnonzero(keep)[-1])
    if x[last] < x_max:
        # Close the gap to x_max with the straight segment towards the next point.
        x0, y0, x1, y1 = x[last], y[last], x[last + 1], y[last + 1]
        y_at_max = y0 + (y1 - y0) * (x_max - x0) / (x1 - x0)
        area += 0.5 * (y0 + y_at_max) * (x_max - x0)
    return area


def aupro(masks: Any, maps: Any, fpr_limit: float = 0.3, *, num_thresholds: int | None = None) -> float:
    """Normalised area under the PRO curve for FPR in ``[0, fpr_limit]`` (MVTec AD's AU-PRO).

    Args:
        masks: bool/0-1[N, H, W] (or a sequence of 2-D masks); needs a defect region somewhere
            and at least one defect-free pixel.
        maps: float[N, H, W] anomaly maps, same shape(s); no NaN.
        fpr_limit: upper integration limit in (0, 1]; 0.3 is the MVTec AD convention.
        num_thresholds: None = exact (every distinct score); an integer >= 2 = binned.

    Returns:
        ``area / fpr_limit`` in [0, 1]; 1.0 for a map that ranks every defect pixel above every
        defect-free pixel.

    Raises:
        ValueError: bad inputs (see :func:`pro_curve`) or ``fpr_limit`` outside (0, 1].
    """
    limit = float(fpr_limit)
    if not 0.0 < limit <= 1.0:
        raise ValueError(f"fpr_limit must lie in (0, 1], got {fpr_limit!r}")
    fprs, pros = pro_curve(masks, maps, num_thresholds=num_thresholds)
    return _area_up_to(fprs, pros, limit) / limit
