"""The score ensemble: per-member standardisation from stored calibration statistics, batch independence,
the detector contract (shapes, determinism, jit == no-jit, save/load, defect > normal) and its errors."""

import attrs
import jax
import numpy as np
import pytest

import pyimgano
from models_jax.detectors import score_ensemble
from pyimgano.devices import replicate
from pyimgano.registry import get_detector


@pytest.fixture(scope="module")
def members(detector_train_frames, tiny_patchcore_kwargs, tiny_padim_kwargs):
    return [
        pyimgano.fit("vision_patchcore", detector_train_frames, "rgb_u8_hwc", **tiny_patchcore_kwargs),
        pyimgano.fit("vision_padim", detector_train_frames, "rgb_u8_hwc", **tiny_padim_kwargs),
    ]


@pytest.fixture(scope="module")
def calibration_frames(frames_factory):
    return frames_factory(6, seed=30)


@pytest.fixture(scope="module")
def ensembles(members, calibration_frames):
    return {
        combine: pyimgano.make_score_ensemble(members, calibration_frames, "rgb_u8_hwc", combine=combine)
        for combine in ("mean", "rank_mean")
    }


@pytest.fixture(scope="module")
def probe_batch(frames_factory, defect):
    """16 frames, every third with a magenta square."""
    frames = frames_factory(16, seed=40)
    return np.stack([defect(f) if i % 3 == 0 else f for i, f in enumerate(frames)])


@pytest.fixture(scope="module")
def batch16(ensembles, probe_batch):
    """(scores f32[16], maps f32[16, 32, 32]) of the mean ensemble, all 16 frames in one device batch."""
    scores, maps = pyimgano.predict(ensembles["mean"], probe_batch, "rgb_u8_hwc", batch_size=16)
    return np.asarray(scores), np.asarray(maps)


def test_one_image_alone_scores_as_inside_a_batch_of_16(ensembles, probe_batch, batch16):
    """Within 1e-5 (absolute, on z-scores of order 1-20): the members' float32 convolutions may
    round differently for another batch shape; nothing else depends on the batch (every
    combine mode standardises and combines each image on its own)."""
    scores16, maps16 = batch16
    for i in (0, 7):
        alone, alone_maps = pyimgano.predict(ensembles["mean"], probe_batch[i : i + 1], "rgb_u8_hwc")
        np.testing.assert_allclose(np.asarray(alone)[0], scores16[i], rtol=0, atol=1e-5)
        np.testing.assert_allclose(np.asarray(alone_maps)[0], maps16[i], rtol=0, atol=1e-5)


def test_mean_combines_member_z_scores_from_their_own_calibration_scores(
    ensembles, members, calibration_frames, probe_batch, batch16
):
    # pyimgano.predict with the members' batch of 4, as make_score_ensemble scored them.
    member_scores = np.stack([np.asarray(pyimgano.predict(m, probe_batch, "rgb_u8_hwc")[0], np.float64) for m in members])
    calibration = np.stack(
        [np.asarray(pyimgano.predict(m, calibration_frames, "rgb_u8_hwc")[0], np.float64) for m in members]
    )
    z = (member_scores - calibration.mean(1, keepdims=True)) / calibration.std(1, ddof=1, keepdims=True)
    np.testing.assert_allclose(batch16[0], z.mean(0), rtol=1e-4, atol=1e-4)
    model = ensembles["mean"].model
    np.testing.assert_allclose(np.asarray(model.score_reference), np.sort(calibration, 1), rtol=1e-5)


def test_max_and_median_combine_along_the_member_axis():
    z = np.array([[0.5, -1.0, 3.0], [2.0, 0.0, -2.0], [1.0, 4.0, 0.0]], np.float32)  # [K=3 members, B=3]
    np.testing.assert_allclose(np.asarray(score_ensemble.combine_scores("max", z, axis=0)), [2.0, 4.0, 3.0])
    np.testing.assert_allclose(np.asarray(score_ensemble.combine_scores("median", z, axis=0)), [1.0, 0.0, 0.0])
    np.testing.assert_allclose(np.asarray(score_ensemble.combine_scores("mean", z, axis=0)), z.mean(0), rtol=1e-6)
    with pytest.raises(ValueError, match="combine mode"):
        score_ensemble.combine_scores("vote", z, axis=0)


def test_rank_mean_averages_mid_ranks_against_the_stored_calibration_scores(ensembles, members, probe_batch):
    state = ensembles["rank_mean"]
    reference = np.asarray(state.model.score_reference)  # f32[2, 6], sorted
    ranks = []
    for k, member in enumerate(members):
        s = np.asarray(pyimgano.predict(member, probe_batch, "rgb_u8_hwc")[0])
        below = np.searchsorted(reference[k], s, side="left")
        at_most = np.searchsorted(reference[k], s, side="right")
        ranks.append((below + at_most) / (2.0 * reference.shape[1]))
    got = np.asarray(pyimgano.predict(state, probe_batch, "rgb_u8_hwc", batch_size=16)[0])
    np.testing.assert_allclose(got, np.mean(ranks, axis=0), atol=1e-6)
    # Clear defects lie above every calibration score of both members: rank 1.
    np.testing.assert_allclose(got[::3], 1.0)


