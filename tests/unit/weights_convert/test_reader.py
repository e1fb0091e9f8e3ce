"""The torch-free checkpoint reader: formats, layouts, wrappers, and the allow-list."""

import zipfile

import ml_dtypes
import numpy as np
import pytest

from weights_convert import CheckpointFormatError, UnsafeCheckpointError, read_state_dict


def _mixed_state():
    rng = np.random.default_rng(1)
    return {
        "conv.weight": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
        "half": rng.standard_normal((5, 2)).astype(np.float16),
        "bf16": rng.standard_normal(6).astype(ml_dtypes.bfloat16),
        "double": rng.standard_normal(3),
        "bn.num_batches_tracked": np.array(12345678901, dtype=np.int64),
        "mask": np.array([True, False, True]),
        "bytes": np.arange(7, dtype=np.uint8),
        "empty": np.zeros((0, 4), np.float32),
    }


def _assert_same(got, want):
    assert list(got) == list(want)
    for key in want:
        assert got[key].dtype == want[key].dtype, key
        assert got[key].shape == want[key].shape, key
        assert got[key].tobytes() == want[key].tobytes(), key


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
@pytest.mark.parametrize("byteorder", ["little", "big"])
def test_every_dtype_reads_back_bit_exact_in_both_formats_and_byte_orders(tmp_path, ckpt, fmt, byteorder):
    state = _mixed_state()
    path = ckpt.write(tmp_path / "m.pth", state, fmt=fmt, byteorder=byteorder)
    _assert_same(read_state_dict(path), state)


def test_zip_archive_prefix_directory_can_have_any_name(tmp_path, ckpt):
    state = {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}
    path = ckpt.write(tmp_path / "m.pt", state, prefix="resnet18-f37072fd")
    _assert_same(read_state_dict(str(path)), state)


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_non_contiguous_tensor_with_offset_and_strides_is_gathered(tmp_path, ckpt, fmt):
    storage = np.arange(40, dtype=np.float32)
    # A transposed 3x4 view starting at element 5 of a row-major (4, 8) buffer: shape (3, 4), strides (1, 8).
    view = ckpt.RawTensor(storage, offset=5, shape=(3, 4), strides=(1, 8))
    path = ckpt.write(tmp_path / "v.pth", {"t": view}, fmt=fmt)
    got = read_state_dict(path)["t"]
    want = storage.reshape(5, 8)[:4, 5:8].T  # element [i, j] = 5 + i + 8 j
    np.testing.assert_array_equal(got, want)
    assert got.flags.c_contiguous


def test_tensors_sharing_one_storage_each_get_their_own_values(tmp_path, ckpt):
    storage = np.arange(12, dtype=np.float32)
    a = ckpt.RawTensor(storage, 0, (2, 3), (3, 1), storage_key="shared")
    b = ckpt.RawTensor(storage, 6, (6,), (1,), storage_key="shared")
    got = read_state_dict(ckpt.write(tmp_path / "s.pth", {"a": a, "b": b}))
    np.testing.assert_array_equal(got["a"], [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(got["b"], [6, 7, 8, 9, 10, 11])


def test_parameters_are_read_as_their_tensors(tmp_path, ckpt):
    weight = np.ones((2, 2), np.float32)
    param = ckpt.raw_from_array(weight, parameter=True)
    got = read_state_dict(ckpt.write(tmp_path / "p.pth", {"w": param}))
    np.testing.assert_array_equal(got["w"], weight)


@pytest.mark.parametrize("wrapper", ["state_dict", "model"])
def test_state_dict_nested_under_a_training_wrapper_is_unwrapped(tmp_path, ckpt, wrapper):
    state = {"w": np.arange(3, dtype=np.float32)}
    checkpoint = {"epoch": 90, "best_acc1": 7, wrapper: state, "optimizer": {"lr": None}}
    _assert_same(read_state_dict(ckpt.write(tmp_path / "c.pth", checkpoint)), state)


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
@pytest.mark.parametrize("module, name", [("os", "system"), ("posix", "system"), ("builtins", "eval")])
def test_checkpoint_calling_a_dangerous_global_is_refused_and_never_executed(tmp_path, ckpt, fmt, module, name):
    marker = tmp_path / "pwned"
    command = f"touch {marker}" if name == "system" else f"open({str(marker)!r}, 'w')"
    payload = {"w": np.zeros(2, np.float32), "evil": ckpt.malicious_call(module, name, command)}
    path = ckpt.write(tmp_path / "evil.pth", payload, fmt=fmt)
    with pytest.raises(UnsafeCheckpointError, match=rf"{module}\.{name}") as info:
        read_state_dict(path)
    assert str(path) in str(info.value)
    assert not marker.exists()


def test_a_pickled_whole_module_is_refused_naming_its_class(tmp_path, ckpt):
    # torch.save(model) (not model.state_dict()) pickles the nn.Module class itself.
    payload = ckpt.Raw(b"ctorch.nn.modules.conv\nConv2d\n)\x81")
    with pytest.raises(UnsafeCheckpointError, match=r"torch\.nn\.modules\.conv\.Conv2d"):
        read_state_dict(ckpt.write(tmp_path / "m.pth", payload))


def test_random_bytes_are_a_format_error_naming_the_file(tmp_path):
    path = tmp_path / "noise.pth"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 1000, dtype=np.uint8).tobytes())
    with pytest.raises(CheckpointFormatError, match="noise.pth"):
        read_state_dict(path)


