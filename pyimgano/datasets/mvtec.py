"""MVTec AD layout: ``<root>/<category>/{train/good, test/<type>, ground_truth/<type>/<stem>_mask.png}``.

Every anomalous test image must have its mask (the official archive ships all of them), so
a missing one is an error rather than a silently weaker pixel evaluation.
"""

from __future__ import annotations

import os

from pyimgano.datasets._layout import FolderLayout, load_layout, resolve_category_dir
from pyimgano.datasets.split import DatasetSplit, load_mask

__all__ = ["MVTEC_LAYOUT", "load_mvtec_split", "load_mask"]

MVTEC_LAYOUT = FolderLayout(dataset="mvtec", normal_folder="good", mask_names=("{stem}_mask.png",), masks_required=True)


def load_mvtec_split(root: str | os.PathLike, category: str) -> DatasetSplit:
    """List one MVTec AD category.

    Args:
        root: the folder holding the category folders (e.g. ``.../mvtec_ad``).
        category: e.g. ``"bottle"``.

    Returns:
        A :class:`DatasetSplit`: ``train/good`` images; test images of every ``test/<type>``
        folder sorted by (type, file name), label 0 for ``good`` and 1 otherwise, with the
        mask ``ground_truth/<type>/<stem>_mask.png`` for each anomalous image.

    Raises:
        FileNotFoundError: missing root, category (the message lists those present), folders
            or masks (the message lists the missing mask paths).
        ValueError: no category given, or no train/test images.
    """
    category_dir = resolve_category_dir(root, category, "mvtec", optional=False)
    return load_layout(category_dir, MVTEC_LAYOUT, str(category))
