"""examples/defects_from_map.py runs offline and finds exactly the synthetic compact defect."""

import json
import pathlib
import runpy

import cv2

EXAMPLE = pathlib.Path(__file__).resolve().parents[3] / "examples" / "defects_from_map.py"


def test_the_example_finds_the_compact_defect_and_writes_mask_and_overlay(tmp_path, capsys):
    module = runpy.run_path(str(EXAMPLE), run_name="defects_example")
    assert module["main"](["--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    block = json.loads(out[out.index("{") :])
    assert block["pixel_threshold_provenance"]["method"] == "normal_map_max_quantile"
    assert block["pixel_threshold_provenance"]["n_maps"] == 8
    assert len(block["regions"]) == 1
    x1, y1, x2, y2 = block["regions"][0]["bbox_xyxy"]
    assert x1 <= 40 <= x2 and y1 <= 24 <= y2  # the gaussian defect's centre
    assert cv2.imread(str(tmp_path / "000000_synthetic.png"), cv2.IMREAD_UNCHANGED).shape == (64, 64)
    assert cv2.imread(str(tmp_path / "000000_synthetic_overlay.png")).shape == (256, 768, 3)