def test_a_plain_pickle_without_the_legacy_magic_is_a_format_error(tmp_path):
    import pickle

    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps({"w": [1.0, 2.0]}, protocol=2))
    with pytest.raises(CheckpointFormatError, match="magic"):
        read_state_dict(path)


def test_truncated_legacy_checkpoint_is_a_format_error(tmp_path, ckpt):
    path = ckpt.write(tmp_path / "t.pth", {"w": np.zeros(100, np.float32)}, fmt="legacy")
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CheckpointFormatError, match="truncated"):
        read_state_dict(path)


def test_zip_without_a_storage_record_is_a_format_error(tmp_path, ckpt):
    good = ckpt.write(tmp_path / "good.pth", {"w": np.zeros(3, np.float32)})
    bad = tmp_path / "bad.pth"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for name in src.namelist():
            if not name.endswith("data/0"):
                dst.writestr(name, src.read(name))
    with pytest.raises(CheckpointFormatError, match=r"archive/data/0"):
        read_state_dict(bad)


def test_zip_that_is_not_a_checkpoint_is_a_format_error(tmp_path):
    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(CheckpointFormatError, match="data.pkl"):
        read_state_dict(path)


def test_strides_reaching_past_the_storage_are_rejected_not_read(tmp_path, ckpt):
    lying = ckpt.RawTensor(np.zeros(4, np.float32), offset=0, shape=(4, 4), strides=(4, 1))
    with pytest.raises(CheckpointFormatError, match="reaches element 15"):
        read_state_dict(ckpt.write(tmp_path / "l.pth", {"w": lying}))


def test_state_dict_with_non_tensor_entries_is_a_format_error_listing_them(tmp_path, ckpt):
    path = ckpt.write(tmp_path / "n.pth", {"w": np.zeros(2, np.float32), "step": 3})
    with pytest.raises(CheckpointFormatError, match="'step'"):
        read_state_dict(path)


def test_checkpoint_without_any_tensor_is_a_format_error(tmp_path, ckpt):
    with pytest.raises(CheckpointFormatError, match="no state_dict found"):
        read_state_dict(ckpt.write(tmp_path / "e.pth", {"epoch": 3}))


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        read_state_dict(tmp_path / "nope.pth")


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_corrupted_bytes_only_ever_raise_the_reader_errors(tmp_path, ckpt, fmt, fuzz_budget):
    from hypothesis import given, settings
    from hypothesis import strategies as st

    state = {"a": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.ones(3, np.float16)}
    good = ckpt.write(tmp_path / "good.pth", state, fmt=fmt)
    if fmt == "zip":
        with zipfile.ZipFile(good) as zf:
            members = {name: zf.read(name) for name in zf.namelist()}
        target = "archive/data.pkl"
        original = members[target]
    else:
        original = good.read_bytes()
    bad = tmp_path / "bad.pth"

    @settings(max_examples=fuzz_budget["read_state_dict (corrupted bytes)"] // 2)  # per format
    @given(st.lists(st.tuples(st.integers(0, len(original) - 1), st.integers(0, 255)), min_size=1, max_size=4))
    def check(edits):
        data = bytearray(original)
        for index, value in edits:
            data[index] = value
        if fmt == "zip":
            with zipfile.ZipFile(bad, "w") as zf:
                for name, content in members.items():
                    zf.writestr(name, bytes(data) if name == target else content)
        else:
            bad.write_bytes(bytes(data))
        try:
            result = read_state_dict(bad)
        except (CheckpointFormatError, UnsafeCheckpointError):
            return
        assert all(isinstance(v, np.ndarray) for v in result.values())

    check()
