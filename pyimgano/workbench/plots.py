"""Per-category pictures as PNG bytes: ROC curve, PRO curve, score histogram (matplotlib).

matplotlib is optional (the ``plots`` extra): :data:`PLOTS_UNAVAILABLE` is None when it is
installed, else the sentence to show (the run still writes every report, without pictures).
Figures are built with the object API (``matplotlib.figure.Figure``, the Agg renderer), never
``pyplot``, so nothing global changes and no window opens.
"""

from __future__ import annotations

import io

import numpy as np

from pyimgano.metrics import pro_curve, roc_curve

try:
    from matplotlib.figure import Figure
except ImportError:  # the plots extra is not installed
    Figure = None

__all__ = ["PLOTS_UNAVAILABLE", "roc_png", "pro_png", "histogram_png"]

PLOTS_UNAVAILABLE: str | None = (
    None if Figure is not None
    else "plots skipped: matplotlib is not installed (pip install 'pyimgano[plots]')"
)
_MAX_POINTS = 2000
_NORMAL, _ANOMALOUS, _THRESHOLD = "#2b7bba", "#d7301f", "#333333"


def _require() -> None:
    if Figure is None:
        raise RuntimeError(PLOTS_UNAVAILABLE)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    # No "Software" stamp: equal data gives equal bytes across matplotlib patch releases.
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def _thin(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """At most ``_MAX_POINTS`` points of a monotone curve, first and last kept."""
    if x.size <= _MAX_POINTS:
        return x, y
    keep = np.unique(np.linspace(0, x.size - 1, _MAX_POINTS).round().astype(int))
    return x[keep], y[keep]


def roc_png(labels, scores, threshold: float | None, *, title: str = "") -> bytes:
    """The ROC curve with its AUROC, and the operating point of ``score > threshold``.

    Raises:
        RuntimeError: matplotlib is not installed. ValueError: one class only.
    """
    _require()
    labels = np.asarray(labels)
    scores = np.asarray(scores, np.float64)
    fpr, tpr, _ = roc_curve(labels, scores)
    auc = float(np.trapezoid(tpr, fpr))
    fig = Figure(figsize=(4.2, 3.6), dpi=100, layout="constrained")
    ax = fig.subplots()
    ax.plot(fpr, tpr, color=_ANOMALOUS, lw=1.8, label=f"AUROC {auc:.4f}")
    ax.plot([0, 1], [0, 1], color="#999999", lw=0.8, ls="--")
    if threshold is not None:
        predicted = scores > threshold
        op = (float(predicted[labels == 0].mean()), float(predicted[labels == 1].mean()))
        ax.plot(*op, "o", color=_THRESHOLD, label=f"threshold {threshold:.4g}")
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="false positive rate (normal images)",
           ylabel="true positive rate (anomalous)", title=title or "ROC (image level)")
    ax.legend(loc="lower right", fontsize=8)
    return _png(fig)


def pro_png(masks, maps, fpr_limit: float, aupro_value: float | None, *, title: str = "") -> bytes:
    """The per-region-overlap curve up to ``fpr_limit`` (the AUPRO integration range).

    Raises:
        RuntimeError: matplotlib is not installed. ValueError: as :func:`pyimgano.metrics.pro_curve`.
    """
    _require()
    fprs, pros = pro_curve(masks, maps)
    keep = fprs <= fpr_limit
    x, y = _thin(fprs[keep], pros[keep])
    fig = Figure(figsize=(4.2, 3.6), dpi=100, layout="constrained")
    ax = fig.subplots()
    label = "PRO" if aupro_value is None else f"AUPRO@{fpr_limit:g} {aupro_value:.4f}"
    ax.plot(x, y, color=_ANOMALOUS, lw=1.8, label=label)
    ax.set(xlim=(0, fpr_limit), ylim=(0, 1.02), xlabel="false positive rate (defect-free pixels)",
           ylabel="per-region overlap", title=title or "PRO (pixel level)")
    ax.legend(loc="lower right", fontsize=8)
    return _png(fig)


def histogram_png(labels, scores, threshold: float | None, *, title: str = "") -> bytes:
    """Score histograms of normal and anomalous test images on shared bins, with the threshold.

    Raises:
        RuntimeError: matplotlib is not installed.
    """
    _require()
    labels = np.asarray(labels)
    scores = np.asarray(scores, np.float64)
    values = scores if threshold is None else np.append(scores, threshold)
    lo, hi = float(values.min()), float(values.max())
    bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 31)
    fig = Figure(figsize=(4.2, 3.6), dpi=100, layout="constrained")
    ax = fig.subplots()
    for value, name, colour in ((0, "normal", _NORMAL), (1, "anomalous", _ANOMALOUS)):
        part = scores[labels == value]
        if part.size:
            ax.hist(part, bins=bins, color=colour, alpha=0.6, label=f"{name} ({part.size})")
    if threshold is not None:
        ax.axvline(threshold, color=_THRESHOLD, lw=1.5, ls="--", label=f"threshold {threshold:.4g}")
    ax.set(xlabel="image score", ylabel="images", title=title or "Test scores")
    ax.legend(fontsize=8)
    return _png(fig)
