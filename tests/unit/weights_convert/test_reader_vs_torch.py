"""``read_state_dict`` against real ``torch.save`` output (runs only where torch is installed)."""

import numpy as np
import pytest

from weights_convert import UnsafeCheckpointError, read_state_dict

torch = pytest.importorskip("torch", reason="torch is not installed; the torch-free writer tests cover the format")


def _as_numpy(tensor):
    if tensor.dtype == torch.bfloat16:
        import ml_dtypes

        return tensor.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return tensor.numpy()


def _state():
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(6, 8, generator=gen)
    conv = torch.nn.Conv2d(3, 4, 3)
    bn = torch.nn.BatchNorm2d(4)
    state = {
        "dense": torch.randn(5, 3, generator=gen),
        "transposed": base.t(),  # non-contiguous: strides (1, 8)
        "sliced": base[1:5, 2:7:2],  # storage offset + step
        "expanded": torch.arange(3.0).unsqueeze(0).expand(4, 3),  # stride 0
        "half": torch.randn(4, 4, generator=gen).half()[:, 1],
        "bf16": torch.randn(7, generator=gen).bfloat16(),
        "long": torch.tensor([1, -2, 3_000_000_000]),
        "flags": torch.tensor([True, False]),
        "scalar": torch.tensor(3.5),
    }
    state.update({f"conv.{k}": v for k, v in conv.state_dict().items()})
    state.update({f"bn.{k}": v for k, v in bn.state_dict().items()})
    return state


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_reader_matches_torch_load_for_torch_save_output(tmp_path, zip_format):
    state = _state()
    path = tmp_path / "ckpt.pth"
    torch.save(state, path, _use_new_zipfile_serialization=zip_format)
    got = read_state_dict(path)
    assert list(got) == list(state)
    for key, tensor in state.items():
        want = _as_numpy(tensor.contiguous())
        assert got[key].dtype == want.dtype, key
        assert got[key].shape == want.shape, key
        assert got[key].tobytes() == want.tobytes(), key


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_module_state_dict_with_parameters_and_metadata_reads_like_torch(tmp_path, zip_format):
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.Linear(4, 2))
    path = tmp_path / "model.pth"
    torch.save({"epoch": 3, "state_dict": model.state_dict()}, path, _use_new_zipfile_serialization=zip_format)
    got = read_state_dict(path)
    want = model.state_dict()
    assert list(got) == list(want)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key].numpy())


def test_parameters_saved_directly_read_as_arrays(tmp_path):
    layer = torch.nn.Linear(3, 2)
    path = tmp_path / "params.pth"
    torch.save(dict(layer.named_parameters()), path)
    got = read_state_dict(path)
    np.testing.assert_array_equal(got["weight"], layer.weight.detach().numpy())


def test_a_whole_pickled_module_is_refused(tmp_path):
    path = tmp_path / "module.pth"
    torch.save(torch.nn.Linear(2, 2), path)
    with pytest.raises(UnsafeCheckpointError, match=r"torch\.nn\.modules\.linear\.Linear"):
        read_state_dict(path)


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_dtypes_without_a_legacy_storage_class_read_through_rebuild_tensor_v3(tmp_path, zip_format):
    import ml_dtypes

    path = tmp_path / "v3.pth"
    u16 = torch.tensor([1, 2, 3, 4, 65535], dtype=torch.uint16)[1:]
    f8 = torch.tensor([0.5, 1.0, -2.0]).to(torch.float8_e4m3fn)
    torch.save({"u16": u16, "f8": f8}, path, _use_new_zipfile_serialization=zip_format)
    got = read_state_dict(path)
    np.testing.assert_array_equal(got["u16"], np.array([2, 3, 4, 65535], np.uint16))
    assert got["f8"].dtype == np.dtype(ml_dtypes.float8_e4m3fn)
    np.testing.assert_array_equal(got["f8"].astype(np.float32), [0.5, 1.0, -2.0])