def test_shapes_dtypes_and_defects_above_normal_frames(batch16):
    scores, maps = batch16
    assert scores.shape == (16,) and scores.dtype == np.float32
    assert maps.shape == (16, 32, 32) and maps.dtype == np.float32
    defective = np.arange(16) % 3 == 0
    assert scores[defective].min() > scores[~defective].max()
    # ... and each defect's map is highest around its square (rows 10-16, columns 16-22).
    assert np.all(maps[defective][:, 10:16, 16:22].mean(axis=(1, 2)) > maps[defective].mean(axis=(1, 2)))


def test_building_twice_gives_the_same_state(ensembles, members, calibration_frames):
    again = pyimgano.make_score_ensemble(members, calibration_frames, "rgb_u8_hwc", combine="mean")
    for a, b in zip(jax.tree.leaves(ensembles["mean"].model), jax.tree.leaves(again.model)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert again.config == ensembles["mean"].config


def test_save_and_load_one_file_with_the_members_inside(ensembles, probe_batch, batch16, tmp_path):
    state = ensembles["mean"]
    path = pyimgano.save_state(attrs.evolve(state, threshold=0.9), tmp_path / "ens.pyimgano")
    loaded = pyimgano.load_state(path)
    assert loaded.detector == "vision_score_ensemble" and loaded.threshold == 0.9
    assert loaded.config == state.config and loaded.config.members == ("vision_patchcore", "vision_padim")
    assert [m.config for m in loaded.model.members] == [m.config for m in state.model.members]
    assert loaded.config.member_predicts == tuple(get_detector(n).predict for n in loaded.config.members)
    # Placed like a fitted state (replicated), the loaded one reuses the compiled program.
    loaded = attrs.evolve(loaded, model=replicate(loaded.model))
    scores, maps = pyimgano.predict(loaded, probe_batch, "rgb_u8_hwc", batch_size=16)
    np.testing.assert_array_equal(np.asarray(scores), batch16[0])
    np.testing.assert_array_equal(np.asarray(maps), batch16[1])


def test_jit_and_no_jit_agree(detector_train_frames, calibration_frames, frames_factory, tiny_padim_kwargs):
    """Two PaDiM members (different channel subsets): the eager run of two backbones is the costly part."""
    from pyimgano.scoring import prepare_frames

    pair = [
        pyimgano.fit("vision_padim", detector_train_frames, "rgb_u8_hwc", **{**tiny_padim_kwargs, "seed": seed})
        for seed in (0, 1)
    ]
    state = pyimgano.make_score_ensemble(pair, calibration_frames, "rgb_u8_hwc", combine="rank_mean")
    images = prepare_frames(state.config, list(frames_factory(1, seed=6)))
    jitted = score_ensemble.predict(state.model, images, (32, 32))
    with jax.disable_jit():
        eager = score_ensemble.predict(state.model, images, (32, 32))
    np.testing.assert_allclose(np.asarray(jitted.scores), np.asarray(eager.scores), atol=1e-5)
    np.testing.assert_allclose(np.asarray(jitted.maps), np.asarray(eager.maps), atol=1e-5)


def test_fitting_by_name_points_at_the_builder(frames_factory):
    with pytest.raises(ValueError, match="make_score_ensemble"):
        pyimgano.fit("vision_score_ensemble", frames_factory(2), "rgb_u8_hwc")


def test_members_must_share_their_input_and_be_untiled_and_two_normal_frames_are_needed(
    members, detector_train_frames, calibration_frames, tiny_padim_kwargs
):
    bigger = attrs.evolve(
        members[1], model=attrs.evolve(members[1].model, config=attrs.evolve(members[1].config, image_size=48))
    )
    with pytest.raises(ValueError, match="share one input preparation"):
        pyimgano.make_score_ensemble([members[0], bigger], calibration_frames, "rgb_u8_hwc")
    tiled = pyimgano.with_tiling(members[0], {"tile_size": 16})
    with pytest.raises(ValueError, match="tiled"):
        pyimgano.make_score_ensemble([tiled, members[1]], calibration_frames, "rgb_u8_hwc")
    with pytest.raises(ValueError, match="at least 2 normal frames"):
        pyimgano.make_score_ensemble(members, calibration_frames[:1], "rgb_u8_hwc")
    with pytest.raises(ValueError, match="combine"):
        pyimgano.make_score_ensemble(members, calibration_frames, "rgb_u8_hwc", combine="vote")
    with pytest.raises(TypeError, match="DetectorState"):
        pyimgano.make_score_ensemble([members[0].model], calibration_frames, "rgb_u8_hwc")
