"""Named model presets (``--preset``, the workbench's ``model.preset``): plain config overrides per detector.

A preset only picks values of the detector's own config fields (image size,
coreset ratio, ...); ``--model-kwargs`` and ``--backbone`` are applied on top,
so an explicit option always wins over the preset.  The names follow the
original pyimgano's ``industrial-*`` presets (``industrial-balanced`` appears
in the workbench guide); the values are chosen for EfficientNet-Lite0, the
default backbone here.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping

__all__ = ["MODEL_PRESETS", "preset_overrides"]

MODEL_PRESETS: Mapping[str, Mapping[str, Mapping[str, Any]]] = MappingProxyType(
    {
        "vision_patchcore": MappingProxyType(
            {
                # Fast: small input and a 1 % coreset (quick fit, quick kNN).
                "industrial-fast": MappingProxyType({"image_size": (224, 224), "coreset_ratio": 0.01}),
                # The paper's 10 % coreset at the paper's 224 input (PatchCore-10%).
                "industrial-balanced": MappingProxyType({"image_size": (224, 224), "coreset_ratio": 0.1}),
                # Larger input for small defects, a 25 % coreset (PatchCore-25%).
                "industrial-accurate": MappingProxyType({"image_size": (320, 320), "coreset_ratio": 0.25}),
            }
        ),
        "vision_padim": MappingProxyType(
            {
                "industrial-fast": MappingProxyType({"image_size": (224, 224), "d_reduced": 50}),
                "industrial-balanced": MappingProxyType({"image_size": (224, 224), "d_reduced": 100}),
                "industrial-accurate": MappingProxyType({"image_size": (256, 256), "d_reduced": 100}),
            }
        ),
    }
)


def preset_overrides(model: str, preset: str) -> dict[str, Any]:
    """Config overrides of ``preset`` for detector ``model``.

    Raises:
      ValueError: no presets for the detector, or an unknown preset name
        (the message lists the accepted ones).
    """
    table = MODEL_PRESETS.get(model)
    if not table:
        with_presets = sorted(MODEL_PRESETS)
        raise ValueError(f"--preset {preset!r}: detector {model!r} has no presets; detectors with presets: {with_presets}")
    if preset not in table:
        raise ValueError(f"--preset {preset!r} is not a preset of {model}; accepted: {sorted(table)}")
    return dict(table[preset])
