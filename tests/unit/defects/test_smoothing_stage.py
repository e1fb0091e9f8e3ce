"""smooth_map agrees with OpenCV's reference filters, including the numpy median for large kernels."""

import cv2
import numpy as np
import pytest

from pyimgano.defects.stages import smooth_map


@pytest.mark.parametrize("ksize", [3, 5, 7, 9])
def test_float_median_matches_opencv_uint8_median(ksize):
    rng = np.random.default_rng(ksize)
    u8 = rng.integers(0, 256, size=(13, 17), dtype=np.uint8)
    expected = cv2.medianBlur(u8, ksize).astype(np.float32)  # uint8 median: any odd size, replicated border
    np.testing.assert_array_equal(smooth_map(u8.astype(np.float32), "median", ksize, 0.0), expected)


def test_box_and_gaussian_are_opencv_blur_and_gaussian_blur():
    rng = np.random.default_rng(0)
    m = rng.random((9, 11)).astype(np.float32)
    np.testing.assert_allclose(smooth_map(m, "box", 3, 0.0), cv2.blur(m, (3, 3)))
    np.testing.assert_allclose(smooth_map(m, "gaussian", 0, 1.5), cv2.GaussianBlur(m, (0, 0), 1.5))
    assert smooth_map(m, "none", 3, 0.0) is m


def test_unknown_smoothing_is_rejected_with_the_accepted_names():
    with pytest.raises(ValueError, match="accepted"):
        smooth_map(np.zeros((3, 3), np.float32), "bilateral", 3, 0.0)
