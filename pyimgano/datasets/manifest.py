"""``manifest``: a dataset described by a JSONL file instead of a folder layout.

One JSON object per line (blank lines and lines starting with ``#`` are skipped)::

    {"path": "imgs/a.png", "split": "train"}
    {"path": "imgs/b.png", "split": "test", "label": 0}
    {"path": "imgs/c.png", "split": "test", "label": 1, "mask": "masks/c.png", "defect_type": "scratch"}
    {"path": "/abs/d.png", "split": "test", "label": 1, "category": "bottle"}

Keys: ``path`` (required), ``split`` (``train`` or ``test``, required), ``label`` (0 normal,
1 anomalous; required for test entries, 0 or absent for training entries), ``mask``
(optional, anomalous test entries only), ``category`` (optional; entries without one form the
category ``""``), ``defect_type`` (optional; default ``normal`` / ``anomaly`` by label).
Relative paths are resolved against the manifest's folder.

Order: training images sorted by path, test images by (defect type, path), so the order of
the lines never changes a result (and a manifest of a folder dataset, with the folder's
defect types, lists its images in the folder loader's order).

Every problem of the file (bad JSON, unknown keys, bad values, missing images or masks,
duplicates) is collected and reported in one :class:`~pyimgano.datasets.DatasetError`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import attrs

from pyimgano.datasets.split import DatasetError, DatasetSplit

__all__ = ["MANIFEST_KEYS", "ManifestEntry", "read_manifest", "manifest_categories", "load_manifest_split"]

#: The accepted keys of one manifest line.
MANIFEST_KEYS: tuple[str, ...] = ("path", "split", "label", "mask", "category", "defect_type")
_SPLITS = ("train", "test")
_SHOWN_PROBLEMS = 10


@attrs.frozen
class ManifestEntry:
    """One validated manifest line, paths resolved."""

    path: str
    split: str
    label: int
    mask: str | None
    category: str
    defect_type: str


def _error(path: Path, problems: list[str]) -> DatasetError:
    shown = problems[:_SHOWN_PROBLEMS]
    more = f"; ... ({len(problems) - _SHOWN_PROBLEMS} more)" if len(problems) > _SHOWN_PROBLEMS else ""
    return DatasetError(f"manifest {str(path)!r} is not usable ({len(problems)} problem(s)): " + "; ".join(shown) + more)


def _resolve(base: Path, value: str) -> str:
    p = Path(value)
    return str(p if p.is_absolute() else base / p)


def _parse_line(obj: Any, where: str, base: Path, problems: list[str]) -> ManifestEntry | None:
    if not isinstance(obj, dict):
        problems.append(f"{where}: expected a JSON object, got {type(obj).__name__}")
        return None
    unknown = sorted(set(obj) - set(MANIFEST_KEYS))
    if unknown:
        problems.append(f"{where}: unknown key(s) {unknown}; accepted: {list(MANIFEST_KEYS)}")
    path, split, label = obj.get("path"), obj.get("split"), obj.get("label")
    mask, category, defect_type = obj.get("mask"), obj.get("category", ""), obj.get("defect_type")
    before = len(problems)
    if not isinstance(path, str) or not path:
        problems.append(f"{where}: 'path' must be a non-empty string, got {path!r}")
    if split not in _SPLITS:
        problems.append(f"{where}: 'split' must be one of {list(_SPLITS)}, got {split!r}")
    if split == "train" and label not in (None, 0):
        problems.append(f"{where}: training entries must be normal (label 0 or absent), got label {label!r}")
    if split == "test" and (isinstance(label, bool) or label not in (0, 1)):
        problems.append(f"{where}: test entries need 'label' 0 (normal) or 1 (anomalous), got {label!r}")
    if mask is not None and (not isinstance(mask, str) or not mask):
        problems.append(f"{where}: 'mask' must be a path string or null, got {mask!r}")
    elif mask is not None and not (split == "test" and label == 1):
        problems.append(f"{where}: only anomalous test entries (split test, label 1) may have a 'mask'")
    if category is None:
        category = ""
    if not isinstance(category, str):
        problems.append(f"{where}: 'category' must be a string, got {category!r}")
    if defect_type is not None and (not isinstance(defect_type, str) or not defect_type):
        problems.append(f"{where}: 'defect_type' must be a non-empty string, got {defect_type!r}")
    if len(problems) > before:
        return None
    label = int(label or 0)
    return ManifestEntry(
        path=_resolve(base, path),
        split=split,
        label=label,
        mask=None if mask is None else _resolve(base, mask),
        category=category,
        defect_type=defect_type or ("anomaly" if label else "normal"),
    )


def read_manifest(path: str | os.PathLike) -> list[ManifestEntry]:
    """Read and validate every line of a manifest (module docstring); checks that files exist.

    Raises:
        DatasetError: the file is missing or unreadable, or lists every problem of its lines.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"manifest file {str(path)!r} does not exist (dataset 'manifest' takes the JSONL file as root)")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read manifest {str(path)!r}: {exc}") from None
    base = path.parent
    problems: list[str] = []
    entries: list[ManifestEntry] = []
    seen: dict[tuple[str, str, str], int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"line {number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: not JSON ({exc.msg})")
            continue
        entry = _parse_line(obj, where, base, problems)
        if entry is None:
            continue
        key = (entry.category, entry.split, entry.path)
        if key in seen:
            problems.append(f"{where}: {entry.path!r} is listed twice in split {entry.split!r} (first on line {seen[key]})")
            continue
        seen[key] = number
        if not Path(entry.path).is_file():
            problems.append(f"{where}: image {entry.path!r} does not exist")
        if entry.mask is not None and not Path(entry.mask).is_file():
            problems.append(f"{where}: mask {entry.mask!r} does not exist")
        entries.append(entry)
    if not entries and not problems:
        problems.append("no entries")
    if problems:
        raise _error(path, problems)
    return entries


