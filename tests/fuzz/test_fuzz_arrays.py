"""Fuzz the array normaliser and the batch iterator: any shape, dtype, NaN/inf -> a frame or a ValueError/TypeError."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pyimgano.inputs import IMAGE_FORMATS, canonical_batches, normalize_numpy_image

DTYPES = st.sampled_from([np.uint8, np.uint16, np.float32, np.float64, np.int32, np.int8, np.bool_, np.float16,
                          np.complex64, ">u2", "<f4", ">f4"])
SHAPES = hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=6)
FORMATS = st.sampled_from(IMAGE_FORMATS)


def _arrays():
    return st.tuples(DTYPES, SHAPES).flatmap(
        lambda ds: hnp.arrays(ds[0], ds[1], elements=None if np.dtype(ds[0]).kind not in "fc"
                              else st.sampled_from([0.0, 0.5, 1.0, -0.1, 1.5, np.nan, np.inf, -np.inf, 6e4])))


def _check_frames(out, array):
    assert out.dtype == np.uint8 and out.shape[-1] == 3 and out.ndim in (3, 4) and out.flags.c_contiguous
    assert out.size > 0


def test_normalize_numpy_image_gives_a_canonical_frame_or_a_clear_error(fuzz_budget, fuzz_case):
    @settings(max_examples=fuzz_budget["normalize_numpy_image"])
    @given(array=_arrays(), fmt=FORMATS, u16_max=st.one_of(st.none(), st.integers(-5, 70000)))
    def check(array, fmt, u16_max):
        with fuzz_case():
            try:
                out = normalize_numpy_image(array, input_format=fmt, u16_max=u16_max)
            except (ValueError, TypeError) as exc:
                assert fmt.name in str(exc) or "u16_max" in str(exc)
                return
            _check_frames(out, array)
            if fmt.dtype == "f32":
                assert np.isfinite(array).all() and array.min() >= 0 and array.max() <= 1

    check()
    assert fuzz_case.count >= 0.8 * fuzz_budget["normalize_numpy_image"]


def test_canonical_batches_yields_whole_frames_or_a_clear_error(fuzz_budget, fuzz_case):
    @settings(max_examples=fuzz_budget["canonical_batches"])
    @given(array=_arrays(), fmt=FORMATS, batch_size=st.integers(1, 4), as_list=st.booleans())
    def check(array, fmt, batch_size, as_list):
        with fuzz_case():
            source = list(array) if as_list and array.ndim > 0 else array
            try:
                batches = list(canonical_batches(source, input_format=fmt, batch_size=batch_size))
            except (ValueError, TypeError) as exc:
                assert fmt.name in str(exc) or "sequence" in str(exc) or "mixed" in str(exc)
                return
            frames = [f for b in batches for f in b]
            for frame in frames:
                _check_frames(frame, array)
            assert frames or (as_list and len(source) == 0)

    check()
    assert fuzz_case.count >= 0.8 * fuzz_budget["canonical_batches"]
