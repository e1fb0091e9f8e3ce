"""Registry, specs and variable shapes of the Flax backbones (traced with eval_shape, never run)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models_jax.backbones import (
    backbone_variable_shapes,
    build_backbone,
    get_backbone_spec,
    list_backbones,
)

ALL = (
    "efficientnet_lite0",
    "efficientnet_lite1",
    "efficientnet_lite2",
    "resnet18",
    "wide_resnet50_2",
    "dinov2_vits14",
    "tiny_resnet",
)
LITES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")


def test_every_backbone_of_the_contract_is_registered():
    assert set(list_backbones()) == set(ALL)


def test_unknown_backbone_name_is_rejected_with_the_accepted_names():
    with pytest.raises(ValueError, match="resnet50.*accepted.*efficientnet_lite0"):
        get_backbone_spec("resnet50")
    with pytest.raises(ValueError, match="accepted"):
        build_backbone("resnet50")


@pytest.mark.parametrize(
    "name, params",
    [
        # torchvision / reference parameter counts without the classifier (Lite0 keeps its fc).
        ("efficientnet_lite0", 4_652_008),
        ("efficientnet_lite1", 5_416_680),
        ("efficientnet_lite2", 6_092_072),
        ("resnet18", 11_689_512 - 513_000),
        ("wide_resnet50_2", 68_883_240 - 2_049_000),
        ("dinov2_vits14", 22_056_576 - 384),  # the hub model minus the training-only mask_token
        ("tiny_resnet", 78_312),
    ],
)
def test_parameter_count_matches_the_reference_architecture(name, params):
    shapes = backbone_variable_shapes(name)
    assert sum(math.prod(s) for p, s in shapes.items() if p.startswith("params/")) == params


@pytest.mark.parametrize("name", ALL)
def test_every_tap_has_the_channels_and_stride_the_spec_declares(name):
    spec = get_backbone_spec(name)
    height, width = (70, 42) if name == "dinov2_vits14" else (96, 64)
    module = build_backbone(name)
    variables = jax.eval_shape(lambda: module.init(jax.random.key(0), jnp.zeros((1, 14, 14, 3))))
    out = jax.eval_shape(lambda v, x: module.apply(v, x), variables, jax.ShapeDtypeStruct((2, height, width, 3), jnp.float32))
    assert set(out) == set(spec.taps)  # eval_shape's pytree round trip sorts dict keys
    for tap in spec.taps:
        if tap in spec.grid_taps:
            stride = spec.stride(tap)
            expected = (2, math.ceil(height / stride), math.ceil(width / stride), spec.channels(tap))
        else:
            expected = (2, spec.channels(tap))
        assert out[tap].shape == expected, tap
        assert out[tap].dtype == jnp.float32


def test_spec_lookups_reject_unknown_and_non_grid_taps():
    spec = get_backbone_spec("efficientnet_lite0")
    with pytest.raises(ValueError, match="layer2.*accepted"):
        spec.channels("layer2")
    with pytest.raises(ValueError, match="logits.*grid taps"):
        spec.stride("logits")
    assert spec.channels("logits") == 1000


@pytest.mark.parametrize(
    "name, stride8_channels, stride16_channels, input_size",
    [("efficientnet_lite0", 40, 112, 224), ("efficientnet_lite1", 40, 112, 240), ("efficientnet_lite2", 48, 120, 260)],
)
def test_lite_stride_8_and_16_taps_are_stage3_and_stage5(name, stride8_channels, stride16_channels, input_size):
    spec = get_backbone_spec(name)
    assert [t for t in spec.grid_taps if spec.stride(t) == 8] == ["stage3"]
    assert [t for t in spec.grid_taps if spec.stride(t) == 16] == ["stage4", "stage5"]
    assert (spec.channels("stage3"), spec.channels("stage5")) == (stride8_channels, stride16_channels)
    assert (spec.channels("stem"), spec.channels("features")) == (32, 1280)  # never scaled
    assert spec.default_input_size == input_size
    assert spec.normalization == "efficientnet_lite"
    assert spec.has_pretrained


def _reference_lite_groups(width: float, depth: float):
    """The block groups of ``efficientnet_lite_pytorch``'s builder, transcribed: ``round_filters``
    (divisor 8, never more than 10% below ``c*width``), ``ceil(depth*r)`` repeats except for the
    first and last group (``fix_head_stem``), and the first group's input pinned to the 32-wide stem."""
    base = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
            (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))

    def round_filters(c):
        scaled = c * width
        rounded = max(8, int(scaled + 4) // 8 * 8)
        return rounded + 8 if rounded < 0.9 * scaled else rounded

    groups = []
    for i, (r, k, s, e, cin, cout) in enumerate(base):
        fixed = i in (0, len(base) - 1)
        repeats = r if fixed else math.ceil(depth * r)
        groups.append((repeats, k, s, e, 32 if i == 0 else round_filters(cin), round_filters(cout)))
    return tuple(groups)


@pytest.mark.parametrize(
    "name, width, depth", [("efficientnet_lite0", 1.0, 1.0), ("efficientnet_lite1", 1.0, 1.1), ("efficientnet_lite2", 1.1, 1.2)]
)
def test_lite_block_tables_are_the_reference_width_and_depth_scaling(name, width, depth):
    from models_jax.backbones.efficientnet_lite import LITE_VARIANTS

    groups, _ = LITE_VARIANTS[name]
    assert groups == _reference_lite_groups(width, depth)
    shapes = backbone_variable_shapes(name)
    assert sum(1 for p in shapes if p.endswith("/project_conv/kernel")) == sum(g[0] for g in groups)


@pytest.mark.parametrize("name", ["resnet18", "wide_resnet50_2", "tiny_resnet"])
def test_resnets_tap_layer2_and_layer3_at_strides_8_and_16(name):
    spec = get_backbone_spec(name)
    assert (spec.stride("layer2"), spec.stride("layer3")) == (8, 16)
    assert spec.normalization == "imagenet"
    assert not spec.has_pretrained


def test_grid_tap_strides_never_decrease_in_forward_order():
    for name in ALL:
        spec = get_backbone_spec(name)
        strides = [spec.stride(t) for t in spec.grid_taps]
        assert strides == sorted(strides), name


def test_variable_shapes_are_flat_paths_under_params_and_batch_stats():
    shapes = backbone_variable_shapes("tiny_resnet")
    assert shapes["params/conv1/kernel"] == (7, 7, 3, 8)
    assert shapes["batch_stats/layer2_0/downsample_bn/mean"] == (16,)
    assert all(p.split("/")[0] in ("params", "batch_stats") for p in shapes)
    vit = backbone_variable_shapes("dinov2_vits14")
    assert vit["params/pos_embed"] == (1, 1 + 37 * 37, 384)
    assert vit["params/blocks_11/attn/qkv/kernel"] == (384, 1152)
    assert np.all([p.startswith("params/") for p in vit])
