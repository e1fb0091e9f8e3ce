"""Live parity against PyTorch references (skipped when torch is not installed).

- EfficientNet-Lite0, Lite1 and Lite2 with the real packaged weights vs
  ``efficientnet_lite_pytorch`` (dynamic TF-SAME padding), including sizes that
  are not multiples of 32; their block tables vs the reference builder's.
- DINOv2 ViT-S/14 with random weights vs the hub forward transcribed in
  ``torch_references.DinoV2Reference``, at sizes that resample the position grid.
- The numpy bicubic weights vs ``torch.nn.functional.interpolate`` itself.
- The torch-free ``weights_convert.read_state_dict`` vs ``torch.load`` on the packaged Lite0 ``.pth``.

The torchvision ResNets are checked through the committed goldens only:
torchvision cannot be installed beside this test venv's torch.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed; test_backbone_goldens.py covers parity")


@pytest.fixture(scope="module")
def lite0_torch_state_dict(lite0_checkpoint_path):
    return torch.load(lite0_checkpoint_path, map_location="cpu", weights_only=True)


def test_torch_free_reader_returns_the_packaged_lite0_state_dict_exactly(lite0_checkpoint_path, lite0_torch_state_dict):
    from weights_convert import read_state_dict

    ours = read_state_dict(lite0_checkpoint_path)
    assert sorted(ours) == sorted(lite0_torch_state_dict)
    for key, tensor in lite0_torch_state_dict.items():
        np.testing.assert_array_equal(np.asarray(ours[key]), tensor.numpy(), err_msg=key)


@pytest.mark.parametrize("height, width", [(96, 128), (75, 53)])
def test_lite0_matches_reference_pytorch_model_at_every_tap(
    height, width, torch_refs, lite0_torch_state_dict, lite0_packaged_variables, run_backbone, assert_taps_close
):
    pytest.importorskip("efficientnet_lite_pytorch", reason="the reference Lite0 package is not installed")
    model = torch_refs.lite0_reference(lite0_torch_state_dict)
    rng = np.random.default_rng(height * width)
    image = rng.uniform(0.0, 1.0, (2, height, width, 3)).astype(np.float32)
    x = (image * 255.0 - 127.0) / 128.0
    ours = run_backbone("efficientnet_lite0", lite0_packaged_variables, x)
    assert_taps_close(ours, torch_refs.lite0_taps(model, x), tol=1e-4)


@pytest.mark.parametrize("arch", ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
def test_lite_block_groups_and_input_size_are_the_reference_builders(arch, torch_refs):
    pytest.importorskip("efficientnet_lite_pytorch", reason="the reference Lite package is not installed")
    from efficientnet_lite_pytorch import EfficientNet

    from models_jax.backbones import get_backbone_spec
    from models_jax.backbones.efficientnet_lite import LITE_VARIANTS

    model = EfficientNet.from_name(arch.replace("_", "-"), image_size=None)
    groups, start = [], 0
    for end in torch_refs.lite_group_ends(model):
        first = model._blocks[start]._block_args
        stride = first.stride if isinstance(first.stride, int) else first.stride[0]
        groups.append((end - start, first.kernel_size, stride, first.expand_ratio, first.input_filters, first.output_filters))
        start = end
    assert tuple(groups) == LITE_VARIANTS[arch][0]
    assert model._conv_stem.out_channels == 32 and model._conv_head.out_channels == 1280
    assert get_backbone_spec(arch).default_input_size == EfficientNet.get_image_size(arch.replace("_", "-"))


@pytest.mark.parametrize("arch", ["efficientnet_lite1", "efficientnet_lite2"])
@pytest.mark.parametrize("height, width", [(96, 128), (75, 53), (None, None)])  # None: the native 240 / 260
def test_scaled_lite_matches_reference_pytorch_model_at_every_tap(
    arch, height, width, torch_refs, lite_checkpoint_path, lite_packaged_variables, run_backbone, assert_taps_close
):
    pytest.importorskip("efficientnet_lite_pytorch", reason="the reference Lite package is not installed")
    from models_jax.backbones import get_backbone_spec

    if height is None:
        height = width = get_backbone_spec(arch).default_input_size
    model = torch_refs.lite_reference(torch.load(lite_checkpoint_path(arch), map_location="cpu", weights_only=True), arch)
    rng = np.random.default_rng(height * width + 1)
    image = rng.uniform(0.0, 1.0, (2, height, width, 3)).astype(np.float32)
    x = (image * 255.0 - 127.0) / 128.0
    errors = assert_taps_close(run_backbone(arch, lite_packaged_variables(arch), x), torch_refs.lite_taps(model, x), tol=1e-4)
    print(f"{arch} {height}x{width} max abs error per tap: " + ", ".join(f"{t} {e:.2e}" for t, e in errors.items()))


@pytest.mark.parametrize("height, width", [(56, 70), (518, 42), (224, 224)])
def test_dinov2_matches_hub_forward_at_every_tap(height, width, support, torch_refs, to_flax, run_backbone, assert_taps_close):
    state_dict = support.random_torch_state_dict("dinov2_vits14", seed=3)
    reference = torch_refs.DinoV2Reference()
    torch_refs.load_numpy_state_dict(reference, state_dict)
    x = np.random.default_rng(5).standard_normal((1, height, width, 3)).astype(np.float32)
    variables = to_flax("dinov2_vits14", state_dict)
    assert_taps_close(run_backbone("dinov2_vits14", variables, x), reference.taps(x), tol=1e-4)


@pytest.mark.parametrize(
    "out_rows, out_cols, offset",
    [(4, 5, 0.1), (16, 16, 0.1), (37, 3, 0.1), (64, 50, 0.1), (4, 5, 0.0), (80, 9, 0.0)],
)
def test_numpy_bicubic_weights_reproduce_torch_interpolate(out_rows, out_cols, offset):
    import torch.nn.functional as F

    from models_jax.backbones.vit import torch_bicubic_matrix

    grid = np.random.default_rng(0).standard_normal((37, 37, 8)).astype(np.float32)
    source = torch.from_numpy(grid).permute(2, 0, 1)[None]
    if offset:
        sr, sc = (out_rows + offset) / 37, (out_cols + offset) / 37
        expected = F.interpolate(source, scale_factor=(sr, sc), mode="bicubic", antialias=False)
        w_rows, w_cols = torch_bicubic_matrix(37, out_rows, sr), torch_bicubic_matrix(37, out_cols, sc)
    else:
        expected = F.interpolate(source, size=(out_rows, out_cols), mode="bicubic", antialias=False)
        w_rows, w_cols = torch_bicubic_matrix(37, out_rows), torch_bicubic_matrix(37, out_cols)
    expected = expected[0].permute(1, 2, 0).numpy()
    ours = np.einsum("pi,ijd,qj->pqd", w_rows.astype(np.float64), grid, w_cols.astype(np.float64))
    assert ours.shape == expected.shape
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-5)
