"""The seed guide's import path for tiling: ``from pyimgano.inference.tiling import TiledDetector``.

A compatibility alias, part of the shell: the pure tile functions live in
:mod:`pyimgano.tiling` and ``TiledDetector`` in :mod:`pyimgano.models.tiled`.
Nothing in the library imports this module.
"""

from pyimgano.models.tiled import TiledDetector
from pyimgano.tiling import (
    MAP_REDUCES,
    SCORE_REDUCES,
    TileConfig,
    TilePlan,
    plan_tiles,
    reduce_tile_scores,
    stitch,
    tile,
    tiled_forward,
    window_weights,
)

__all__ = [
    "TiledDetector",
    "TileConfig",
    "TilePlan",
    "plan_tiles",
    "tile",
    "stitch",
    "window_weights",
    "reduce_tile_scores",
    "tiled_forward",
    "SCORE_REDUCES",
    "MAP_REDUCES",
]
