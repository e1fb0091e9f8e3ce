"""canonicalize_images: batches, lists of frames, paths, and what may not be mixed."""

import pathlib

import numpy as np
import pytest
from PIL import Image

from pyimgano.inputs import ImageFormat, ImageLoadError, canonicalize_images


def _bgr_batch(n=3, h=2, w=4):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def test_a_batch_array_gives_one_canonical_frame_per_leading_index():
    batch = _bgr_batch()
    frames = canonicalize_images(batch, input_format="bgr_u8_hwc")
    assert isinstance(frames, list) and len(frames) == 3
    for frame, source in zip(frames, batch):
        assert frame.dtype == np.uint8 and frame.shape == (2, 4, 3)
        assert frame.flags.c_contiguous
        assert np.array_equal(frame, source[..., ::-1])


def test_a_batch_and_the_list_of_its_frames_give_the_same_result():
    batch = np.random.default_rng(1).random((2, 3, 5, 4), dtype=np.float32)  # (N, 3, H, W)
    from_batch = canonicalize_images(batch, input_format=ImageFormat.RGB_F32_CHW)
    from_list = canonicalize_images(list(batch), input_format=ImageFormat.RGB_F32_CHW)
    assert len(from_batch) == len(from_list) == 2
    for a, b in zip(from_batch, from_list):
        assert a.shape == (5, 4, 3)
        assert np.array_equal(a, b)


def test_a_single_frame_array_gives_a_list_of_one():
    frame = np.full((3, 2), 4095, np.uint16)
    frames = canonicalize_images(frame, input_format="gray_u16_hw", u16_max=4095)
    assert len(frames) == 1
    assert frames[0].shape == (3, 2, 3) and (frames[0] == 255).all()


def test_a_gray_batch_is_decided_by_ndim():
    batch = np.zeros((5, 2, 7), np.uint8)  # five 2x7 gray frames
    frames = canonicalize_images(batch, input_format="gray_u8_hw")
    assert [f.shape for f in frames] == [(2, 7, 3)] * 5


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_a_colour_looking_array_declared_gray_is_refused_not_split_into_frames(channels):
    image = np.zeros((64, 64, channels), np.uint8)
    with pytest.raises(ValueError, match=rf"gray_u8_hw.*\(64, 64, {channels}\).*colour channels"):
        canonicalize_images(image, input_format="gray_u8_hw")
    # Frames that narrow remain possible, unambiguously, as a list of (H, W) arrays.
    frames = canonicalize_images([np.zeros((64, channels), np.uint8)] * 2, input_format="gray_u8_hw")
    assert [f.shape for f in frames] == [(64, channels, 3)] * 2


def test_frames_of_different_sizes_may_share_a_list():
    frames = canonicalize_images(
        [np.zeros((2, 3, 3), np.uint8), np.ones((4, 1, 3), np.uint8)], input_format="rgb_u8_hwc"
    )
    assert [f.shape for f in frames] == [(2, 3, 3), (4, 1, 3)]
    assert frames[1].sum() == 12


def test_an_empty_list_gives_an_empty_list():
    assert canonicalize_images([], input_format="rgb_u8_hwc") == []
    assert canonicalize_images([]) == []


def test_arrays_without_a_format_are_rejected_listing_the_formats():
    with pytest.raises(ValueError, match="never guessed.*bgr_u8_hwc.*rgb_f32_chw"):
        canonicalize_images(_bgr_batch())
    with pytest.raises(ValueError, match="accepted"):
        canonicalize_images([np.zeros((2, 2, 3), np.uint8)])


def test_auto_is_not_a_format():
    with pytest.raises(ValueError, match="accepted: bgr_u8_hwc"):
        canonicalize_images(_bgr_batch(), input_format="auto")


def test_a_rejected_list_element_is_named_by_its_index():
    good = np.zeros((2, 2, 3), np.float32)
    bad = np.full((2, 2, 3), 1.5, np.float32)
    with pytest.raises(ValueError, match=r"item 1: declared rgb_f32_hwc.*outside \[0, 1\]"):
        canonicalize_images([good, bad], input_format="rgb_f32_hwc")


def test_a_batch_inside_a_list_is_rejected():
    with pytest.raises(ValueError, match="item 0.*single"):
        canonicalize_images([_bgr_batch()], input_format="bgr_u8_hwc")


def test_paths_and_arrays_mixed_are_a_type_error(tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(path)
    frame = np.zeros((2, 2, 3), np.uint8)
    with pytest.raises(TypeError, match="paths and arrays may not be mixed"):
        canonicalize_images([path, frame], input_format="rgb_u8_hwc")
    with pytest.raises(TypeError, match="paths and arrays may not be mixed"):
        canonicalize_images([frame, str(path)])


def test_an_element_that_is_neither_array_nor_path_is_a_type_error():
    with pytest.raises(TypeError, match="item 1"):
        canonicalize_images([np.zeros((2, 2, 3), np.uint8), [[0]]], input_format="rgb_u8_hwc")


@pytest.mark.parametrize("images", [3, None, b"a.png"])
def test_non_iterables_and_bytes_are_a_type_error(images):
    with pytest.raises(TypeError, match="images must be"):
        canonicalize_images(images, input_format="rgb_u8_hwc")


def test_paths_are_decoded_in_order(tmp_path):
    red, blue = np.zeros((2, 3, 3), np.uint8), np.zeros((4, 1, 3), np.uint8)
    red[..., 0], blue[..., 2] = 200, 100
    Image.fromarray(red).save(tmp_path / "red.png")
    Image.fromarray(blue).save(tmp_path / "blue.bmp")
    frames = canonicalize_images([str(tmp_path / "red.png"), tmp_path / "blue.bmp"])
    assert np.array_equal(frames[0], red) and np.array_equal(frames[1], blue)
    single = canonicalize_images(tmp_path / "red.png")
    assert len(single) == 1 and np.array_equal(single[0], red)


def test_u16_max_applies_to_16_bit_files(tmp_path):
    Image.fromarray(np.array([[0, 2048, 4095]], np.uint16)).save(tmp_path / "g16.png")
    (frame,) = canonicalize_images([tmp_path / "g16.png"], u16_max=4095)
    assert frame[0, :, 0].tolist() == [0, 128, 255]


def test_paths_with_a_declared_format_are_rejected(tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(path)
    with pytest.raises(ValueError, match="arrays only"):
        canonicalize_images([path], input_format="bgr_u8_hwc")


def test_a_bad_path_in_a_list_names_that_path(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(good)
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    with pytest.raises(ImageLoadError, match="notes.png"):
        canonicalize_images([good, bad])
    with pytest.raises(FileNotFoundError, match="missing.png"):
        canonicalize_images([pathlib.Path(tmp_path / "missing.png")])
