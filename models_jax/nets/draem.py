"""DRAEM's two sub-networks (Zavrtanik et al., ICCV 2021), widths as parameters.

- :class:`ReconstructiveNet`: an encoder-decoder without skip connections. Five
  encoder blocks of two 3x3 conv + BN + ReLU (widths ``w, 2w, 4w, 8w, 8w``, a 2x2
  max-pool between blocks), a mirrored decoder (2x bilinear upsampling and a 3x3 conv +
  BN + ReLU at ``8w, 4w, 2w, w``, each followed by a block of two narrowing to
  ``4w, 2w, w, w``), and a final 3x3 conv to 3 channels. DRAEM: ``w = 128``.
- :class:`DiscriminativeNet`: a U-Net over the input and its reconstruction
  concatenated (6 channels): six encoder blocks (``w, 2w, 4w, 8w, 8w, 8w``), a decoder
  with skip connections, and a final 3x3 conv to 2 logits (normal, anomalous). DRAEM: ``w = 64``.

Upsampling uses half-pixel centres (``jax.image.resize``); the reference uses
``align_corners=True``. The input side must be a multiple of 32 (five poolings).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from models_jax.nets.layers import ConvBN, conv_init

__all__ = ["ReconstructiveNet", "DiscriminativeNet", "DraemNet"]


def _pool(x: jnp.ndarray) -> jnp.ndarray:
    return nn.max_pool(x, (2, 2), strides=(2, 2))


def _up(x: jnp.ndarray) -> jnp.ndarray:
    b, h, w, c = x.shape
    return jax.image.resize(x, (b, 2 * h, 2 * w, c), method="bilinear", antialias=False)


class _DoubleConv(nn.Module):
    features: int
    train: bool = False

    @nn.compact
    def __call__(self, x):
        x = ConvBN(self.features, train=self.train)(x)
        return ConvBN(self.features, train=self.train)(x)


class _UpConv(nn.Module):
    features: int
    train: bool = False

    @nn.compact
    def __call__(self, x):
        return ConvBN(self.features, train=self.train)(_up(x))


def _out_conv(features: int) -> nn.Conv:
    return nn.Conv(features, (3, 3), padding=((1, 1), (1, 1)), kernel_init=conv_init)


class ReconstructiveNet(nn.Module):
    """``f32[B, H, W, 3]`` -> reconstruction ``f32[B, H, W, 3]`` (linear output)."""

    width: int = 128
    train: bool = False

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        w, t = self.width, self.train
        for i, features in enumerate((w, 2 * w, 4 * w, 8 * w, 8 * w)):
            if i:
                x = _pool(x)
            x = _DoubleConv(features, t)(x)
        for up_features, features in ((8 * w, 4 * w), (4 * w, 2 * w), (2 * w, w), (w, w)):
            x = _UpConv(up_features, t)(x)
            x = _DoubleConv(features, t)(x)
        return _out_conv(3)(x)


class DiscriminativeNet(nn.Module):
    """``f32[B, H, W, 6]`` -> logits ``f32[B, H, W, 2]`` (channel 1: anomalous)."""

    width: int = 64
    train: bool = False

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        w, t = self.width, self.train
        skips = []
        for i, features in enumerate((w, 2 * w, 4 * w, 8 * w, 8 * w, 8 * w)):
            if i:
                x = _pool(x)
            x = _DoubleConv(features, t)(x)
            skips.append(x)
        x = skips.pop()
        for features in (8 * w, 4 * w, 2 * w, w, w):
            x = _UpConv(features, t)(x)
            x = _DoubleConv(features, t)(jnp.concatenate([x, skips.pop()], axis=-1))
        return _out_conv(2)(x)


class DraemNet(nn.Module):
    """Both sub-networks: ``images`` -> ``(reconstruction f32[B, H, W, 3], logits f32[B, H, W, 2])``;
    the discriminative network sees ``concat(images, reconstruction)``."""

    reconstructive_width: int = 128
    discriminative_width: int = 64
    train: bool = False

    @nn.compact
    def __call__(self, images: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
        reconstruction = ReconstructiveNet(self.reconstructive_width, self.train, name="reconstructive")(images)
        logits = DiscriminativeNet(self.discriminative_width, self.train, name="discriminative")(
            jnp.concatenate([images, reconstruction], axis=-1)
        )
        return reconstruction, logits
