"""Checkpoint -> Flax conversion: mapping validation, metadata, the packaged Lite0 cache."""

import hashlib

import numpy as np
import pytest

import weights_convert
from weights_convert import ConversionError, cache_dir, convert_checkpoint, get_mapping, load_variables
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


def test_cache_dir_prefers_pyimgano_home_then_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("PYIMGANO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "home" / "weights"
    monkeypatch.delenv("PYIMGANO_HOME")
    assert cache_dir() == tmp_path / "xdg" / "pyimgano" / "weights"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert cache_dir() == tmp_path / "user" / ".cache" / "pyimgano" / "weights"


@pytest.mark.parametrize("arch, message", [("resnet18", "pyimgano-convert-weights"), ("vgg16", "known archs")])
def test_pretrained_variables_without_packaged_weights_explains_how_to_convert(arch, message):
    with pytest.raises(ValueError, match=message):
        weights_convert.pretrained_variables(arch)


def test_packaged_lite0_converts_once_into_the_cache_then_loads_from_it(monkeypatch, tmp_path, lite0_path):
    import weights_convert.convert as convert_module

    monkeypatch.setenv("PYIMGANO_HOME", str(tmp_path))
    first = weights_convert.pretrained_variables("efficientnet_lite0")
    cached = list((tmp_path / "weights").iterdir())
    sha = hashlib.sha256(lite0_path.read_bytes()).hexdigest()
    assert [p.name for p in cached] == [f"efficientnet_lite0-{sha[:16]}-v1.safetensors"]
    assert load_variables(cached[0])[1]["source_sha256"] == sha

    def no_conversion(*args, **kwargs):
        raise AssertionError("the cached file should have been used")

    monkeypatch.setattr(convert_module, "convert_checkpoint", no_conversion)
    second = weights_convert.pretrained_variables("efficientnet_lite0")
    flat_first, flat_second = _flat(first), _flat(second)
    assert set(flat_first) == set(flat_second) and len(flat_first) > 200
    assert all(np.array_equal(flat_first[p], flat_second[p]) for p in flat_first)
    # A known weight of the packaged file: the stem conv's first output filter, torch OIHW -> HWIO.
    from weights_convert import read_state_dict

    stem = read_state_dict(lite0_path)["_conv_stem.weight"]
    np.testing.assert_array_equal(first["params"]["conv_stem"]["kernel"], stem.transpose(2, 3, 1, 0))


def test_a_corrupt_cache_file_is_converted_again(monkeypatch, tmp_path, lite0_path):
    monkeypatch.setenv("PYIMGANO_HOME", str(tmp_path))
    weights_convert.pretrained_variables("efficientnet_lite0")
    (cached,) = (tmp_path / "weights").iterdir()
    cached.write_bytes(b"garbage")
    variables = weights_convert.pretrained_variables("efficientnet_lite0")
    assert variables["params"]["conv_stem"]["kernel"].shape == (3, 3, 3, 32)
    assert load_variables(cached)[1]["arch"] == "efficientnet_lite0"


def test_load_backbone_pretrained_lite0_uses_the_converted_weights(monkeypatch, tmp_path):
    from models_jax.backbones import load_backbone

    monkeypatch.setenv("PYIMGANO_HOME", str(tmp_path))
    _module, variables = load_backbone("efficientnet_lite0", pretrained=True)
    expected = weights_convert.pretrained_variables("efficientnet_lite0")
    np.testing.assert_array_equal(
        np.asarray(variables["batch_stats"]["bn0"]["var"]), expected["batch_stats"]["bn0"]["var"]
    )


def test_load_backbone_reads_a_converted_file_and_checks_its_arch(tiny_resnet_checkpoint, tmp_path):
    from models_jax.backbones import load_backbone

    src, flat_expected = tiny_resnet_checkpoint
    dst = tmp_path / "tiny.safetensors"
    convert_checkpoint(src, arch="tiny_resnet", dst=dst)
    _module, variables = load_backbone("tiny_resnet", pretrained=False, weights_path=str(dst))
    np.testing.assert_array_equal(
        np.asarray(variables["params"]["conv1"]["kernel"]), flat_expected["params/conv1/kernel"]
    )
    with pytest.raises(ValueError, match="holds arch 'tiny_resnet'"):
        load_backbone("resnet18", pretrained=False, weights_path=str(dst))
