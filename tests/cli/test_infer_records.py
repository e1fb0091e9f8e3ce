"""JSONL records, maps, masks and overlays written by ``pyimgano-infer``."""

import json
import os

import cv2
import numpy as np
import pytest

SCORE_KEYS = {"index", "input", "score", "label"}
DEFECT_KEYS = {"space", "pixel_threshold", "pixel_threshold_provenance", "mask", "regions", "map_stats_roi"}
REGION_KEYS = {"id", "bbox_xyxy", "area", "centroid_xy", "bbox_area", "fill_ratio", "aspect_ratio", "solidity",
               "score_max", "score_mean"}


def test_score_only_records_have_sorted_keys_plain_types_and_input_order(run_cli, checkpoint, image_dirs):
    run = run_cli("--checkpoint-path", checkpoint, "--input", image_dirs["test"])
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert len(lines) == 3
    for line in lines:
        keys = list(json.loads(line))
        assert keys == sorted(keys)
    records = run.records()
    assert [r["index"] for r in records] == [0, 1, 2]
    assert [os.path.basename(r["input"]) for r in records] == ["a_good.png", "b_good.png", "c_bad.png"]
    for r in records:
        assert set(r) == SCORE_KEYS
        assert isinstance(r["score"], float) and isinstance(r["label"], int) and r["label"] in (0, 1)
        assert isinstance(r["input"], str)
    assert records[2]["score"] > max(records[0]["score"], records[1]["score"])


def test_records_go_to_the_jsonl_file_and_stdout_stays_empty(run_cli, checkpoint, image_dirs, tmp_path):
    out = tmp_path / "sub" / "r.jsonl"
    run = run_cli("--checkpoint-path", checkpoint, "--input", image_dirs["test"], "--save-jsonl", out)
    assert run.code == 0, run.err
    assert run.out == ""
    assert len(run.records(out)) == 3


def test_maps_are_exported_as_readable_npy_files_named_by_relative_path(run_cli, checkpoint, image_dirs, tmp_path):
    maps = tmp_path / "maps"
    run = run_cli("--checkpoint-path", checkpoint, "--input", image_dirs["test"], "--save-maps", maps)
    assert run.code == 0, run.err
    records = run.records()
    assert sorted(os.listdir(maps)) == [".pyimgano-artifacts.json", "a_good.npy", "b_good.npy", "c_bad.npy"]
    for r in records:
        info = r["anomaly_map"]
        assert set(info) == {"path", "shape", "dtype"}
        arr = np.load(info["path"], allow_pickle=False)
        assert list(arr.shape) == info["shape"] == [32, 32]
        assert str(arr.dtype) == info["dtype"] == "float32"


def test_include_maps_without_export_records_shape_and_dtype_only(run_cli, checkpoint, image_dirs):
    run = run_cli("--checkpoint-path", checkpoint, "--input", image_dirs["test"], "--include-maps")
    assert run.code == 0, run.err
    for r in run.records():
        assert r["anomaly_map"] == {"shape": [32, 32], "dtype": "float32"}


def test_defects_records_masks_and_overlays_follow_the_schema(run_cli, checkpoint, image_dirs, tmp_path):
    masks, overlays = tmp_path / "masks", tmp_path / "overlays"
    run = run_cli(
        "--checkpoint-path", checkpoint, "--input", image_dirs["test"], "--defects", "--pixel-threshold", "0.3",
        "--save-masks", masks, "--save-overlays", overlays,
    )
    assert run.code == 0, run.err
    records = run.records()
    for r in records:
        assert set(r) == SCORE_KEYS | {"defects"}
        d = r["defects"]
        assert set(d) == DEFECT_KEYS | {"overlay"}
        assert cv2.imread(d["overlay"]["path"]).shape == (32, 96, 3)
        assert d["space"] == {"type": "anomaly_map", "shape": [32, 32]}
        assert d["pixel_threshold"] == 0.3
        assert d["pixel_threshold_provenance"] == {"method": "fixed", "source": "explicit"}
        assert set(d["map_stats_roi"]) == {"max", "mean"}
        assert set(d["mask"]) == {"path", "shape", "dtype", "encoding"}
        assert d["mask"]["encoding"] == "png" and d["mask"]["dtype"] == "uint8"
        mask = cv2.imread(d["mask"]["path"], cv2.IMREAD_UNCHANGED)
        assert mask.shape == (32, 32) and set(np.unique(mask)) <= {0, 255}
        assert int((mask > 0).sum()) == sum(region["area"] for region in d["regions"])
        for region in d["regions"]:
            assert REGION_KEYS <= set(region)
            assert "bbox_xyxy_image" not in region
    assert records[2]["defects"]["regions"], "the painted defect is found"
    assert sorted(os.listdir(overlays)) == [".pyimgano-artifacts.json", "a_good.png", "b_good.png", "c_bad.png"]


