"""Multi-category infer-configs, and the pictures / page of a report (with and without matplotlib)."""

import json

import numpy as np
import pytest

from pyimgano.datasets import DatasetSplit
from pyimgano.workbench import outputs, plots
from pyimgano.workbench.html_report import CategorySection, render_html
from pyimgano.workbench.infer_config import (
    InferConfigError,
    find_run_infer_config,
    load_infer_config,
    multi_category_payload,
)
from pyimgano.workbench.review import ReviewImage, review_indices
from pyimgano.workbench.steps import CategoryResult, ScoredSplit


def _payload(name, threshold):
    return {"schema_version": 1, "pyimgano_version": "0", "timestamp_utc": "t", "input_format": None,
            "model": {"name": "vision_patchcore", "checkpoint_path": f"../checkpoints/{name}/s.safetensors"},
            "threshold": threshold, "threshold_provenance": None, "tiling": None, "postprocess": None,
            "defects": None, "include_maps": None, "category": name}


def test_one_category_keeps_its_flat_payload_and_several_share_a_header(tmp_path):
    assert multi_category_payload({"a": _payload("a", 1.0)}) == _payload("a", 1.0)
    both = multi_category_payload({"a": _payload("a", 1.0), "b": _payload("b", 2.0)})
    assert sorted(both) == ["categories", "input_format", "pyimgano_version", "resize", "schema_version", "timestamp_utc"]
    path = tmp_path / "artifacts" / "infer_config.json"
    path.parent.mkdir()
    path.write_text(json.dumps(both))
    chosen = load_infer_config(path, category="b")
    assert chosen.threshold == 2.0
    assert chosen.checkpoint_path == str(path.parent / "../checkpoints/b/s.safetensors")
    with pytest.raises(InferConfigError, match=r"holds several categories \['a', 'b'\]"):
        load_infer_config(path)
    with pytest.raises(ValueError, match="differs from 'a' in \\['input_format'\\]"):
        multi_category_payload({"a": _payload("a", 1.0), "b": {**_payload("b", 2.0), "input_format": "bgr_u8_hwc"}})


def test_a_single_category_infer_config_refuses_another_category(tmp_path):
    path = tmp_path / "infer_config.json"
    path.write_text(json.dumps(_payload("bottle", 1.0)))
    assert load_infer_config(path, category="bottle").threshold == 1.0
    with pytest.raises(InferConfigError, match="is the infer-config of category 'bottle', not 'cable'"):
        load_infer_config(path, category="cable")


def test_a_run_without_an_infer_config_says_how_to_write_one(tmp_path):
    with pytest.raises(InferConfigError, match="pyimgano-train --config CFG --export-infer-config"):
        find_run_infer_config(tmp_path)


def _result(labels, scores, threshold=0.5):
    n = len(labels)
    split = DatasetSplit(train_paths=["t.png"], test_paths=[f"/d/{i}.png" for i in range(n)], test_labels=labels,
                         test_mask_paths=[None] * n, test_defect_types=["x"] * n)
    scored = ScoredSplit(split=split, scores=np.asarray(scores, float), threshold=threshold, eval_maps=None,
                         eval_masks=None, map_files=[None] * n, map_shapes=[None] * n, pixel_note="no masks", seconds=1.0)
    metrics = {"image_auroc": 1.0, "aupro": None, "aupro_fpr_limit": 0.3}
    return CategoryResult(category="c", state=None, scored=scored, metrics=metrics)


def test_plots_are_pngs_and_missing_data_are_noted():
    pictures, notes = outputs.category_pictures(_result([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9]))
    assert sorted(pictures) == ["plots/roc.png", "plots/score_histogram.png"]
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") for png in pictures.values())
    assert notes == ["no PRO curve: pixel metrics were not computed"]


def test_without_matplotlib_reports_are_written_without_plots_and_say_why(monkeypatch):
    message = "plots skipped: matplotlib is not installed (pip install 'pyimgano[plots]')"
    monkeypatch.setattr(outputs, "PLOTS_UNAVAILABLE", message)
    assert outputs.category_pictures(_result([0, 1], [0.1, 0.9])) == ({}, [message])
    monkeypatch.setattr(plots, "Figure", None)
    monkeypatch.setattr(plots, "PLOTS_UNAVAILABLE", message)
    with pytest.raises(RuntimeError, match=r"pip install 'pyimgano\[plots\]'"):
        plots.roc_png([0, 1], [0.1, 0.9], None)


def test_review_picks_the_highest_scored_normals_and_lowest_scored_anomalies():
    result = _result([0, 0, 0, 1, 1, 1], [0.1, 0.7, 0.3, 0.2, 0.9, 0.5])
    assert review_indices(result.scored, 2) == {"worst_normal": [1, 2], "hardest_anomalous": [3, 5]}


def test_the_page_escapes_names_and_embeds_its_pictures():
    review = [ReviewImage(index=0, kind="worst_normal", path="/d/<b>.png", score=0.5, label=1, defect_type="good",
                          png=b"\x89PNG fake")]
    section = CategorySection(name="<script>x</script>", metrics={"image_auroc": 0.9, "confusion": {"tp": 1, "fp": 2,
                              "tn": 3, "fn": 4}}, timing={"fit_s": 1.0}, plots={"plots/roc.png": b"\x89PNG roc"},
                              review=review, notes=["pixel metrics not computed: <none>"])
    page = render_html({"recipe": "industrial-adapt", "aggregate": None}, [section])
    assert "<script>" not in page and "&lt;script&gt;" in page and "/d/&lt;b&gt;.png" in page
    assert page.count("data:image/png;base64,") == 2 and "labelled anomalous" in page
    assert "<td>0.9000</td>" in page and "<td>4</td>" in page
