"""One folder-layout reader shared by the MVTec-like loaders (mvtec, visa, btad, custom)."""

from __future__ import annotations

import os
from pathlib import Path

import attrs

from pyimgano.datasets.split import IMAGE_EXTENSIONS, DatasetError, DatasetSplit, list_images

__all__ = ["FolderLayout", "available_categories", "resolve_category_dir", "load_layout"]


@attrs.frozen
class FolderLayout:
    """Where one dataset family keeps its files, relative to ``<root>/<category>``.

    ``train/<normal_folder>`` holds the training images; ``test/<normal_folder>`` the normal
    test images; every other ``test/<type>`` folder (or only ``anomaly_folders`` when given) a
    defect type, with masks in ``ground_truth/<type>/`` named by ``mask_names`` (tried in order,
    ``{stem}`` = image file name without suffix).
    """

    dataset: str
    normal_folder: str
    mask_names: tuple[str, ...]
    masks_required: bool
    anomaly_folders: tuple[str, ...] | None = None


def available_categories(root: str | os.PathLike) -> list[str]:
    """Sub-folders of ``root`` that hold a ``train/`` folder (the categories of a folder dataset), sorted."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "train").is_dir())


def resolve_category_dir(root: str | os.PathLike, category: str | None, dataset: str, *, optional: bool) -> Path:
    """``<root>/<category>`` (or ``root`` itself when ``optional`` and no category), checked to exist."""
    root_path = Path(root)
    if not root_path.is_dir():
        raise FileNotFoundError(f"{dataset} dataset root {str(root_path)!r} does not exist")
    if category is None or str(category) == "":
        if optional:
            return root_path
        raise ValueError(
            f"{dataset} needs a category; categories under {str(root_path)!r}: {available_categories(root_path)}"
        )
    name = str(category)
    if name in (".", "..") or "/" in name or "\\" in name:
        raise ValueError(f"category must be a plain folder name, got {name!r}")
    category_dir = root_path / name
    if not category_dir.is_dir():
        raise FileNotFoundError(
            f"{dataset} category {name!r} not found under {str(root_path)!r}; "
            f"categories there: {available_categories(root_path)}"
        )
    return category_dir


def _find_mask(gt_type_dir: Path, image: Path, layout: FolderLayout) -> Path | None:
    for pattern in layout.mask_names:
        candidate = gt_type_dir / pattern.format(stem=image.stem)
        if candidate.is_file():
            return candidate
    return None


def load_layout(category_dir: Path, layout: FolderLayout, category: str) -> DatasetSplit:
    """List one category; see :class:`FolderLayout`.

    Every problem of the folder is collected first and reported in one error, so a
    bad folder is fixed in one go rather than one missing piece per run.

    Raises:
        DatasetError: (a ``FileNotFoundError`` and ``ValueError``) listing every problem: a
            missing ``train/<normal>`` or ``test`` folder, no training or test image, an
            unexpected test folder, missing masks.
    """
    problems: list[str] = []
    train_dir = category_dir / "train" / layout.normal_folder
    train: list[Path] = []
    if not train_dir.is_dir():
        problems.append(f"missing training folder {str(train_dir)!r}")
    else:
        train = list_images(train_dir)
        if not train:
            problems.append(f"no training images in {str(train_dir)!r} (looked for {', '.join(IMAGE_EXTENSIONS)})")

    test_dir = category_dir / "test"
    type_folders: list[str] = []
    if not test_dir.is_dir():
        problems.append(f"missing test folder {str(test_dir)!r}")
    else:
        type_folders = sorted(p.name for p in test_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if layout.anomaly_folders is not None:
        accepted = (layout.normal_folder, *layout.anomaly_folders)
        unexpected = [name for name in type_folders if name not in accepted]
        if unexpected:
            problems.append(
                f"unexpected folder(s) {unexpected} in {str(test_dir)!r} for the {layout.dataset} layout; "
                f"accepted: {list(accepted)}"
            )
        type_folders = [name for name in type_folders if name in accepted]

    paths: list[str] = []
    labels: list[int] = []
    masks: list[str | None] = []
    types: list[str] = []
    missing: list[str] = []
    for type_name in type_folders:
        images = list_images(test_dir / type_name)
        is_normal = type_name == layout.normal_folder
        gt_dir = category_dir / "ground_truth" / type_name
        look_for_masks = not is_normal and (layout.masks_required or gt_dir.is_dir())
        for image in images:
            mask = None
            if look_for_masks:
                mask = _find_mask(gt_dir, image, layout)
                if mask is None:
                    missing.append(str(gt_dir / layout.mask_names[0].format(stem=image.stem)))
            paths.append(str(image))
            labels.append(0 if is_normal else 1)
            masks.append(None if mask is None else str(mask))
            types.append(type_name)
    if missing:
        shown = missing[:5] + ([f"... ({len(missing) - 5} more)"] if len(missing) > 5 else [])
        problems.append(
            f"{len(missing)} anomalous test image(s) have no ground-truth mask; expected e.g. {shown} "
            f"(names tried: {list(layout.mask_names)})"
        )
    if test_dir.is_dir() and not paths:
        problems.append(f"no test images in {str(test_dir)!r} (folders found: {type_folders})")
    if problems:
        raise DatasetError(
            f"{layout.dataset} dataset folder {str(category_dir)!r} is not usable ({len(problems)} problem(s)): "
            + "; ".join(problems)
        )
    return DatasetSplit(
        train_paths=[str(p) for p in train],
        test_paths=paths,
        test_labels=labels,
        test_mask_paths=masks,
        test_defect_types=types,
        dataset=layout.dataset,
        category=category,
    )
