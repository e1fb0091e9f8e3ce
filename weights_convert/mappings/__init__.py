"""Per-architecture torch -> Flax key tables, one module each, looked up by backbone name."""

from __future__ import annotations

import importlib

from weights_convert.mapping import ArchMapping

__all__ = ["MAPPING_ARCHS", "get_mapping"]

# Explicit table (no module scanning): backbone name -> module under weights_convert.mappings.
MAPPING_ARCHS: tuple[str, ...] = (
    "efficientnet_lite0",
    "efficientnet_lite1",
    "efficientnet_lite2",
    "resnet18",
    "wide_resnet50_2",
    "dinov2_vits14",
    "tiny_resnet",
)


def get_mapping(arch: str) -> ArchMapping:
    """The :class:`~weights_convert.mapping.ArchMapping` of backbone ``arch``.

    Raises:
      ValueError: ``arch`` has no mapping table (the message lists the accepted names).
    """
    if arch not in MAPPING_ARCHS:
        raise ValueError(f"no weight mapping for arch {arch!r}; accepted: {list(MAPPING_ARCHS)}")
    mapping = importlib.import_module(f"weights_convert.mappings.{arch}").MAPPING
    if mapping.arch != arch:
        raise RuntimeError(f"weights_convert.mappings.{arch} declares arch {mapping.arch!r}")
    return mapping
