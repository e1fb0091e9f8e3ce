"""Converted-weights files: safetensors round trip, metadata, atomic writes."""

import numpy as np
import pytest
import safetensors.numpy

from weights_convert import load_variables, save_variables

_META = {"arch": "tiny_resnet", "source_sha256": "ab" * 32, "converter_version": "1"}


def _variables():
    rng = np.random.default_rng(3)
    return {
        "params": {"conv1": {"kernel": rng.standard_normal((3, 3, 3, 8)).astype(np.float32)},
                   "layer1_0": {"bn1": {"scale": rng.standard_normal(8).astype(np.float32)}},
                   "cls_token": rng.standard_normal((1, 1, 4)).astype(np.float32)},
        "batch_stats": {"bn1": {"mean": np.full(8, np.nan, np.float32), "var": np.array(2.0, np.float32)}},
    }


def test_save_then_load_keeps_every_array_bit_exact_and_the_metadata(tmp_path):
    variables = _variables()
    written = save_variables(tmp_path / "w.safetensors", variables, {**_META, "note": "x"})
    loaded, metadata = load_variables(written)
    assert metadata == {**_META, "note": "x", "format": "pyimgano-weights"}
    assert set(loaded) == {"params", "batch_stats"}
    for collection in variables:
        for path_in, leaf in _walk(variables[collection]):
            got = _get(loaded[collection], path_in)
            assert got.dtype == leaf.dtype and got.shape == leaf.shape, path_in
            assert got.tobytes() == leaf.tobytes(), path_in


def _walk(tree, prefix=()):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _walk(value, prefix + (key,))
        else:
            yield prefix + (key,), value


def _get(tree, path):
    for key in path:
        tree = tree[key]
    return tree


def test_file_stores_slash_joined_flax_paths(tmp_path):
    path = save_variables(tmp_path / "w.safetensors", _variables(), _META)
    names = set(safetensors.numpy.load_file(str(path)))
    assert "params/layer1_0/bn1/scale" in names and "batch_stats/bn1/var" in names


def test_overwrite_leaves_no_temporary_files_behind(tmp_path):
    target = tmp_path / "sub" / "w.safetensors"
    save_variables(target, _variables(), _META)
    save_variables(target, {"params": {"a": np.ones(2, np.float32)}}, _META)
    assert sorted(p.name for p in target.parent.iterdir()) == ["w.safetensors"]
    loaded, _ = load_variables(target)
    np.testing.assert_array_equal(loaded["params"]["a"], [1.0, 1.0])


@pytest.mark.parametrize(
    "metadata, message",
    [
        ({**_META, "epoch": 3}, "'epoch'"),
        ({"arch": "x"}, "source_sha256"),
        ({**_META, "format": "other"}, "pyimgano-weights"),
    ],
)
def test_bad_metadata_is_rejected_before_writing(tmp_path, metadata, message):
    with pytest.raises(ValueError, match=message):
        save_variables(tmp_path / "w.safetensors", _variables(), metadata)
    assert not (tmp_path / "w.safetensors").exists()


def test_loading_a_foreign_safetensors_file_is_rejected(tmp_path):
    path = tmp_path / "foreign.safetensors"
    safetensors.numpy.save_file({"w": np.zeros(2, np.float32)}, str(path))
    with pytest.raises(ValueError, match="not a pyimgano weights file"):
        load_variables(path)


def test_loading_garbage_is_a_value_error_naming_the_file(tmp_path):
    path = tmp_path / "junk.safetensors"
    path.write_bytes(b"\x00" * 3)
    with pytest.raises(ValueError, match="junk.safetensors"):
        load_variables(path)


def test_loading_a_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent"):
        load_variables(tmp_path / "absent.safetensors")
