"""Calibration in the library: seeded hold-out, one-pass image + pixel thresholds, provenance."""

import logging

import attrs
import numpy as np
import pytest

import pyimgano
from pyimgano.calibration import calibrate, fit_calibrated, split_holdout
from pyimgano.postprocess import AnomalyMapPostprocess
from pyimgano.tiling import TileConfig


def test_the_holdout_split_is_seeded_disjoint_and_complete():
    a, b = split_holdout(50, 0.2, seed=7), split_holdout(50, 0.2, seed=7)
    assert a == b and len(a.calibration_indices) == 10 and len(a.fit_indices) == 40
    assert sorted(a.fit_indices + a.calibration_indices) == list(range(50))
    assert split_holdout(50, 0.2, seed=8).calibration_indices != a.calibration_indices
    # The documented rule: the first round(f * n) of numpy's seeded permutation.
    assert a.calibration_indices == tuple(sorted(np.random.default_rng(7).permutation(50)[:10]))


@pytest.mark.parametrize("n, fraction, held", [(2, 0.2, 1), (3, 0.9, 2), (10, 0.01, 1), (209, 0.2, 42)])
def test_at_least_one_image_is_held_out_and_one_stays_for_fitting(n, fraction, held):
    split = split_holdout(n, fraction)
    assert len(split.calibration_indices) == held and len(split.fit_indices) == n - held


@pytest.mark.parametrize("n, fraction, match", [(1, 0.2, "at least 2"), (5, 0.0, r"\(0, 1\)"), (5, 1.0, r"\(0, 1\)")])
def test_bad_splits_are_refused(n, fraction, match):
    with pytest.raises(ValueError, match=match):
        split_holdout(n, fraction)


def test_the_split_fingerprint_changes_with_any_image_name_or_the_seed():
    split = split_holdout(5, 0.4, seed=1)
    names = list("abcde")
    base = split.fingerprint(names)
    assert base == split_holdout(5, 0.4, seed=1).fingerprint(names)
    for i in range(5):
        assert split.fingerprint(names[:i] + ["X"] + names[i + 1 :]) != base
    assert split_holdout(5, 0.4, seed=2).fingerprint(names) != base


def test_fit_calibrated_fits_on_the_fit_part_and_calibrates_on_the_held_out_part(frames_factory, tiny_patchcore_kwargs):
    frames = frames_factory(10, seed=3)
    state = fit_calibrated("vision_patchcore", frames, "rgb_u8_hwc", holdout=0.3, pixel_quantile=0.5,
                           **tiny_patchcore_kwargs)
    split = split_holdout(10, 0.3, seed=0)
    direct = pyimgano.fit("vision_patchcore", frames[list(split.fit_indices)], "rgb_u8_hwc", **tiny_patchcore_kwargs)
    np.testing.assert_array_equal(np.asarray(state.model.memory_bank), np.asarray(direct.model.memory_bank))
    held = np.asarray(pyimgano.score(direct, frames[list(split.calibration_indices)], "rgb_u8_hwc"))
    assert state.threshold == pytest.approx(float(np.quantile(held, 0.995)), rel=1e-6)
    prov = state.provenance
    assert prov["source"] == "holdout" and prov["count"] == 3 and prov["fit_count"] == 7
    assert prov["holdout_fraction"] == 0.3 and prov["holdout_seed"] == 0 and len(prov["split_sha256"]) == 16
    assert state.pixel_provenance["method"] == "normal_map_max_quantile" and state.pixel_provenance["n_maps"] == 3


def test_calibrate_returns_a_new_state_and_leaves_the_input_unchanged(tiny_state, frames_factory):
    before = attrs.asdict(tiny_state, recurse=False)
    new = calibrate(tiny_state, frames_factory(4, seed=20), "rgb_u8_hwc", quantile=0.5, pixel_quantile=0.9)
    assert new is not tiny_state and new.threshold is not None and new.pixel_threshold is not None
    assert attrs.asdict(tiny_state, recurse=False).keys() == before.keys()
    assert tiny_state.threshold is None and tiny_state.pixel_threshold is None
    assert new.model is tiny_state.model


def test_a_pixel_only_calibration_keeps_the_image_threshold(tiny_state, frames_factory):
    fixed = pyimgano.with_threshold(tiny_state, 3.0)
    new = calibrate(fixed, frames_factory(3, seed=21), "rgb_u8_hwc", quantile=None, pixel_quantile=0.9)
    assert new.threshold == 3.0 and new.provenance == {"method": "fixed", "source": "explicit"}
    assert new.pixel_threshold is not None


def test_the_pixel_threshold_is_computed_on_post_processed_maps(tiny_state, frames_factory):
    frames = frames_factory(3, seed=22)
    post = pyimgano.with_postprocess(tiny_state, AnomalyMapPostprocess(normalize="minmax"))
    new = calibrate(post, frames, "rgb_u8_hwc", pixel_quantile=0.5)
    assert new.pixel_threshold == pytest.approx(1.0)  # every min-max normalised map peaks at 1


def test_normal_stats_post_processing_gets_its_statistics_from_the_calibration_maps(tiny_state, frames_factory):
    frames = frames_factory(3, seed=23)
    state = pyimgano.with_postprocess(tiny_state, AnomalyMapPostprocess(normalize="normal_stats"))
    new = calibrate(state, frames, "rgb_u8_hwc", pixel_quantile=0.5)
    raw = np.asarray(pyimgano.anomaly_maps(tiny_state, frames, "rgb_u8_hwc"))
    assert new.postprocess == AnomalyMapPostprocess(normalize="normal_stats").with_normal_stats(list(raw))
    assert np.isfinite(new.pixel_threshold)


def test_a_calibration_set_too_small_for_the_quantile_is_logged(tiny_state, frames_factory, caplog):
    with caplog.at_level(logging.WARNING, logger="pyimgano"):
        calibrate(tiny_state, frames_factory(3, seed=24), "rgb_u8_hwc", quantile=0.995)
    assert "3 normal sample(s) cannot resolve the 0.995 quantile (needs at least 200)" in caplog.text


def test_nothing_to_calibrate_and_pixel_thresholds_without_maps_are_errors(tiny_state, frames_factory):
    with pytest.raises(ValueError, match="nothing to calibrate"):
        calibrate(tiny_state, frames_factory(2), "rgb_u8_hwc", quantile=None)
    with pytest.raises(ValueError, match="at least one normal image"):
        calibrate(tiny_state, [], "rgb_u8_hwc")


def test_changing_the_tiling_drops_both_thresholds_and_changing_postprocess_drops_the_pixel_one(tiny_state):
    state = pyimgano.with_pixel_threshold(pyimgano.with_threshold(tiny_state, 1.0), 2.0)
    tiled = pyimgano.with_tiling(state, TileConfig(tile_size=16))
    assert tiled.threshold is None and tiled.pixel_threshold is None and tiled.tiling.stride == 16
    assert pyimgano.with_tiling(state, None) is state
    post = pyimgano.with_postprocess(state, {"normalize": "minmax"})
    assert post.threshold == 1.0 and post.pixel_threshold is None
    assert pyimgano.with_postprocess(post, AnomalyMapPostprocess(normalize="minmax")) is post


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "x"])
def test_thresholds_must_be_finite(tiny_state, value):
    with pytest.raises(ValueError, match="finite"):
        pyimgano.with_threshold(tiny_state, value)
