"""``pyimgano-convert-weights`` in-process through ``main(argv)``."""

import numpy as np
import pytest

from weights_convert import load_variables
from weights_convert.cli import main
from weights_convert.mappings import MAPPING_ARCHS


def test_converting_a_checkpoint_writes_the_file_and_prints_a_summary(tiny_resnet_checkpoint, tmp_path, capsys):
    src, flat_expected = tiny_resnet_checkpoint
    dst = tmp_path / "out" / "tiny.safetensors"
    assert main([str(src), "--arch", "tiny_resnet", "-o", str(dst)]) == 0
    out = capsys.readouterr().out
    assert f"{len(flat_expected)} tensors" in out and str(dst) in out
    variables, metadata = load_variables(dst)
    assert metadata["arch"] == "tiny_resnet"
    np.testing.assert_array_equal(variables["params"]["conv1"]["kernel"], flat_expected["params/conv1/kernel"])


def test_list_archs_prints_every_supported_arch(capsys):
    assert main(["--list-archs"]) == 0
    assert capsys.readouterr().out.split() == list(MAPPING_ARCHS)


def test_malicious_checkpoint_exits_2_with_one_line_naming_the_global(tmp_path, ckpt, capsys):
    marker = tmp_path / "pwned"
    src = ckpt.write(tmp_path / "evil.pth", {"x": ckpt.malicious_call("os", "system", f"touch {marker}")})
    assert main([str(src), "--arch", "tiny_resnet", "-o", str(tmp_path / "o.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "UnsafeCheckpointError" in err and "os.system" in err
    assert err.count("\n") == 1
    assert not marker.exists() and not (tmp_path / "o.safetensors").exists()


def test_conversion_error_is_reported_on_one_line(tmp_path, ckpt, capsys):
    src = ckpt.write(tmp_path / "wrong.pth", {"stranger.weight": np.ones(2, np.float32)})
    assert main([str(src), "--arch", "tiny_resnet", "-o", str(tmp_path / "o.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "ConversionError" in err and "stranger.weight" in err and "params/conv1/kernel" in err
    assert err.count("\n") == 1


def test_missing_source_file_exits_2(tmp_path, capsys):
    assert main([str(tmp_path / "none.pth"), "--arch", "tiny_resnet", "-o", str(tmp_path / "o")]) == 2
    assert "none.pth" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["x.pth", "--arch", "tiny_resnet"], ["--arch", "tiny_resnet", "-o", "o"]])
def test_missing_required_arguments_exit_2(argv, capsys):
    assert main(argv) == 2
    assert "missing" in capsys.readouterr().err


def test_unknown_arch_exits_2_listing_the_choices(capsys):
    assert main(["x.pth", "--arch", "vgg16", "-o", "o"]) == 2
    assert "tiny_resnet" in capsys.readouterr().err
