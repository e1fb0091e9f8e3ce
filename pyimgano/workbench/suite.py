"""One evaluation over several datasets: a suite of (layout, root, category) entries, one table.

    suite = load_suite("benchmarks/suites/on_hand.json")            # or parse_dataset_spec("mvtec:/data/mvtec_ad:bottle")
    rows = benchmark_suite({}, suite, ["vision_patchcore"])          # per dataset, then a mean row per model

Each entry runs the config's recipe (``industrial-adapt`` by default: fit on the training images
less a seeded hold-out, calibrate the image threshold on the hold-out, score the test split) with
nothing written, through :func:`pyimgano.workbench.benchmark_models`. More datasets are more
entries in the suite file (or more ``--dataset LAYOUT:ROOT:CATEGORY`` flags), never more code.

Suite file (JSON, or YAML with PyYAML)::

    {"data_root": "../../../shared/datasets",
     "datasets": [{"name": "mvtec_ad/bottle", "dataset": "mvtec", "root": "mvtec_ad", "category": "bottle"}, ...]}

``data_root`` (optional) is resolved against the suite file's folder; an entry's relative
``root`` against ``data_root`` (else the suite file's folder). A ``data_root`` passed to
:func:`load_suite` replaces the file's (relative to the current directory).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import attrs
import numpy as np

from pyimgano.datasets import DATASET_LOADERS
from pyimgano.workbench.benchmark import benchmark_models
from pyimgano.workbench.config_io import read_config_file
from pyimgano.workbench.recipes import build_config
from pyimgano.workbench.schema import ConfigError, check_keys

__all__ = ["SUITE_COLUMNS", "SuiteDataset", "parse_dataset_spec", "load_suite", "benchmark_suite"]

#: Row keys, in table order (``tp fp tn fn``: confusion counts at the calibrated threshold,
#: positive = anomalous; summed in the mean row).
SUITE_COLUMNS = ("model", "dataset", "image_auroc", "pixel_auroc", "aupro", "tp", "fp", "tn", "fn", "fit_s",
                 "images_per_s")
_MEAN_KEYS = ("image_auroc", "average_precision", "f1", "pixel_auroc", "aupro", "fit_s", "images_per_s")
_SUM_KEYS = ("tp", "fp", "tn", "fn", "test_images", "infer_s")
_ENTRY_KEYS = ("name", "dataset", "root", "category")


@attrs.frozen
class SuiteDataset:
    """One dataset of a suite: a display ``name``, the loader (``dataset``: ``mvtec``, ``custom``, ...),
    its ``root`` folder and ``category`` (None for layouts without categories)."""

    name: str
    dataset: str
    root: str
    category: str | None = None


def _check_layout(layout: str, where: str) -> str:
    if layout not in DATASET_LOADERS:
        raise ConfigError(f"{where}: unknown dataset layout {layout!r}; accepted: {sorted(DATASET_LOADERS)}")
    return layout


def _default_name(root: str, category: str | None) -> str:
    base = Path(root).name or str(root)
    return f"{base}/{category}" if category else base


def parse_dataset_spec(text: str) -> SuiteDataset:
    """``LAYOUT:ROOT[:CATEGORY]`` -> :class:`SuiteDataset` named ``<root folder name>/<category>``.

    Raises:
        ConfigError: fewer than two parts, an empty root or an unknown layout.
    """
    layout, sep, rest = str(text).partition(":")
    if not sep or not rest:
        raise ConfigError(f"dataset {text!r}: expected LAYOUT:ROOT[:CATEGORY], e.g. mvtec:/data/mvtec_ad:bottle")
    root, _, category = rest.rpartition(":") if ":" in rest else (rest, "", "")
    if not root:
        raise ConfigError(f"dataset {text!r}: the ROOT part is empty; expected LAYOUT:ROOT[:CATEGORY]")
    _check_layout(layout, f"dataset {text!r}")
    return SuiteDataset(name=_default_name(root, category or None), dataset=layout, root=root,
                        category=category or None)


def _entry(raw: Any, index: int, base: Path) -> SuiteDataset:
    where = f"datasets[{index}]"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected an object with {list(_ENTRY_KEYS)}, got {raw!r}")
    check_keys(raw, _ENTRY_KEYS, where)
    for key in ("dataset", "root"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise ConfigError(f"{where}.{key}: required, a non-empty string")
    category = raw.get("category")
    if category is not None and not isinstance(category, str):
        raise ConfigError(f"{where}.category: expected a string, got {category!r}")
    root = Path(os.path.expanduser(raw["root"]))
    root = root if root.is_absolute() else base / root
    name = raw.get("name") or _default_name(str(root), category)
    return SuiteDataset(name=str(name), dataset=_check_layout(raw["dataset"], f"{where}.dataset"),
                        root=os.path.normpath(str(root)), category=category)


def load_suite(path: str | os.PathLike, *, data_root: str | os.PathLike | None = None) -> tuple[SuiteDataset, ...]:
    """The datasets of a suite file (module docstring), roots made absolute.

    Raises:
        ConfigError: an unreadable file, unknown keys, no datasets, an unknown layout or a
            duplicate name.
    """
    path = Path(path)
    data = read_config_file(path)
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: a suite file holds an object with 'datasets'")
    check_keys(data, ("data_root", "datasets"), str(path))
    folder = path.resolve().parent
    if data_root is not None:
        base = Path(os.path.expanduser(str(data_root))).resolve()
    elif data.get("data_root") is not None:
        base = (folder / os.path.expanduser(str(data["data_root"]))).resolve()
    else:
        base = folder
    entries = data.get("datasets")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: 'datasets' must be a non-empty list")
    suite = tuple(_entry(raw, i, base) for i, raw in enumerate(entries))
    names = [s.name for s in suite]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{path}: dataset names {duplicates} given more than once")
    return suite


def _mean_row(model: str, rows: Sequence[dict]) -> dict[str, Any]:
    row: dict[str, Any] = {"model": model, "dataset": "mean", "category": "mean", "datasets": len(rows)}
    for key in _MEAN_KEYS:
        values = [r[key] for r in rows if r.get(key) is not None]
        row[key] = float(np.mean(values)) if values else None
    for key in _SUM_KEYS:
        values = [r[key] for r in rows if r.get(key) is not None]
        row[key] = sum(values) if values else None
    return row


def benchmark_suite(
    raw_config: Mapping[str, Any],
    datasets: Sequence[SuiteDataset],
    models: Sequence[str],
    *,
    overrides: Mapping[str, Any] | None = None,
    model_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Rows of :data:`SUITE_COLUMNS` (plus ``category``, ``average_precision``, ``f1``,
    ``test_images``, ``infer_s``): one per model and dataset in suite order, then per model a
    ``mean`` row (metrics, fit seconds and images/s averaged over the datasets; confusion
    counts, test images and scoring seconds summed).

    ``raw_config`` is a workbench config mapping (recipe, seed, model, adaptation, ...); each
    dataset's ``dataset.name/root/category`` and ``overrides`` (dotted keys) are set over it.

    Raises:
        ConfigError: no datasets, or any error of :func:`benchmark_models` (checked per dataset).
    """
    if not datasets:
        raise ConfigError("a suite needs at least one dataset")
    per_model: dict[str, list[dict]] = {m: [] for m in models}
    for entry in datasets:
        config = build_config(raw_config, {**dict(overrides or {}), "dataset.name": entry.dataset,
                                           "dataset.root": entry.root, "dataset.category": entry.category,
                                           "model.name": models[0] if models else None})
        rows = benchmark_models(config, models, model_kwargs=model_kwargs, progress=progress)
        category_rows = [r for r in rows if r["category"] != "mean"]
        single = len({r["category"] for r in category_rows}) == 1
        for row in category_rows:
            row["dataset"] = entry.name if single else f"{entry.name}/{row['category']}"
            per_model[row["model"]].append(row)
    out: list[dict[str, Any]] = []
    for model in models:
        out.extend(per_model[model])
    for model in models:
        out.append(_mean_row(model, per_model[model]))
    return out
