"""prepare_backbone_input: canonical frames -> f32[N, h, w, 3] for a backbone."""

import numpy as np
import pytest

from pyimgano.inputs import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    INTERPOLATIONS,
    NORMALIZATIONS,
    normalize_for_backbone,
    prepare_backbone_input,
    resize_frame,
)


def _levels():
    """u8[1, 4, 3]: pixels 0, 127, 128, 255 on every channel."""
    return np.repeat(np.array([0, 127, 128, 255], np.uint8)[None, :, None], 3, axis=2)


def test_the_output_is_float32_nhwc_at_the_requested_size():
    frames = [np.zeros((6, 8, 3), np.uint8), np.zeros((3, 3, 3), np.uint8)]
    batch = prepare_backbone_input(frames, size=(4, 5))
    assert batch.dtype == np.float32
    assert batch.shape == (2, 4, 5, 3)  # size is (h, w)
    assert batch.flags.c_contiguous


def test_a_batch_array_is_accepted_like_a_list():
    batch = np.random.default_rng(0).integers(0, 256, (3, 4, 4, 3), dtype=np.uint8)
    assert np.array_equal(
        prepare_backbone_input(batch, size=(2, 2)), prepare_backbone_input(list(batch), size=(2, 2))
    )


def test_efficientnet_lite_normalisation_is_x_times_255_minus_127_over_128():
    out = prepare_backbone_input([_levels()], size=(1, 4), normalization="efficientnet_lite")
    # (v*255 - 127) / 128 for v = x/255: exact in float32.
    assert out[0, 0, :, 0].tolist() == [-127 / 128, 0.0, 1 / 128, 1.0]
    assert np.array_equal(out[..., 0], out[..., 2])


def test_imagenet_normalisation_uses_the_published_mean_and_std():
    out = prepare_backbone_input([_levels()], size=(1, 4), normalization="imagenet")
    mean = np.array([0.485, 0.456, 0.406])
    std = np.array([0.229, 0.224, 0.225])
    for column, value in enumerate([0, 127, 128, 255]):
        expected = (value / 255.0 - mean) / std
        np.testing.assert_allclose(out[0, 0, column], expected, rtol=0, atol=2e-6)
    np.testing.assert_allclose(out[0, 0, 0], [-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225], atol=2e-6)
    np.testing.assert_allclose(out[0, 0, 3], [0.515 / 0.229, 0.544 / 0.224, 0.594 / 0.225], atol=2e-6)
    assert IMAGENET_MEAN.tolist() == pytest.approx([0.485, 0.456, 0.406])
    assert IMAGENET_STD.tolist() == pytest.approx([0.229, 0.224, 0.225])


def test_none_normalisation_scales_to_unit_range():
    out = prepare_backbone_input([_levels()], size=(1, 4), normalization="none")
    assert out[0, 0, :, 1].tolist() == [0.0, np.float32(127) / np.float32(255), np.float32(128) / np.float32(255), 1.0]


def test_the_default_is_bilinear_resize_and_imagenet_normalisation():
    frame = np.random.default_rng(2).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    default = prepare_backbone_input([frame], size=(3, 3))
    explicit = prepare_backbone_input([frame], size=(3, 3), interpolation="bilinear", normalization="imagenet")
    assert np.array_equal(default, explicit)


def test_bilinear_samples_pixel_centres():
    row = np.repeat(np.array([0, 255], np.uint8)[None, :, None], 3, axis=2)  # u8[1, 2, 3]
    out = resize_frame(row, (1, 4), "bilinear")
    # Output centres map to source x = -0.25 (clamped), 0.25, 0.75, 1.25 (clamped).
    assert out[0, :, 0].tolist() == [0, 64, 191, 255]


def test_nearest_upsampling_replicates_pixels():
    frame = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    out = resize_frame(frame, (4, 4), "nearest")
    assert np.array_equal(out, frame.repeat(2, axis=0).repeat(2, axis=1))


def test_area_downsampling_averages_blocks():
    frame = np.zeros((4, 4, 3), np.uint8)
    frame[:2, :2] = 100
    frame[0, 0] = 104  # block mean 101
    out = resize_frame(frame, (2, 2), "area")
    assert out[..., 0].tolist() == [[101, 0], [0, 0]]


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_every_interpolation_keeps_a_constant_frame_constant(interpolation):
    frame = np.full((5, 7, 3), 77, np.uint8)
    out = prepare_backbone_input([frame], size=(9, 4), interpolation=interpolation, normalization="efficientnet_lite")
    assert out.shape == (1, 9, 4, 3)
    assert np.all(out == np.float32((77 - 127) / 128))


def test_a_frame_already_at_size_is_not_resampled():
    frame = np.random.default_rng(4).integers(0, 256, (3, 5, 3), dtype=np.uint8)
    out = prepare_backbone_input([frame], size=(3, 5), interpolation="lanczos", normalization="none")
    assert np.array_equal(out[0], frame.astype(np.float32) / np.float32(255))


def test_centre_crop_after_resize_takes_the_middle():
    frame = np.arange(6 * 6, dtype=np.uint8).reshape(6, 6, 1).repeat(3, axis=2)
    out = prepare_backbone_input([frame], size=(6, 6), crop_size=(2, 4), normalization="none")
    assert out.shape == (1, 2, 4, 3)
    assert np.array_equal(np.rint(out[0, ..., 0] * 255), frame[2:4, 1:5, 0])


def test_a_crop_larger_than_size_is_rejected():
    with pytest.raises(ValueError, match="crop_size"):
        prepare_backbone_input([np.zeros((4, 4, 3), np.uint8)], size=(4, 4), crop_size=(5, 4))


def test_unknown_interpolation_is_rejected_listing_the_accepted_ones():
    with pytest.raises(ValueError) as info:
        prepare_backbone_input([np.zeros((2, 2, 3), np.uint8)], size=(2, 2), interpolation="linear")
    message = str(info.value)
    assert "'linear'" in message
    for name in INTERPOLATIONS:
        assert name in message


def test_unknown_normalisation_is_rejected_listing_the_accepted_ones():
    with pytest.raises(ValueError) as info:
        prepare_backbone_input([np.zeros((2, 2, 3), np.uint8)], size=(2, 2), normalization="inception")
    message = str(info.value)
    assert "'inception'" in message
    for name in NORMALIZATIONS:
        assert name in message
    with pytest.raises(ValueError, match="accepted: imagenet"):
        normalize_for_backbone(np.zeros((1, 3), np.uint8), "Imagenet")


@pytest.mark.parametrize("size", [(0, 4), (4,), (4, 4, 4), (2.5, 3), "44", (True, 2)])
def test_bad_sizes_are_rejected(size):
    with pytest.raises(ValueError, match="size"):
        prepare_backbone_input([np.zeros((2, 2, 3), np.uint8)], size=size)


@pytest.mark.parametrize(
    "frame",
    [
        np.zeros((2, 2, 3), np.float32),
        np.zeros((2, 2), np.uint8),
        np.zeros((2, 2, 4), np.uint8),
        np.zeros((0, 2, 3), np.uint8),
    ],
)
def test_non_canonical_frames_are_rejected(frame):
    with pytest.raises(ValueError, match="frame 0.*canonical"):
        prepare_backbone_input([frame], size=(2, 2))


def test_an_empty_input_is_rejected():
    with pytest.raises(ValueError, match="empty"):
        prepare_backbone_input([], size=(2, 2))


def test_a_non_sequence_is_a_type_error():
    with pytest.raises(TypeError, match="frames"):
        prepare_backbone_input("frame.png", size=(2, 2))
