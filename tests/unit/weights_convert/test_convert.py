"""Checkpoint -> Flax conversion: mapping validation, metadata, the packaged Lite0 cache."""

import hashlib

import numpy as np
import pytest

import weights_convert
from weights_convert import ConversionError, convert_checkpoint, get_mapping, load_variables
from weights_convert.mappings import MAPPING_ARCHS


def _flat(tree, prefix=""):
    out = {}
    for key, value in tree.items():
        path = f"{prefix}/{key}" if prefix else key
        out.update(_flat(value, path) if isinstance(value, dict) else {path: value})
    return out


def test_tiny_resnet_checkpoint_converts_to_exactly_the_flax_variables(tiny_resnet_checkpoint, tmp_path):
    src, flat_expected = tiny_resnet_checkpoint
    variables, metadata = convert_checkpoint(src, arch="tiny_resnet", dst=tmp_path / "out.safetensors")
    got = _flat(variables)
    assert set(got) == set(flat_expected)
    for path, want in flat_expected.items():
        assert got[path].dtype == np.float32
        np.testing.assert_array_equal(got[path], want, err_msg=path)
    assert metadata["arch"] == "tiny_resnet"
    assert metadata["source_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    loaded, loaded_meta = load_variables(tmp_path / "out.safetensors")
    assert loaded_meta == metadata
    assert all(np.array_equal(_flat(loaded)[p], v) for p, v in got.items())


def test_conversion_errors_list_missing_misshaped_and_unmatched_keys_together(tmp_path, ckpt, tiny_resnet_shapes):
    rng = np.random.default_rng(0)
    flat = {p: rng.standard_normal(s).astype(np.float32) for p, s in tiny_resnet_shapes.items()}
    state = ckpt.torch_layout_from_flax(flat)
    del state["layer3.0.bn2.running_var"]
    del state["layer1.0.conv1.weight"]
    state["layer2.0.bn1.weight"] = np.ones(99, np.float32)
    state["head.extra.weight"] = np.ones(3, np.float32)
    src = ckpt.write(tmp_path / "broken.pth", state)
    with pytest.raises(ConversionError) as info:
        convert_checkpoint(src, arch="tiny_resnet", dst=tmp_path / "never.safetensors")
    message = str(info.value)
    assert "batch_stats/layer3_0/bn2/var" in message
    assert "params/layer1_0/conv1/kernel" in message
    assert "layer2.0.bn1.weight -> params/layer2_0/bn1/scale: checkpoint (99,) vs model (16,)" in message
    assert "head.extra.weight" in message
    assert not (tmp_path / "never.safetensors").exists()


def test_checkpoint_of_another_arch_is_a_conversion_error(tiny_resnet_checkpoint):
    src, _ = tiny_resnet_checkpoint
    with pytest.raises(ConversionError, match="resnet18"):
        convert_checkpoint(src, arch="resnet18")


def test_unknown_arch_is_rejected_listing_the_accepted_ones(tiny_resnet_checkpoint):
    src, _ = tiny_resnet_checkpoint
    with pytest.raises(ValueError, match=r"'vgg16'.*efficientnet_lite0.*tiny_resnet"):
        convert_checkpoint(src, arch="vgg16")


@pytest.mark.parametrize("arch", MAPPING_ARCHS)
def test_every_mapping_module_declares_its_own_arch(arch):
    assert get_mapping(arch).arch == arch


def test_get_mapping_of_an_unknown_arch_lists_the_accepted_ones():
    with pytest.raises(ValueError, match=r"accepted: \['efficientnet_lite0'"):
        get_mapping("resnet50")
