"""torchvision ResNet-18 ``state_dict`` -> ``models_jax.backbones.resnet.ResNet`` variables.

The rules cover BasicBlock and Bottleneck ResNets alike (``conv1..conv3``,
``bn1..bn3``, ``downsample.0/1``), so ``wide_resnet50_2`` and ``tiny_resnet``
reuse them.  The classifier ``fc`` is not part of the backbone and is ignored.
"""

from weights_convert.mapping import ArchMapping, Rule

__all__ = ["MAPPING", "TORCHVISION_RESNET_RULES", "TORCHVISION_RESNET_IGNORE"]


def _bn_rules(torch_prefix: str, flax_prefix: str) -> tuple[Rule, ...]:
    return (
        Rule(rf"{torch_prefix}\.weight", rf"params/{flax_prefix}/scale"),
        Rule(rf"{torch_prefix}\.bias", rf"params/{flax_prefix}/bias"),
        Rule(rf"{torch_prefix}\.running_mean", rf"batch_stats/{flax_prefix}/mean"),
        Rule(rf"{torch_prefix}\.running_var", rf"batch_stats/{flax_prefix}/var"),
    )


TORCHVISION_RESNET_RULES: tuple[Rule, ...] = (
    Rule(r"conv1\.weight", "params/conv1/kernel", "conv2d"),
    *_bn_rules("bn1", "bn1"),
    Rule(r"layer(\d)\.(\d+)\.conv(\d)\.weight", r"params/layer\1_\2/conv\3/kernel", "conv2d"),
    *_bn_rules(r"layer(\d)\.(\d+)\.bn(\d)", r"layer\1_\2/bn\3"),
    Rule(r"layer(\d)\.(\d+)\.downsample\.0\.weight", r"params/layer\1_\2/downsample_conv/kernel", "conv2d"),
    *_bn_rules(r"layer(\d)\.(\d+)\.downsample\.1", r"layer\1_\2/downsample_bn"),
)

TORCHVISION_RESNET_IGNORE: tuple[str, ...] = (r".*num_batches_tracked", r"fc\.(weight|bias)")

MAPPING = ArchMapping(arch="resnet18", rules=TORCHVISION_RESNET_RULES, ignore=TORCHVISION_RESNET_IGNORE)
