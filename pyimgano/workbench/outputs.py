"""From a recipe's :class:`CategoryResult` to what is written and shown for the category.

:func:`summarize_category` builds the category report (thresholds with provenance, the split
and its hold-out fingerprint, metrics, timings), the per-image records, the pictures (ROC, PRO,
score histogram when matplotlib is installed; review overlays always) and, with a run folder,
writes them. It returns a small :class:`CategorySummary` (no model, no maps) for the run's
aggregate, and the :class:`CategorySection` report.html shows.
"""

from __future__ import annotations

import collections
from typing import Any

import attrs

from pyimgano.fileio import json_plain
from pyimgano.workbench.config import WorkbenchConfig
from pyimgano.workbench.evaluation import per_image_records
from pyimgano.workbench.html_report import CategorySection
from pyimgano.workbench.plots import PLOTS_UNAVAILABLE, histogram_png, pro_png, roc_png
from pyimgano.workbench.review import render_review
from pyimgano.workbench.run_dir import RunDir, display_name
from pyimgano.workbench.steps import CategoryResult, relative_names

__all__ = ["CategorySummary", "category_report", "category_timing", "category_pictures", "summarize_category"]

_BRIEF = ("image_auroc", "average_precision", "precision", "recall", "f1", "pixel_auroc", "aupro", "threshold",
          "confusion")


@attrs.frozen(eq=False)
class CategorySummary:
    """Metrics, timings and written files of one category (plain values only)."""

    category: str
    metrics: dict
    timing: dict
    files: dict
    checkpoint: str | None

    def brief(self) -> dict[str, Any]:
        """The run report's per-category entry."""
        return {**{k: self.metrics.get(k) for k in _BRIEF}, "timing": self.timing, "report": self.files.get("report")}

    def headline(self) -> str:
        """One log line: the main metrics and speed."""
        m, t = self.metrics, self.timing

        def num(value, digits=4):
            return "n/a" if value is None else f"{value:.{digits}f}"

        c = m.get("confusion") or {}
        counts = f" (TP {c['tp']} FP {c['fp']} TN {c['tn']} FN {c['fn']})" if c else ""
        return (f"image AUROC {num(m.get('image_auroc'))}, AP {num(m.get('average_precision'))}, "
                f"F1 {num(m.get('f1'))}{counts}, pixel AUROC {num(m.get('pixel_auroc'))}, "
                f"AUPRO {num(m.get('aupro'))}; fit {num(t.get('fit_s'), 1)} s, {num(t.get('images_per_s'), 2)} images/s")


def category_timing(result: CategoryResult) -> dict[str, float | None]:
    """Seconds of fitting, calibration and scoring, and test images per second of scoring
    (decoding, the state's tiling / post-processing and the first call's compilation included)."""
    fitted, scored = result.fitted, result.scored
    n = len(scored.scores)
    return {
        "fit_s": None if fitted is None else round(fitted.fit_seconds, 3),
        "calibrate_s": None if fitted is None else round(fitted.calibrate_seconds, 3),
        "infer_s": round(scored.seconds, 3),
        "images_per_s": round(n / scored.seconds, 3) if scored.seconds > 0 else None,
    }


def _split_info(config: WorkbenchConfig, result: CategoryResult) -> dict[str, Any]:
    split = result.scored.split
    info: dict[str, Any] = {
        "dataset": split.dataset,
        "train": len(split.train_paths),
        "test": len(split.test_paths),
        "test_normal": len(split.test_paths) - split.num_anomalous,
        "test_anomalous": split.num_anomalous,
        "test_defect_types": dict(sorted(collections.Counter(split.test_defect_types).items())),
        "limit_train": config.dataset.limit_train,
        "limit_test": config.dataset.limit_test,
        "resize": config.dataset.resize,
    }
    if result.fitted is not None:
        h = result.fitted.holdout
        info.update(fit=len(h.fit_indices), calibration=len(h.calibration_indices), holdout_fraction=h.fraction,
                    holdout_seed=h.seed, split_sha256=result.fitted.split_sha256,
                    calibration_images=[relative_names(split.train_paths, config.dataset.root)[i]
                                        for i in h.calibration_indices])
    return info


def category_report(config: WorkbenchConfig, result: CategoryResult) -> dict[str, Any]:
    """The body of ``categories/<cat>/report.json`` (the run folder adds the header and files)."""
    state = result.state
    return json_plain({
        "category": display_name(result.category),
        "recipe": config.recipe,
        "detector": state.detector,
        "detector_config": attrs.asdict(state.config),
        "threshold": state.threshold,
        "threshold_provenance": state.provenance,
        "pixel_threshold": state.pixel_threshold,
        "pixel_threshold_provenance": state.pixel_provenance,
        "tiling": None if state.tiling is None else state.tiling.to_dict(),
        "postprocess": None if state.postprocess is None else state.postprocess.to_dict(),
        "split": _split_info(config, result),
        "metrics": result.metrics,
        "timing": category_timing(result),
        "checkpoint": result.checkpoint,
        **({"extra": result.extra} if result.extra else {}),
    })


def category_pictures(result: CategoryResult) -> tuple[dict[str, bytes], list[str]]:
    """``({"plots/roc.png": PNG, ...}, notes)``: the plots whose data exist (none without matplotlib)."""
    scored, metrics = result.scored, result.metrics
    plots: dict[str, bytes] = {}
    notes: list[str] = []
    if PLOTS_UNAVAILABLE is not None:
        return plots, [PLOTS_UNAVAILABLE]
    title = display_name(result.category)
    plots["plots/score_histogram.png"] = histogram_png(scored.labels, scored.scores, scored.threshold,
                                                       title=f"{title}: test scores")
    if metrics.get("image_auroc") is not None:
        plots["plots/roc.png"] = roc_png(scored.labels, scored.scores, scored.threshold, title=f"{title}: ROC")
    else:
        notes.append("no ROC curve: the test split lacks one of the classes")
    if scored.eval_maps is not None and metrics.get("aupro") is not None:
        plots["plots/pro.png"] = pro_png(scored.eval_masks, scored.eval_maps, metrics["aupro_fpr_limit"],
                                         metrics["aupro"], title=f"{title}: PRO")
    else:
        notes.append("no PRO curve: pixel metrics were not computed")
    return plots, notes


def summarize_category(config: WorkbenchConfig, result: CategoryResult, run: RunDir | None):
    """``(CategorySummary, CategorySection or None)``; with a run folder, writes the category's files."""
    timing = category_timing(result)
    name = display_name(result.category)
    if run is None:
        return CategorySummary(name, dict(result.metrics), timing, {}, result.checkpoint), None
    plots, plot_notes = category_pictures(result)
    review = render_review(result.state, result.scored, config.dataset.resize)
    pictures = dict(plots)
    for image in review:
        rank = sum(1 for name in pictures if name.startswith(f"review/{image.kind}_"))
        pictures[f"review/{image.kind}_{rank + 1}.png"] = image.png
    records = None
    if config.output.per_image_jsonl:
        records = per_image_records(result.scored, name,
                                    root_names=relative_names(result.scored.split.test_paths, config.dataset.root))
    files = run.write_category(result.category, category_report(config, result), records, pictures)
    summary = CategorySummary(name, dict(result.metrics), timing, files, result.checkpoint)
    notes = list(result.metrics.get("notes") or []) + [n for n in plot_notes if n != PLOTS_UNAVAILABLE]
    section = CategorySection(name=name, metrics=result.metrics, timing=timing, plots=plots,
                              review=review, notes=notes)
    return summary, section
