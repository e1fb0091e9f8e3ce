"""Input discovery (folders, globs, repeats, ``.npy`` frames) and hostile file names."""

import os

import numpy as np
import pytest



def test_folders_are_searched_recursively_in_sorted_order_skipping_non_images(make_frame_fn, write_png_fn, run_cli, checkpoint, image_dirs, tmp_path):
    folder = tmp_path / "in"
    write_png_fn(folder / "z" / "b.png", make_frame_fn(1))
    write_png_fn(folder / "a.png", make_frame_fn(2))
    write_png_fn(folder / "z" / "a.png", make_frame_fn(3))
    (folder / "notes.txt").write_text("not an image")
    write_png_fn(folder / ".hidden" / "c.png", make_frame_fn(4))
    run = run_cli("--checkpoint-path", checkpoint, "--input", folder)
    assert run.code == 0, run.err
    rel = [os.path.relpath(r["input"], folder) for r in run.records()]
    assert rel == ["a.png", os.path.join("z", "a.png"), os.path.join("z", "b.png")]


def test_repeated_inputs_and_globs_keep_their_order_and_score_each_file_once(run_cli, checkpoint, image_dirs):
    test = image_dirs["test"]
    run = run_cli("--checkpoint-path", checkpoint, "--input", os.path.join(test, "c_bad.png"),
                  "--input", os.path.join(test, "*_good.png"), "--input", os.path.join(test, "c_bad.png"))
    assert run.code == 0, run.err
    names = [os.path.basename(r["input"]) for r in run.records()]
    assert names == ["c_bad.png", "a_good.png", "b_good.png"]


def test_npy_frame_batches_need_input_format_and_score_like_the_png_files(make_frame_fn, write_png_fn, run_cli, checkpoint, image_dirs, tmp_path):
    rgb = np.stack([make_frame_fn(100), make_frame_fn(102, defect=True)])
    path = tmp_path / "frames.npy"
    np.save(path, rgb[..., ::-1].copy())  # BGR, as OpenCV frames arrive
    missing = run_cli("--checkpoint-path", checkpoint, "--input", path)
    assert missing.code == 2 and "--input-format" in missing.err
    run = run_cli("--checkpoint-path", checkpoint, "--input", path, "--input-format", "bgr_u8_hwc")
    assert run.code == 0, run.err
    records = run.records()
    assert [r["input"] for r in records] == [f"{path}[0]", f"{path}[1]"]
    pngs = run_cli("--checkpoint-path", checkpoint, "--input", os.path.join(image_dirs["test"], "a_good.png"),
                   "--input", os.path.join(image_dirs["test"], "c_bad.png")).records()
    assert [r["score"] for r in records] == pytest.approx([r["score"] for r in pngs], abs=1e-6)


def test_an_unknown_input_format_exits_2_listing_the_formats(make_frame_fn, write_png_fn, run_cli, checkpoint, tmp_path):
    path = tmp_path / "f.npy"
    np.save(path, make_frame_fn(0))
    run = run_cli("--checkpoint-path", checkpoint, "--input", path, "--input-format", "auto")
    assert run.code == 2 and "'auto'" in run.err and "bgr_u8_hwc" in run.err


def test_hostile_file_names_land_inside_the_output_folder(make_frame_fn, write_png_fn, run_cli, checkpoint, tmp_path):
    src = tmp_path / "src"
    deep = src / "a" / "b"
    deep.mkdir(parents=True)
    hostile = [
        write_png_fn(src / "x.png", make_frame_fn(1)),
        write_png_fn(src / "with  spaces & $(rm -rf).png", make_frame_fn(2)),
        write_png_fn(src / "ünïcödé 漢字.png", make_frame_fn(3)),
        write_png_fn(src / "..dots...png", make_frame_fn(4)),
    ]
    traversal = str(deep / ".." / ".." / "x.png")  # "../../x.png" relative to a/b
    out = tmp_path / "out" / "maps"
    masks = tmp_path / "out" / "masks"
    run = run_cli("--checkpoint-path", checkpoint, "--input", traversal, *sum((["--input", h] for h in hostile[1:]), []),
                  "--save-maps", out, "--defects", "--pixel-threshold", "0.5", "--save-masks", masks)
    assert run.code == 0, run.err
    records = run.records()
    assert len(records) == 4
    names = set()
    for r in records:
        for path in (r["anomaly_map"]["path"], r["defects"]["mask"]["path"]):
            parent = os.path.dirname(os.path.realpath(path))
            assert parent in (os.path.realpath(out), os.path.realpath(masks))
            name = os.path.basename(path)
            assert " " not in name and name.isascii() and not name.startswith(".")
            names.add(name)
    # One safe name per input, shared by its map (.npy) and its mask (.png).
    assert {os.path.splitext(n)[0] for n in names} == {"x", "with_spaces_rm_-rf", "n_c_d", "dots.."}
    assert sorted(os.listdir(tmp_path / "out")) == ["maps", "masks"]
    assert sorted(os.listdir(src)) == sorted(["a", *[os.path.basename(h) for h in hostile]])


def test_train_dir_fits_calibrates_and_reports_the_stages(run_cli, image_dirs, tmp_path, tiny_patchcore_kwargs):
    import json

    prof = tmp_path / "p.json"
    run = run_cli("--model", "vision_patchcore", "--model-kwargs", json.dumps(tiny_patchcore_kwargs), "--train-dir",
                  image_dirs["train"], "--input", image_dirs["test"], "--calibration-quantile", "1.0", "--defects",
                  "--profile-json", prof, "--seed", "3")
    assert run.code == 0, run.err
    records = run.records()
    # q=1.0: the threshold is the largest train score; the painted defect lies above it.
    assert records[2]["label"] == 1
    prov = records[0]["defects"]["pixel_threshold_provenance"]
    # 6 train images: 5 fit the model, 1 is held out (20 %) to calibrate both thresholds.
    assert prov["method"] == "normal_map_max_quantile" and prov["source"] == "holdout"
    assert prov["n_maps"] == 1 and prov["n_pixels"] == 32 * 32 and prov["fit_count"] == 5
    assert records[0]["defects"]["pixel_threshold"] > 0
    profile = json.loads(prof.read_text())
    assert profile["counts"] == {"inputs": 3, "processed": 3, "errors": 0}
    assert profile["seconds"]["fit_calibrate"] > 0


def test_tiled_inference_scores_every_input_with_full_size_maps(run_cli, checkpoint, image_dirs):
    run = run_cli("--checkpoint-path", checkpoint, "--input", image_dirs["test"], "--include-maps", "--tile-size", "16",
                  "--tile-stride", "8", "--tile-map-reduce", "hann", "--tile-score-reduce", "max")
    assert run.code == 0, run.err
    records = run.records()
    assert len(records) == 3
    for r in records:
        assert r["anomaly_map"]["shape"] == [32, 32]
        assert "label" not in r, "an untiled threshold does not label tiled scores"
