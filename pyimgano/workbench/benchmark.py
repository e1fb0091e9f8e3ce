"""Comparing detectors: the same recipe for each model, one row per (model, category).

    rows = benchmark_models(config, ["vision_patchcore", "vision_padim"])

Each model runs ``config`` with ``model.name`` replaced and nothing written
(``output.save_run`` false). ``config.model.model_kwargs`` apply to every model (so keep them
to fields all of them have); ``model_kwargs={name: {...}}`` adds fields for one model. With several categories each model also gets a ``mean`` row (metrics averaged over its
categories, seconds summed, images/s over all test images).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import attrs

from pyimgano.workbench.config import WorkbenchConfig
from pyimgano.workbench.runner import run_workbench
from pyimgano.workbench.schema import ConfigError

__all__ = ["BENCHMARK_COLUMNS", "benchmark_models"]

#: Row keys, in table order.
BENCHMARK_COLUMNS = ("model", "category", "image_auroc", "average_precision", "f1", "pixel_auroc", "aupro",
                     "fit_s", "images_per_s")


def _frozen(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """JSON lists as tuples, as :func:`pyimgano.workbench.parse_config` stores model kwargs."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}


def _row(model: str, category: str, metrics: dict, timing: dict) -> dict[str, Any]:
    row = {"model": model, "category": category or "default"}
    row.update({k: metrics.get(k) for k in ("image_auroc", "average_precision", "f1", "pixel_auroc", "aupro")})
    confusion = metrics.get("confusion") or {}
    row.update({k: confusion.get(k) for k in ("tp", "fp", "tn", "fn")})
    row.update(fit_s=timing.get("fit_s"), images_per_s=timing.get("images_per_s"))
    return row


def benchmark_models(
    config: WorkbenchConfig,
    models: Sequence[str],
    *,
    model_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Rows of :data:`BENCHMARK_COLUMNS` (plus the confusion counts ``tp fp tn fn`` at the calibrated
    threshold, ``test_images``, ``infer_s``) for each model and category.

    Raises:
        ConfigError: no models, a model named twice, per-model kwargs for a model not compared,
            or any error of :func:`run_workbench`.
    """
    extra = dict(model_kwargs or {})
    stray = sorted(set(extra) - set(models))
    if stray:
        raise ConfigError(f"model.model_kwargs: kwargs for {stray}, which are not among the compared models {list(models)}")
    if not models:
        raise ConfigError("model: name at least one detector to benchmark")
    duplicates = sorted({m for m in models if list(models).count(m) > 1})
    if duplicates:
        raise ConfigError(f"model: {duplicates} named more than once")
    rows: list[dict[str, Any]] = []
    for name in models:
        kwargs = {**config.model.kwargs, **_frozen(extra.get(name, {}))}
        run_config = attrs.evolve(
            config,
            model=attrs.evolve(config.model, name=name, model_kwargs=tuple(sorted(kwargs.items()))),
            output=attrs.evolve(config.output, save_run=False),
        )
        outcome = run_workbench(run_config, progress=progress)
        model_rows = []
        for summary in outcome.categories:
            row = _row(name, summary.category, summary.metrics, summary.timing)
            row["test_images"] = summary.metrics["counts"]["test"]
            row["infer_s"] = summary.timing.get("infer_s")
            model_rows.append(row)
        rows.extend(model_rows)
        if len(model_rows) > 1:
            mean = outcome.report["aggregate"]["mean"]
            images = sum(r["test_images"] for r in model_rows)
            seconds = sum(r["infer_s"] or 0.0 for r in model_rows)
            fit = [r["fit_s"] for r in model_rows if r["fit_s"] is not None]
            summary_row = _row(name, "mean", mean, {"fit_s": sum(fit) if fit else None,
                                                    "images_per_s": images / seconds if seconds else None})
            summary_row.update(test_images=images, infer_s=seconds)
            rows.append(summary_row)
    return rows
