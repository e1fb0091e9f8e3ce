"""Bounded decoding: header pixel limit, regular files only, nothing of a file quoted, quiet decoders."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from pyimgano.inputs import (
    DEFAULT_MAX_PIXELS,
    ImageLoadError,
    ImageTooLargeError,
    canonical_batches,
    image_pixel_limit,
    load_image,
    resolve_max_pixels,
)
from pyimgano.inputs.headers import image_dimensions

CONTAINERS = ["PNG", "JPEG", "BMP", "TIFF"]
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


@pytest.mark.parametrize("container", CONTAINERS)
def test_the_header_reader_finds_the_declared_size_of_every_container(container, bomb_bytes):
    assert image_dimensions(bomb_bytes(container, 1234, 567), container) == (1234, 567)


@pytest.mark.parametrize("container", CONTAINERS)
def test_a_bomb_header_is_refused_naming_the_limit(tmp_path, container, bomb_bytes):
    path = tmp_path / f"bomb.{container.lower()}"
    path.write_bytes(bomb_bytes(container))
    assert path.stat().st_size < 4096
    with pytest.raises(ImageTooLargeError, match=r"30000 x 30000 = 900,000,000 pixels.*67,108,864") as info:
        load_image(path)
    assert info.value.limit == DEFAULT_MAX_PIXELS == 8192 * 8192
    assert str(path) in str(info.value)


def test_bombs_are_refused_within_a_small_address_space(tmp_path, bomb_bytes):
    # Decoding a 30000x30000 image needs 2.7 GB: under a 1 GiB address-space limit only a
    # refusal before decoding can succeed (without the check OpenCV fails to allocate).
    for container in CONTAINERS:
        (tmp_path / f"bomb_{container}").write_bytes(bomb_bytes(container))
    script = textwrap.dedent(
        f"""
        import glob, resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        from pyimgano.inputs import ImageTooLargeError, load_image
        for path in sorted(glob.glob({str(tmp_path)!r} + "/bomb_*")):
            try:
                load_image(path)
            except ImageTooLargeError:
                print("REFUSED")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["REFUSED"] * len(CONTAINERS), done.stdout + done.stderr


def test_the_limit_comes_from_the_argument_then_the_block_then_the_environment(tmp_path, monkeypatch, write_pil):
    from PIL import Image

    path = write_pil("small.png", Image.fromarray(np.zeros((10, 20, 3), np.uint8)))  # 200 pixels
    monkeypatch.setenv("PYIMGANO_MAX_IMAGE_PIXELS", "199")
    assert resolve_max_pixels() == 199
    with pytest.raises(ImageTooLargeError, match="above the decode limit of 199 pixels"):
        load_image(path)
    with image_pixel_limit(200):
        assert load_image(path).shape == (10, 20, 3)
        with pytest.raises(ImageTooLargeError, match="limit of 150 pixels"):
            load_image(path, max_pixels=150)
    assert load_image(path, max_pixels=200).shape == (10, 20, 3)
    monkeypatch.setenv("PYIMGANO_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(ValueError, match="PYIMGANO_MAX_IMAGE_PIXELS='lots'"):
        load_image(path)


@pytest.mark.parametrize("bad", [0, -5, True, 2.5, "100"])
def test_a_bad_limit_is_refused_naming_it(bad, tmp_path):
    with pytest.raises((TypeError, ValueError), match="max_pixels"):
        load_image(tmp_path / "x.png", max_pixels=bad)


def test_a_symlink_to_a_secret_file_is_refused_without_quoting_it(tmp_path):
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0:SECRET-TOKEN:/root:/bin/bash\n")
    link = tmp_path / "part.png"
    link.symlink_to(secret)
    with pytest.raises(ImageLoadError) as info:
        load_image(link)
    assert "part.png" in str(info.value)
    for fragment in ("SECRET", "x:0:0", "bin/bash"):
        assert fragment not in str(info.value)


def test_devices_and_fifos_are_refused_without_reading(tmp_path):
    zero = tmp_path / "zero.png"
    zero.symlink_to("/dev/zero")  # reading it would never end
    with pytest.raises(ImageLoadError, match="not a regular file"):
        load_image(zero)
    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)  # opening it for reading would block forever without a writer
    with pytest.raises(ImageLoadError, match="not a regular file"):
        load_image(fifo)


def test_decoder_messages_stay_off_stderr(tmp_path, capfd, caplog, write_pil):
    import logging

    from PIL import Image

    good = write_pil("ok.png", Image.fromarray(np.zeros((8, 8, 3), np.uint8))).read_bytes()
    at = good.index(b"IDAT")
    length = int.from_bytes(good[at - 4 : at], "big")
    broken = bytearray(good)
    broken[at + 4 + length] ^= 0xFF  # the IDAT CRC: libpng prints "libpng error: IDAT: CRC error"
    path = tmp_path / "crc.png"
    path.write_bytes(bytes(broken))
    with caplog.at_level(logging.DEBUG, logger="pyimgano.inputs"), pytest.raises(ImageLoadError, match="crc.png"):
        load_image(path)
    assert capfd.readouterr().err == ""
    assert any("CRC" in record.getMessage() for record in caplog.records)


def test_an_array_of_the_wrong_ndim_is_reported_with_its_own_shape():
    with pytest.raises(ValueError, match=r"bgr_u8_hwc.*shape \(128, 128\)"):
        list(canonical_batches(np.zeros((128, 128), np.uint8), input_format="bgr_u8_hwc", batch_size=16))


@pytest.mark.parametrize(
    "shape, fmt", [((0, 10, 3), "bgr_u8_hwc"), ((0, 10, 3), "gray_u8_hw"), ((0, 8, 8, 3), "rgb_u8_hwc")]
)
def test_an_empty_array_is_refused_never_dropped(shape, fmt):
    with pytest.raises(ValueError, match=rf"{fmt}.*{shape[0]}, {shape[1]}"):
        list(canonical_batches(np.zeros(shape, np.uint8), input_format=fmt, batch_size=4))


def test_a_generator_of_frames_is_consumed_one_batch_at_a_time():
    pulled = []

    def frames():
        for i in range(10):
            pulled.append(i)
            yield np.full((4, 4, 3), i, np.uint8)

    sizes = []
    for batch in canonical_batches(frames(), input_format="rgb_u8_hwc", batch_size=4):
        sizes.append(len(batch))
        assert len(pulled) <= sum(sizes)  # never more than the current batch was read
    assert sizes == [4, 4, 2]
