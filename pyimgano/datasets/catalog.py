"""The explicit table of dataset layouts: name -> loader."""

from __future__ import annotations

import os
from typing import Callable

from pyimgano.datasets.custom import load_btad_split, load_custom_split, load_visa_split
from pyimgano.datasets.mvtec import load_mvtec_split
from pyimgano.datasets.split import DatasetSplit

__all__ = ["DATASET_LOADERS", "load_split"]

DATASET_LOADERS: dict[str, Callable[..., DatasetSplit]] = {
    "mvtec": load_mvtec_split,
    "visa": load_visa_split,
    "btad": load_btad_split,
    "custom": load_custom_split,
}


def load_split(name: str, root: str | os.PathLike, category: str | None = None) -> DatasetSplit:
    """Load a split by layout name (``mvtec``, ``visa``, ``btad``, ``custom``).

    Raises:
        ValueError: an unknown name (the message lists the accepted ones), or the loader's own
            errors (see each loader).
    """
    loader = DATASET_LOADERS.get(str(name))
    if loader is None:
        raise ValueError(f"unknown dataset {name!r}; accepted: {sorted(DATASET_LOADERS)}")
    return loader(root, category)