def manifest_categories(path: str | os.PathLike) -> list[str]:
    """The distinct categories of a manifest, sorted (``""`` for entries without one).

    Raises:
        DatasetError: as :func:`read_manifest`.
    """
    return sorted({entry.category for entry in read_manifest(path)})


def load_manifest_split(root: str | os.PathLike, category: str | None = None) -> DatasetSplit:
    """The split of one category of a manifest.

    Args:
        root: the manifest JSONL file.
        category: the category to keep; None or ``""`` keeps the entries without a category, or
            all entries when the manifest has exactly one category.

    Returns:
        A :class:`DatasetSplit` with ``dataset="manifest"`` (order in the module docstring).

    Raises:
        DatasetError: as :func:`read_manifest`; an unknown category (the message lists the
            manifest's categories); a category without training or test entries.
    """
    path = Path(root)
    entries = read_manifest(path)
    categories = sorted({e.category for e in entries})
    wanted = "" if category is None else str(category)
    if wanted == "" and "" not in categories and len(categories) == 1:
        wanted = categories[0]
    if wanted not in categories:
        raise DatasetError(
            f"category {wanted!r} is not in manifest {str(path)!r}; its categories: {categories}"
            + ("" if wanted else " (choose one, or 'all')")
        )
    chosen = [e for e in entries if e.category == wanted]
    train = sorted(e.path for e in chosen if e.split == "train")
    test = sorted((e for e in chosen if e.split == "test"), key=lambda e: (e.defect_type, e.path))
    problems = []
    if not train:
        problems.append(f"category {wanted!r} has no training entries")
    if not test:
        problems.append(f"category {wanted!r} has no test entries")
    if problems:
        raise _error(path, problems)
    return DatasetSplit(
        train_paths=train,
        test_paths=[e.path for e in test],
        test_labels=[e.label for e in test],
        test_mask_paths=[e.mask for e in test],
        test_defect_types=[e.defect_type for e in test],
        dataset="manifest",
        category=wanted,
    )
