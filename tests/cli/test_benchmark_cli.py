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
