"""Workbench configs: every SPEC section parsed, errors name the key path and the nearest key,
recipe defaults layered under the user's values, JSON/YAML files read safely."""

import builtins
import json

import pytest

from pyimgano.defects import get_defects_preset
from pyimgano.workbench.config import config_to_mapping, parse_config
from pyimgano.workbench.config_io import merge_mappings, read_config_file
from pyimgano.workbench.detector import make_detector_config
from pyimgano.workbench.recipes import build_config
from pyimgano.workbench.schema import ConfigError

BASE = {"dataset": {"name": "mvtec", "root": "/data", "category": "bottle"}}
FULL = {
    "recipe": "industrial-adapt",
    "seed": 7,
    "dataset": {"name": "mvtec", "root": "/data", "category": "all", "resize": [256, 256], "input_mode": "numpy",
                "limit_train": 10, "limit_test": 5, "holdout_fraction": 0.25},
    "model": {"name": "vision_padim", "device": "cpu", "preset": "industrial-fast", "pretrained": False,
              "contamination": 0.05, "backbone": "tiny_resnet", "model_kwargs": {"d_reduced": 8}},
    "adaptation": {"tiling": {"tile_size": 64, "stride": 48, "score_reduce": "topk_mean", "score_topk": 0.1,
                              "map_reduce": "hann"},
                   "postprocess": {"normalize": "percentile", "percentile_range": [2.0, 98.0], "gaussian_sigma": 1.0},
                   "save_maps": True},
    "defects": {"enabled": True, "pixel_threshold": 0.5, "roi_xyxy_norm": [0.1, 0.1, 0.9, 0.9], "min_area": 4,
                "hysteresis": {"enabled": True, "low": 0.2, "high": 0.6}},
    "training": {"enabled": False, "checkpoint_name": "state.safetensors"},
    "output": {"output_dir": "runs/x", "save_run": True, "per_image_jsonl": False},
}


def test_every_section_parses_and_the_plain_form_round_trips():
    config = parse_config(FULL)
    assert config.dataset.resize == (256, 256) and config.model.kwargs == {"d_reduced": 8}
    assert config.adaptation.tiling.tile_size == 64 and config.adaptation.postprocess.normalize == "percentile"
    assert config.defects.enabled and config.defects.config.hysteresis_high == 0.6
    assert parse_config(config_to_mapping(config)) == config
    assert hash(config) == hash(parse_config(json.loads(json.dumps(config_to_mapping(config)))))


