"""``pyimgano-benchmark``: compare detectors on a dataset, and list them by capability (SPEC section 9).

    pyimgano-benchmark --dataset D --root R --category C|all --model M [--model M2 ...] [--json]
                       [--config base.json] [--model-kwargs JSON] [--preset P] [--limit-train N] [--limit-test N]
    pyimgano-benchmark --suite FILE [--data-root DIR] [--dataset LAYOUT:ROOT[:CATEGORY] ...] [--model M ...]
    pyimgano-benchmark --list-models [--tags numpy,pixel_map] [--json]
    pyimgano-benchmark --model-info NAME [--json]

A comparison runs the ``industrial-adapt`` recipe (or the ``--config``'s) for each model
(:func:`pyimgano.workbench.benchmark_models`, nothing written) and prints one table: metrics,
fit seconds and test images per second. A suite (``--suite FILE`` and/or repeated
``--dataset LAYOUT:ROOT[:CATEGORY]``) runs every model on every dataset
(:func:`pyimgano.workbench.benchmark_suite`) and prints one row per model and dataset with the
confusion counts at the calibrated threshold, then each model's mean row. Exit codes: 0 ok; 2 bad flags, config, dataset, an
unknown tag or detector (the message lists the accepted ones).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence, TextIO

from pyimgano.cli._discovery import DiscoveryError, list_models, model_info, parse_tags
from pyimgano.cli._progress import StageProgress
from pyimgano.cli._table import format_table
from pyimgano.cli.common import CliParser, UsageError, add_standard_flags, int_type, json_object, run_command
from pyimgano.datasets import DATASET_LOADERS, DatasetError
from pyimgano.plugins import load_plugins
from pyimgano.workbench.benchmark import benchmark_models
from pyimgano.workbench.config import DEFAULT_MODEL
from pyimgano.workbench.config_io import read_config_file
from pyimgano.workbench.recipes import build_config
from pyimgano.workbench.schema import ConfigError
from pyimgano.workbench.suite import SUITE_COLUMNS, benchmark_suite, load_suite, parse_dataset_spec

__all__ = ["main", "build_parser", "TABLE_COLUMNS", "SUITE_TABLE_COLUMNS"]

PROG = "pyimgano-benchmark"

#: ``(key, header, digits)`` of the comparison table.
TABLE_COLUMNS = (
    ("model", "model", 0), ("category", "category", 0), ("image_auroc", "image_auroc", 4),
    ("average_precision", "AP", 4), ("f1", "F1", 4), ("pixel_auroc", "pixel_auroc", 4), ("aupro", "AUPRO", 4),
    ("fit_s", "fit_s", 1), ("images_per_s", "images/s", 2),
)
_DIGITS = {"image_auroc": 4, "pixel_auroc": 4, "aupro": 4, "fit_s": 1, "images_per_s": 2}
_HEADERS = {"images_per_s": "images/s", "aupro": "AUPRO"}
#: ``(key, header, digits)`` of the suite table (:data:`pyimgano.workbench.suite.SUITE_COLUMNS`).
SUITE_TABLE_COLUMNS = tuple((k, _HEADERS.get(k, k), _DIGITS.get(k, 0)) for k in SUITE_COLUMNS)


def _dataset_arg(text: str):
    """A layout name (``mvtec``) or a suite entry ``LAYOUT:ROOT[:CATEGORY]``."""
    if ":" not in text:
        if text not in DATASET_LOADERS:
            raise argparse.ArgumentTypeError(f"unknown dataset layout {text!r}; accepted: {sorted(DATASET_LOADERS)} "
                                             "(or LAYOUT:ROOT[:CATEGORY])")
        return text
    try:
        return parse_dataset_spec(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _model_kwargs(text: str) -> tuple[str | None, dict]:
    """``JSON`` (every model) or ``NAME=JSON`` (one model) -> ``(NAME or None, dict)``."""
    name, sep, rest = text.partition("=")
    if sep and not name.lstrip().startswith("{") and not name.startswith("@"):
        return name.strip(), json_object("--model-kwargs")(rest)
    return None, json_object("--model-kwargs")(text)


def build_parser() -> CliParser:
    p = CliParser(prog=PROG, description="Compare pyimgano detectors on a dataset, or list them and their capabilities.",
                  epilog="Exit codes: 0 ok; 2 bad flags, config or dataset. See docs/workbench.md.")
    add_standard_flags(p)
    what = p.add_mutually_exclusive_group()
    what.add_argument("--list-models", action="store_true", help="print registered detector names and exit")
    what.add_argument("--model-info", metavar="NAME", help="describe one detector (tags, config fields)")
    p.add_argument("--tags", type=parse_tags, default=None,
                   help="with --list-models: only detectors having all these comma-separated tags")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--plugin", action="append", default=None, metavar="MODULE",
                   help="import a module that registers detectors or recipes; repeatable")
    g = p.add_argument_group("comparison")
    g.add_argument("--dataset", type=_dataset_arg, action="append", default=None, metavar="LAYOUT[:ROOT[:CATEGORY]]",
                   help=f"dataset layout ({', '.join(sorted(DATASET_LOADERS))}) with --root/--category; or, "
                        "repeatable, LAYOUT:ROOT[:CATEGORY] entries of a suite")
    g.add_argument("--suite", metavar="FILE", default=None,
                   help="a suite file listing datasets (JSON/YAML; see docs/accuracy.md), e.g. "
                        "benchmarks/suites/on_hand.json")
    g.add_argument("--data-root", metavar="DIR", default=None,
                   help="with --suite: the folder the suite's relative roots are under (default: the file's data_root)")
    g.add_argument("--root", metavar="PATH", default=None, help="dataset folder (manifest: the JSONL file)")
    g.add_argument("--category", metavar="CAT", default=None, help="category, or 'all'")
    g.add_argument("--model", action="append", default=None, metavar="NAME",
                   help="detector to compare; repeatable (each runs the same recipe)")
    g.add_argument("--config", metavar="FILE", default=None,
                   help="base workbench config (recipe, adaptation, ...); the flags above win")
    g.add_argument("--model-kwargs", type=_model_kwargs, action="append", default=None, metavar="[NAME=]JSON",
                   help="detector config fields as a JSON object: for every model, or NAME=JSON for one; repeatable")
    g.add_argument("--preset", default=None, help="model preset for every model (e.g. industrial-balanced)")
    g.add_argument("--limit-train", type=int_type(1), default=None, metavar="N", help="first N training images")
    g.add_argument("--limit-test", type=int_type(1), default=None, metavar="N", help="N evenly spaced test images")
    g.add_argument("--device", default=None, help="JAX backend the runs must use (auto, cpu, gpu, tpu)")
    return p


def _kwargs(args) -> tuple[dict, dict[str, dict]]:
    common: dict = {}
    per_model: dict[str, dict] = {}
    for name, kwargs in args.model_kwargs or ():
        (common if name is None else per_model.setdefault(name, {})).update(kwargs)
    return common, per_model


def _suite(args, entries: list, stdout: TextIO, stderr: TextIO) -> int:
    if args.root is not None or args.category is not None:
        raise UsageError("--root / --category go with a single --dataset LAYOUT; a suite entry names its own "
                         "(LAYOUT:ROOT[:CATEGORY])")
    if args.data_root is not None and args.suite is None:
        raise UsageError("--data-root goes with --suite FILE")
    datasets = list(load_suite(args.suite, data_root=args.data_root)) if args.suite else []
    datasets.extend(entries)
    raw = read_config_file(args.config) if args.config else {}
    common, per_model = _kwargs(args)
    models = args.model or [raw.get("model", {}).get("name") or DEFAULT_MODEL]
    overrides = {
        "model.model_kwargs": common or None, "model.preset": args.preset, "model.device": args.device,
        "dataset.limit_train": args.limit_train, "dataset.limit_test": args.limit_test,
    }
    with StageProgress(stderr) as progress:
        rows = benchmark_suite(raw, datasets, models, overrides=overrides, model_kwargs=per_model, progress=progress)
    if args.json:
        stdout.write(json.dumps(rows, sort_keys=True, indent=2, allow_nan=False) + "\n")
    else:
        stdout.write(format_table(rows, SUITE_TABLE_COLUMNS))
    return 0


def _compare(args, stdout: TextIO, stderr: TextIO) -> int:
    layouts = [d for d in args.dataset or () if isinstance(d, str)]
    entries = [d for d in args.dataset or () if not isinstance(d, str)]
    if args.suite is not None or entries:
        if layouts:
            raise UsageError(f"--dataset {layouts[0]} (a layout with --root) cannot be mixed with a suite; "
                             "give suite entries as LAYOUT:ROOT[:CATEGORY]")
        return _suite(args, entries, stdout, stderr)
    if len(layouts) > 1:
        raise UsageError("--dataset LAYOUT is given once; compare several datasets as LAYOUT:ROOT[:CATEGORY] "
                         "entries or with --suite FILE")
    if args.data_root is not None:
        raise UsageError("--data-root goes with --suite FILE")
    if not args.model:
        raise UsageError("--dataset needs at least one --model NAME to compare")
    raw = read_config_file(args.config) if args.config else {}
    common, per_model = _kwargs(args)
    overrides = {
        "dataset.name": layouts[0] if layouts else None, "dataset.root": args.root, "dataset.category": args.category,
        "model.name": args.model[0], "model.model_kwargs": common or None, "model.preset": args.preset,
        "model.device": args.device, "dataset.limit_train": args.limit_train, "dataset.limit_test": args.limit_test,
    }
    config = build_config(raw, overrides)
    with StageProgress(stderr) as progress:
        rows = benchmark_models(config, args.model, model_kwargs=per_model, progress=progress)
    if args.json:
        stdout.write(json.dumps(rows, sort_keys=True, indent=2, allow_nan=False) + "\n")
    else:
        stdout.write(format_table(rows, TABLE_COLUMNS))
    return 0


def _body(args, stdout: TextIO, stderr: TextIO) -> int:
    try:
        load_plugins(args.plugin or ())
    except ValueError as exc:
        raise UsageError(f"--plugin: {exc}") from None
    comparing = any(v is not None for v in (args.dataset, args.root, args.config, args.suite))
    try:
        if args.tags is not None and not args.list_models:
            raise DiscoveryError("--tags filters --list-models; add --list-models")
        if args.list_models:
            return list_models(args.tags, args.json, stdout)
        if args.model_info is not None:
            return model_info(args.model_info, args.json, stdout)
    except DiscoveryError as exc:
        raise UsageError(str(exc)) from None
    if not comparing:
        raise UsageError("pass --dataset D --root R --model M (a comparison), --suite FILE (several datasets), "
                         "--list-models or --model-info NAME (see --help)")
    try:
        return _compare(args, stdout, stderr)
    except (ConfigError, DatasetError) as exc:
        raise UsageError(str(exc)) from None


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run ``pyimgano-benchmark``; returns the exit code."""
    return run_command(PROG, build_parser(), _body, argv, stdout, stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
