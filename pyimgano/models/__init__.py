"""Compatibility shell for users of the earlier PyTorch pyimgano.

- :func:`create_model` / :class:`VisionDetector`: sklearn-style detector objects.
- :class:`TiledDetector`: the seed guide's overlapping-window wrapper.

Both wrap an immutable :class:`~pyimgano.DetectorState` and call the functional
core; nothing else in the library imports this package (the inference layer
reaches these objects through their ``__pyimgano_state__`` method).
"""

from pyimgano.models.tiled import TiledDetector
from pyimgano.models.vision import VisionDetector, create_model, list_models

__all__ = ["create_model", "VisionDetector", "TiledDetector", "list_models"]
