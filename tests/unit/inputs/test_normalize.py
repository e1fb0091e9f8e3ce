import numpy as np
import pytest

from pyimgano.inputs import ImageFormat, normalize_numpy_image


def _bgr_frame():
    bgr = np.zeros((2, 3, 3), np.uint8)
    bgr[..., 0], bgr[..., 1], bgr[..., 2] = 10, 20, 30
    return bgr


def test_bgr_channels_are_swapped_to_rgb():
    rgb = normalize_numpy_image(_bgr_frame(), input_format=ImageFormat.BGR_U8_HWC)
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 3, 3)
    assert (rgb[..., 0] == 30).all() and (rgb[..., 1] == 20).all() and (rgb[..., 2] == 10).all()


def test_the_format_may_be_given_by_name():
    rgb = normalize_numpy_image(_bgr_frame(), input_format="bgr_u8_hwc")
    assert rgb[0, 0].tolist() == [30, 20, 10]


def test_rgb_u8_is_returned_unchanged_as_a_new_contiguous_array():
    frame = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    out = normalize_numpy_image(frame, input_format="rgb_u8_hwc")
    assert np.array_equal(out, frame)
    assert not np.shares_memory(out, frame)
    assert out.flags.c_contiguous


def test_float_half_rounds_to_even_128_and_point_three_to_76():
    chw = np.empty((3, 1, 2), np.float32)
    chw[0], chw[1], chw[2] = 0.5, 0.3, 1.0
    out = normalize_numpy_image(chw, input_format="rgb_f32_chw")
    assert out.shape == (1, 2, 3)
    assert out[0, 0].tolist() == [128, 76, 255]


def test_float_endpoints_map_to_0_and_255():
    hwc = np.array([[[0.0, 1.0, 0.0]]], np.float32)
    assert normalize_numpy_image(hwc, input_format="rgb_f32_hwc")[0, 0].tolist() == [0, 255, 0]
    assert normalize_numpy_image(hwc, input_format="bgr_f32_hwc")[0, 0].tolist() == [0, 255, 0]


def test_chw_is_transposed_to_hwc():
    chw = np.zeros((3, 2, 4), np.float32)
    chw[0, 1, 3] = 1.0  # red at row 1, column 3
    out = normalize_numpy_image(chw, input_format="rgb_f32_chw")
    assert out.shape == (2, 4, 3)
    assert out[1, 3].tolist() == [255, 0, 0]
    assert out.sum() == 255


def test_twelve_bit_values_scale_by_u16_max():
    gray = np.array([[4095, 2048, 0]], np.uint16)
    out = normalize_numpy_image(gray, input_format="gray_u16_hw", u16_max=4095)
    assert out[0, :, 0].tolist() == [255, 128, 0]


def test_u16_default_full_scale_is_65535():
    rgb16 = np.array([[[65535, 257 * 128, 0]]], np.uint16)
    out = normalize_numpy_image(rgb16, input_format="rgb_u16_hwc")
    assert out[0, 0].tolist() == [255, 128, 0]


def test_bgr_u16_is_swapped_and_scaled():
    bgr16 = np.array([[[0, 1000, 4000]]], np.uint16)
    out = normalize_numpy_image(bgr16, input_format="bgr_u16_hwc", u16_max=4000)
    assert out[0, 0].tolist() == [255, 64, 0]  # 1000*255/4000 = 63.75


def test_big_endian_u16_is_still_u16():
    gray = np.array([[4095]], dtype=">u2")
    assert normalize_numpy_image(gray, input_format="gray_u16_hw", u16_max=4095)[0, 0].tolist() == [255] * 3


def test_gray_is_repeated_to_three_channels():
    gray = np.array([[0, 7], [200, 255]], np.uint8)
    out = normalize_numpy_image(gray, input_format="gray_u8_hw")
    assert out.shape == (2, 2, 3)
    for c in range(3):
        assert np.array_equal(out[..., c], gray)


@pytest.mark.parametrize(
    "fmt, batch",
    [
        ("bgr_u8_hwc", np.zeros((4, 2, 3, 3), np.uint8)),
        ("rgb_f32_chw", np.zeros((4, 3, 2, 3), np.float32)),
        ("gray_u16_hw", np.zeros((4, 2, 6), np.uint16)),  # a last axis of 1, 3 or 4 is refused (colour-like)
    ],
)
def test_a_batch_has_one_more_leading_dim(fmt, batch):
    out = normalize_numpy_image(batch, input_format=fmt)
    assert out.shape == ((4, 2, 6, 3) if fmt == "gray_u16_hw" else (4, 2, 3, 3))
    assert out.flags.c_contiguous


def test_batch_frames_are_converted_independently():
    batch = np.zeros((2, 1, 1, 3), np.uint8)
    batch[0, 0, 0] = [1, 2, 3]
    batch[1, 0, 0] = [4, 5, 6]
    out = normalize_numpy_image(batch, input_format="bgr_u8_hwc")
    assert out[:, 0, 0].tolist() == [[3, 2, 1], [6, 5, 4]]


def test_output_is_contiguous_for_strided_input():
    frame = np.zeros((4, 6, 3), np.uint8)[::2, ::2]
    assert not frame.flags.c_contiguous
    assert normalize_numpy_image(frame, input_format="rgb_u8_hwc").flags.c_contiguous


