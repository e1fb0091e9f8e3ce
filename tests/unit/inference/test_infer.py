import attrs
import cv2
import numpy as np
import pytest

import pyimgano
from pyimgano.inference import calibrate_threshold, infer, quantile_threshold
from pyimgano.models import create_model
from pyimgano.postprocess.anomaly_map import AnomalyMapPostprocess


@pytest.fixture(scope="module")
def test_frames(frames_factory, defect):
    frames = frames_factory(5, seed=7)
    frames[1] = defect(frames[1], 10, 12)
    frames[3] = defect(frames[3], 20, 4)
    return frames


def test_batch_size_chunking_preserves_input_order(tiny_state, test_frames):
    reference = np.asarray(pyimgano.score(tiny_state, test_frames, "rgb_u8_hwc"))
    for batch_size in (2, None):
        scores = [r.score for r in infer(tiny_state, test_frames, input_format="rgb_u8_hwc", batch_size=batch_size)]
        np.testing.assert_allclose(scores, reference, rtol=1e-5, atol=1e-6)
    reversed_scores = [r.score for r in infer(tiny_state, test_frames[::-1], input_format="rgb_u8_hwc", batch_size=2)]
    np.testing.assert_allclose(reversed_scores, reference[::-1], rtol=1e-5, atol=1e-6)


def test_labels_follow_the_strict_threshold_rule_and_are_none_without_threshold(tiny_state, test_frames):
    plain = infer(tiny_state, test_frames, input_format="rgb_u8_hwc")
    assert all(r.label is None for r in plain)
    scores = np.array([r.score for r in plain])
    threshold = float(np.sort(scores)[2])  # exactly one frame's score: that frame is labelled 0
    labelled = infer(attrs.evolve(tiny_state, threshold=threshold), test_frames, input_format="rgb_u8_hwc")
    assert [r.label for r in labelled] == [int(s > threshold) for s in scores]
    assert sum(r.label for r in labelled) == 2


def test_maps_have_each_input_size_and_keep_order_for_mixed_sizes(tiny_state, frames_factory):
    small = frames_factory(2, size=32, seed=3)
    wide = frames_factory(1, size=(40, 48), seed=4)
    images = [small[0], wide[0], small[1]]
    results = infer(tiny_state, images, input_format="rgb_u8_hwc", include_maps=True)
    assert [r.anomaly_map.shape for r in results] == [(32, 32), (40, 48), (32, 32)]
    assert all(r.anomaly_map.dtype == np.float32 for r in results)
    expected = np.asarray(pyimgano.score(tiny_state, images, "rgb_u8_hwc"))
    np.testing.assert_allclose([r.score for r in results], expected, rtol=1e-5, atol=1e-6)
    assert all(r.anomaly_map is None for r in infer(tiny_state, images, input_format="rgb_u8_hwc"))


def test_postprocess_changes_maps_only_never_scores(tiny_state, test_frames):
    raw = infer(tiny_state, test_frames, input_format="rgb_u8_hwc", include_maps=True)
    post = AnomalyMapPostprocess(normalize="minmax", gaussian_sigma=1.0)
    processed = infer(tiny_state, test_frames, input_format="rgb_u8_hwc", include_maps=True, postprocess=post)
    assert [r.score for r in processed] == [r.score for r in raw]
    for before, after in zip(raw, processed):
        np.testing.assert_allclose(after.anomaly_map, post(before.anomaly_map), atol=1e-6)
        assert after.anomaly_map.min() == 0.0 and after.anomaly_map.max() == pytest.approx(1.0)


def test_bgr_frames_with_declared_format_score_like_their_rgb_twins(tiny_state, test_frames):
    rgb = infer(tiny_state, test_frames, input_format="rgb_u8_hwc")
    bgr = infer(tiny_state, np.ascontiguousarray(test_frames[..., ::-1]), input_format="bgr_u8_hwc")
    assert [r.score for r in bgr] == [r.score for r in rgb]


def test_one_frame_array_is_one_image_not_a_batch_of_rows(tiny_state, test_frames):
    results = infer(tiny_state, test_frames[1], input_format="rgb_u8_hwc")
    assert len(results) == 1


def test_paths_are_decoded(tiny_state, test_frames, tmp_path):
    paths = []
    for i, frame in enumerate(test_frames[:2]):
        path = tmp_path / f"{i}.png"
        cv2.imwrite(str(path), frame[..., ::-1])
        paths.append(str(path))
    from_files = infer(tiny_state, paths)
    from_arrays = infer(tiny_state, test_frames[:2], input_format="rgb_u8_hwc")
    assert [r.score for r in from_files] == [r.score for r in from_arrays]


def test_arrays_without_input_format_are_rejected(tiny_state, test_frames):
    with pytest.raises(ValueError, match="input_format"):
        infer(tiny_state, test_frames)


def test_unknown_detector_objects_are_rejected(test_frames):
    with pytest.raises(TypeError, match="DetectorState"):
        infer(object(), test_frames, input_format="rgb_u8_hwc")


@pytest.mark.parametrize("batch_size", [0, -2, 1.5])
def test_bad_batch_size_is_rejected(tiny_state, test_frames, batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        infer(tiny_state, test_frames, input_format="rgb_u8_hwc", batch_size=batch_size)


def test_calibration_returns_a_new_state_with_quantile_threshold_and_provenance(tiny_state, frames_factory):
    normal = frames_factory(4, seed=11)
    calibrated = calibrate_threshold(tiny_state, normal, input_format="rgb_u8_hwc", quantile=0.9)
    assert tiny_state.threshold is None  # the input state never changes
    scores = np.asarray(pyimgano.score(tiny_state, normal, "rgb_u8_hwc"), np.float64)
    assert calibrated.threshold == pytest.approx(quantile_threshold(scores, 0.9)[0], rel=1e-5)
    assert calibrated.provenance == {"method": "quantile", "quantile": 0.9, "source": "normal_images", "count": 4}
    results = infer(calibrated, normal, input_format="rgb_u8_hwc")
    assert sum(r.label for r in results) == 1  # linear interpolation below the top score


def test_compat_object_gets_threshold_and_labels(tiny_patchcore_kwargs, frames_factory, test_frames):
    detector = create_model("vision_patchcore", **tiny_patchcore_kwargs)
    detector.fit(frames_factory(6, seed=1))
    normal_bgr = np.ascontiguousarray(frames_factory(4, seed=11)[..., ::-1])
    returned = calibrate_threshold(detector, normal_bgr, input_format="bgr_u8_hwc", quantile=0.995)
    assert returned is detector
    assert detector.threshold_ is not None
    assert detector.threshold_provenance_["count"] == 4
    results = infer(detector, test_frames, input_format="rgb_u8_hwc")
    assert [r.label for r in results] == [int(r.score > detector.threshold_) for r in results]
