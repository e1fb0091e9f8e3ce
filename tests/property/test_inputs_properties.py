"""Hypothesis properties of the image-input contract (SPEC section 3).

Every declared format normalises to RGB / uint8 / HWC; conversions are exact
(u8 lossless, floats np.rint(x*255), u16 np.rint(x*255/u16_max)); every
malformed array is a ValueError naming the declared format.
"""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pyimgano.inputs import IMAGE_FORMATS, ImageFormat, canonicalize_images, normalize_numpy_image

SIDE = st.integers(1, 5)
U16_MAX = st.one_of(st.sampled_from([1, 255, 4095, 65535]), st.integers(1, 65535))


def _frame_shape(fmt: ImageFormat, h: int, w: int) -> tuple[int, ...]:
    return {"hwc": (h, w, 3), "chw": (3, h, w), "hw": (h, w)}[fmt.layout]


def _elements(fmt: ImageFormat, u16_max: int):
    if fmt.dtype == "u8":
        return st.integers(0, 255)
    if fmt.dtype == "u16":
        return st.integers(0, u16_max)
    return st.floats(0.0, 1.0, width=32, allow_nan=False, allow_infinity=False)


@st.composite
def valid_inputs(draw, fmt=None):
    """(format, array, u16_max, batch) with an array of that format: one frame or a batch."""
    fmt = draw(st.sampled_from(IMAGE_FORMATS)) if fmt is None else fmt
    h, w = draw(SIDE), draw(SIDE)
    batch = draw(st.one_of(st.none(), st.integers(1, 3)))
    if fmt.layout == "hw" and batch is not None and w in (1, 3, 4):
        w = {1: 2, 3: 5, 4: 5}[w]  # gray batches whose last axis looks like channels are refused
    shape = _frame_shape(fmt, h, w)
    if batch is not None:
        shape = (batch, *shape)
    u16_max = draw(U16_MAX)
    array = draw(hnp.arrays(fmt.numpy_dtype, shape, elements=_elements(fmt, u16_max)))
    return fmt, array, u16_max, batch


def _reference(fmt: ImageFormat, array: np.ndarray, u16_max: int) -> np.ndarray:
    """An independent, deliberately plain statement of the conversion rules."""
    if fmt.dtype == "u8":
        values = array.astype(np.int64)
    elif fmt.dtype == "f32":
        values = np.rint(array * 255)  # float32 * int -> float32, as the contract states
    else:
        values = np.rint(array.astype(np.float64) * 255 / u16_max)
    if fmt.layout == "chw":
        values = np.moveaxis(values, -3, -1)
    if fmt.layout == "hw":
        values = np.stack([values, values, values], axis=-1)
    if fmt.color == "bgr":
        values = values[..., [2, 1, 0]]
    assert values.min(initial=0) >= 0 and values.max(initial=0) <= 255
    return values.astype(np.uint8)


@given(valid_inputs())
def test_every_format_normalises_to_rgb_u8_hwc_of_the_right_shape(case):
    fmt, array, u16_max, batch = case
    out = normalize_numpy_image(array, input_format=fmt, u16_max=u16_max)
    h, w = (array.shape[-2:] if fmt.layout != "hwc" else array.shape[-3:-1])
    expected_shape = (h, w, 3) if batch is None else (batch, h, w, 3)
    assert out.dtype == np.uint8
    assert out.shape == expected_shape
    assert out.flags.c_contiguous
    assert not np.shares_memory(out, array)
    assert np.array_equal(out, _reference(fmt, array, u16_max))


@given(valid_inputs())
def test_a_batch_equals_its_frames_converted_one_by_one(case):
    fmt, array, u16_max, batch = case
    assume(batch is not None)
    whole = normalize_numpy_image(array, input_format=fmt, u16_max=u16_max)
    for index in range(batch):
        single = normalize_numpy_image(array[index], input_format=fmt, u16_max=u16_max)
        assert np.array_equal(whole[index], single)
    listed = canonicalize_images(array, input_format=fmt, u16_max=u16_max)
    assert len(listed) == batch and all(np.array_equal(a, b) for a, b in zip(listed, whole))


@given(valid_inputs(ImageFormat.BGR_U8_HWC))
def test_bgr_to_rgb_is_an_involution(case):
    _, bgr, _, _ = case
    once = normalize_numpy_image(bgr, input_format="bgr_u8_hwc")
    twice = normalize_numpy_image(once, input_format="bgr_u8_hwc")
    assert np.array_equal(twice, bgr)
    assert np.array_equal(once, bgr[..., ::-1])


@given(valid_inputs(ImageFormat.RGB_F32_HWC))
def test_bgr_and_rgb_float_frames_differ_only_in_channel_order(case):
    _, rgb, _, _ = case
    from_rgb = normalize_numpy_image(rgb, input_format="rgb_f32_hwc")
    from_bgr = normalize_numpy_image(np.ascontiguousarray(rgb[..., ::-1]), input_format="bgr_f32_hwc")
    assert np.array_equal(from_rgb, from_bgr)


