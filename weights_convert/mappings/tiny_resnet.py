"""``tiny_resnet`` (test backbone) in torchvision ResNet layout -> Flax variables (ResNet-18's rules)."""

from weights_convert.mapping import ArchMapping
from weights_convert.mappings.resnet18 import TORCHVISION_RESNET_IGNORE, TORCHVISION_RESNET_RULES

__all__ = ["MAPPING"]

MAPPING = ArchMapping(arch="tiny_resnet", rules=TORCHVISION_RESNET_RULES, ignore=TORCHVISION_RESNET_IGNORE)
