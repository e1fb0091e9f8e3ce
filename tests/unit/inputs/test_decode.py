"""load_image on small files the tests write themselves (Pillow and OpenCV encoders)."""

import numpy as np
import pytest
from PIL import Image

from pyimgano.inputs import ImageLoadError, load_image


def _gray3(gray):
    return np.repeat(gray[..., None], 3, axis=-1)


def _check_canonical(frame, shape):
    assert frame.dtype == np.uint8
    assert frame.shape == shape
    assert frame.flags.c_contiguous


@pytest.mark.parametrize("name", ["rgb.png", "rgb.bmp", "rgb.tif"])
def test_lossless_8_bit_files_decode_to_the_exact_rgb_pixels(write_pil, rgb_pixels, name):
    path = write_pil(name, Image.fromarray(rgb_pixels))
    frame = load_image(path)
    _check_canonical(frame, (6, 5, 3))
    assert np.array_equal(frame, rgb_pixels)


def test_a_str_path_works_like_a_pathlike(write_pil, rgb_pixels):
    path = write_pil("rgb.png", Image.fromarray(rgb_pixels))
    assert np.array_equal(load_image(str(path)), rgb_pixels)


def test_the_container_is_recognised_by_its_bytes_not_its_extension(write_pil, rgb_pixels):
    path = write_pil("really_a_png.jpg", Image.fromarray(rgb_pixels), "PNG")
    assert np.array_equal(load_image(path), rgb_pixels)


def test_jpeg_decodes_to_rgb_close_to_the_source(write_pil):
    flat = np.zeros((16, 16, 3), np.uint8)
    flat[..., 0], flat[..., 1], flat[..., 2] = 200, 100, 30  # flat colour: JPEG error stays tiny
    frame = load_image(write_pil("flat.jpg", Image.fromarray(flat), quality=95))
    _check_canonical(frame, (16, 16, 3))
    assert np.abs(frame.astype(int) - flat).max() <= 3  # RGB order, not BGR (that would be off by 170)


def test_jpeg_pixels_match_pillows_decoder(write_pil, rgb_pixels):
    path = write_pil("noise.jpg", Image.fromarray(rgb_pixels), quality=90)
    with Image.open(path) as reference:
        expected = np.asarray(reference.convert("RGB"))
    # Both link libjpeg(-turbo); different builds may differ by an IDCT rounding step.
    assert np.abs(load_image(path).astype(int) - expected).max() <= 2