@pytest.mark.parametrize(
    "patch, message",
    [
        ({"dataset": {**BASE["dataset"], "resise": [1, 2]}}, r"^dataset\.resise: unknown key \(did you mean 'resize'\?\)"),
        ({"modle": {}}, r"^modle: unknown key \(did you mean 'model'\?\); accepted: \['adaptation'"),
        ({"model": {"contamination": "0.1"}}, r"^model\.contamination: expected a finite number, got '0\.1' \(a string\)"),
        ({"model": {"contamination": 0.7}}, r"^model\.contamination: expected a number in \(0\.0, 0\.5\)"),
        ({"dataset": {**BASE["dataset"], "name": "mvtc"}}, r"^dataset\.name: 'mvtc' \(a string\) is not accepted \(did you mean 'mvtec'\?\)"),
        ({"dataset": {**BASE["dataset"], "resize": [256]}}, r"^dataset\.resize: resize must be null or \[height, width\]"),
        ({"dataset": {**BASE["dataset"], "limit_test": True}}, r"^dataset\.limit_test: expected an integer, got True"),
        ({"adaptation": {"tiling": {"tile_sise": 3}}}, r"^adaptation\.tiling\.tile_sise: unknown key \(did you mean 'tile_size'\?\)"),
        ({"adaptation": {"tiling": {"tile_size": 0}}}, r"^adaptation\.tiling: tile_size must be >= 1"),
        ({"adaptation": {"postprocess": {"gausian_sigma": 1}}}, r"^adaptation\.postprocess\.gausian_sigma: unknown key \(did you mean 'gaussian_sigma'\?\)"),
        ({"defects": {"min_aera": 3}}, r"^defects\.min_aera: unknown key \(did you mean 'min_area'\?\)"),
        ({"defects": {"map_smoothing": {"methd": "median"}}}, r"^defects\.map_smoothing\.methd: unknown key \(did you mean 'method'\?\)"),
        ({"defects": {"min_area": -1}}, r"^defects\.min_area: "),
        ({"defects": {"enabled": "yes"}}, r"^defects\.enabled: expected true or false"),
        ({"training": {"epochs": 3}}, r"^training\.epochs: set while training\.enabled is false"),
        ({"training": {"checkpoint_name": "model.pt"}}, r"^training\.checkpoint_name: 'model\.pt' is not accepted; accepted: a file name ending in \.safetensors"),
        ({"training": {"checkpoint_name": "../x.safetensors"}}, r"^training\.checkpoint_name: expected a plain file name"),
        ({"output": {"save_run": "true"}}, r"^output\.save_run: expected true or false, got 'true'"),
        ({"seed": -1}, r"^seed: expected an integer >= 0"),
    ],
)
def test_bad_keys_and_values_name_the_key_path(patch, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(merge_mappings(BASE, patch))


def test_required_values_are_named_with_how_to_give_them():
    with pytest.raises(ConfigError, match=r"^dataset: required section missing.*--dataset NAME --root PATH"):
        parse_config({})
    with pytest.raises(ConfigError, match=r"^dataset\.root: required \(set it in the config or pass"):
        parse_config({"dataset": {"name": "custom"}})
    with pytest.raises(ConfigError, match=r"^dataset\.category: required for mvtec \(a category name, or 'all'\)"):
        parse_config({"dataset": {"name": "mvtec", "root": "/d"}})
    assert parse_config({"dataset": {"name": "custom", "root": "/d"}}).dataset.category is None


@pytest.mark.parametrize(
    "model, message",
    [
        ({"name": "vision_patchcor"}, r"^model\.name: unknown detector 'vision_patchcor' \(did you mean 'vision_patchcore'\?\)"),
        ({"model_kwargs": {"coreset_ration": 0.1}}, r"^model\.model_kwargs\.coreset_ration: not a vision_patchcore option \(did you mean 'coreset_ratio'\?\)"),
        ({"preset": "industrial-fastest"}, r"^model\.preset: .*accepted: \['industrial-accurate'"),
        ({"model_kwargs": {"coreset_ratio": 3.0}}, r"^model\.model_kwargs: vision_patchcore rejects"),
    ],
)
def test_model_settings_are_checked_against_the_detector_registry(model, message):
    config = parse_config({**BASE, "model": model})
    with pytest.raises(ConfigError, match=message):
        make_detector_config(config)


def test_training_needs_a_detector_that_trains():
    config = parse_config({**BASE, "training": {"enabled": True, "epochs": 2}})
    with pytest.raises(ConfigError, match=r"^training\.enabled: vision_patchcore does not train"):
        make_detector_config(config)


def test_layering_preset_kwargs_backbone_and_seed():
    config = parse_config({**BASE, "seed": 5, "model": {"preset": "industrial-fast", "backbone": "tiny_resnet",
                                                         "model_kwargs": {"coreset_ratio": 0.2}}})
    name, detector = make_detector_config(config)
    assert name == "vision_patchcore"
    assert (detector.image_size, detector.coreset_ratio, detector.backbone, detector.seed) == ((224, 224), 0.2, "tiny_resnet", 5)


def test_highres_defaults_fill_an_absent_tiling_block_but_a_given_block_is_kept_whole():
    config = build_config({**BASE, "recipe": "industrial-adapt-highres"})
    tiling = config.adaptation.tiling
    assert (tiling.tile_size, tiling.stride, tiling.map_reduce, tiling.score_reduce, tiling.score_topk) == (
        512, 384, "hann", "topk_mean", 0.1)
    assert config.adaptation.postprocess.normalize == "percentile" and config.adaptation.postprocess.gaussian_sigma == 1.0
    assert config.adaptation.save_maps
    mine = build_config({**BASE, "recipe": "industrial-adapt-highres", "adaptation": {"tiling": {"tile_size": 1024},
                                                                                   "save_maps": False}})
    assert (mine.adaptation.tiling.stride, mine.adaptation.tiling.map_reduce) == (1024, "max")  # not the recipe's 384 / hann
    assert not mine.adaptation.save_maps


def test_fp40_forces_defects_on_and_the_users_defect_keys_win_over_the_preset():
    preset = get_defects_preset("industrial-defects-fp40")
    config = build_config({**BASE, "recipe": "industrial-adapt-fp40", "defects": {"enabled": False, "min_area": 3}})
    assert config.defects.enabled
    assert config.defects.config.min_area == 3
    assert config.defects.config.roi_xyxy_norm == preset.roi_xyxy_norm and config.defects.config.hysteresis
    assert config.adaptation.postprocess.normalize == "normal_stats"


def test_command_line_overrides_win_and_none_leaves_the_file_value():
    config = build_config(BASE, {"dataset.root": "/other", "dataset.category": None, "model.device": "cpu"})
    assert (config.dataset.root, config.dataset.category, config.model.device) == ("/other", "bottle", "cpu")
    with pytest.raises(ConfigError, match=r"^recipe: unknown recipe 'industrial-adpt' \(did you mean 'industrial-adapt'\?\)"):
        build_config(BASE, {"recipe": "industrial-adpt"})


def test_json_and_yaml_files_and_their_errors(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps(BASE))
    assert read_config_file(tmp_path / "c.json") == BASE
    (tmp_path / "c.yaml").write_text("dataset:\n  name: mvtec\n  root: /data\n  category: bottle\n")
    assert read_config_file(tmp_path / "c.yaml") == BASE
    (tmp_path / "dup.json").write_text('{"seed": 1, "seed": 2}')
    with pytest.raises(ConfigError, match="seed: given twice"):
        read_config_file(tmp_path / "dup.json")
    (tmp_path / "bad.json").write_text('{"seed": }')
    with pytest.raises(ConfigError, match=r"not valid JSON: .* line 1"):
        read_config_file(tmp_path / "bad.json")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ConfigError, match="top level must be an object"):
        read_config_file(tmp_path / "list.yaml")
    (tmp_path / "c.toml").write_text("")
    with pytest.raises(ConfigError, match=r"config files are \.json, \.yml or \.yaml"):
        read_config_file(tmp_path / "c.toml")
    with pytest.raises(ConfigError, match="does not exist"):
        read_config_file(tmp_path / "none.json")


def test_yaml_never_builds_python_objects(tmp_path):
    (tmp_path / "evil.yaml").write_text("seed: !!python/object/apply:os.getcwd []\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        read_config_file(tmp_path / "evil.yaml")


def test_yaml_without_pyyaml_says_how_to_install_it(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_yaml(name, *args, **kwargs):
        if name == "yaml":
            raise ImportError("No module named 'yaml'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_yaml)
    (tmp_path / "c.yml").write_text("seed: 1\n")
    with pytest.raises(ConfigError, match=r"needs PyYAML.*pip install 'pyimgano\[yaml\]' \(or write the config as JSON\)"):
        read_config_file(tmp_path / "c.yml")


@pytest.mark.parametrize("name", ["industrial_adapt.json", "industrial_adapt_highres.yaml",
                                  "industrial_adapt_defects_roi.json", "manifest.json"])
def test_the_example_configs_are_valid(name):
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[3] / "examples" / "configs" / name
    config = build_config(read_config_file(path))
    make_detector_config(config)
    assert config.output.output_dir.startswith("runs/")