@given(st.sampled_from([f for f in IMAGE_FORMATS if f.dtype == "u8"]).flatmap(valid_inputs))
def test_u8_formats_are_lossless(case):
    fmt, array, _, _ = case
    out = normalize_numpy_image(array, input_format=fmt)
    if fmt.color == "rgb":
        assert np.array_equal(out, array)
    elif fmt.color == "bgr":
        assert np.array_equal(out[..., ::-1], array)
    else:
        for channel in range(3):
            assert np.array_equal(out[..., channel], array)


@given(st.sampled_from([f for f in IMAGE_FORMATS if f.dtype == "f32"]).flatmap(valid_inputs))
def test_float_rounding_equals_rint_of_x_times_255(case):
    fmt, array, _, _ = case
    out = normalize_numpy_image(array, input_format=fmt)
    hwc = np.moveaxis(array, -3, -1) if fmt.layout == "chw" else array
    if fmt.color == "bgr":
        hwc = hwc[..., ::-1]
    assert np.array_equal(out, np.rint(hwc * 255).astype(np.uint8))


@given(st.floats(0.0, 1.0, width=32))
def test_a_single_float_value_rounds_like_rint(value):
    array = np.full((3, 1, 1), value, np.float32)
    out = normalize_numpy_image(array, input_format="rgb_f32_chw")
    assert out[0, 0].tolist() == [int(np.rint(np.float32(value) * 255))] * 3


@given(valid_inputs(ImageFormat.RGB_U16_HWC))
def test_u16_full_scale_maps_to_255_and_zero_to_0(case):
    _, array, u16_max, _ = case
    array = array.copy()
    array.reshape(-1)[0] = u16_max
    array.reshape(-1)[-1] = 0
    out = normalize_numpy_image(array, input_format="rgb_u16_hwc", u16_max=u16_max)
    assert out.reshape(-1)[0] == 255 and out.reshape(-1)[-1] == 0


# ---------------------------------------------------------------- rejections


def _rejected(array, fmt, u16_max=None) -> str:
    with pytest.raises(ValueError) as info:
        normalize_numpy_image(array, input_format=fmt, u16_max=u16_max)
    message = str(info.value)
    assert fmt.name in message  # the declared format
    assert str(fmt.numpy_dtype) in message  # what it expects
    assert f"shape {tuple(array.shape)}" in message  # what arrived
    return message


@given(st.sampled_from(IMAGE_FORMATS), st.data())
def test_every_wrong_ndim_is_rejected(fmt, data):
    ndim = data.draw(st.integers(0, 6).filter(lambda n: n not in (fmt.frame_ndim, fmt.frame_ndim + 1)))
    shape = data.draw(hnp.array_shapes(min_dims=ndim, max_dims=ndim, min_side=1, max_side=3)) if ndim else ()
    _rejected(np.zeros(shape, fmt.numpy_dtype), fmt)


@given(st.sampled_from([f for f in IMAGE_FORMATS if f.layout != "hw"]), SIDE, SIDE, st.integers(0, 6), st.booleans())
def test_every_wrong_channel_count_is_rejected(fmt, h, w, channels, batched):
    assume(channels != 3)
    shape = (h, w, channels) if fmt.layout == "hwc" else (channels, h, w)
    if batched:
        shape = (2, *shape)
    message = _rejected(np.zeros(shape, fmt.numpy_dtype), fmt)
    assert "3 channels" in message


WRONG_DTYPES = [np.uint8, np.uint16, np.float32, np.float64, np.float16, np.int8, np.int16, np.int32,
                np.int64, np.uint32, np.bool_, np.complex64]


@given(st.sampled_from(IMAGE_FORMATS), st.sampled_from(WRONG_DTYPES), SIDE, SIDE)
def test_every_wrong_dtype_is_rejected(fmt, dtype, h, w):
    assume(np.dtype(dtype) != fmt.numpy_dtype)
    _rejected(np.zeros(_frame_shape(fmt, h, w), dtype), fmt)


@given(
    st.sampled_from([f for f in IMAGE_FORMATS if f.dtype == "f32"]),
    SIDE,
    SIDE,
    st.one_of(
        st.floats(max_value=0.0, exclude_max=True, width=32, allow_infinity=False),
        st.floats(min_value=1.0, exclude_min=True, width=32, allow_infinity=False),
        st.sampled_from([np.nan, np.inf, -np.inf]),
    ),
    st.data(),
)
def test_every_out_of_range_or_non_finite_float_is_rejected(fmt, h, w, bad, data):
    array = np.full(_frame_shape(fmt, h, w), 0.5, np.float32)
    index = data.draw(st.integers(0, array.size - 1))
    array.reshape(-1)[index] = bad
    message = _rejected(array, fmt)
    assert "[0, 1]" in message


@given(st.sampled_from([f for f in IMAGE_FORMATS if f.dtype == "u16"]), SIDE, SIDE, st.integers(1, 65534), st.data())
def test_every_u16_value_above_u16_max_is_rejected(fmt, h, w, u16_max, data):
    array = np.zeros(_frame_shape(fmt, h, w), np.uint16)
    array.reshape(-1)[-1] = data.draw(st.integers(u16_max + 1, 65535))
    message = _rejected(array, fmt, u16_max)
    assert f"u16_max={u16_max}" in message
