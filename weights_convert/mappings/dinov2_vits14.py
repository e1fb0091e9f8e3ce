"""facebookresearch/dinov2 hub ``dinov2_vits14`` ``state_dict`` -> ``DinoViT`` variables.

Keys as in ``dinov2_vits14_pretrain.pth`` (``block_chunks=0``): ``cls_token``,
``pos_embed``, ``patch_embed.proj``, ``blocks.{i}.norm1/attn.qkv/attn.proj/ls1.gamma/
norm2/mlp.fc1/mlp.fc2/ls2.gamma``, ``norm``.  ``mask_token`` is only used in
training (masked image modelling) and is ignored.  A checkpoint saved with
``block_chunks=1`` (``blocks.0.{i}...``) does not match and is reported as unmatched.
"""

from weights_convert.mapping import ArchMapping, Rule

__all__ = ["MAPPING"]


def _ln(torch_prefix: str, flax_prefix: str) -> tuple[Rule, ...]:
    return (
        Rule(rf"{torch_prefix}\.weight", rf"params/{flax_prefix}/scale"),
        Rule(rf"{torch_prefix}\.bias", rf"params/{flax_prefix}/bias"),
    )


def _dense(torch_prefix: str, flax_prefix: str) -> tuple[Rule, ...]:
    return (
        Rule(rf"{torch_prefix}\.weight", rf"params/{flax_prefix}/kernel", "linear"),
        Rule(rf"{torch_prefix}\.bias", rf"params/{flax_prefix}/bias"),
    )


MAPPING = ArchMapping(
    arch="dinov2_vits14",
    rules=(
        Rule(r"cls_token", "params/cls_token"),
        Rule(r"pos_embed", "params/pos_embed"),
        Rule(r"patch_embed\.proj\.weight", "params/patch_embed/kernel", "conv2d"),
        Rule(r"patch_embed\.proj\.bias", "params/patch_embed/bias"),
        *_ln(r"blocks\.(\d+)\.(norm[12])", r"blocks_\1/\2"),
        *_dense(r"blocks\.(\d+)\.attn\.(qkv|proj)", r"blocks_\1/attn/\2"),
        *_dense(r"blocks\.(\d+)\.mlp\.(fc[12])", r"blocks_\1/mlp/\2"),
        Rule(r"blocks\.(\d+)\.(ls[12])\.gamma", r"params/blocks_\1/\2"),
        *_ln(r"norm", "norm"),
    ),
    ignore=(r"mask_token",),
)
