"""Running a recipe over the categories of a dataset: :func:`run_workbench` (``pyimgano-train``).

    config = build_config(read_config_file("cfg.json"), {"dataset.root": "/data/mvtec_ad"})
    outcome = run_workbench(config, export_infer_config=True)
    outcome.report["aggregate"]["mean"]["image_auroc"]

Order: check the recipe can run, the device, the detector settings, and list every
category's split (all before any file is written); claim the run folder; per category call the recipe, then write
its reports, records, pictures; then the aggregate, the infer-config, report.html, and last
the run's report.json with ``"status": "complete"`` (:mod:`pyimgano.workbench.run_dir`).
"""

from __future__ import annotations

import datetime
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import attrs

from pyimgano.datasets import list_categories
from pyimgano.fileio import atomic_write_json
from pyimgano.workbench.config import ALL_CATEGORIES, WorkbenchConfig, config_to_mapping
from pyimgano.workbench.context import RunContext
from pyimgano.workbench.detector import check_device, make_detector_config
from pyimgano.workbench.evaluation import aggregate
from pyimgano.workbench.html_report import CategorySection, render_html
from pyimgano.workbench.infer_config import infer_config_payload, multi_category_payload
from pyimgano.workbench.outputs import CategorySummary, summarize_category
from pyimgano.workbench.plots import PLOTS_UNAVAILABLE
from pyimgano.workbench.recipes import check_available, get_recipe
from pyimgano.workbench.run_dir import RunDir, category_dirname, display_name, environment_info, utc_timestamp
from pyimgano.workbench.schema import ConfigError
from pyimgano.workbench.steps import CategoryResult, load_category

__all__ = ["RunOutcome", "resolve_categories", "default_output_dir", "run_workbench"]

log = logging.getLogger("pyimgano.workbench")


@attrs.frozen(eq=False)
class RunOutcome:
    """The run's report body (as written to report.json), its folder and the per-category summaries."""

    report: dict
    run_dir: Path | None
    categories: tuple[CategorySummary, ...]


def resolve_categories(config: WorkbenchConfig) -> list[str]:
    """The categories to run: ``dataset.category``, or every category for ``"all"``
    (``[""]`` for a ``custom`` / ``manifest`` dataset without categories).

    Raises:
        DatasetError: a missing root, or ``"all"`` on a dataset without categories.
    """
    d = config.dataset
    if d.category == ALL_CATEGORIES:
        return list_categories(d.name, d.root)
    return ["" if d.category is None else d.category]


def default_output_dir(config: WorkbenchConfig) -> str:
    """``runs/<UTC time>-<recipe>-<dataset>[-<category>]`` when ``output.output_dir`` is not set."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    parts = [stamp, config.recipe, config.dataset.name] + ([config.dataset.category] if config.dataset.category else [])
    return os.path.join("runs", "-".join(p.replace(os.sep, "_") for p in parts))


def _infer_block(config: WorkbenchConfig, result: CategoryResult, run: RunDir) -> dict[str, Any]:
    if result.checkpoint is None:
        raise ConfigError(f"recipe {config.recipe!r} saved no state for category {result.category!r}, "
                          "so there is nothing for an infer-config to point at")
    checkpoint = os.path.relpath(run.path / result.checkpoint, run.infer_config_path.parent)
    return infer_config_payload(
        result.state,
        checkpoint_path=Path(checkpoint).as_posix(),
        defects=config.defects.config.to_mapping() if config.defects.enabled else None,
        include_maps=True if (config.adaptation.save_maps or config.defects.enabled) else None,
        resize=config.dataset.resize,
        category=display_name(result.category),
    )


def _run_body(config: WorkbenchConfig, summaries: Sequence[CategorySummary], run: RunDir | None,
              elapsed: float, status: str) -> dict[str, Any]:
    return {
        "status": status,
        "recipe": config.recipe,
        "dataset": {"name": config.dataset.name, "root": config.dataset.root, "category": config.dataset.category},
        "model": config.model.name,
        "categories": [s.category for s in summaries],
        "per_category": {s.category: s.brief() for s in summaries},
        "aggregate": aggregate({s.category: s.metrics for s in summaries}),
        "output_dir": None if run is None else str(run.path),
        "elapsed_s": round(elapsed, 3),
    }


def run_workbench(
    config: WorkbenchConfig,
    *,
    export_infer_config: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
    argv: Sequence[str] | None = None,
) -> RunOutcome:
    """Run ``config.recipe`` on every requested category and write the run folder.

    Args:
        config: from :func:`pyimgano.workbench.build_config`.
        export_infer_config: also write ``artifacts/infer_config.json`` (needs ``output.save_run``).
        progress: ``progress(stage, done, total)`` for fitting, calibration and scoring.
        argv: the command line, recorded in environment.json.

    Raises:
        ConfigError: a recipe that cannot run, a device mismatch, bad model settings, an
            unusable output folder. DatasetError: a bad dataset. Anything a step raises; the run's
            report.json then says ``failed`` (or ``interrupted``).
    """
    t0 = time.perf_counter()
    spec = get_recipe(config.recipe)
    check_available(spec)
    backend = check_device(config.model.device)
    make_detector_config(config)
    if export_infer_config and not config.output.save_run:
        raise ConfigError("output.save_run: --export-infer-config writes into the run folder; set output.save_run true")
    categories = resolve_categories(config)
    for category in categories:  # a bad folder fails here, in a second, before any file is written
        load_category(config, category)
        category_dirname(category)
    run = None
    if config.output.save_run:
        folder = config.output.output_dir or default_output_dir(config)
        run = RunDir.create(folder, config_to_mapping(config), environment_info(argv))
    log.info("recipe %s on %s %s (%d categor%s), model %s on %s%s", config.recipe, config.dataset.name,
             config.dataset.root, len(categories), "y" if len(categories) == 1 else "ies", config.model.name,
             backend, "" if run is None else f"; writing {run.path}")
    context = RunContext(run_dir=run, progress=progress)
    summaries: list[CategorySummary] = []
    sections: list[CategorySection] = []
    payloads: dict[str, dict] = {}
    try:
        for category in categories:
            result = spec.fn(config, category, context)
            if run is not None and export_infer_config:
                payloads[display_name(category)] = _infer_block(config, result, run)
            summary, section = summarize_category(config, result, run)
            summaries.append(summary)
            if section is not None:
                sections.append(section)
            log.info("%s: %s", display_name(category), summary.headline())
        body = _run_body(config, summaries, run, time.perf_counter() - t0, "complete")
        if run is not None:
            if export_infer_config:
                atomic_write_json(run.infer_config_path, multi_category_payload(payloads))
                body["infer_config"] = run.relative(run.infer_config_path)
            body["plots"] = {"available": PLOTS_UNAVAILABLE is None, "note": PLOTS_UNAVAILABLE}
            body["report_html"] = run.write_html(render_html({**body, "timestamp_utc": utc_timestamp()}, sections,
                                                             plots_note=PLOTS_UNAVAILABLE))
            body["elapsed_s"] = round(time.perf_counter() - t0, 3)
            run.write_report(body)
    except BaseException as exc:
        if run is not None:
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            partial = _run_body(config, summaries, run, time.perf_counter() - t0, status)
            partial["error"] = {"type": type(exc).__name__, "message": str(exc).strip().splitlines()[0] if str(exc).strip() else ""}
            try:
                run.write_report(partial)
            except OSError as write_error:  # pragma: no cover - the original error matters more
                log.error("could not record the %s run in %s: %s", status, run.path, write_error)
        raise
    return RunOutcome(report=body, run_dir=None if run is None else run.path, categories=tuple(summaries))
