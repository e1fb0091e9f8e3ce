"""Metrics of a scored split, their aggregate over categories, and per-image records.

Per category (:func:`evaluate`): image AUROC, average precision, the confusion counts,
precision, recall and F1 at the calibrated threshold (``score > threshold`` is anomalous, the
inference label rule), pixel AUROC and AUPRO up to FPR 0.3 on evaluation-size maps. A metric
that is undefined for the data (one class only, no masks) is ``None`` with the reason in
``notes``. Aggregate (:func:`aggregate`): the mean of each metric over the categories that have
it, and confusion counts summed, with precision / recall / F1 of the summed counts.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from pyimgano.metrics import (
    aupro,
    average_precision,
    confusion_at_threshold,
    image_auroc,
    pixel_auroc,
    precision_recall_f1,
)
from pyimgano.workbench.steps import ScoredSplit

__all__ = ["AUPRO_FPR_LIMIT", "IMAGE_METRICS", "PIXEL_METRICS", "evaluate", "aggregate", "per_image_records"]

AUPRO_FPR_LIMIT = 0.3
IMAGE_METRICS = ("image_auroc", "average_precision", "precision", "recall", "f1")
PIXEL_METRICS = ("pixel_auroc", "aupro")


def _try(metric, *args, notes: list[str], name: str):
    try:
        return float(metric(*args))
    except ValueError as exc:
        notes.append(f"{name}: {exc}")
        return None


def evaluate(scored: ScoredSplit) -> dict[str, Any]:
    """The metrics of one scored split (module docstring); plain JSON types.

    Keys: ``image_auroc``, ``average_precision``, ``threshold``, ``confusion`` (``tp fp tn
    fn``), ``precision``, ``recall``, ``f1``, ``pixel_auroc``, ``aupro``, ``aupro_fpr_limit``,
    ``counts`` (``test``, ``normal``, ``anomalous``), ``notes``.
    """
    labels, scores = scored.labels, scored.scores
    notes: list[str] = []
    out: dict[str, Any] = {
        "image_auroc": _try(image_auroc, labels, scores, notes=notes, name="image_auroc"),
        "average_precision": _try(average_precision, labels, scores, notes=notes, name="average_precision"),
        "threshold": scored.threshold,
        "counts": {"test": int(labels.size), "anomalous": int(labels.sum()), "normal": int(labels.size - labels.sum())},
        "aupro_fpr_limit": AUPRO_FPR_LIMIT,
    }
    if scored.threshold is None:
        notes.append("no image threshold: no confusion counts, precision, recall or F1")
        out.update(confusion=None, precision=None, recall=None, f1=None)
    else:
        out["confusion"] = confusion_at_threshold(labels, scores, scored.threshold)
        out.update(precision_recall_f1(labels, scores, scored.threshold))
    if scored.eval_maps is None:
        notes.append(f"pixel metrics not computed: {scored.pixel_note}")
        out.update(pixel_auroc=None, aupro=None)
    else:
        out["pixel_auroc"] = _try(pixel_auroc, scored.eval_masks, scored.eval_maps, notes=notes, name="pixel_auroc")
        out["aupro"] = _try(aupro, scored.eval_masks, scored.eval_maps, AUPRO_FPR_LIMIT, notes=notes, name="aupro")
    out["notes"] = notes
    return out


def aggregate(per_category: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Mean of each metric over the categories that have it, summed confusion counts and the
    precision / recall / F1 of the summed counts (``micro``)."""
    mean: dict[str, float | None] = {}
    for name in (*IMAGE_METRICS, *PIXEL_METRICS):
        values = [m[name] for m in per_category.values() if m.get(name) is not None]
        mean[name] = float(np.mean(values)) if values else None
    counts = {"tp": 0, "fp": 0, "tn": 0, "fn": 0}
    have_counts = [m["confusion"] for m in per_category.values() if m.get("confusion") is not None]
    for c in have_counts:
        for key in counts:
            counts[key] += int(c[key])
    tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
    micro = {
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
    } if have_counts else None
    return {
        "categories": len(per_category),
        "mean": mean,
        "confusion": counts if have_counts else None,
        "micro": micro,
    }


def per_image_records(scored: ScoredSplit, category: str, *, root_names: Sequence[str] | None = None) -> list[dict]:
    """One record per test image: ``index``, ``input`` (the path), ``category``, ``defect_type``,
    ``gt_label``, ``gt_mask``, ``score``, ``label`` (predicted; absent without a threshold),
    ``anomaly_map`` (``{shape, dtype[, path]}`` when a map was computed)."""
    split = scored.split
    predictions = scored.predictions
    records = []
    for i, path in enumerate(split.test_paths):
        record: dict[str, Any] = {
            "index": i,
            "input": path,
            "category": category,
            "defect_type": split.test_defect_types[i],
            "gt_label": int(split.test_labels[i]),
            "gt_mask": split.test_mask_paths[i],
            "score": float(scored.scores[i]),
        }
        if root_names is not None:
            record["name"] = root_names[i]
        if predictions is not None:
            record["label"] = int(predictions[i])
        if scored.map_shapes[i] is not None:
            info: dict[str, Any] = {"shape": scored.map_shapes[i], "dtype": "float32"}
            if scored.map_files[i] is not None:
                info["path"] = scored.map_files[i]
            record["anomaly_map"] = info
        records.append(record)
    return records
