"""torchvision Wide ResNet-50-2 ``state_dict`` -> Flax variables (same rules as ResNet-18)."""

from weights_convert.mapping import ArchMapping
from weights_convert.mappings.resnet18 import TORCHVISION_RESNET_IGNORE, TORCHVISION_RESNET_RULES

__all__ = ["MAPPING"]

MAPPING = ArchMapping(arch="wide_resnet50_2", rules=TORCHVISION_RESNET_RULES, ignore=TORCHVISION_RESNET_IGNORE)
