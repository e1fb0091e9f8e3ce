"""Reverse Distillation's trainable part (Deng & Li, CVPR 2022): the one-class bottleneck embedding
(OCBE: multi-scale feature fusion + one-class embedding) and the reverse decoder.

Generic over the encoder: ``tap_channels`` are the channel counts of the encoder taps,
shallow to deep, each at twice the stride of the previous one (a ResNet's
``layer1..3``: strides 4, 8, 16).

- **MFF**: every tap but the deepest is brought to the deepest tap's grid by stride-2
  3x3 conv + BN + ReLU steps whose widths follow the deeper taps' channels
  (``layer1``: C1 -> C2 -> C3; ``layer2``: C2 -> C3), then the maps and the deepest
  tap are concatenated.
- **OCE**: ``oce_blocks`` residual blocks, the first with stride 2, to
  ``embed_channels`` (twice the deepest tap's channels for ResNets: 512 after
  ResNet-18's 256-channel ``layer3``).
- **Decoder**: per tap, deep to shallow, ``decoder_blocks`` residual blocks, the first
  doubling the grid with 2x2 stride-2 transposed convolutions, to that tap's channels.
  The last block of each stage ends without ReLU (see ``ReverseDecoder``).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from models_jax.nets.layers import ConvBN, ResidualBlock

__all__ = ["OneClassBottleneck", "ReverseDecoder", "ReverseDistillationNet"]


class OneClassBottleneck(nn.Module):
    """Encoder taps (shallow first) ``[f32[B, h_i, w_i, C_i]]`` -> embedding ``f32[B, h/2, w/2, E]``
    at half the deepest tap's resolution."""

    tap_channels: tuple[int, ...]
    embed_channels: int
    oce_blocks: int = 2
    train: bool = False

    @nn.compact
    def __call__(self, features: Sequence[jnp.ndarray]) -> jnp.ndarray:
        if len(features) != len(self.tap_channels):
            raise ValueError(f"expected {len(self.tap_channels)} encoder taps, got {len(features)}")
        fused = []
        for i, x in enumerate(features[:-1]):
            for channels in self.tap_channels[i + 1 :]:
                x = ConvBN(channels, 3, 2, train=self.train)(x)
            fused.append(x)
        x = jnp.concatenate([*fused, features[-1]], axis=-1)
        x = ResidualBlock(self.embed_channels, "down", train=self.train)(x)
        for _ in range(self.oce_blocks - 1):
            x = ResidualBlock(self.embed_channels, "same", train=self.train)(x)
        return x


class ReverseDecoder(nn.Module):
    """Embedding -> one map per encoder tap, shallow first: ``[f32[B, h_i, w_i, C_i]]``.

    The last block of each stage has a linear output, so the decoder can match
    encoders whose stages end in a linear projection (EfficientNet's MBConv blocks);
    the reference decoder (for ResNets, whose stage outputs are post-ReLU) ends every
    block with ReLU.
    """

    tap_channels: tuple[int, ...]
    decoder_blocks: int = 2
    train: bool = False

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> list[jnp.ndarray]:
        outputs = []
        for channels in reversed(self.tap_channels):
            last = self.decoder_blocks == 1
            x = ResidualBlock(channels, "up", out_relu=not last, train=self.train)(x)
            for j in range(1, self.decoder_blocks):
                x = ResidualBlock(channels, "same", out_relu=j < self.decoder_blocks - 1, train=self.train)(x)
            outputs.append(x)
        return outputs[::-1]


class ReverseDistillationNet(nn.Module):
    """OCBE + decoder: encoder taps (shallow first) -> reconstructed taps (shallow first)."""

    tap_channels: tuple[int, ...]
    embed_channels: int
    oce_blocks: int = 2
    decoder_blocks: int = 2
    train: bool = False

    @nn.compact
    def __call__(self, features: Sequence[jnp.ndarray]) -> list[jnp.ndarray]:
        embedding = OneClassBottleneck(
            self.tap_channels, self.embed_channels, self.oce_blocks, self.train, name="bottleneck"
        )(features)
        return ReverseDecoder(self.tap_channels, self.decoder_blocks, self.train, name="decoder")(embedding)
