"""Fuzz the image loader: the nasty corpus, then mutated files (truncations, flipped bytes, edited headers)."""

import struct
import zlib

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pyimgano.inputs import ImageLoadError, ImageTooLargeError, load_image

SMALL_LIMIT = 1 << 20  # a mutated header may claim anything: decode at most a megapixel here


def _check_loaded(out):
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3 and out.flags.c_contiguous
    assert out.shape[0] * out.shape[1] <= SMALL_LIMIT


def test_every_corpus_file_loads_or_raises_an_image_load_error_naming_it(nasty_corpus, fuzz_case, fuzz_budget):
    outcomes = {}
    for name, path in sorted(nasty_corpus.items()):
        with fuzz_case():
            try:
                _check_loaded(load_image(path, max_pixels=SMALL_LIMIT))
                outcomes[name] = "loaded"
            except ImageLoadError as exc:
                assert str(path) in str(exc)
                outcomes[name] = type(exc).__name__
    # What each awkward case gives is part of the contract (docs/inputs.md, docs/SECURITY.md).
    assert {n for n, o in outcomes.items() if o == "ImageTooLargeError"} == {
        "bomb_png.png", "bomb_jpeg.jpg", "bomb_bmp.bmp", "bomb_tiff.tif"}
    for loaded in ("png16_gray.png", "png16_rgb.png", "tiff16_rgb.tif", "cmyk.jpg", "palette.png", "palette.bmp",
                   "animated.png", "multipage.tif", "exif_rotated.jpg", "la.png", "one_bit.png", "png_named.jpg",
                   "jpeg_named.png"):
        assert outcomes[loaded] == "loaded", (loaded, outcomes[loaded])
    for refused in ("zero_bytes.png", "one_byte.png", "truncated_half.png", "truncated_header.png", "truncated.jpg",
                    "text_named.png", "html_named.tif", "animated.gif", "webp_named.png", "float.tif",
                    "zero_width.png"):
        assert outcomes[refused] == "ImageLoadError", (refused, outcomes[refused])
    assert fuzz_case.count == len(nasty_corpus) == fuzz_budget["load_image (corpus)"]


def test_exif_orientation_is_not_applied(nasty_corpus):
    assert load_image(nasty_corpus["exif_rotated.jpg"]).shape == (12, 10, 3)  # as stored, not rotated


def _png_with_size(data: bytes, width: int, height: int) -> bytes:
    """``data`` (a PNG) with its IHDR size replaced and the chunk CRC fixed."""
    body = data[12:16] + struct.pack(">II", width, height) + data[24:29]
    return data[:8] + data[8:12] + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF) + data[33:]


MUTATIONS = st.one_of(
    st.tuples(st.just("truncate"), st.integers(0, 10_000)),
    st.tuples(st.just("flip"), st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), min_size=1,
                                         max_size=6)),
    st.tuples(st.just("size"), st.tuples(st.integers(0, 1 << 31), st.integers(0, 1 << 31))),
    st.tuples(st.just("append"), st.binary(max_size=64)),
)


def test_mutated_image_files_load_or_raise_an_image_load_error(nasty_corpus, tmp_path, fuzz_budget, fuzz_case):
    seeds = {name: path.read_bytes() for name, path in nasty_corpus.items() if not name.startswith("bomb")}
    names = sorted(n for n, d in seeds.items() if len(d) > 8)
    target = tmp_path / "mutant.img"
    budget = fuzz_budget["load_image (mutated files)"]

    @settings(max_examples=budget)
    @given(name=st.sampled_from(names), mutation=MUTATIONS)
    def check(name, mutation):
        data = seeds[name]
        kind, arg = mutation
        if kind == "truncate":
            data = data[: arg % len(data)]
        elif kind == "flip":
            data = bytearray(data)
            for index, value in arg:
                data[index % len(data)] ^= value
            data = bytes(data)
        elif kind == "size" and data.startswith(b"\x89PNG"):
            data = _png_with_size(data, *arg)
        elif kind == "append":
            data = data + arg
        target.write_bytes(data)
        with fuzz_case():
            try:
                _check_loaded(load_image(target, max_pixels=SMALL_LIMIT))
            except ImageTooLargeError as exc:
                assert "limit" in str(exc)
            except ImageLoadError as exc:
                assert str(target) in str(exc)

    check()
    assert fuzz_case.count >= 0.8 * budget
