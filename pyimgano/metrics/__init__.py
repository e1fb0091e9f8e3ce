"""Evaluation metrics (numpy only): image AUROC, average precision, the ROC curve, confusion
counts / precision / recall / F1 at a threshold,
pooled pixel AUROC and AUPRO (MVTec AD). Label 1 / mask True = anomalous; higher score =
more anomalous. See docs/metrics.md for the exact definitions.
"""

from pyimgano.metrics.classification import (
    auroc_from_samples,
    average_precision,
    confusion_at_threshold,
    f1_at_threshold,
    image_auroc,
    precision_recall_f1,
    roc_curve,
)
from pyimgano.metrics.pixel import aupro, pixel_auroc, pro_curve

__all__ = [
    "image_auroc",
    "average_precision",
    "f1_at_threshold",
    "confusion_at_threshold",
    "precision_recall_f1",
    "roc_curve",
    "auroc_from_samples",
    "pixel_auroc",
    "pro_curve",
    "aupro",
]
