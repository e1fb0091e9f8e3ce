"""The ``pyimgano-train`` argument parser; choices come from the library (datasets, devices, recipes)."""

from __future__ import annotations

from pyimgano.cli.common import CliParser, add_standard_flags
from pyimgano.datasets import DATASET_LOADERS
from pyimgano.workbench.config import DEVICES

__all__ = ["PROG", "build_parser", "OVERRIDES"]

PROG = "pyimgano-train"

#: ``(flag destination, config key)`` of the flags that override config values.
OVERRIDES = (
    ("recipe", "recipe"),
    ("dataset", "dataset.name"),
    ("root", "dataset.root"),
    ("category", "dataset.category"),
    ("model", "model.name"),
    ("device", "model.device"),
    ("output_dir", "output.output_dir"),
)


def build_parser() -> CliParser:
    """The parser (reference: docs/cli.md and docs/workbench.md)."""
    p = CliParser(
        prog=PROG,
        description="Run a workbench recipe on a dataset: fit, calibrate on a held-out part of the normal "
        "images, score the test split, evaluate, and write a run folder (reports, per-image records, plots, "
        "report.html, the calibrated state; --export-infer-config for pyimgano-infer).",
        epilog="Exit codes: 0 ok; 2 bad flags, config or dataset (the message names the key path); "
        "130 interrupted. See docs/workbench.md.",
    )
    add_standard_flags(p)
    g = p.add_argument_group("discovery")
    g.add_argument("--list-recipes", action="store_true", help="list the registered recipes and exit")
    g.add_argument("--recipe-info", metavar="NAME", default=None, help="describe one recipe (steps, defaults) and exit")
    g.add_argument("--json", action="store_true", help="machine-readable output (lists, info, the run report)")
    g.add_argument("--plugin", action="append", default=None, metavar="MODULE",
                   help="import a module (dotted name or path/to/file.py) that registers recipes or detectors; repeatable")

    g = p.add_argument_group("config (flags win over the file)")
    g.add_argument("--config", metavar="FILE", default=None, help="config file: .json, or .yml/.yaml with PyYAML")
    g.add_argument("--recipe", metavar="NAME", default=None, help="recipe (default: the config's, else industrial-adapt)")
    g.add_argument("--dataset", choices=sorted(DATASET_LOADERS), default=None, help="dataset.name")
    g.add_argument("--root", metavar="PATH", default=None, help="dataset.root (a folder; manifest: the JSONL file)")
    g.add_argument("--category", metavar="CAT", default=None, help="dataset.category, or 'all'")
    g.add_argument("--model", metavar="NAME", default=None, help="model.name (a registered detector)")
    g.add_argument("--device", metavar="SPEC", default=None,
                   help=f"model.device: the JAX devices the run uses, one of {', '.join(DEVICES)}, optionally with "
                   "local indices, e.g. gpu:0,1 (default: the config's, auto); an unavailable one is an error")
    g.add_argument("--output-dir", metavar="DIR", default=None, help="output.output_dir")

    g = p.add_argument_group("actions")
    g.add_argument("--dry-run", action="store_true", help="print the effective config (recipe defaults applied) and exit")
    g.add_argument("--export-infer-config", action="store_true",
                   help="write artifacts/infer_config.json for pyimgano-infer --infer-config / --from-run")
    return p
