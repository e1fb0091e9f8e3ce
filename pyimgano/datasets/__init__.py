"""Dataset layouts (file lists, no pixels) and a synthetic inspection set.

Layouts: ``mvtec`` (MVTec AD), ``visa`` (VisA converted to its MVTec-like tree), ``btad``,
``custom`` (``train/normal``, ``test/{normal,anomaly}``, optional masks) and ``manifest`` (a
JSONL file of ``{path, split, label, mask?, category?}``). Every loader returns a
:class:`DatasetSplit`; :func:`load_split` picks one by name, :func:`list_categories` lists a
dataset's categories, :func:`load_frames` decodes (and resizes) images. A bad folder or manifest
raises one :class:`DatasetError` listing every problem. See docs/datasets.md.
"""

from pyimgano.datasets.catalog import DATASET_LOADERS, list_categories, load_split
from pyimgano.datasets.custom import load_btad_split, load_custom_split, load_visa_split
from pyimgano.datasets.frames import check_resize, load_frame, load_frames, resize_to
from pyimgano.datasets.manifest import MANIFEST_KEYS, load_manifest_split, manifest_categories, read_manifest
from pyimgano.datasets.mvtec import load_mvtec_split
from pyimgano.datasets.split import (
    IMAGE_EXTENSIONS,
    DatasetError,
    DatasetSplit,
    limit_split,
    list_images,
    load_mask,
    load_masks,
)
from pyimgano.datasets.synthetic import DEFECT_TYPES, make_synthetic_inspection_set

__all__ = [
    "DatasetSplit",
    "DatasetError",
    "MANIFEST_KEYS",
    "list_categories",
    "load_manifest_split",
    "manifest_categories",
    "read_manifest",
    "check_resize",
    "load_frame",
    "load_frames",
    "resize_to",
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