def _error(image, fmt, **kwargs):
    with pytest.raises(ValueError) as info:
        normalize_numpy_image(image, input_format=fmt, **kwargs)
    return str(info.value)


def test_wrong_dtype_message_names_format_expectation_and_arrival():
    message = _error(np.zeros((4, 4, 3), np.float32), "bgr_u8_hwc")
    assert "bgr_u8_hwc" in message and "uint8" in message and "(H, W, 3)" in message
    assert "float32 array of shape (4, 4, 3)" in message


def test_hwc_data_declared_chw_is_rejected_naming_both_shapes():
    message = _error(np.zeros((4, 5, 3), np.float32), "rgb_f32_chw")
    assert "(3, H, W)" in message and "(4, 5, 3)" in message


@pytest.mark.parametrize("shape", [(3,), (3, 3), (3, 3, 4), (3, 3, 1), (2, 3, 3, 1), (2, 3, 3, 3, 3)])
def test_bad_shapes_are_rejected(shape):
    message = _error(np.zeros(shape, np.uint8), "rgb_u8_hwc")
    assert f"shape {shape}" in message


def test_gray_with_a_channel_axis_is_rejected():
    # ndim alone decides frame vs batch, so (H, W, 1, 1) is neither a gray frame nor a batch.
    _error(np.zeros((4, 4, 1, 1), np.uint8), "gray_u8_hw")


def test_empty_arrays_are_rejected():
    assert "empty" in _error(np.zeros((0, 4, 3), np.uint8), "rgb_u8_hwc")
    assert "empty" in _error(np.zeros((0, 2, 2, 3), np.uint8), "rgb_u8_hwc")


@pytest.mark.parametrize("bad", [-0.01, 1.0001, 2.0])
def test_floats_outside_unit_range_are_rejected_with_the_range(bad):
    image = np.full((2, 2, 3), 0.5, np.float32)
    image[1, 1, 1] = bad
    message = _error(image, "rgb_f32_hwc")
    assert "[0, 1]" in message and "outside" in message


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_floats_are_rejected(bad):
    image = np.zeros((3, 2, 2), np.float32)
    image[0, 0, 0] = bad
    assert "non-finite" in _error(image, "rgb_f32_chw")


def test_u16_above_u16_max_is_rejected():
    message = _error(np.array([[4096]], np.uint16), "gray_u16_hw", u16_max=4095)
    assert "4096" in message and "u16_max=4095" in message


@pytest.mark.parametrize("u16_max", [0, 65536, -1])
def test_u16_max_out_of_range_is_rejected(u16_max):
    with pytest.raises(ValueError, match="u16_max"):
        normalize_numpy_image(np.zeros((2, 2), np.uint16), input_format="gray_u16_hw", u16_max=u16_max)


@pytest.mark.parametrize("u16_max", [4095.0, True, "4095"])
def test_non_integer_u16_max_is_a_type_error(u16_max):
    with pytest.raises(TypeError, match="u16_max"):
        normalize_numpy_image(np.zeros((2, 2), np.uint16), input_format="gray_u16_hw", u16_max=u16_max)


@pytest.mark.parametrize("image", [[[0, 1], [2, 3]], 3, None, "frame.png"])
def test_non_arrays_are_a_type_error(image):
    with pytest.raises(TypeError, match="rgb_u8_hwc"):
        normalize_numpy_image(image, input_format="rgb_u8_hwc")


def test_unknown_format_is_rejected():
    with pytest.raises(ValueError, match="accepted"):
        normalize_numpy_image(np.zeros((2, 2, 3), np.uint8), input_format="auto")


def test_objects_exposing_array_protocol_are_accepted():
    class DeviceArray:  # stands in for a jax / CPU torch array
        def __init__(self, value):
            self._value = value
            self.shape, self.dtype = value.shape, value.dtype

        def __array__(self, dtype=None, copy=None):
            return self._value

    out = normalize_numpy_image(DeviceArray(_bgr_frame()), input_format="bgr_u8_hwc")
    assert out[0, 0].tolist() == [30, 20, 10]


def test_output_is_contiguous_for_fortran_ordered_and_reversed_inputs():
    chw = np.asfortranarray(np.random.default_rng(0).random((3, 4, 5), dtype=np.float32))
    out = normalize_numpy_image(chw, input_format="rgb_f32_chw")
    assert out.flags.c_contiguous and out.shape == (4, 5, 3)
    assert np.array_equal(out, np.rint(np.moveaxis(chw, 0, -1) * 255).astype(np.uint8))
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    view = rgb[..., ::-1]  # a BGR view with a negative stride
    out = normalize_numpy_image(view, input_format="bgr_u8_hwc")
    assert out.flags.c_contiguous and np.array_equal(out, rgb)


def test_point_three_is_76_in_every_float_format():
    for fmt, image in [
        ("rgb_f32_hwc", np.full((1, 1, 3), 0.3, np.float32)),
        ("bgr_f32_hwc", np.full((1, 1, 3), 0.3, np.float32)),
        ("rgb_f32_chw", np.full((3, 1, 1), 0.3, np.float32)),
    ]:
        assert normalize_numpy_image(image, input_format=fmt)[0, 0].tolist() == [76, 76, 76], fmt


def test_a_float64_array_is_not_accepted_as_f32():
    message = _error(np.full((2, 2, 3), 0.5), "rgb_f32_hwc")
    assert "float32" in message and "float64 array" in message
