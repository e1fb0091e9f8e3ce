"""PyTorch reference forward passes with the same tap names as the Flax backbones.

Imports torch; used by ``make_goldens.py`` and by the torch-gated parity
tests (through ``conftest.py``).  Every function returns NHWC numpy arrays
(grid taps ``[B, h, w, C]``, others ``[B, C]``) so results compare directly
with the Flax modules.

- EfficientNet-Lite0/1/2: the ``efficientnet_lite_pytorch`` model itself (built
  with ``image_size=None``, i.e. dynamic TF-SAME padding), run block by block;
  the block-group boundaries are read off the reference model (a group starts
  at every block whose input and output widths differ).
- torchvision ResNets: the torchvision model's own submodules.
- DINOv2: :class:`DinoV2Reference`, a transcription of
  facebookresearch/dinov2's ``DinoVisionTransformer`` forward (hub settings
  for ``dinov2_vits14``: ``block_chunks=0``, ``interpolate_offset=0.1``,
  ``interpolate_antialias=False``, LayerNorm eps 1e-6, exact GELU,
  LayerScale).  Its state_dict keys are the hub checkpoint's.
  ``make_goldens.py`` cross-checks it against timm's
  ``vit_small_patch14_dinov2`` at the native 518x518 size, where no position
  resampling happens (timm resamples differently: antialiased, size-based).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "nhwc_to_nchw",
    "lite0_reference",
    "lite0_taps",
    "lite_reference",
    "lite_taps",
    "lite_group_ends",
    "torchvision_resnet_taps",
    "DinoV2Reference",
    "load_numpy_state_dict",
]

def nhwc_to_nchw(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2))))


def _grid(t: torch.Tensor) -> np.ndarray:
    return t.detach().permute(0, 2, 3, 1).contiguous().numpy()


def load_numpy_state_dict(module: nn.Module, state_dict: dict, strict: bool = True):
    return module.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state_dict.items()}, strict=strict)


# ----------------------------------------------------------------------------- EfficientNet-Lite


def lite_reference(state_dict, arch: str = "efficientnet_lite0") -> nn.Module:
    """The reference EfficientNet-Lite ``arch`` (``efficientnet_liteN``) with dynamic SAME padding,
    weights loaded (strict), eval mode."""
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name(arch.replace("_", "-"), image_size=None)
    sd = {k: (v if isinstance(v, torch.Tensor) else torch.from_numpy(np.asarray(v))) for k, v in state_dict.items()}
    model.load_state_dict(sd, strict=True)
    return model.eval()


def lite0_reference(state_dict) -> nn.Module:
    """The reference EfficientNet-Lite0 with dynamic SAME padding, weights loaded, eval mode."""
    return lite_reference(state_dict, "efficientnet_lite0")


def lite_group_ends(model: nn.Module) -> tuple[int, ...]:
    """Cumulative block count at the end of each block group of the reference ``model``.

    Every group's first block changes the width (32->16, 16->24, ...) and its
    repeats keep it, so the groups are read off the blocks' own arguments.
    """
    starts = [i for i, block in enumerate(model._blocks) if block._block_args.input_filters != block._block_args.output_filters]
    assert starts[0] == 0
    return tuple(starts[1:]) + (len(model._blocks),)


@torch.no_grad()
def lite_taps(model: nn.Module, x_nhwc: np.ndarray) -> dict[str, np.ndarray]:
    """Every tap of the reference Lite ``model`` (``stem``, ``stage1..7``, ``features``, ``logits``)."""
    x = nhwc_to_nchw(x_nhwc)
    out = {}
    x = model._swish(model._bn0(model._conv_stem(x)))
    out["stem"] = _grid(x)
    start = 0
    for g, end in enumerate(lite_group_ends(model)):
        for block in model._blocks[start:end]:
            x = block(x, drop_connect_rate=None)  # eval: drop-connect is identity anyway
        out[f"stage{g + 1}"] = _grid(x)
        start = end
    assert start == len(model._blocks)
    x = model._swish(model._bn1(model._conv_head(x)))
    out["features"] = _grid(x)
    # The classifier exactly as the reference's forward() computes it.
    pooled = model._avg_pooling(x).flatten(1)
    out["logits"] = model._fc(model._dropout(pooled)).numpy()
    return out


lite0_taps = lite_taps


# ----------------------------------------------------------------------------- torchvision


@torch.no_grad()
def torchvision_resnet_taps(model: nn.Module, x_nhwc: np.ndarray) -> dict[str, np.ndarray]:
    model.eval()
    x = nhwc_to_nchw(x_nhwc)
    out = {}
    x = model.relu(model.bn1(model.conv1(x)))
    out["stem"] = _grid(x)
    x = model.maxpool(x)
    for i in range(1, 5):
        x = getattr(model, f"layer{i}")(x)
        out[f"layer{i}"] = _grid(x)
    return out


# ----------------------------------------------------------------------------- DINOv2


class _LayerScale(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * self.gamma


class _Attention(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim, bias=True)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads)
        q, k, v = torch.unbind(qkv, 2)
        q, k, v = [t.transpose(1, 2) for t in (q, k, v)]
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class _Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class _Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = _Attention(dim, num_heads)
        self.ls1 = _LayerScale(dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = _Mlp(dim, dim * mlp_ratio)
        self.ls2 = _LayerScale(dim)

    def forward(self, x):
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class _PatchEmbed(nn.Module):
    def __init__(self, patch, dim):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class DinoV2Reference(nn.Module):
    """DINOv2 ViT (hub ``dinov2_vits14`` defaults), forward transcribed from the official code."""

    def __init__(self, dim=384, depth=12, num_heads=6, patch=14, img_size=518, mlp_ratio=4,
                 interpolate_offset=0.1):
        super().__init__()
        self.patch_size = patch
        self.interpolate_offset = interpolate_offset
        self.patch_embed = _PatchEmbed(patch, dim)
        n = (img_size // patch) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, n + 1, dim))
        self.blocks = nn.ModuleList([_Block(dim, num_heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Identity()
        self.mask_token = nn.Parameter(torch.zeros(1, dim))

    def interpolate_pos_encoding(self, x, w, h):
        # As in dinov2/models/vision_transformer.py (w, h are the NCHW dims 2 and 3).
        npatch = x.shape[1] - 1
        n = self.pos_embed.shape[1] - 1
        if npatch == n and w == h:
            return self.pos_embed
        pos_embed = self.pos_embed.float()
        class_pos_embed = pos_embed[:, 0]
        patch_pos_embed = pos_embed[:, 1:]
        dim = x.shape[-1]
        w0 = w // self.patch_size
        h0 = h // self.patch_size
        m = int(math.sqrt(n))
        kwargs = {}
        if self.interpolate_offset:
            kwargs["scale_factor"] = (float(w0 + self.interpolate_offset) / m, float(h0 + self.interpolate_offset) / m)
        else:
            kwargs["size"] = (w0, h0)
        patch_pos_embed = F.interpolate(
            patch_pos_embed.reshape(1, m, m, dim).permute(0, 3, 1, 2), mode="bicubic", antialias=False, **kwargs
        )
        assert (w0, h0) == patch_pos_embed.shape[-2:]
        patch_pos_embed = patch_pos_embed.permute(0, 2, 3, 1).view(1, -1, dim)
        return torch.cat((class_pos_embed.unsqueeze(0), patch_pos_embed), dim=1)

    def prepare_tokens(self, x):
        _, _, w, h = x.shape
        x = self.patch_embed(x)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        return x + self.interpolate_pos_encoding(x, w, h)

    @torch.no_grad()
    def taps(self, x_nhwc: np.ndarray) -> dict[str, np.ndarray]:
        self.eval()
        x = nhwc_to_nchw(x_nhwc)
        b, _, height, width = x.shape
        rows, cols = height // self.patch_size, width // self.patch_size
        tokens = self.prepare_tokens(x)
        out = {}

        def grid(t):
            return t[:, 1:].reshape(b, rows, cols, -1).contiguous().numpy()

        for i, blk in enumerate(self.blocks):
            tokens = blk(tokens)
            out[f"block{i + 1}"] = grid(tokens)
        normed = self.norm(tokens)
        out["patch_tokens"] = grid(normed)
        out["cls_token"] = normed[:, 0].contiguous().numpy()
        return out
