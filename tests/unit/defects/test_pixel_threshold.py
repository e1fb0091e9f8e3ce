"""Pixel threshold resolution order and provenance (SPEC section 7)."""

import numpy as np
import pytest

from pyimgano.defects import (
    DefectsConfig,
    calibrate_normal_map_max_quantile,
    calibrate_normal_pixel_quantile,
    decide_pixel_threshold,
    resolve_pixel_threshold,
)


def _maps():
    # Two 2x4 maps with pixels 0..15 / 16 in raster order.
    values = np.arange(16, dtype=np.float32) / 16.0
    return [values[:8].reshape(2, 4), values[8:].reshape(2, 4)]


class _Exploding:
    def __iter__(self):
        raise AssertionError("normal maps must not be read when a fixed value wins")


def test_an_explicit_value_wins_over_infer_config_and_train_dir():
    cfg = DefectsConfig(pixel_threshold=0.3, pixel_threshold_strategy="normal_pixel_quantile")
    value, prov = resolve_pixel_threshold(cfg, infer_config_value=0.7, normal_maps=_Exploding())
    assert value == 0.3
    assert prov == {"method": "fixed", "source": "explicit"}


def test_an_infer_config_value_is_used_when_no_explicit_value_is_given():
    value, prov = resolve_pixel_threshold(DefectsConfig(), infer_config_value=0.7, normal_maps=_Exploding())
    assert value == 0.7
    assert prov == {"method": "fixed", "source": "infer_config"}


def test_the_quantile_of_normal_map_maxima_is_used_when_nothing_else_is_given():
    # Maxima 7/16 and 15/16; their median is 11/16.
    value, prov = resolve_pixel_threshold(DefectsConfig(pixel_normal_quantile=0.5), normal_maps=iter(_maps()))
    assert value == pytest.approx(11 / 16)
    assert prov == {"method": "normal_map_max_quantile", "source": "train_dir", "q": 0.5, "n_maps": 2, "n_pixels": 16}


def test_the_pooled_normal_pixel_quantile_is_used_on_request():
    cfg = DefectsConfig(pixel_normal_quantile=0.5, pixel_threshold_strategy="normal_pixel_quantile")
    value, prov = resolve_pixel_threshold(cfg, normal_maps=iter(_maps()))
    assert value == pytest.approx(7.5 / 16)
    assert prov == {"method": "normal_pixel_quantile", "source": "train_dir", "q": 0.5, "n_maps": 2, "n_pixels": 16}


def test_a_state_value_keeps_its_provenance_unless_an_infer_config_edits_it_or_a_request_recalibrates():
    existing = (0.25, {"method": "quantile", "source": "holdout"})
    same = decide_pixel_threshold(DefectsConfig(), existing=existing, infer_config_value=0.25, can_calibrate=True)
    assert (same.value, dict(same.provenance)) == (0.25, {"method": "quantile", "source": "holdout"})
    edited = decide_pixel_threshold(DefectsConfig(), existing=existing, infer_config_value=0.7, can_calibrate=True)
    assert (edited.value, dict(edited.provenance)) == (0.7, {"method": "fixed", "source": "infer_config"})
    asked = decide_pixel_threshold(
        DefectsConfig(pixel_threshold_strategy="normal_pixel_quantile"), existing=existing, can_calibrate=True
    )
    assert asked.calibrates and asked.calibrate_method == "normal_pixel_quantile"


def test_a_train_dir_quantile_request_overrides_an_infer_config_value():
    cfg = DefectsConfig(pixel_threshold_strategy="normal_pixel_quantile", pixel_normal_quantile=0.5)
    value, prov = resolve_pixel_threshold(cfg, infer_config_value=0.9, normal_maps=_maps())
    assert value == pytest.approx(7.5 / 16)
    assert prov["method"] == "normal_pixel_quantile" and prov["source"] == "train_dir"


def test_a_quantile_request_without_normal_maps_falls_back_to_the_infer_config_value():
    cfg = DefectsConfig(pixel_threshold_strategy="normal_pixel_quantile")
    assert resolve_pixel_threshold(cfg, infer_config_value=0.9) == (0.9, {"method": "fixed", "source": "infer_config"})


@pytest.mark.parametrize(
    "strategy, expected",
    [("normal_pixel_quantile", np.quantile(np.array([0, 1, 8, 9]) / 16.0, 0.5)), ("normal_map_max_quantile", 5 / 16)],
)
def test_the_quantile_uses_roi_pixels_only_when_a_roi_is_set(strategy, expected):
    cfg = DefectsConfig(pixel_normal_quantile=0.5, roi_xyxy_norm=(0.0, 0.0, 0.5, 0.5), pixel_threshold_strategy=strategy)
    # ROI of a 2x4 map: row 0, columns 0-1 -> pixels {0, 1} and {8, 9} (/16); ROI maxima 1/16 and 9/16.
    value, prov = resolve_pixel_threshold(cfg, normal_maps=_maps())
    assert prov["n_pixels"] == 4 and prov["n_maps"] == 2
    assert value == pytest.approx(expected)


def test_the_default_quantile_is_0_999():
    maps = [np.full((4, 4), k / 1000.0, np.float32) for k in range(1000)]
    value, prov = resolve_pixel_threshold(DefectsConfig(), normal_maps=maps)
    assert prov["q"] == 0.999 and prov["n_maps"] == 1000
    assert value == pytest.approx(np.quantile(np.arange(1000) / 1000.0, 0.999), rel=1e-6)


@pytest.mark.parametrize("strategy", ["fixed", "infer_config"])
def test_fixed_strategies_never_calibrate(strategy):
    with pytest.raises(ValueError, match="pixel_threshold_strategy='" + strategy):
        resolve_pixel_threshold(DefectsConfig(pixel_threshold_strategy=strategy), normal_maps=_maps())


def test_no_threshold_is_an_error_naming_the_three_ways_to_provide_one():
    with pytest.raises(ValueError) as info:
        resolve_pixel_threshold(DefectsConfig())
    message = str(info.value)
    assert "--pixel-threshold" in message
    assert "defects.pixel_threshold" in message
    assert "--train-dir" in message
    assert "--pixel-normal-quantile" in message


def test_calibration_streams_maps_of_different_shapes():
    def gen():
        yield np.zeros((2, 2), np.float32)
        yield np.ones((3, 5), np.float64)

    value, n_maps, n_pixels = calibrate_normal_pixel_quantile(gen(), q=0.5)
    assert (value, n_maps, n_pixels) == (1.0, 2, 19)


def test_map_max_calibration_keeps_one_number_per_map_of_any_shape():
    def gen():
        yield np.zeros((2, 2), np.float32)
        yield np.ones((3, 5), np.float64)

    assert calibrate_normal_map_max_quantile(gen(), q=0.5) == (0.5, 2, 19)


@pytest.mark.parametrize("calibrate", [calibrate_normal_pixel_quantile, calibrate_normal_map_max_quantile])
def test_calibration_without_maps_is_an_error(calibrate):
    with pytest.raises(ValueError, match="no normal maps"):
        calibrate([], q=0.5)


@pytest.mark.parametrize("q", [0.0, 1.0, -0.1, True])
def test_calibration_rejects_quantiles_outside_the_open_unit_interval(q):
    with pytest.raises(ValueError, match="accepted"):
        calibrate_normal_pixel_quantile(_maps(), q=q)


def test_a_non_finite_infer_config_value_is_rejected():
    with pytest.raises(ValueError, match="infer-config"):
        resolve_pixel_threshold(DefectsConfig(), infer_config_value=float("nan"))