def test_jpeg_exif_orientation_is_not_applied(write_pil):
    wide = np.zeros((4, 8, 3), np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = write_pil("rotated.jpg", Image.fromarray(wide), exif=exif.tobytes())
    assert load_image(path).shape == (4, 8, 3)  # as stored, not as displayed


def test_grayscale_png_is_repeated_to_three_channels(write_pil, rgb_pixels):
    gray = rgb_pixels[..., 1].copy()
    frame = load_image(write_pil("gray.png", Image.fromarray(gray)))
    _check_canonical(frame, (6, 5, 3))
    assert np.array_equal(frame, _gray3(gray))


def test_rgba_png_drops_alpha_without_compositing(write_pil, rgb_pixels):
    alpha = np.zeros((6, 5), np.uint8)  # fully transparent: compositing would change every pixel
    alpha[0, 0] = 255
    path = write_pil("rgba.png", Image.fromarray(np.dstack([rgb_pixels, alpha]), "RGBA"))
    frame = load_image(path)
    _check_canonical(frame, (6, 5, 3))
    assert np.array_equal(frame, rgb_pixels)


def test_gray_alpha_png_drops_alpha_and_repeats_gray(write_pil, rgb_pixels):
    gray = rgb_pixels[..., 2].copy()
    alpha = np.full_like(gray, 7)
    frame = load_image(write_pil("la.png", Image.fromarray(np.dstack([gray, alpha]), "LA")))
    assert np.array_equal(frame, _gray3(gray))


def test_palette_png_decodes_to_its_palette_colours(write_pil, rgb_pixels):
    palette_image = Image.fromarray(rgb_pixels).quantize(colors=8)
    expected = np.asarray(palette_image.convert("RGB"))
    frame = load_image(write_pil("palette.png", palette_image))
    _check_canonical(frame, (6, 5, 3))
    assert np.array_equal(frame, expected)


def test_palette_transparency_keeps_the_entry_colour(write_pil, rgb_pixels):
    palette_image = Image.fromarray(rgb_pixels).quantize(colors=4)
    expected = np.asarray(palette_image.convert("RGB"))
    frame = load_image(write_pil("palette_trns.png", palette_image, transparency=0))
    assert np.array_equal(frame, expected)


def test_16_bit_gray_png_scales_by_u16_max(write_pil):
    twelve_bit = np.array([[0, 2048, 4095], [1, 4094, 16]], np.uint16)
    path = write_pil("gray16.png", Image.fromarray(twelve_bit))
    frame = load_image(path, u16_max=4095)
    _check_canonical(frame, (2, 3, 3))
    assert frame[0, :, 0].tolist() == [0, 128, 255]
    expected = np.rint(twelve_bit.astype(np.float64) * 255 / 4095).astype(np.uint8)
    assert np.array_equal(frame, _gray3(expected))


def test_16_bit_gray_png_defaults_to_full_scale_65535(write_pil):
    full = np.array([[0, 257 * 128, 65535]], np.uint16)
    frame = load_image(write_pil("gray16_full.png", Image.fromarray(full)))
    assert frame[0, :, 0].tolist() == [0, 128, 255]


@pytest.mark.parametrize("name", ["bgr16.png", "bgr16.tif"])
def test_16_bit_colour_files_are_scaled_and_swapped_to_rgb(write_cv2, name):
    rng = np.random.default_rng(3)
    bgr16 = rng.integers(0, 65536, (4, 3, 3)).astype(np.uint16)  # OpenCV writes BGR arrays
    frame = load_image(write_cv2(name, bgr16))
    expected = np.rint(bgr16[..., ::-1].astype(np.float64) * 255 / 65535).astype(np.uint8)
    _check_canonical(frame, (4, 3, 3))
    assert np.array_equal(frame, expected)


def test_16_bit_values_above_u16_max_name_the_path(write_pil):
    path = write_pil("hot.png", Image.fromarray(np.array([[4096]], np.uint16)))
    with pytest.raises(ImageLoadError, match=r"hot\.png.*4096.*u16_max=4095"):
        load_image(path, u16_max=4095)


def _truncations(data: bytes):
    # Cut inside the header, inside IDAT, and just before the final IEND chunk.
    return sorted({9, 40, len(data) // 2, len(data) - 12, len(data) - 1})


def test_truncated_png_raises_naming_the_path(write_pil, rgb_pixels, tmp_path):
    data = write_pil("whole.png", Image.fromarray(rgb_pixels)).read_bytes()
    for cut in _truncations(data):
        path = tmp_path / f"cut_{cut}.png"
        path.write_bytes(data[:cut])
        with pytest.raises(ImageLoadError) as info:
            load_image(path)
        assert str(path) in str(info.value)
        assert "truncated" in info.value.reason
        assert info.value.path == str(path)


def test_truncated_jpeg_raises_naming_the_path(write_pil, rgb_pixels, tmp_path):
    data = write_pil("whole.jpg", Image.fromarray(rgb_pixels)).read_bytes()
    for cut in (len(data) // 2, len(data) - 2):
        path = tmp_path / f"cut_{cut}.jpg"
        path.write_bytes(data[:cut])
        with pytest.raises(ImageLoadError, match="cut_"):
            load_image(path)


@pytest.mark.parametrize("name", ["cut.bmp", "cut.tif"])
def test_truncated_bmp_and_tiff_raise_naming_the_path(write_pil, rgb_pixels, tmp_path, name):
    data = write_pil("whole" + name[3:], Image.fromarray(rgb_pixels)).read_bytes()
    path = tmp_path / name
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError, match=name.replace(".", r"\.")):
        load_image(path)


def test_bytes_after_the_end_marker_are_ignored(write_pil, rgb_pixels, tmp_path):
    for suffix in ("png", "jpg"):
        data = write_pil(f"whole.{suffix}", Image.fromarray(rgb_pixels)).read_bytes()
        path = tmp_path / f"padded.{suffix}"
        path.write_bytes(data + b"\x00trailing")
        assert load_image(path).shape == (6, 5, 3)


def test_a_non_image_file_raises_naming_the_path_and_the_accepted_containers(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("hello, not pixels")
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    message = str(info.value)
    assert str(path) in message
    for container in ("PNG", "JPEG", "BMP", "TIFF"):
        assert container in message


def test_an_image_load_error_is_a_value_error(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        load_image(path)


def test_a_missing_file_is_file_not_found_naming_the_path(tmp_path):
    path = tmp_path / "missing.png"
    with pytest.raises(FileNotFoundError, match="missing.png"):
        load_image(path)


def test_a_directory_raises_naming_the_path(tmp_path):
    folder = tmp_path / "folder.png"
    folder.mkdir()
    with pytest.raises(ImageLoadError, match="folder.png"):
        load_image(folder)


def test_float_tiff_is_rejected_naming_the_sample_type(write_pil):
    path = write_pil("float.tif", Image.fromarray(np.zeros((2, 2), np.float32)))
    with pytest.raises(ImageLoadError, match=r"float\.tif.*float32"):
        load_image(path)


@pytest.mark.parametrize("path", [None, 3, b"a.png", np.zeros((2, 2, 3), np.uint8)])
def test_a_non_path_is_a_type_error(path):
    with pytest.raises(TypeError, match="path"):
        load_image(path)


def test_a_truncated_jpeg_is_caught_even_with_an_embedded_thumbnail(write_pil, rgb_pixels, tmp_path):
    main = write_pil("main.jpg", Image.fromarray(rgb_pixels)).read_bytes()
    thumbnail = write_pil("thumb.jpg", Image.fromarray(rgb_pixels[:2, :2])).read_bytes()  # ends in FF D9
    payload = b"Exif\x00\x00" + thumbnail
    app1 = b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload
    with_thumbnail = main[:2] + app1 + main[2:]
    whole = tmp_path / "with_thumbnail.jpg"
    whole.write_bytes(with_thumbnail)
    assert load_image(whole).shape == (6, 5, 3)
    cut = tmp_path / "with_thumbnail_cut.jpg"
    cut.write_bytes(with_thumbnail[: len(with_thumbnail) - 40])
    with pytest.raises(ImageLoadError, match="with_thumbnail_cut.jpg.*truncated"):
        load_image(cut)
