"""Dataset layouts (file lists, no pixels) and a synthetic inspection set.

Layouts: ``mvtec`` (MVTec AD), ``visa`` (VisA converted to its MVTec-like tree), ``btad`` and
``custom`` (``train/normal``, ``test/{normal,anomaly}``, optional masks). Every loader returns
a :class:`DatasetSplit`; :func:`load_split` picks one by name. See docs/datasets.md.
"""

from pyimgano.datasets.catalog import DATASET_LOADERS, load_split
from pyimgano.datasets.custom import load_btad_split, load_custom_split, load_visa_split
from pyimgano.datasets.mvtec import load_mvtec_split
from pyimgano.datasets.split import IMAGE_EXTENSIONS, DatasetSplit, limit_split, list_images, load_mask, load_masks
from pyimgano.datasets.synthetic import DEFECT_TYPES, make_synthetic_inspection_set

__all__ = [
    "DatasetSplit",
    "IMAGE_EXTENSIONS",
    "DATASET_LOADERS",
    "DEFECT_TYPES",
    "load_split",
    "load_mvtec_split",
    "load_visa_split",
    "load_btad_split",
    "load_custom_split",
    "list_images",
    "load_mask",
    "load_masks",
    "limit_split",
    "make_synthetic_inspection_set",
]
