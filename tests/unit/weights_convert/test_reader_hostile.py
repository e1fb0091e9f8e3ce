"""Crafted checkpoints: the reader neither runs, hangs, inflates, nor lets a pickle change it."""

import struct
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weights_convert import CheckpointFormatError, UnsafeCheckpointError, read_state_dict
from weights_convert.allow_list import ALLOWED_GLOBALS

READER_ERRORS = (CheckpointFormatError, UnsafeCheckpointError)


def _zip(path, data_pkl: bytes, members=None, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        zf.writestr("archive/data.pkl", data_pkl)
        for name, data in (members or {}).items():
            zf.writestr(f"archive/{name}", data)
    return path


def _str(text: str) -> bytes:
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


@pytest.mark.parametrize(
    "target",
    [b"ctorch\nFloatStorage\n", b"ctorch._utils\n_rebuild_tensor_v2\n", b"c_codecs\nencode\n", b"ctorch\nfloat32\n"],
)
def test_a_pickle_cannot_modify_the_allow_listed_objects(tmp_path, ckpt, target):
    # BUILD with slot state sets attributes on the object below it: dtype, __defaults__, ...
    attack = b"\x80\x02" + target + b"N}(" + _str("dtype") + _str("int8") + _str("__defaults__") + b"N" \
        + b"u\x86b."
    with pytest.raises(CheckpointFormatError, match="modify the allow-listed"):
        read_state_dict(_zip(tmp_path / "attack.pth", attack))
    assert ALLOWED_GLOBALS[("torch", "FloatStorage")].dtype == np.float32
    values = np.arange(6, dtype=np.float32).reshape(2, 3)
    good = ckpt.write(tmp_path / "good.pth", {"w": values})
    np.testing.assert_array_equal(read_state_dict(good)["w"], values)


def test_a_shared_list_nested_sixty_deep_is_read_in_linear_time(tmp_path):
    # [x, x] with x = [y, y], ... 60 levels: 2**60 paths if each reference were copied.
    ops = bytearray(b"\x80\x02")
    ops += b"](" + _str("leaf") + b"e"  # the innermost list
    for _ in range(60):
        ops += b"q\x00" + b"(h\x00h\x00l"  # memoize the top, build [top, top]
    ops += b"."
    with pytest.raises(CheckpointFormatError, match="no state_dict found"):
        read_state_dict(_zip(tmp_path / "dag.pth", bytes(ops)))


def test_a_list_that_contains_itself_is_refused(tmp_path):
    cycle = b"\x80\x02]q\x00h\x00a."  # x = []; x.append(x)
    with pytest.raises(CheckpointFormatError, match="contains itself"):
        read_state_dict(_zip(tmp_path / "cycle.pth", cycle))


def test_deep_nesting_is_a_format_error_not_a_crash(tmp_path):
    deep = b"\x80\x02" + b"]" * 200_000 + b"a" * 199_999 + b"."
    with pytest.raises(CheckpointFormatError):
        read_state_dict(_zip(tmp_path / "deep.pth", deep))


def test_a_zip_member_that_would_inflate_a_thousandfold_is_refused(tmp_path, ckpt):
    values = np.zeros((4,), np.float32)
    good = ckpt.write(tmp_path / "good.pth", {"w": values})
    with zipfile.ZipFile(good) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    bomb = tmp_path / "bomb.pth"
    with zipfile.ZipFile(bomb, "w") as zf:
        for name, data in members.items():
            if name != "archive/data/0":
                zf.writestr(name, data, compress_type=zipfile.ZIP_STORED)
        zf.writestr("archive/data/0", b"\x00" * (64 << 20), compress_type=zipfile.ZIP_DEFLATED)
    with pytest.raises(CheckpointFormatError, match="would expand"):
        read_state_dict(bomb)


def test_a_legacy_storage_claiming_more_bytes_than_the_file_has_is_refused(tmp_path, ckpt):
    good = ckpt.write(tmp_path / "legacy.pth", {"w": np.ones(3, np.float32)}, fmt="legacy").read_bytes()
    at = good.rindex(struct.pack("<q", 3))
    lying = good[:at] + struct.pack("<q", 1 << 50) + good[at + 8 :]
    path = tmp_path / "lying.pth"
    path.write_bytes(lying)
    with pytest.raises(CheckpointFormatError, match="truncated"):
        read_state_dict(path)


# Crafted pickles: random sequences of opcodes a checkpoint could hold, including every
# allow-listed global, foreign globals, persistent ids, BUILD, REDUCE, memo and huge counts.
_GLOBALS = [k for k in ALLOWED_GLOBALS] + [("os", "system"), ("builtins", "eval"), ("numpy", "load"),
                                           ("subprocess", "Popen"), ("torch", "load")]
_FRAGMENTS = st.one_of(
    st.sampled_from(_GLOBALS).map(lambda g: b"c" + g[0].encode() + b"\n" + g[1].encode() + b"\n"),
    st.sampled_from([b"(", b")", b"t", b"l", b"}", b"]", b"N", b"\x88", b"\x89", b"R", b"b", b"Q", b"u", b"a",
                     b"e", b"s", b"\x85", b"\x86", b"\x87", b"0", b"2", b"q\x00", b"h\x00", b"q\x01", b"h\x01"]),
    st.integers(-(2**40), 2**40).map(lambda v: b"\x8a\x08" + v.to_bytes(8, "little", signed=True)),
    st.sampled_from(["storage", "cpu", "0", "w", "latin1", "dtype"]).map(_str),
    st.binary(max_size=12),
)


def test_crafted_pickles_only_ever_raise_the_reader_errors(tmp_path, ckpt, fuzz_budget, fuzz_case):
    values = np.arange(4, dtype=np.float32)
    storage = values.tobytes()
    path = tmp_path / "crafted.pth"
    budget = fuzz_budget["read_state_dict (crafted pickles)"]

    @settings(max_examples=budget)
    @given(st.lists(_FRAGMENTS, min_size=1, max_size=40))
    def check(fragments):
        _zip(path, b"\x80\x02" + b"".join(fragments) + b".", {"data/0": storage, "byteorder": b"little"})
        with fuzz_case():
            try:
                result = read_state_dict(path)
            except READER_ERRORS:
                return
            assert all(isinstance(v, np.ndarray) for v in result.values())

    check()
    assert fuzz_case.count >= 0.8 * budget
    # and the allow-list survived every one of them
    assert ALLOWED_GLOBALS[("torch", "FloatStorage")].dtype == np.float32
    np.testing.assert_array_equal(read_state_dict(ckpt.write(tmp_path / "ok.pth", {"w": values}))["w"], values)
