import numpy as np
import pytest

from pyimgano.postprocess.anomaly_map import AnomalyMapPostprocess


def _ramp(h=8, w=8, offset=0.0):
    return (np.arange(h * w, dtype=np.float32).reshape(h, w) + offset) / (h * w)


def test_earlier_library_spelling_means_minmax():
    post = AnomalyMapPostprocess(normalize=True, normalize_method="minmax")
    assert post == AnomalyMapPostprocess(normalize="minmax")
    assert post.normalize == "minmax"
    assert AnomalyMapPostprocess(normalize=False).normalize == "none"


def test_minmax_maps_each_map_to_unit_range():
    out = AnomalyMapPostprocess(normalize="minmax")(np.stack([_ramp(), 3 * _ramp() + 5]))
    assert out.dtype == np.float32 and out.shape == (2, 8, 8)
    np.testing.assert_allclose(out[0], out[1], atol=1e-6)
    assert out.min() == 0.0 and out.max() == pytest.approx(1.0)


def test_constant_map_normalises_to_zeros():
    out = AnomalyMapPostprocess(normalize="minmax")(np.full((4, 4), 3.0, np.float32))
    np.testing.assert_array_equal(out, np.zeros((4, 4), np.float32))


def test_percentile_normalisation_clips_outside_the_range():
    m = _ramp(10, 10)
    out = AnomalyMapPostprocess(normalize="percentile", percentile_range=(10, 90))(m)
    lo, hi = np.percentile(m, [10, 90])
    np.testing.assert_allclose(out, np.clip((m - lo) / (hi - lo), 0, 1), atol=1e-6)


def test_none_leaves_values_unchanged():
    m = _ramp()
    np.testing.assert_array_equal(AnomalyMapPostprocess()(m), m)


def test_normal_stats_use_one_affine_map_for_every_image():
    normal = np.stack([_ramp(), _ramp(offset=4.0)])
    post = AnomalyMapPostprocess(percentile_range=(0, 100)).with_normal_stats(normal)
    assert post.normalize == "normal_stats"
    low, high = normal.min(), normal.max()
    assert (post.normal_low, post.normal_high) == pytest.approx((low, high))
    defect = _ramp() * 4
    np.testing.assert_allclose(post(defect), np.maximum((defect - low) / (high - low), 0), rtol=1e-5)
    # A clean image is not stretched: its values stay within [0, 1].
    assert post(normal[0]).max() <= 1.0
    assert post(defect).max() > 1.0


def test_normal_stats_without_statistics_is_an_error():
    with pytest.raises(ValueError, match="with_normal_stats"):
        AnomalyMapPostprocess(normalize="normal_stats")(_ramp())


def test_gaussian_blur_spreads_a_single_hot_pixel_and_keeps_its_mass_centred():
    m = np.zeros((15, 15), np.float32)
    m[7, 7] = 1.0
    out = AnomalyMapPostprocess(gaussian_sigma=1.5)(m)
    assert out[7, 7] < 1.0 and out[7, 8] > 0 and np.unravel_index(out.argmax(), out.shape) == (7, 7)


def test_opening_removes_a_speck_smaller_than_the_kernel_and_keeps_a_large_blob():
    m = np.zeros((12, 12), np.float32)
    m[1, 1] = 5.0
    m[5:10, 5:10] = 2.0
    out = AnomalyMapPostprocess(morph_open_ksize=3)(m)
    assert out[1, 1] == 0.0
    np.testing.assert_array_equal(out[5:10, 5:10], 2.0)


def test_closing_fills_a_one_pixel_hole():
    m = np.ones((9, 9), np.float32)
    m[4, 4] = 0.0
    assert AnomalyMapPostprocess(morph_close_ksize=3)(m)[4, 4] == 1.0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(normalize="zscore"), "minmax"),
        (dict(normalize=True, normalize_method="zscore"), "zscore"),
        (dict(normalize="minmax", normalize_method="percentile"), "disagrees"),
        (dict(percentile_range=(90, 10)), "percentile_range"),
        (dict(gaussian_sigma=-1), "gaussian_sigma"),
        (dict(morph_open_ksize=-3), "morph_open_ksize"),
    ],
)
def test_bad_settings_are_rejected_with_the_accepted_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AnomalyMapPostprocess(**kwargs)


def test_maps_of_wrong_rank_are_rejected():
    with pytest.raises(ValueError, match=r"f32\[H, W\]"):
        AnomalyMapPostprocess()(np.zeros((2, 2, 2, 2)))


def test_settings_round_trip_through_a_dict():
    post = AnomalyMapPostprocess(normalize="percentile", percentile_range=(2, 98), gaussian_sigma=2.0)
    assert AnomalyMapPostprocess.from_dict(post.to_dict()) == post
    with pytest.raises(ValueError, match="accepted"):
        AnomalyMapPostprocess.from_dict({"sigma": 1})
