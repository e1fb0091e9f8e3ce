"""Named :class:`DefectsConfig` presets.

``industrial-defects-fp40`` is the false-positive reduction baseline of the
original ``industrial-adapt-fp40`` recipe: a central ROI, a 2 px border
ignore, median-3 smoothing, hysteresis (high = pixel threshold, low = half of
it), shape filters against thin strips and ragged fragments, merging of
fragments one pixel apart, a 16 px minimum area, a 0.6 minimum peak score and
at most 20 regions by peak score.  The pixel threshold itself is resolved at
run time (``pixel_threshold_strategy`` stays automatic).  ``min_score_max =
0.6`` assumes maps on a roughly [0, 1] scale (normalised maps).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

from pyimgano.defects.config import DefectsConfig

__all__ = ["DEFECT_PRESETS", "get_defects_preset"]

DEFECT_PRESETS: Mapping[str, DefectsConfig] = MappingProxyType(
    {
        "industrial-defects-fp40": DefectsConfig(
            roi_xyxy_norm=(0.1, 0.1, 0.9, 0.9),
            border_ignore_px=2,
            map_smoothing="median",
            map_smoothing_ksize=3,
            hysteresis=True,
            min_fill_ratio=0.15,
            max_aspect_ratio=6.0,
            min_solidity=0.8,
            merge_nearby=True,
            merge_nearby_max_gap_px=1,
            min_area=16,
            min_score_max=0.6,
            max_regions=20,
            max_regions_sort_by="score_max",
        ),
    }
)


def get_defects_preset(name: str) -> DefectsConfig:
    """The preset config called ``name``.

    Raises:
      ValueError: unknown name (the message lists the accepted ones).
    """
    try:
        return DEFECT_PRESETS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown defects preset {name!r}; accepted: {sorted(DEFECT_PRESETS)}") from None
