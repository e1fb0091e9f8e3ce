"""DINOv2 ViT-S/14 (Oquab et al. 2023) in the layout of facebookresearch/dinov2's hub model.

Structure (``dinov2_vits14``: dim 384, 12 blocks, 6 heads, MLP ratio 4):
patch embedding (14x14 conv, stride 14, with bias) -> prepend the class token
-> add the position embedding -> 12 pre-norm blocks
``x + ls1 * attn(norm1(x))``, ``x + ls2 * mlp(norm2(x))`` (LayerNorm eps 1e-6,
exact GELU, LayerScale vectors ``ls1``/``ls2``) -> final LayerNorm.

Position embedding: the checkpoint holds a 37x37 grid (518x518 training
inputs).  For an input of ``h0 x w0`` patches the hub model resamples that
grid with ``torch.nn.functional.interpolate(mode="bicubic",
align_corners=False, antialias=False, scale_factor=((h0+0.1)/37, (w0+0.1)/37))``
(the "+0.1" offset is DINO's historical kludge, kept by the hub's
``interpolate_offset=0.1``).  Shapes are static, so the resampling is a fixed
linear map: :func:`torch_bicubic_matrix` builds torch's separable bicubic
weights (Keys kernel with a = -0.75, half-pixel centres, border indices
clamped, computed in float32 like torch) on the host in numpy, and the module
applies them to the (possibly traced) parameter.  ``jax.image.resize`` would
not do: its cubic kernel uses a = -0.5 and it has no scale-factor offset.
Anti-aliased resampling (``interpolate_antialias=True`` in newer hub
configs) is not implemented; the released ``dinov2_vits14`` uses False.

The ``mask_token`` of the checkpoint is a training-time parameter and is not
part of this module (the converter ignores it).

Taps (all patch-token grids are ``f32[B, H/14, W/14, 384]``, stride 14):

- ``block1`` .. ``block12``: raw token output of each block (before the final norm),
- ``patch_tokens``: final-normed patch tokens (the hub's ``x_norm_patchtokens``),
- ``cls_token``: final-normed class token, ``f32[B, 384]`` (``x_norm_clstoken``).
"""

from __future__ import annotations

import functools
import math
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from models_jax.backbones.spec import TapCollector, check_image_batch, resolve_taps

__all__ = ["DinoViT", "torch_bicubic_matrix", "vit_taps"]

_BICUBIC_A = -0.75  # torch's (and OpenCV's) Keys kernel parameter


def vit_taps(depth: int) -> tuple[str, ...]:
    """Tap names of a ``depth``-block ViT, in forward order."""
    return tuple(f"block{i + 1}" for i in range(depth)) + ("patch_tokens", "cls_token")


@functools.lru_cache(maxsize=64)
def torch_bicubic_matrix(in_size: int, out_size: int, scale_factor: float | None = None) -> np.ndarray:
    """Weights of torch's 1-D bicubic resampling, ``f32[out_size, in_size]``.

    ``out = W @ inp`` reproduces ``F.interpolate(..., mode="bicubic",
    align_corners=False, antialias=False)`` along one axis, given either just
    the sizes (torch's ``size=`` path, ratio ``in/out``) or the
    ``scale_factor`` that was passed to torch (ratio ``1/scale_factor``), since
    torch uses the given scale, not the size ratio, to place source samples.

    Raises:
      ValueError: non-positive sizes or scale factor.
    """
    if in_size <= 0 or out_size <= 0:
        raise ValueError(f"sizes must be positive, got in_size={in_size}, out_size={out_size}")
    if scale_factor is not None and not scale_factor > 0:
        raise ValueError(f"scale_factor must be > 0, got {scale_factor}")
    f32 = np.float32
    # Float32 arithmetic throughout, as torch's CPU kernel (opmath = float for f32 input).
    if scale_factor is None:
        ratio = f32(in_size) / f32(out_size)
    else:
        ratio = f32(1.0 / scale_factor)
    a = f32(_BICUBIC_A)

    def near(x):  # |x| <= 1
        return ((a + f32(2)) * x - (a + f32(3))) * x * x + f32(1)

    def far(x):  # 1 < |x| < 2
        return ((a * x - f32(5) * a) * x + f32(8) * a) * x - f32(4) * a

    weights = np.zeros((out_size, in_size), dtype=np.float64)
    for o in range(out_size):
        # ratio*(o+0.5)-0.5 rounded once to float32: torch's compiled kernel contracts it
        # into a fused multiply-add, which matches torch to ~1e-6 where two roundings give ~1e-5.
        real = f32(float(ratio) * (o + 0.5) - 0.5)
        base = math.floor(real)
        t = f32(real - f32(base))
        rest = f32(1) - t
        taps = (far(t + f32(1)), near(t), near(rest), far(rest + f32(1)))
        for offset, w in zip(range(-1, 3), taps):
            weights[o, min(max(base + offset, 0), in_size - 1)] += float(w)
    return weights.astype(np.float32)


class Attention(nn.Module):
    dim: int
    num_heads: int

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        b, n, c = x.shape
        head_dim = c // self.num_heads
        init = nn.initializers.truncated_normal(0.02)
        # torch's qkv rows are ordered (3, heads, head_dim); the Dense kernel keeps that order.
        qkv = nn.Dense(3 * c, kernel_init=init, name="qkv")(x).reshape(b, n, 3, self.num_heads, head_dim)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) * (head_dim**-0.5)
        attn = nn.softmax(logits, axis=-1)
        out = jnp.einsum("bhqk,bkhd->bqhd", attn, v).reshape(b, n, c)
        return nn.Dense(c, kernel_init=init, name="proj")(out)


