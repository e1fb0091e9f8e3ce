"""Folder layouts close to MVTec AD: ``custom``, ``visa`` (converted) and ``btad``.

- ``custom``: ``train/normal``, ``test/normal``, ``test/anomaly``, optional
  ``ground_truth/anomaly/<stem>_mask.png``; ``root`` may be the dataset folder itself (no
  category) or hold one folder per category.
- ``visa``: the MVTec-like tree written by VisA's ``prepare_data.py`` (``visa_pytorch``):
  ``train/good``, ``test/good``, ``test/bad``, ``ground_truth/bad/<stem>.png``. When
  ``<root>/<category>`` is absent, ``<root>/visa_pytorch/<category>`` is tried.
- ``btad``: ``train/ok``, ``test/ok``, ``test/ko``, ``ground_truth/ko/<stem>.png`` (or
  ``.bmp``).

In these layouts masks are optional as a whole: without ``ground_truth/<type>/`` the
anomalous images of that type get ``None`` masks; when the folder exists, every image of
that type must have a mask (a partial set would silently bias pixel metrics).
"""

from __future__ import annotations

import os
from pathlib import Path

from pyimgano.datasets._layout import FolderLayout, load_layout, resolve_category_dir
from pyimgano.datasets.split import DatasetSplit

__all__ = [
    "CUSTOM_LAYOUT",
    "VISA_LAYOUT",
    "BTAD_LAYOUT",
    "load_custom_split",
    "load_visa_split",
    "load_btad_split",
]

CUSTOM_LAYOUT = FolderLayout(
    dataset="custom",
    normal_folder="normal",
    mask_names=("{stem}_mask.png",),
    masks_required=False,
    anomaly_folders=("anomaly",),
)
VISA_LAYOUT = FolderLayout(
    dataset="visa", normal_folder="good", mask_names=("{stem}.png", "{stem}_mask.png"), masks_required=False
)
BTAD_LAYOUT = FolderLayout(
    dataset="btad", normal_folder="ok", mask_names=("{stem}.png", "{stem}.bmp", "{stem}_mask.png"), masks_required=False
)


def load_custom_split(root: str | os.PathLike, category: str | None = None) -> DatasetSplit:
    """List a ``custom`` dataset (``train/normal``, ``test/{normal,anomaly}``, optional masks).

    Args:
        root: the dataset folder, or the folder holding category folders.
        category: None/"" to read ``root`` itself, else ``<root>/<category>``.

    Returns:
        A :class:`DatasetSplit` with defect type ``normal``/``anomaly``.

    Raises:
        FileNotFoundError: missing folders, or ``ground_truth/anomaly`` exists but lacks a mask.
        ValueError: no images, or a ``test/`` folder other than ``normal``/``anomaly``.
    """
    category_dir = resolve_category_dir(root, category, "custom", optional=True)
    return load_layout(category_dir, CUSTOM_LAYOUT, "" if category is None else str(category))


def load_visa_split(root: str | os.PathLike, category: str) -> DatasetSplit:
    """List one category of VisA converted to its MVTec-like layout (see the module docstring).

    Raises:
        FileNotFoundError / ValueError: as :func:`load_custom_split`; a category is required.
    """
    nested = Path(root) / "visa_pytorch"
    if category and not (Path(root) / str(category)).is_dir() and (nested / str(category)).is_dir():
        root = nested
    category_dir = resolve_category_dir(root, category, "visa", optional=False)
    return load_layout(category_dir, VISA_LAYOUT, str(category))


def load_btad_split(root: str | os.PathLike, category: str) -> DatasetSplit:
    """List one BTAD category (``01``, ``02``, ``03``; see the module docstring).

    Raises:
        FileNotFoundError / ValueError: as :func:`load_custom_split`; a category is required.
    """
    category_dir = resolve_category_dir(root, category, "btad", optional=False)
    return load_layout(category_dir, BTAD_LAYOUT, str(category))
