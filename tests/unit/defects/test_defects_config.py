"""DefectsConfig validation and the infer_config.json round trip."""

import json

import attrs
import pytest

from pyimgano.defects import DefectsConfig, config_from_infer_config, get_defects_preset

# The defects block of the original pyimgano's FP40 workbench template (seed docs).
SEED_NESTED_BLOCK = {
    "enabled": True,
    "pixel_threshold_strategy": "normal_pixel_quantile",
    "pixel_normal_quantile": 0.999,
    "mask_format": "png",
    "roi_xyxy_norm": [0.1, 0.1, 0.9, 0.9],
    "border_ignore_px": 2,
    "map_smoothing": {"method": "median", "ksize": 3, "sigma": 0.0},
    "hysteresis": {"enabled": True, "low": None, "high": None},
    "shape_filters": {"min_fill_ratio": 0.15, "max_aspect_ratio": 6.0, "min_solidity": 0.8},
    "merge_nearby": {"enabled": True, "max_gap_px": 1},
    "min_area": 16,
    "min_score_max": 0.6,
    "min_score_mean": None,
    "open_ksize": 0,
    "close_ksize": 0,
    "fill_holes": False,
    "max_regions": 20,
}


def test_the_seed_nested_block_parses_to_the_fp40_preset_plus_its_strategy():
    cfg = DefectsConfig.from_mapping(SEED_NESTED_BLOCK)
    assert cfg == attrs.evolve(get_defects_preset("industrial-defects-fp40"), pixel_threshold_strategy="normal_pixel_quantile")


def test_flat_names_parse_and_to_mapping_round_trips_through_json():
    cfg = DefectsConfig(
        pixel_threshold=0.5,
        roi_xyxy_norm=[0.2, 0.1, 0.8, 0.9],
        map_smoothing="gaussian",
        map_smoothing_ksize=5,
        map_smoothing_sigma=1.5,
        hysteresis=True,
        hysteresis_low=0.2,
        merge_nearby=True,
        merge_nearby_max_gap_px=2,
        max_regions=3,
        max_regions_sort_by="area",
        mask_format="npy",
    )
    block = json.loads(json.dumps(cfg.to_mapping()))
    assert block["roi_xyxy_norm"] == [0.2, 0.1, 0.8, 0.9]
    assert DefectsConfig.from_mapping(block) == cfg
    assert set(block) == set(DefectsConfig.field_names())


def test_unknown_keys_are_rejected_with_the_accepted_names():
    with pytest.raises(ValueError, match="unknown key defects.min_areaa; accepted: .*'min_area'"):
        DefectsConfig.from_mapping({"min_areaa": 3})
    with pytest.raises(ValueError, match=r"defects.hysteresis.hi; accepted: \['enabled', 'high', 'low'\]"):
        DefectsConfig.from_mapping({"hysteresis": {"hi": 0.5}})


def test_a_field_given_flat_and_nested_with_different_values_is_rejected():
    with pytest.raises(ValueError, match="given twice"):
        DefectsConfig.from_mapping({"hysteresis": {"enabled": True}, "hysteresis_low": 0.1, "hysteresis_high": 0.5, "map_smoothing": {"method": "median"}, "map_smoothing_ksize": 3, "merge_nearby_max_gap_px": 1, "merge_nearby": {"max_gap_px": 2}})


def test_flat_hysteresis_bool_and_flat_smoothing_name_are_accepted():
    cfg = DefectsConfig.from_mapping({"hysteresis": True, "map_smoothing": "box", "map_smoothing_ksize": 5})
    assert cfg.hysteresis is True and cfg.map_smoothing == "box" and cfg.map_smoothing_ksize == 5


def test_config_from_infer_config_moves_the_threshold_out_of_the_config():
    cfg, value = config_from_infer_config({"pixel_threshold": 0.42, "min_area": 3})
    assert value == 0.42
    assert cfg.pixel_threshold is None and cfg.min_area == 3


def test_configs_are_frozen_and_hashable():
    cfg = DefectsConfig(roi_xyxy_norm=[0.1, 0.1, 0.9, 0.9])
    assert hash(cfg) == hash(DefectsConfig(roi_xyxy_norm=(0.1, 0.1, 0.9, 0.9)))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        cfg.min_area = 3


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"pixel_normal_quantile": 1.0}, "pixel_normal_quantile"),
        ({"pixel_normal_quantile": 0.0}, "pixel_normal_quantile"),
        ({"open_ksize": -1}, "open_ksize"),
        ({"border_ignore_px": 1.5}, "border_ignore_px"),
        ({"roi_xyxy_norm": (0.5, 0.0, 0.4, 1.0)}, "roi_xyxy_norm"),
        ({"roi_xyxy_norm": (0.0, 0.0, 1.2, 1.0)}, "roi_xyxy_norm"),
        ({"map_smoothing": "bilateral"}, "accepted: \\['none', 'median', 'gaussian', 'box'\\]"),
        ({"map_smoothing": "median", "map_smoothing_ksize": 4}, "odd size"),
        ({"hysteresis_low": 0.6, "hysteresis_high": 0.5}, "hysteresis_low"),
        ({"max_regions": 0}, "max_regions"),
        ({"max_regions_sort_by": "id"}, "max_regions_sort_by"),
        ({"mask_format": "jpg"}, "mask_format"),
        ({"pixel_threshold_strategy": "otsu"}, "pixel_threshold_strategy"),
        ({"min_fill_ratio": 1.5}, "min_fill_ratio"),
        ({"max_aspect_ratio": 0.5}, "max_aspect_ratio"),
        ({"fill_holes": "yes"}, "fill_holes"),
        ({"pixel_threshold": float("inf")}, "pixel_threshold"),
    ],
)
def test_invalid_values_are_rejected_naming_the_field(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        DefectsConfig(**kwargs)


def test_from_mapping_rejects_non_mappings():
    with pytest.raises(TypeError):
        DefectsConfig.from_mapping([("min_area", 1)])