class Mlp(nn.Module):
    hidden: int
    out_features: int

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        init = nn.initializers.truncated_normal(0.02)
        x = nn.gelu(nn.Dense(self.hidden, kernel_init=init, name="fc1")(x), approximate=False)
        return nn.Dense(self.out_features, kernel_init=init, name="fc2")(x)


class Block(nn.Module):
    dim: int
    num_heads: int
    mlp_ratio: int
    layerscale_init: float = 1.0

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        ls_init = nn.initializers.constant(self.layerscale_init)
        ls1 = self.param("ls1", ls_init, (self.dim,))
        ls2 = self.param("ls2", ls_init, (self.dim,))
        y = _layer_norm("norm1")(x)
        x = x + ls1 * Attention(self.dim, self.num_heads, name="attn")(y)
        y = _layer_norm("norm2")(x)
        x = x + ls2 * Mlp(self.dim * self.mlp_ratio, self.dim, name="mlp")(y)
        return x


def _layer_norm(name: str) -> nn.LayerNorm:
    # use_fast_variance=False: E[x^2]-E[x]^2 loses digits on large token norms; torch
    # computes the centred variance.
    return nn.LayerNorm(epsilon=1e-6, use_fast_variance=False, name=name)


class DinoViT(nn.Module):
    """DINOv2 vision transformer with named taps (see the module docstring).

    Call: ``module.apply(variables, x, taps=("patch_tokens",))`` with
    ``x: f32[B, H, W, 3]`` (ImageNet-normalised, H and W multiples of the
    patch size) returns grid taps as ``f32[B, H/14, W/14, D]`` and
    ``cls_token`` as ``f32[B, D]``.

    Raises:
      ValueError: ``x`` is not ``[B, H, W, 3]``, H or W is not a multiple of
        the patch size, or a tap name is unknown.
    """

    patch_size: int = 14
    embed_dim: int = 384
    depth: int = 12
    num_heads: int = 6
    mlp_ratio: int = 4
    pos_grid: int = 37  # the checkpoint's position grid side (518 / 14)
    interpolate_offset: float = 0.1
    arch: str = "dinov2_vits14"

    def _position_embedding(self, pos_embed: jnp.ndarray, rows: int, cols: int) -> jnp.ndarray:
        """f32[1, 1 + M*M, D] -> f32[1, 1 + rows*cols, D], resampled like the hub model."""
        m = self.pos_grid
        if rows == m and cols == m:
            return pos_embed  # the hub returns the stored embedding untouched at the native size
        if self.interpolate_offset:
            w_rows = torch_bicubic_matrix(m, rows, (rows + self.interpolate_offset) / m)
            w_cols = torch_bicubic_matrix(m, cols, (cols + self.interpolate_offset) / m)
        else:
            w_rows = torch_bicubic_matrix(m, rows)
            w_cols = torch_bicubic_matrix(m, cols)
        grid = pos_embed[0, 1:].reshape(m, m, -1)
        resampled = jnp.einsum("pi,ijd,qj->pqd", w_rows, grid, w_cols, precision="highest")
        return jnp.concatenate([pos_embed[:, :1], resampled.reshape(1, rows * cols, -1)], axis=1)

    @nn.compact
    def __call__(self, x: jnp.ndarray, taps: Sequence[str] | None = None) -> dict[str, jnp.ndarray]:
        check_image_batch(x, self.arch)
        all_taps = vit_taps(self.depth)
        collector = TapCollector(resolve_taps(taps, all_taps, self.arch))
        b, h, w, _ = x.shape
        p = self.patch_size
        if h % p or w % p:
            raise ValueError(f"{self.arch} needs H and W that are multiples of {p}, got {h}x{w}")
        rows, cols = h // p, w // p
        cls_token = self.param("cls_token", nn.initializers.normal(1e-6), (1, 1, self.embed_dim))
        pos_embed = self.param(
            "pos_embed", nn.initializers.truncated_normal(0.02), (1, 1 + self.pos_grid**2, self.embed_dim)
        )
        x = nn.Conv(self.embed_dim, (p, p), strides=(p, p), padding="VALID", name="patch_embed")(x)
        x = x.reshape(b, rows * cols, self.embed_dim)  # row-major, like torch's flatten(2)
        x = jnp.concatenate([jnp.broadcast_to(cls_token, (b, 1, self.embed_dim)), x], axis=1)
        x = x + self._position_embedding(pos_embed, rows, cols)

        def grid(tokens: jnp.ndarray) -> jnp.ndarray:
            return tokens[:, 1:].reshape(b, rows, cols, self.embed_dim)

        for i in range(self.depth):
            x = Block(self.embed_dim, self.num_heads, self.mlp_ratio, name=f"blocks_{i}")(x)
            if collector.add(f"block{i + 1}", grid(x)):
                return collector.features
        x = _layer_norm("norm")(x)
        if collector.add("patch_tokens", grid(x)):
            return collector.features
        collector.add("cls_token", x[:, 0])
        return collector.features
