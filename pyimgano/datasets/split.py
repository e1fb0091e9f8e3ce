"""``DatasetSplit``: the file lists of one category's train/test split, and mask loading.

A split only holds paths and labels (no pixels), so listing a dataset is cheap and the
result is an immutable, hashable value that recipes can pass around and record.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import attrs
import cv2
import numpy as np

__all__ = ["DatasetError", "DatasetSplit", "IMAGE_EXTENSIONS", "list_images", "load_mask", "load_masks", "limit_split"]

#: File suffixes (lower case) recognised as images when a folder is listed.
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class DatasetError(FileNotFoundError, ValueError):
    """A dataset folder or manifest that cannot be used; the message lists every problem found.

    Both a ``FileNotFoundError`` (missing folders, images, masks) and a ``ValueError`` (bad
    entries, unexpected folders), so callers catching either keep working.
    """


def _str_tuple(values: Iterable) -> tuple[str, ...]:
    return tuple(str(v) for v in values)


def _optional_str_tuple(values: Iterable) -> tuple[str | None, ...]:
    return tuple(None if v is None else str(v) for v in values)


def _int_tuple(values: Iterable) -> tuple[int, ...]:
    return tuple(int(v) for v in values)


@attrs.frozen
class DatasetSplit:
    """One category's split: normal training images and labelled test images.

    Attributes:
        train_paths: normal training images, sorted.
        test_paths: test images, sorted by (defect type folder, file name).
        test_labels: 0 = normal, 1 = anomalous, one per test path.
        test_mask_paths: ground-truth mask per test path; None for normal images and, in
            layouts where masks are optional, for anomalous images without one.
        test_defect_types: the folder each test image came from (``good``, ``broken_large``, ...).
        dataset: the layout name it was loaded with (``mvtec``, ``visa``, ``btad``, ``custom``).
        category: the category (sub-folder) name, empty when the root itself was loaded.

    Raises:
        ValueError: test fields of different lengths, labels other than 0/1, or a normal test
            image with a mask path.
    """

    train_paths: tuple[str, ...] = attrs.field(converter=_str_tuple)
    test_paths: tuple[str, ...] = attrs.field(converter=_str_tuple)
    test_labels: tuple[int, ...] = attrs.field(converter=_int_tuple)
    test_mask_paths: tuple[str | None, ...] = attrs.field(converter=_optional_str_tuple)
    test_defect_types: tuple[str, ...] = attrs.field(converter=_str_tuple)
    dataset: str = "custom"
    category: str = ""

    def __attrs_post_init__(self) -> None:
        lengths = {
            "test_paths": len(self.test_paths),
            "test_labels": len(self.test_labels),
            "test_mask_paths": len(self.test_mask_paths),
            "test_defect_types": len(self.test_defect_types),
        }
        if len(set(lengths.values())) != 1:
            raise ValueError(f"DatasetSplit test fields differ in length: {lengths}")
        bad = sorted({label for label in self.test_labels if label not in (0, 1)})
        if bad:
            raise ValueError(f"DatasetSplit test_labels must be 0 (normal) or 1 (anomalous), got {bad}")
        for path, label, mask in zip(self.test_paths, self.test_labels, self.test_mask_paths):
            if label == 0 and mask is not None:
                raise ValueError(f"normal test image {path!r} has a mask path {mask!r}; normal images have none")

    @property
    def num_anomalous(self) -> int:
        """Number of anomalous test images."""
        return sum(self.test_labels)

    @property
    def has_masks(self) -> bool:
        """True when there is an anomalous test image and every anomalous one has a mask."""
        anomalous_masks = [m for m, y in zip(self.test_mask_paths, self.test_labels) if y == 1]
        return bool(anomalous_masks) and all(m is not None for m in anomalous_masks)


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files directly inside ``folder`` (suffix in :data:`IMAGE_EXTENSIONS`, any case),
    skipping hidden files, sorted by name.

    Raises:
        FileNotFoundError: ``folder`` is not a directory.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"expected an image folder at {str(folder)!r}, but it does not exist")
    return sorted(
        (p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS),
        key=lambda p: p.name,
    )


def _check_size(size) -> tuple[int, int] | None:
    if size is None:
        return None
    try:
        height, width = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be (height, width) of two positive integers, got {size!r}") from None
    if height <= 0 or width <= 0:
        raise ValueError(f"size must be (height, width) of two positive integers, got {size!r}")
    return height, width


def load_mask(path: str | os.PathLike, size: Sequence[int] | None = None) -> np.ndarray:
    """Read a ground-truth mask: any non-zero pixel is a defect.

    Args:
        path: 8/16-bit gray or colour image (PNG, BMP, TIFF, ...); colour masks use the max
            over colour channels, an alpha channel is ignored.
        size: optional ``(height, width)``; the binary mask is resized with nearest-neighbour
            sampling at pixel centres (as PIL's NEAREST), so it stays exactly binary.

    Returns:
        bool[H, W] (``size`` when given).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file cannot be decoded as an image, or a bad ``size``.
    """
    path = Path(path)
    target = _check_size(size)
    if not path.is_file():
        raise FileNotFoundError(f"mask file {str(path)!r} does not exist")
    # imdecode on bytes instead of imread: imread returns None silently and fails on
    # non-ASCII paths on some platforms.
    raw = np.fromfile(path, dtype=np.uint8)
    decoded = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED) if raw.size else None
    if decoded is None:
        raise ValueError(f"cannot decode mask file {str(path)!r} as an image")
    if decoded.ndim == 3:
        decoded = decoded[..., :3].max(axis=2) if decoded.shape[2] >= 3 else decoded[..., 0]
    mask = decoded > 0
    if target is not None and mask.shape != target:
        mask = _resize_mask(mask, target)
    return mask


def _resize_mask(mask: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    height, width = size_hw
    # INTER_NEAREST_EXACT samples at pixel centres (INTER_NEAREST is shifted by half a pixel).
    resized = cv2.resize(mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST_EXACT)
    return resized.astype(bool)


def load_masks(mask_paths: Sequence[str | None], size: Sequence[int]) -> np.ndarray:
    """Stack the masks of a split's test images; None (normal image) gives an empty mask.

    Args:
        mask_paths: e.g. ``split.test_mask_paths``.
        size: ``(height, width)`` every mask is resized to (needed because normal images
            have no mask file to take a size from).

    Returns:
        bool[N, height, width].

    Raises:
        FileNotFoundError / ValueError: as :func:`load_mask`.
    """
    height, width = _check_size(size)
    out = np.zeros((len(mask_paths), height, width), dtype=bool)
    for index, path in enumerate(mask_paths):
        if path is not None:
            out[index] = load_mask(path, (height, width))
    return out


def limit_split(split: DatasetSplit, *, max_train: int | None = None, max_test: int | None = None) -> DatasetSplit:
    """A smaller split for quick runs, chosen deterministically.

    Training keeps its first ``max_train`` images. Testing keeps ``max_test`` images at evenly
    spaced positions of the sorted test list, so every defect-type folder stays represented
    as far as the budget allows (a prefix would keep only the first folders).

    Raises:
        ValueError: a limit below 1.
    """
    for name, value in (("max_train", max_train), ("max_test", max_test)):
        if value is not None and int(value) < 1:
            raise ValueError(f"{name} must be None or >= 1, got {value!r}")
    train = split.train_paths if max_train is None else split.train_paths[: int(max_train)]
    n_test = len(split.test_paths)
    if max_test is None or int(max_test) >= n_test:
        keep = range(n_test)
    else:
        keep = np.unique(np.floor(np.linspace(0, n_test - 1, int(max_test)) + 0.5).astype(int)).tolist()
    return attrs.evolve(
        split,
        train_paths=train,
        test_paths=[split.test_paths[i] for i in keep],
        test_labels=[split.test_labels[i] for i in keep],
        test_mask_paths=[split.test_mask_paths[i] for i in keep],
        test_defect_types=[split.test_defect_types[i] for i in keep],
    )
