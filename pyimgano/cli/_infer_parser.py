"""The ``pyimgano-infer`` argument parser.

Choices and defaults come from the library's config classes (one source of
truth): the defect flags are generated from :class:`~pyimgano.defects.DefectsConfig`
fields (their metadata holds the flag name, help text and choices), tiling
choices from :mod:`pyimgano.tiling`, post-processing methods from
:mod:`pyimgano.postprocess`, presets from :mod:`pyimgano.presets` and
:mod:`pyimgano.defects`. Every option defaults to None (or is absent) so values
from an infer-config can be told apart from explicit flags: explicit flags win.
"""

from __future__ import annotations

import argparse
import json

import attrs

from pyimgano.calibration import DEFAULT_HOLDOUT, DEFAULT_QUANTILE
from pyimgano.cli._discovery import parse_tags
from pyimgano.cli.common import (
    CliParser,
    add_standard_flags,
    float_type,
    int_type,
    json_object,
    quantile_type,
)
from pyimgano.defects import DEFECT_PRESETS, DefectsConfig
from pyimgano.defects.config import cli_flag
from pyimgano.devices import BANK_SHARDING, DEVICE_PLATFORMS
from pyimgano.inputs import DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV
from pyimgano.postprocess import NORMALIZE_METHODS
from pyimgano.presets import MODEL_PRESETS
from pyimgano.tiling import MAP_REDUCES, SCORE_REDUCES

__all__ = ["PROG", "DEFAULT_MODEL", "DEFAULT_BATCH_SIZE", "build_parser", "defect_fields", "defect_dest"]

PROG = "pyimgano-infer"
DEFAULT_MODEL = "vision_patchcore"
DEFAULT_BATCH_SIZE = 16
# The ROI flag is spelled out (4 numbers); every other DefectsConfig field is generated.
_ROI_FIELD = "roi_xyxy_norm"


def defect_fields() -> tuple[attrs.Attribute, ...]:
    """The :class:`DefectsConfig` fields that have a generated flag (all but the ROI)."""
    return tuple(f for f in attrs.fields(DefectsConfig) if f.name != _ROI_FIELD)


def defect_dest(field: attrs.Attribute) -> str:
    return "defect__" + field.name


def _default_text(value) -> str:
    if value is None:
        return "unset"
    return value if isinstance(value, str) else json.dumps(value)


def _add_defect_flag(group, field: attrs.Attribute) -> None:
    meta = field.metadata
    text = meta["help"] if "default" in meta["help"] else f"{meta['help']} (default: {_default_text(field.default)})"
    kind = str(field.type).split("|")[0].strip()
    common = dict(dest=defect_dest(field), default=None, help=text)
    if "choices" in meta:
        group.add_argument(cli_flag(field), choices=meta["choices"], **common)
    elif kind == "bool":
        group.add_argument(cli_flag(field), action=argparse.BooleanOptionalAction, **common)
    elif kind == "int":
        group.add_argument(cli_flag(field), type=int_type(0), metavar="N", **common)
    else:
        group.add_argument(cli_flag(field), type=float_type, metavar="X", **common)


def _postprocess_type(text: str) -> dict:
    if text.strip().lower() in ("none", "null", "off"):
        return {}
    return json_object("--postprocess")(text)


