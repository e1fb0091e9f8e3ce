"""ResNets in torchvision's layout (He et al. 2016; ResNet v1.5, stride on the 3x3 conv).

BatchNorm uses its running statistics (``batch_stats``), eps 1e-5 as in
torchvision; ``train=True`` (a randomly initialised student being trained,
:mod:`models_jax.detectors.stfpm`) normalises with batch statistics and updates
the running ones with torch's momentum (0.1, i.e. flax ``momentum=0.9``), the
caller applying with ``mutable=["batch_stats"]``.  Submodule names mirror torchvision's state_dict keys
(``layer2_0/conv1`` for ``layer2.0.conv1``, ``downsample_conv``/``downsample_bn``
for ``downsample.0``/``downsample.1``) so the key mapping in
``weights_convert/mappings/resnet18.py`` is a handful of regexes.

Taps, in forward order:

========  ======  ======================================================
tap       stride  content
========  ======  ======================================================
stem      2       ``relu(bn1(conv1(x)))`` (before the 3x3 max-pool)
layer1    4       output of stage 1
layer2    8       output of stage 2
layer3    16      output of stage 3
layer4    32      output of stage 4
========  ======  ======================================================

The classifier (``avgpool``/``fc``) is not part of the backbone; its keys are
ignored by the converter.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from models_jax.backbones.spec import TapCollector, check_image_batch, resolve_taps

__all__ = ["ResNet", "RESNET_TAPS", "resnet_tap_channels", "max_pool_3x3_s2"]

RESNET_TAPS = ("stem", "layer1", "layer2", "layer3", "layer4")
_BN_EPS = 1e-5


def _conv(features: int, kernel: int, stride: int, padding: int, name: str) -> nn.Conv:
    return nn.Conv(
        features,
        (kernel, kernel),
        strides=(stride, stride),
        padding=((padding, padding), (padding, padding)),
        use_bias=False,
        name=name,
    )


def _bn(name: str, train: bool = False) -> nn.BatchNorm:
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=_BN_EPS, name=name)


def max_pool_3x3_s2(x: jnp.ndarray) -> jnp.ndarray:
    """torchvision's stem max-pool (3x3, stride 2, padding 1 with -inf) as the max of 9 strided slices.

    Equal to ``nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))`` (a max is
    exact), written with pad/slice/max so that ONNX exporters map it to plain ops: jax2onnx
    0.17 turns ``reduce_window`` on NHWC into a MaxPool that drops explicit padding (flax's
    ``max_pool``) or that onnxruntime rejects (a 4-D kernel), see docs/export.md.
    """
    _, h, w, _ = x.shape
    padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-jnp.inf)
    out_h, out_w = (h - 1) // 2 + 1, (w - 1) // 2 + 1
    out = None
    for dy in range(3):
        for dx in range(3):
            part = padded[:, dy : dy + 2 * out_h - 1 : 2, dx : dx + 2 * out_w - 1 : 2, :]
            out = part if out is None else jnp.maximum(out, part)
    return out


class BasicBlock(nn.Module):
    """Two 3x3 convs with an identity (or 1x1 projection) shortcut; expansion 1."""

    planes: int
    stride: int
    project: bool
    train: bool = False

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        t = self.train
        y = nn.relu(_bn("bn1", t)(_conv(self.planes, 3, self.stride, 1, "conv1")(x)))
        y = _bn("bn2", t)(_conv(self.planes, 3, 1, 1, "conv2")(y))
        if self.project:
            x = _bn("downsample_bn", t)(_conv(self.planes, 1, self.stride, 0, "downsample_conv")(x))
        return nn.relu(y + x)


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (strided) -> 1x1 expand (x4), torchvision's v1.5 bottleneck."""

    planes: int
    width: int  # inner width: planes * base_width / 64 (twice ``planes`` for wide_resnet50_2)
    stride: int
    project: bool
    train: bool = False

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        out_features = self.planes * 4
        t = self.train
        y = nn.relu(_bn("bn1", t)(_conv(self.width, 1, 1, 0, "conv1")(x)))
        y = nn.relu(_bn("bn2", t)(_conv(self.width, 3, self.stride, 1, "conv2")(y)))
        y = _bn("bn3", t)(_conv(out_features, 1, 1, 0, "conv3")(y))
        if self.project:
            x = _bn("downsample_bn", t)(_conv(out_features, 1, self.stride, 0, "downsample_conv")(x))
        return nn.relu(y + x)


def resnet_tap_channels(block: str, stem_width: int, stage_widths: Sequence[int]) -> tuple[tuple[str, int], ...]:
    """``(tap, channels)`` of a ResNet; bottleneck stages output 4x their planes."""
    expansion = 4 if block == "bottleneck" else 1
    return (("stem", stem_width),) + tuple(
        (f"layer{i + 1}", w * expansion) for i, w in enumerate(stage_widths)
    )


class ResNet(nn.Module):
    """torchvision-style ResNet feature extractor.

    Attributes:
      block: ``"basic"`` (ResNet-18/34) or ``"bottleneck"`` (ResNet-50 and wide variants).
      stage_sizes: blocks per stage, e.g. ``(2, 2, 2, 2)``.
      stem_width: channels of the 7x7 stem conv (64 in torchvision).
      stage_widths: ``planes`` of each stage (64, 128, 256, 512 in torchvision).
      base_width: torchvision's ``width_per_group``; 128 doubles the bottleneck
        inner width (wide_resnet50_2).
      train: BatchNorm with batch statistics (apply with ``mutable=["batch_stats"]``).

    Call: ``module.apply(variables, x, taps=("layer2", "layer3"))`` with
    ``x: f32[B, H, W, 3]`` (normalised with ImageNet mean/std) returns
    ``{tap: f32[B, h, w, C]}``.  ``taps=None`` returns every tap.

    Raises:
      ValueError: ``x`` is not ``[B, H, W, 3]``, or a tap name is unknown.
    """

    block: str
    stage_sizes: tuple[int, ...]
    stem_width: int = 64
    stage_widths: tuple[int, ...] = (64, 128, 256, 512)
    base_width: int = 64
    arch: str = "resnet"
    train: bool = False

    @nn.compact
    def __call__(self, x: jnp.ndarray, taps: Sequence[str] | None = None) -> dict[str, jnp.ndarray]:
        check_image_batch(x, self.arch)
        collector = TapCollector(resolve_taps(taps, RESNET_TAPS, self.arch))
        x = nn.relu(_bn("bn1", self.train)(_conv(self.stem_width, 7, 2, 3, "conv1")(x)))
        if collector.add("stem", x):
            return collector.features
        x = max_pool_3x3_s2(x)
        in_features = self.stem_width
        for stage, (size, planes) in enumerate(zip(self.stage_sizes, self.stage_widths)):
            for index in range(size):
                stride = 2 if (stage > 0 and index == 0) else 1
                name = f"layer{stage + 1}_{index}"
                if self.block == "basic":
                    out_features = planes
                    project = stride != 1 or in_features != out_features
                    x = BasicBlock(planes, stride, project, self.train, name=name)(x)
                elif self.block == "bottleneck":
                    out_features = planes * 4
                    width = planes * self.base_width // 64
                    project = stride != 1 or in_features != out_features
                    x = Bottleneck(planes, width, stride, project, self.train, name=name)(x)
                else:
                    raise ValueError(f"unknown ResNet block {self.block!r}; accepted: ['basic', 'bottleneck']")
                in_features = out_features
            if collector.add(f"layer{stage + 1}", x):
                return collector.features
        return collector.features