def test_npy_masks_are_written_when_mask_format_is_npy(run_cli, checkpoint, image_dirs, tmp_path):
    masks = tmp_path / "masks"
    run = run_cli("--checkpoint-path", checkpoint, "--input", image_dirs["test"], "--defects", "--pixel-threshold",
                  "0.3", "--save-masks", masks, "--mask-format", "npy")
    assert run.code == 0, run.err
    r = run.records()[2]
    assert r["defects"]["mask"]["encoding"] == "npy"
    assert r["defects"]["mask"]["path"] == str(masks / "c_bad.npy")
    mask = np.load(r["defects"]["mask"]["path"], allow_pickle=False)
    assert mask.dtype == np.uint8 and mask.shape == (32, 32) and mask.max() == 255


def test_roi_gates_defects_but_never_the_score_or_label(run_cli, checkpoint, image_dirs):
    base = ("--checkpoint-path", checkpoint, "--input", image_dirs["test"], "--defects", "--pixel-threshold", "0.0")
    full = run_cli(*base)
    roi = run_cli(*base, "--roi-xyxy-norm", "0.5", "0.5", "1.0", "1.0")
    assert full.code == roi.code == 0, roi.err
    for a, b in zip(full.records(), roi.records()):
        assert (a["score"], a["label"]) == (b["score"], b["label"])
        regions = b["defects"]["regions"]
        assert regions
        for region in regions:
            x1, y1, _, _ = region["bbox_xyxy"]
            assert x1 >= 16 and y1 >= 16
        # Threshold 0 marks every map pixel; the ROI keeps the lower-right quarter only.
        assert sum(r["area"] for r in regions) == 16 * 16
        assert sum(r["area"] for r in a["defects"]["regions"]) == 32 * 32


def test_defects_image_space_scales_map_bboxes_to_image_pixels(run_cli, checkpoint, image_dirs, monkeypatch):
    import pyimgano.cli._batches
    from pyimgano.inference import InferenceResult

    def half_resolution_infer(state, images, **kwargs):
        # Maps at half the image size, so map pixels and image pixels differ (4x4 map on an 8x8 image).
        out = []
        for frame in images:
            h, w = frame.shape[:2]
            amap = np.zeros((h // 8, w // 8), np.float32)
            amap[1:3, 1:3] = 1.0
            out.append(InferenceResult(score=1.0, label=1, anomaly_map=amap))
        return out

    monkeypatch.setattr(pyimgano.cli._batches, "infer_frames", half_resolution_infer)
    plain = run_cli("--checkpoint-path", checkpoint, "--input", image_dirs["test"], "--defects", "--pixel-threshold", "0.5")
    scaled = run_cli("--checkpoint-path", checkpoint, "--input", image_dirs["test"], "--defects", "--pixel-threshold",
                     "0.5", "--defects-image-space")
    assert plain.code == scaled.code == 0, scaled.err
    assert "bbox_xyxy_image" not in plain.records()[0]["defects"]["regions"][0]
    region = scaled.records()[0]["defects"]["regions"][0]
    assert region["bbox_xyxy"] == [1, 1, 2, 2]
    # Pixel edges scale by 8: map pixels 1..2 cover image pixels 8..23.
    assert region["bbox_xyxy_image"] == [8, 8, 23, 23]


def test_postprocess_changes_maps_but_not_scores(run_cli, checkpoint, image_dirs, tmp_path):
    raw = run_cli("--checkpoint-path", checkpoint, "--input", image_dirs["test"], "--save-maps", tmp_path / "raw")
    post = run_cli("--checkpoint-path", checkpoint, "--input", image_dirs["test"], "--save-maps", tmp_path / "post",
                   "--postprocess", '{"normalize": "minmax"}')
    assert raw.code == post.code == 0, post.err
    for a, b in zip(raw.records(), post.records()):
        assert a["score"] == b["score"]
        m = np.load(b["anomaly_map"]["path"])
        assert m.min() == pytest.approx(0.0) and m.max() == pytest.approx(1.0)


def test_profile_json_counts_inputs_and_times_each_stage(run_cli, checkpoint, image_dirs, tmp_path):
    prof = tmp_path / "profile.json"
    run = run_cli("--checkpoint-path", checkpoint, "--input", image_dirs["test"], "--profile-json", prof)
    assert run.code == 0, run.err
    data = json.loads(prof.read_text())
    assert data["counts"] == {"inputs": 3, "processed": 3, "errors": 0}
    assert {"load_model", "fit_calibrate", "infer", "artifacts", "total", "first_record"} <= set(data["seconds"])
    assert all(v >= 0 for v in data["seconds"].values())


def test_no_progress_bar_is_drawn_when_stderr_is_not_a_terminal(run_cli, checkpoint, image_dirs):
    run = run_cli("--checkpoint-path", checkpoint, "--input", image_dirs["test"])
    assert run.code == 0
    assert "infer [" not in run.err and "\r" not in run.err
