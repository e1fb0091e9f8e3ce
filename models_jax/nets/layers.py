"""Building blocks: conv + BatchNorm (+ ReLU), and a ResNet basic block that can keep, halve or double the grid."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

__all__ = ["conv_init", "batch_norm", "ConvBN", "ResidualBlock"]

#: He-normal with fan-out, torch's ``kaiming_normal_(mode="fan_out", nonlinearity="relu")``.
conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


def batch_norm(train: bool, name: str | None = None) -> nn.BatchNorm:
    """torch-like BatchNorm: eps 1e-5, momentum 0.1 (flax ``momentum=0.9``)."""
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, name=name)


class ConvBN(nn.Module):
    """``kernel x kernel`` convolution (``stride``, zero "same" padding, no bias), BatchNorm, optional ReLU."""

    features: int
    kernel: int = 3
    stride: int = 1
    relu: bool = True
    train: bool = False

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        pad = self.kernel // 2
        x = nn.Conv(
            self.features,
            (self.kernel, self.kernel),
            strides=(self.stride, self.stride),
            padding=((pad, pad), (pad, pad)),
            use_bias=False,
            kernel_init=conv_init,
        )(x)
        x = batch_norm(self.train)(x)
        return nn.relu(x) if self.relu else x


class ResidualBlock(nn.Module):
    """A ResNet basic block (two 3x3 conv + BN) with a projection shortcut when needed.

    ``resample``: ``"same"`` keeps the grid, ``"down"`` halves it (stride-2 conv,
    1x1 stride-2 shortcut), ``"up"`` doubles it (2x2 stride-2 transposed conv in both
    branches, as the Reverse Distillation decoder). ``out_relu=False`` leaves the
    output linear.
    """

    features: int
    resample: str = "same"
    out_relu: bool = True
    train: bool = False

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        if self.resample not in ("same", "down", "up"):
            raise ValueError(f"resample must be 'same', 'down' or 'up', got {self.resample!r}")
        if self.resample == "up":
            y = nn.ConvTranspose(self.features, (2, 2), strides=(2, 2), use_bias=False, kernel_init=conv_init)(x)
            y = nn.relu(batch_norm(self.train)(y))
        else:
            y = ConvBN(self.features, 3, 2 if self.resample == "down" else 1, train=self.train)(x)
        y = ConvBN(self.features, 3, 1, relu=False, train=self.train)(y)
        shortcut = x
        if self.resample == "up":
            shortcut = nn.ConvTranspose(
                self.features, (2, 2), strides=(2, 2), use_bias=False, kernel_init=conv_init
            )(x)
            shortcut = batch_norm(self.train)(shortcut)
        elif self.resample == "down" or x.shape[-1] != self.features:
            shortcut = ConvBN(
                self.features, 1, 2 if self.resample == "down" else 1, relu=False, train=self.train
            )(x)
        y = y + shortcut
        return nn.relu(y) if self.out_relu else y
