"""Category metrics equal the metric functions on the same data; the aggregate equals a brute-force
mean and sum; per-image records follow the inference label rule; evaluation sizes and map names."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyimgano.datasets import DatasetSplit
from pyimgano.metrics import aupro, average_precision, image_auroc, pixel_auroc
from pyimgano.workbench.evaluation import aggregate, evaluate, per_image_records
from pyimgano.workbench.steps import ScoredSplit, eval_size, map_names


def _scored(labels, scores, threshold, *, maps=None, masks=None, types=None, paths=None):
    n = len(labels)
    split = DatasetSplit(
        train_paths=["t.png"],
        test_paths=paths or [f"/d/test/{i}.png" for i in range(n)],
        test_labels=labels,
        test_mask_paths=[f"/d/m{i}.png" if y else None for i, y in enumerate(labels)],
        test_defect_types=types or ["anomaly" if y else "normal" for y in labels],
    )
    return ScoredSplit(split=split, scores=np.asarray(scores, np.float64), threshold=threshold,
                       eval_maps=maps, eval_masks=masks, map_files=[None] * n,
                       map_shapes=[None if maps is None else list(maps[i].shape) for i in range(n)],
                       pixel_note=None if maps is not None else "no masks", seconds=1.0)


def test_category_metrics_equal_the_metric_functions_on_random_data():
    rng = np.random.default_rng(0)
    labels = [0] * 6 + [1] * 6
    scores = rng.normal(size=12) + np.asarray(labels)
    masks = [np.zeros((16, 16), bool) for _ in range(12)]
    for i in range(6, 12):
        masks[i][2 + i : 6 + i, 3:8] = True
    maps = [rng.random((16, 16)).astype(np.float32) + m for m in masks]
    metrics = evaluate(_scored(labels, scores, 0.5, maps=maps, masks=masks))
    assert metrics["image_auroc"] == image_auroc(labels, scores)
    assert metrics["average_precision"] == average_precision(labels, scores)
    assert metrics["pixel_auroc"] == pixel_auroc(masks, maps)
    assert metrics["aupro"] == aupro(masks, maps, 0.3)
    predicted = scores > 0.5
    y = np.asarray(labels, bool)
    assert metrics["confusion"] == {"tp": int((predicted & y).sum()), "fp": int((predicted & ~y).sum()),
                                    "tn": int((~predicted & ~y).sum()), "fn": int((~predicted & y).sum())}
    assert metrics["counts"] == {"test": 12, "normal": 6, "anomalous": 6} and metrics["notes"] == []


def test_undefined_metrics_are_none_with_the_reason():
    metrics = evaluate(_scored([0, 0, 0], [0.1, 0.2, 0.3], None))
    assert metrics["image_auroc"] is None and metrics["f1"] is None and metrics["confusion"] is None
    assert any(n.startswith("image_auroc: ") for n in metrics["notes"])
    assert "no image threshold: no confusion counts, precision, recall or F1" in metrics["notes"]
    assert "pixel metrics not computed: no masks" in metrics["notes"]


@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20), st.integers(0, 20), st.integers(0, 20),
                          st.floats(0, 1), st.one_of(st.none(), st.floats(0, 1))), min_size=1, max_size=5))
def test_the_aggregate_is_the_mean_of_each_metric_and_the_sum_of_the_counts(rows):
    per = {f"c{i}": {"confusion": {"tp": tp, "fp": fp, "tn": tn, "fn": fn}, "image_auroc": auc, "aupro": pro,
                     "average_precision": None, "precision": None, "recall": None, "f1": None, "pixel_auroc": None}
           for i, (tp, fp, tn, fn, auc, pro) in enumerate(rows)}
    out = aggregate(per)
    assert out["categories"] == len(rows)
    assert out["mean"]["image_auroc"] == pytest.approx(sum(r[4] for r in rows) / len(rows))
    pros = [r[5] for r in rows if r[5] is not None]
    assert out["mean"]["aupro"] == (pytest.approx(sum(pros) / len(pros)) if pros else None)
    assert out["mean"]["f1"] is None
    tp, fp, tn, fn = (sum(r[k] for r in rows) for k in range(4))
    assert out["confusion"] == {"tp": tp, "fp": fp, "tn": tn, "fn": fn}
    assert out["micro"]["f1"] == (2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)


def test_per_image_records_use_the_strict_label_rule():
    scored = _scored([0, 1, 1], [0.5, 0.5, 0.9], 0.5)
    records = per_image_records(scored, "bottle")
    assert [r["label"] for r in records] == [0, 0, 1]
    assert [r["gt_label"] for r in records] == [0, 1, 1]
    assert records[1] == {"index": 1, "input": "/d/test/1.png", "category": "bottle", "defect_type": "anomaly",
                          "gt_label": 1, "gt_mask": "/d/m1.png", "score": 0.5, "label": 0}


def test_eval_size_only_shrinks_and_keeps_the_aspect_ratio():
    assert eval_size(900, 900) == (256, 256)
    assert eval_size(576, 768) == (192, 256)
    assert eval_size(32, 48) == (32, 48)


def test_map_names_are_safe_and_unique():
    scored = _scored([0, 1, 1], [0, 0, 0], None, types=["good", "a b", "a b"],
                     paths=["/x/000.png", "/y/../001.png", "/z/001.png"])
    assert map_names(scored.split) == ["good/000", "a_b/001__000001", "a_b/001__000002"]
