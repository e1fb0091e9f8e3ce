"""The explicit table of dataset layouts: name -> loader, and category listing."""

from __future__ import annotations

import os
from typing import Callable

from pyimgano.datasets._layout import available_categories
from pyimgano.datasets.custom import load_btad_split, load_custom_split, load_visa_split
from pyimgano.datasets.manifest import load_manifest_split, manifest_categories
from pyimgano.datasets.mvtec import load_mvtec_split
from pyimgano.datasets.split import DatasetError, DatasetSplit

__all__ = ["DATASET_LOADERS", "load_split", "list_categories"]

DATASET_LOADERS: dict[str, Callable[..., DatasetSplit]] = {
    "mvtec": load_mvtec_split,
    "visa": load_visa_split,
    "btad": load_btad_split,
    "custom": load_custom_split,
    "manifest": load_manifest_split,
}


def _check_name(name: str) -> str:
    if str(name) not in DATASET_LOADERS:
        raise ValueError(f"unknown dataset {name!r}; accepted: {sorted(DATASET_LOADERS)}")
    return str(name)


def load_split(name: str, root: str | os.PathLike, category: str | None = None) -> DatasetSplit:
    """Load a split by layout name (``mvtec``, ``visa``, ``btad``, ``custom``, ``manifest``).

    Raises:
        ValueError: an unknown name (the message lists the accepted ones), or the loader's own
            errors (see each loader; folder problems come as one :class:`DatasetError`).
    """
    return DATASET_LOADERS[_check_name(name)](root, category)


def list_categories(name: str, root: str | os.PathLike) -> list[str]:
    """Every category of a dataset, sorted: what ``category: "all"`` runs.

    Folder layouts: the sub-folders of ``root`` holding a ``train/`` folder (``visa`` also looks
    in ``root/visa_pytorch``); a ``custom`` root that is itself a dataset (has ``train/``) is the
    one category ``""``. ``manifest``: the distinct ``category`` values.

    Raises:
        ValueError: an unknown dataset name.
        DatasetError: a missing root, or a root without any category.
    """
    name = _check_name(name)
    if name == "manifest":
        return manifest_categories(root)
    if not os.path.isdir(root):
        raise DatasetError(f"{name} dataset root {str(root)!r} does not exist")
    if name == "custom" and os.path.isdir(os.path.join(root, "train")):
        return [""]
    found = available_categories(root)
    if name == "visa" and not found:
        found = available_categories(os.path.join(root, "visa_pytorch"))
    if not found:
        raise DatasetError(f"no {name} categories under {str(root)!r} (looked for sub-folders holding a train/ folder)")
    return found
