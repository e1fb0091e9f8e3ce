"""``pyimgano-train``: run a workbench recipe on a dataset and write a run folder.

    pyimgano-train --config cfg.json [--dataset D --root R --category C|all --model M --device auto]
                   [--dry-run] [--export-infer-config] [--json]
    pyimgano-train --list-recipes [--json]
    pyimgano-train --recipe-info NAME [--json]

Layering (DESIGN.md): argparse (:mod:`._train_parser`) -> a checked
:class:`~pyimgano.workbench.WorkbenchConfig` (:func:`pyimgano.workbench.build_config`) -> one
library call (:func:`pyimgano.workbench.run_workbench`) -> a table or the JSON report.

Exit codes: 0 ok; 2 bad flags, config (the message names the key path) or dataset; 130
interrupted (the run's report.json then says so). Reference: docs/workbench.md.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Sequence, TextIO

from pyimgano.cli._progress import StageProgress
from pyimgano.cli._table import format_table
from pyimgano.cli._train_parser import OVERRIDES, PROG, build_parser
from pyimgano.cli.common import UsageError, run_command
from pyimgano.datasets import DatasetError
from pyimgano.plugins import load_plugins
from pyimgano.workbench.config import config_to_mapping
from pyimgano.workbench.config_io import read_config_file
from pyimgano.workbench.detector import make_detector_config
from pyimgano.workbench.recipes import build_config, check_available, get_recipe, list_recipes, recipe_info
from pyimgano.workbench.runner import run_workbench
from pyimgano.workbench.schema import ConfigError

__all__ = ["main", "build_parser", "CATEGORY_COLUMNS"]

log = logging.getLogger("pyimgano.cli")

#: ``(key, header, digits)`` of the per-category table.
CATEGORY_COLUMNS = (
    ("category", "category", 0), ("image_auroc", "image_auroc", 4), ("average_precision", "AP", 4),
    ("precision", "precision", 4), ("recall", "recall", 4), ("f1", "F1", 4), ("tp", "TP", 0), ("fp", "FP", 0),
    ("tn", "TN", 0), ("fn", "FN", 0), ("pixel_auroc", "pixel_auroc", 4), ("aupro", "AUPRO", 4),
    ("fit_s", "fit_s", 1), ("images_per_s", "images/s", 2),
)


def _dumps(value) -> str:
    return json.dumps(value, sort_keys=True, indent=2, allow_nan=False) + "\n"


def _list_recipes(as_json: bool, out: TextIO) -> int:
    infos = [recipe_info(name) for name in list_recipes()]
    if as_json:
        out.write(_dumps(infos))
        return 0
    width = max(len(i["name"]) for i in infos)
    for info in infos:
        flag = "" if info["available"] else "  [not available here]"
        out.write(f"{info['name'].ljust(width)}  {info['description']}{flag}\n")
    return 0


def _recipe_info(name: str, as_json: bool, out: TextIO) -> int:
    info = recipe_info(name)
    if as_json:
        out.write(_dumps(info))
        return 0
    out.write(f"{info['name']}: {info['description']}\n")
    if not info["available"]:
        out.write(f"  not available here: {info['unavailable_reason']}\n")
    for step in info["details"]:
        out.write(f"  - {step}\n")
    for what in ("defaults", "forced"):
        if info[what]:
            out.write(f"  {what} (config keys): {json.dumps(info[what], sort_keys=True)}\n")
    return 0


def _config(args):
    raw = read_config_file(args.config) if args.config else {}
    overrides = {key: getattr(args, dest) for dest, key in OVERRIDES}
    config = build_config(raw, overrides)
    check_available(get_recipe(config.recipe))
    make_detector_config(config)  # model settings checked before anything runs (key paths in errors)
    return config


def _rows(report) -> list[dict]:
    rows = []
    for name, entry in report["per_category"].items():
        row = {"category": name, **entry, **(entry.get("confusion") or {}), **entry["timing"]}
        rows.append(row)
    if len(rows) > 1:
        agg = report["aggregate"]
        rows.append({"category": "mean", **(agg["mean"] or {}), **(agg["confusion"] or {})})
    return rows


def _body(args, stdout: TextIO, stderr: TextIO) -> int:
    try:
        load_plugins(args.plugin or ())
    except ValueError as exc:
        raise UsageError(f"--plugin: {exc}") from None
    try:
        if args.list_recipes:
            return _list_recipes(args.json, stdout)
        if args.recipe_info is not None:
            return _recipe_info(args.recipe_info, args.json, stdout)
        config = _config(args)
        if args.dry_run:
            stdout.write(_dumps(config_to_mapping(config)))
            return 0
        with StageProgress(stderr) as progress:
            outcome = run_workbench(config, export_infer_config=args.export_infer_config, progress=progress,
                                    argv=[PROG, *(args.argv or ())])
    except (ConfigError, DatasetError) as exc:
        raise UsageError(str(exc)) from None
    report = outcome.report
    if args.json:
        stdout.write(_dumps(report))
    else:
        stdout.write(format_table(_rows(report), CATEGORY_COLUMNS))
        if outcome.run_dir is not None:
            stdout.write(f"run folder: {outcome.run_dir} (report.json, report.html"
                         f"{', ' + report['infer_config'] if report.get('infer_config') else ''})\n")
    where = f"; report in {outcome.run_dir}/report.json" if outcome.run_dir is not None else ""
    log.info("done: %d categor%s in %.1f s%s", len(outcome.categories),
             "y" if len(outcome.categories) == 1 else "ies", report["elapsed_s"], where)
    return 0


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run ``pyimgano-train``; returns the exit code (0 ok, 2 usage / config / dataset error, 130 interrupted)."""
    parser = build_parser()
    parser.set_defaults(argv=list(sys.argv[1:] if argv is None else argv))
    return run_command(PROG, parser, _body, argv, stdout, stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
