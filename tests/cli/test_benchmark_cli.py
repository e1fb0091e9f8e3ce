"""``pyimgano-benchmark --list-models`` / ``--model-info`` (SPEC section 9, seed 000 section 3)."""

import io
import json

from pyimgano.cli.benchmark import main
from pyimgano.registry import list_detectors


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    return main(list(argv), stdout=out, stderr=err), out.getvalue(), err.getvalue()


def test_list_models_by_tags_matches_the_registry_in_text_and_json():
    code, out, _ = run("--list-models", "--tags", "numpy")
    assert code == 0 and out.splitlines() == list_detectors(("numpy",))
    code, out, _ = run("--list-models", "--tags", "numpy,pixel_map", "--json")
    assert code == 0
    names = json.loads(out)
    assert names == list_detectors(("numpy", "pixel_map"))
    assert {"vision_patchcore", "vision_padim"} <= set(names)


def test_model_info_json_names_the_detector_and_its_tags():
    code, out, _ = run("--model-info", "vision_patchcore", "--json")
    info = json.loads(out)
    assert code == 0 and info["name"] == "vision_patchcore" and "pixel_map" in info["tags"]


def test_unknown_tags_and_names_exit_2_naming_them():
    code, _, err = run("--list-models", "--tags", "no_such_tag")
    assert code == 2 and "no_such_tag" in err and "pixel_map" in err
    code, _, err = run("--model-info", "vision_nothing")
    assert code == 2 and "vision_nothing" in err and "vision_patchcore" in err


def test_a_command_is_required_and_tags_need_list_models():
    assert run()[0] == 2
    code, _, err = run("--model-info", "vision_padim", "--tags", "numpy")
    assert code == 2 and "--list-models" in err


def test_a_comparison_runs_the_recipe_for_each_model_and_prints_one_table(tmp_path, write_png_fn,
                                                                          make_frame_fn):
    root = tmp_path / "parts"
    for i in range(6):
        write_png_fn(root / "train" / "normal" / f"{i}.png", make_frame_fn(i))
    write_png_fn(root / "test" / "normal" / "n.png", make_frame_fn(20))
    write_png_fn(root / "test" / "anomaly" / "a.png", make_frame_fn(21, defect=True))
    common = json.dumps({"backbone": "tiny_resnet", "pretrained": False, "image_size": 32, "batch_size": 4})
    code, out, err = run("--dataset", "custom", "--root", str(root), "--model", "vision_patchcore",
                         "--model", "vision_padim", "--model-kwargs", common,
                         "--model-kwargs", 'vision_padim={"d_reduced": 8}',
                         "--model-kwargs", 'vision_patchcore={"pretrain_embed_dim": 16, "target_embed_dim": 16}', "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [(r["model"], r["category"]) for r in rows] == [("vision_patchcore", "default"), ("vision_padim", "default")]
    for row in rows:
        assert 0.0 <= row["image_auroc"] <= 1.0 and row["fit_s"] > 0 and row["images_per_s"] > 0 and row["test_images"] == 2
        assert row["pixel_auroc"] is None  # no masks in this dataset
    assert not (tmp_path / "runs").exists()


def test_a_comparison_needs_models_and_checks_each_models_kwargs(tmp_path):
    code, _, err = run("--dataset", "custom", "--root", str(tmp_path))
    assert code == 2 and "at least one --model" in err
    code, _, err = run("--dataset", "custom", "--root", str(tmp_path), "--model", "vision_padim",
                       "--model-kwargs", 'vision_patchcore={"coreset_ratio": 0.1}')
    assert code == 2 and "vision_patchcore" in err and "not among the compared models" in err