def build_parser() -> CliParser:
    """The parser (see ``docs/cli.md`` for the full reference)."""
    p = CliParser(
        prog=PROG,
        description="Score images with a pyimgano detector; write one JSONL record per input "
        "(stdout unless --save-jsonl), plus optional anomaly maps, defect masks, regions and overlays.",
        epilog="Exit codes: 0 ok; 1 some inputs failed with --continue-on-error; 2 bad flags, configs or inputs; "
        "141 stdout closed early (e.g. | head). See docs/cli.md.",
    )
    add_standard_flags(p)
    g = p.add_argument_group("discovery")
    g.add_argument("--list-models", action="store_true", help="list registered detectors and exit")
    g.add_argument("--tags", type=parse_tags, default=None,
                   help="with --list-models: only detectors having all these comma-separated tags")
    g.add_argument("--model-info", metavar="NAME", default=None, help="describe one detector (tags, config fields) and exit")
    g.add_argument("--json", action="store_true", help="machine-readable output for --list-models / --model-info")
    g.add_argument("--plugin", action="append", default=None, metavar="MODULE",
                   help="import a module (dotted name or path/to/file.py) that registers detectors; repeatable")

    g = p.add_argument_group("model and thresholds")
    g.add_argument("--model", default=None, help=f"registered detector name (default: {DEFAULT_MODEL})")
    g.add_argument("--model-kwargs", type=json_object("--model-kwargs"), default=None, metavar="JSON",
                   help="detector config overrides as a JSON object (inline, @file or a .json path); "
                   "'contamination' c sets the image-threshold quantile 1 - c (default: none)")
    presets = sorted({name for table in MODEL_PRESETS.values() for name in table})
    g.add_argument("--preset", default=None, choices=presets, help="model preset (default: none)")
    g.add_argument("--backbone", default=None, help="backbone name, wins over the preset and model kwargs "
                   "(default: the detector's, efficientnet_lite0)")
    g.add_argument("--checkpoint-path", default=None, metavar="FILE",
                   help="a saved detector state (pyimgano.save_state, --save-run) to load instead of fitting; "
                   "it carries its thresholds, tiling and post-processing")
    g.add_argument("--train-dir", default=None, metavar="DIR",
                   help="normal images: fit on part of them and calibrate the thresholds on the held-out rest; "
                   "with --checkpoint-path, calibrate on all of them")
    g.add_argument("--holdout-fraction", type=float_type, default=None, metavar="F",
                   help=f"share of --train-dir held out for calibration when fitting (default: {DEFAULT_HOLDOUT})")
    g.add_argument("--calibration-quantile", type=quantile_type, default=None, metavar="Q",
                   help="image threshold = this quantile of the normal calibration scores "
                   f"(default: 1 - contamination, else {DEFAULT_QUANTILE}); with a loaded state, forces recalibration")
    g.add_argument("--seed", type=int_type(0), default=None,
                   help="seed of the detector's randomness and of the hold-out split (default: the config's, 0)")
    g.add_argument("--infer-config", default=None, metavar="FILE",
                   help="infer_config.json: its values are defaults, explicit flags win")
    g.add_argument("--from-run", default=None, metavar="DIR", help="a run directory (reads DIR/artifacts/infer_config.json)")
    g.add_argument("--from-run-category", default=None, metavar="CAT", help="category of a multi-category run")
    g.add_argument("--save-run", default=None, metavar="DIR",
                   help="write the calibrated state and DIR/artifacts/infer_config.json, for --from-run / --infer-config")

    g = p.add_argument_group("inputs")
    g.add_argument("--input", action="append", default=None, metavar="PATH",
                   help="image file, folder (recursive, sorted) or glob; repeatable")
    g.add_argument("--input-format", default=None, metavar="FORMAT",
                   help="layout of .npy frame inputs, e.g. bgr_u8_hwc (required for .npy; never guessed)")
    g.add_argument("--resize", type=int_type(1), nargs=2, default=None, metavar=("H", "W"),
                   help="resize every decoded frame to H x W before scoring, as the workbench's dataset.resize "
                   "(default: the frame's own size, or the infer-config's resize)")
    g.add_argument("--batch-size", type=int_type(1), default=None,
                   help=f"images per inference step (default: {DEFAULT_BATCH_SIZE})")
    g.add_argument("--max-image-pixels", type=int_type(1), default=None, metavar="N",
                   help="decode limit: an image file (or .npy frame) declaring more than N pixels is refused "
                   f"before decoding (default: ${MAX_PIXELS_ENV}, else {DEFAULT_MAX_PIXELS} = 8192 x 8192)")

    g = p.add_argument_group("maps, post-processing, tiling")
    g.add_argument("--include-maps", action="store_true", default=None, help="compute anomaly maps; records carry their shape/dtype")
    g.add_argument("--save-maps", default=None, metavar="DIR",
                   help="write maps as DIR/<input path relative to its --input>.npy (implies --include-maps)")
    g.add_argument("--postprocess", type=_postprocess_type, default=None, metavar="JSON",
                   help="anomaly-map post-processing as a JSON object, e.g. '{\"normalize\": \"percentile\", "
                   f"\"gaussian_sigma\": 1}}' (normalize: {', '.join(NORMALIZE_METHODS)}); 'none' disables "
                   "(default: none)")
    g.add_argument("--tile-size", type=int_type(1), default=None, help="tiled inference: square tile side in pixels (default: off)")
    g.add_argument("--tile-stride", type=int_type(1), default=None, help="tile step (default: the tile size)")
    g.add_argument("--tile-score-reduce", choices=SCORE_REDUCES, default=None,
                   help="image score from tile scores (default: max)")
    g.add_argument("--tile-score-topk", type=float_type, default=None,
                   help="topk_mean: tile count (>= 1) or fraction (0, 1] (default: 0.1)")
    g.add_argument("--tile-map-reduce", choices=MAP_REDUCES, default=None,
                   help="how overlapping tile maps blend (default: max)")

    g = p.add_argument_group("defects")
    g.add_argument("--defects", action="store_true", default=None, help="extract defect masks and regions (implies maps)")
    g.add_argument("--defects-preset", default=None, choices=sorted(DEFECT_PRESETS), help="defects preset (default: none)")
    g.add_argument("--save-masks", default=None, metavar="DIR", help="write masks as DIR/<relative input path>.png|npy")
    g.add_argument("--save-overlays", default=None, metavar="DIR", help="write review overlays as DIR/<relative input path>.png")
    roi = attrs.fields_dict(DefectsConfig)[_ROI_FIELD]
    g.add_argument(cli_flag(roi), type=float_type, nargs=4, default=None, metavar=("X1", "Y1", "X2", "Y2"),
                   help=f"{roi.metadata['help']} (default: the whole map)")
    g.add_argument("--defects-image-space", action="store_true", default=None,
                   help="add bbox_xyxy_image (image pixels) to regions")
    for field in defect_fields():
        _add_defect_flag(g, field)

    g = p.add_argument_group("devices and hosts")
    g.add_argument("--device", default=None, metavar="SPEC",
                   help=f"JAX devices to score on: {', '.join(DEVICE_PLATFORMS)}, optionally with local indices, "
                   "e.g. gpu:0 or gpu:0,1; an unavailable one is an error, never a silent fallback "
                   "(default: the infer-config's model.device, else auto = every device of JAX's default backend)")
    g.add_argument("--bank-sharding", choices=BANK_SHARDING, default=None,
                   help="split a memory bank's rows over the devices (on), keep it whole on every device (off), "
                   "or split it only when larger than a quarter of one device's memory (auto) "
                   "(default: $PYIMGANO_BANK_SHARDING, else auto)")
    g.add_argument("--distributed", action="store_true", default=None,
                   help="join a jax.distributed cluster (one process per host): each process scores every N-th batch "
                   "on its own devices and process 0 writes all records in input order, the same JSONL as one "
                   "process (coordinator and ranks from the flags below or the scheduler's environment)")
    g.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                   help="with --distributed: address of process 0 (default: detected, or $JAX_COORDINATOR_ADDRESS)")
    g.add_argument("--num-processes", type=int_type(1), default=None, metavar="N",
                   help="with --distributed: number of processes (default: detected)")
    g.add_argument("--process-id", type=int_type(0), default=None, metavar="I",
                   help="with --distributed: this process's rank, 0..N-1 (default: detected)")
    g.add_argument("--ray-workers", type=int_type(1), default=None, metavar="N",
                   help="score the batches on N Ray actors (each its own JAX process) through ray.data; records "
                   "come back in input order, as one process writes them; inputs and artifact folders must be "
                   "readable/writable by every worker (needs pip install 'pyimgano[ray]') (default: off)")
    g.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="with --ray-workers: a running Ray cluster ('auto' or HOST:PORT) (default: start a local one)")
    g.add_argument("--compilation-cache", default=None, metavar="DIR",
                   help="persistent JAX compilation cache folder: a restarted run reads its compiled programs "
                   "back instead of recompiling (default: $PYIMGANO_COMPILATION_CACHE, else off)")

    g = p.add_argument_group("output and errors")
    g.add_argument("--save-jsonl", default=None, metavar="FILE", help="write records here (default: stdout)")
    g.add_argument("--continue-on-error", action="store_true", default=None,
                   help="write an error record for a failed input and go on; exit 1 at the end")
    g.add_argument("--max-errors", type=int_type(0), default=None, metavar="N",
                   help="with --continue-on-error: stop after more than N failed inputs (default: no limit)")
    g.add_argument("--resume", action="store_true", default=None,
                   help="with --save-jsonl: keep the records an interrupted run (same inputs and settings) wrote and "
                   "score only the rest; the result equals an uninterrupted run's")
    g.add_argument("--profile-json", default=None, metavar="FILE", help="write counts and per-stage seconds here")
    return p
