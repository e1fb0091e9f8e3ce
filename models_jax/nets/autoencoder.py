"""The convolutional autoencoder of ``vision_ae``."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from models_jax.nets.layers import ConvBN, conv_init

__all__ = ["ConvAutoencoder"]


class ConvAutoencoder(nn.Module):
    """``f32[B, H, W, 3]`` in [0, 1] -> reconstruction ``f32[B, H, W, 3]`` in (0, 1).

    Encoder: per width, a stride-2 3x3 conv + BN + ReLU and a 3x3 conv + BN + ReLU;
    a 1x1 conv + BN + ReLU to ``latent_channels`` (the bottleneck) at
    ``H / 2**len(widths)``. Decoder: mirrored, with 2x bilinear upsampling before each
    level, and a 3x3 conv to 3 channels with a sigmoid.
    """

    widths: tuple[int, ...] = (16, 32, 64, 128)
    latent_channels: int = 32
    train: bool = False

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        t = self.train
        for width in self.widths:
            x = ConvBN(width, 3, 2, train=t)(x)
            x = ConvBN(width, 3, 1, train=t)(x)
        x = ConvBN(self.latent_channels, 1, 1, train=t)(x)
        for width in reversed(self.widths):
            b, h, w, c = x.shape
            x = jax.image.resize(x, (b, 2 * h, 2 * w, c), method="bilinear", antialias=False)
            x = ConvBN(width, 3, 1, train=t)(x)
            x = ConvBN(width, 3, 1, train=t)(x)
        x = nn.Conv(3, (3, 3), padding=((1, 1), (1, 1)), kernel_init=conv_init)(x)
        return nn.sigmoid(x)
