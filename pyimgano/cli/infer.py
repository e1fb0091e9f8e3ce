"""``pyimgano-infer``: score a folder of images into JSONL records, maps, defect masks and overlays.

Layering (DESIGN.md): argparse -> :class:`InferOptions` (explicit flags layered over
an infer-config) -> library calls (:func:`pyimgano.fit`, :func:`pyimgano.inference.infer`,
:func:`pyimgano.defects.extract_defects`, ...) -> records and files.  No maths here.

Exit codes: 0 success; 1 some inputs failed under ``--continue-on-error`` (or
``--max-errors`` was exceeded); 2 bad flags, configs or inputs (or an input
failed without ``--continue-on-error``).  The full reference is ``docs/cli.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TextIO

import attrs

from pyimgano.cli._artifacts import artifact_path, save_npy
from pyimgano.cli._infer_config import InferConfig, InferConfigError, find_run_infer_config, load_infer_config
from pyimgano.cli._inputs import InputError, InputItem, discover_inputs, load_item
from pyimgano.cli._discovery import DiscoveryError, list_models, model_info, parse_tags
from pyimgano.cli._presets import preset_overrides
from pyimgano.cli._progress import Progress
from pyimgano.cli._records import RecordWriter, atomic_write_json, error_record

__all__ = ["main", "build_parser", "InferOptions", "UsageError", "DEFECT_FLAGS"]

PROG = "pyimgano-infer"
DEFAULT_MODEL = "vision_patchcore"
DEFAULT_CALIBRATION_QUANTILE = 0.995
DEFAULT_BATCH_SIZE = 16
SCORE_REDUCES = ("max", "mean", "topk_mean")
MAP_REDUCES = ("max", "mean", "hann", "gaussian")

# (flag, DefectsConfig field, kind): kind is "float", "int", "bool" or a tuple of choices.
# Imported lazily from pyimgano.defects so --help works even while that package is broken.
DEFECT_FLAGS: tuple[tuple[str, str, Any], ...] = (
    ("--pixel-threshold", "pixel_threshold", "float"),
    ("--pixel-threshold-strategy", "pixel_threshold_strategy", ("normal_pixel_quantile", "fixed", "infer_config")),
    ("--pixel-normal-quantile", "pixel_normal_quantile", "float"),
    ("--defect-border-ignore-px", "border_ignore_px", "int"),
    ("--defect-map-smoothing", "map_smoothing", ("none", "median", "gaussian", "box")),
    ("--defect-map-smoothing-ksize", "map_smoothing_ksize", "int"),
    ("--defect-map-smoothing-sigma", "map_smoothing_sigma", "float"),
    ("--defect-hysteresis", "hysteresis", "bool"),
    ("--defect-hysteresis-low", "hysteresis_low", "float"),
    ("--defect-hysteresis-high", "hysteresis_high", "float"),
    ("--defect-open-ksize", "open_ksize", "int"),
    ("--defect-close-ksize", "close_ksize", "int"),
    ("--defect-fill-holes", "fill_holes", "bool"),
    ("--defect-min-area", "min_area", "int"),
    ("--defect-min-score-max", "min_score_max", "float"),
    ("--defect-min-score-mean", "min_score_mean", "float"),
    ("--defect-min-fill-ratio", "min_fill_ratio", "float"),
    ("--defect-max-aspect-ratio", "max_aspect_ratio", "float"),
    ("--defect-min-solidity", "min_solidity", "float"),
    ("--defect-merge-nearby", "merge_nearby", "bool"),
    ("--defect-merge-nearby-max-gap-px", "merge_nearby_max_gap_px", "int"),
    ("--defect-max-regions", "max_regions", "int"),
    ("--defect-max-regions-sort-by", "max_regions_sort_by", ("score_max", "score_mean", "area")),
    ("--mask-format", "mask_format", ("png", "npy")),
)


class UsageError(ValueError):
    """A bad flag, config or input: reported on one line, exit code 2."""


# ----------------------------------------------------------------------------- argparse types
def _int_type(minimum: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid value {text!r}; accepted: an integer") from None
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"invalid value {text!r}; accepted: an integer >= {minimum}")
        return value

    parse.__name__ = "int"
    return parse


def _float_type(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}; accepted: a finite number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"invalid value {text!r}; accepted: a finite number")
    return value


def _quantile_type(text: str) -> float:
    value = _float_type(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}; accepted: a number in [0, 1]")
    return value


def _json_object(text: str, what: str) -> dict:
    """A JSON object given inline or as ``@file`` / a path to a ``.json`` file."""
    source = text
    if text.startswith("@") or (text.lower().endswith(".json") and Path(text).is_file()):
        path = Path(text[1:] if text.startswith("@") else text)
        try:
            source = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise argparse.ArgumentTypeError(f"cannot read {what} file {str(path)!r}: {exc.strerror or exc}") from None
    try:
        value = json.loads(source)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"invalid {what} {text!r}: not JSON ({exc.msg}); accepted: a JSON object") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"invalid {what} {text!r}; accepted: a JSON object such as '{{\"key\": 1}}'")
    return value


def _model_kwargs_type(text: str) -> dict:
    return _json_object(text, "--model-kwargs")


def _postprocess_type(text: str) -> dict | None:
    if text.strip().lower() in ("none", "null", "off"):
        return {}
    return _json_object(text, "--postprocess")


class _Parser(argparse.ArgumentParser):
    """Reports errors as one ``prog: error: ...`` line (plus usage) and exit code 2."""

    out_stream: TextIO | None = None
    err_stream: TextIO | None = None

    def print_help(self, file=None):
        super().print_help(file if file is not None else (self.out_stream or sys.stdout))

    def error(self, message: str):  # noqa: D401 - argparse API
        # The full usage is 60 lines; the message names the flag, its value and the accepted ones.
        (self.err_stream or sys.stderr).write(f"usage: {self.prog} [options] (see --help)\n{self.prog}: error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    """The ``pyimgano-infer`` argument parser.

    Every option defaults to None (or is absent) so that values from an
    infer-config can be told apart from explicit flags: explicit flags win.
    """
    p = _Parser(
        prog=PROG,
        description="Score images with a pyimgano detector; write one JSONL record per input "
        "(stdout unless --save-jsonl), plus optional anomaly maps, defect masks, regions and overlays.",
        epilog="Exit codes: 0 ok; 1 some inputs failed with --continue-on-error; 2 bad flags, configs or inputs. "
        "See docs/cli.md.",
    )
    g = p.add_argument_group("discovery")
    g.add_argument("--list-models", action="store_true", help="list registered detectors and exit")
    g.add_argument("--tags", type=parse_tags, default=None, help="with --list-models: only detectors having all these comma-separated tags")
    g.add_argument("--model-info", metavar="NAME", default=None, help="describe one detector (tags, config fields) and exit")
    g.add_argument("--json", action="store_true", help="machine-readable output for --list-models / --model-info")

    g = p.add_argument_group("model")
    g.add_argument("--model", default=None, help=f"registered detector name (default {DEFAULT_MODEL})")
    g.add_argument("--model-kwargs", type=_model_kwargs_type, default=None, metavar="JSON",
                   help="detector config overrides as a JSON object (inline, @file or a .json path); "
                   "'contamination' sets the calibration quantile 1 - contamination")
    g.add_argument("--preset", default=None, help="model preset, e.g. industrial-fast | industrial-balanced | industrial-accurate")
    g.add_argument("--backbone", default=None, help="backbone name (overrides the preset and model kwargs)")
    g.add_argument("--checkpoint-path", default=None, metavar="FILE", help="a saved DetectorState (pyimgano.save_state) to load instead of fitting")
    g.add_argument("--train-dir", default=None, metavar="DIR", help="normal images: fit the detector (unless a checkpoint is given) and calibrate thresholds")
    g.add_argument("--calibration-quantile", type=_quantile_type, default=None, metavar="Q",
                   help="image-threshold quantile of train scores (default 1 - contamination, else 0.995); forces calibration with --train-dir")
    g.add_argument("--seed", type=_int_type(0), default=None, help="seed of the detector's randomness (coreset, projections)")
    g.add_argument("--infer-config", default=None, metavar="FILE", help="infer_config.json: its values are defaults, explicit flags win")
    g.add_argument("--from-run", default=None, metavar="DIR", help="a pyimgano-train run directory (reads DIR/artifacts/infer_config.json)")
    g.add_argument("--from-run-category", default=None, metavar="CAT", help="category of a multi-category run")

    g = p.add_argument_group("inputs")
    g.add_argument("--input", action="append", default=None, metavar="PATH",
                   help="image file, folder (recursive, sorted) or glob; repeatable")
    g.add_argument("--input-format", default=None, metavar="FORMAT", help="layout of .npy frame inputs, e.g. bgr_u8_hwc (required for .npy)")
    g.add_argument("--batch-size", type=_int_type(1), default=None, help=f"images per inference step (default {DEFAULT_BATCH_SIZE})")

    g = p.add_argument_group("maps")
    g.add_argument("--include-maps", action="store_true", default=None, help="compute anomaly maps; records carry their shape/dtype")
    g.add_argument("--save-maps", default=None, metavar="DIR", help="write maps as DIR/{index:06d}_{stem}.npy (implies --include-maps)")
    g.add_argument("--postprocess", type=_postprocess_type, default=None, metavar="JSON",
                   help="anomaly-map post-processing as JSON, e.g. '{\"normalize\": \"percentile\", \"gaussian_sigma\": 1}'; 'none' disables")
    g.add_argument("--tile-size", type=_int_type(1), default=None, help="tiled inference: square tile side in pixels")
    g.add_argument("--tile-stride", type=_int_type(1), default=None, help="tile step (default: tile size)")
    g.add_argument("--tile-score-reduce", choices=SCORE_REDUCES, default=None, help="image score from tile scores")
    g.add_argument("--tile-score-topk", type=_float_type, default=None, help="topk_mean: tile count (>= 1) or fraction (0, 1)")
    g.add_argument("--tile-map-reduce", choices=MAP_REDUCES, default=None, help="how overlapping tile maps blend")

    g = p.add_argument_group("defects")
    g.add_argument("--defects", action="store_true", default=None, help="extract defect masks and regions (implies maps)")
    g.add_argument("--defects-preset", default=None, metavar="NAME", help="defects preset, e.g. industrial-defects-fp40")
    g.add_argument("--save-masks", default=None, metavar="DIR", help="write masks as DIR/{index:06d}_{stem}.{png|npy}")
    g.add_argument("--save-overlays", default=None, metavar="DIR", help="write review overlays as DIR/{index:06d}_{stem}.png")
    g.add_argument("--roi-xyxy-norm", type=_float_type, nargs=4, default=None, metavar=("X1", "Y1", "X2", "Y2"),
                   help="ROI in [0, 1] fractions of the map; gates defects only, never score/label")
    g.add_argument("--defects-image-space", action="store_true", default=None, help="add bbox_xyxy_image (image pixels) to regions")
    for flag, field, kind in DEFECT_FLAGS:
        dest = "defect__" + field
        if kind == "bool":
            g.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=None, help=f"DefectsConfig.{field}")
        elif kind == "int":
            g.add_argument(flag, dest=dest, type=_int_type(0), default=None, metavar="N", help=f"DefectsConfig.{field}")
        elif kind == "float":
            g.add_argument(flag, dest=dest, type=_float_type, default=None, metavar="X", help=f"DefectsConfig.{field}")
        else:
            g.add_argument(flag, dest=dest, choices=kind, default=None, help=f"DefectsConfig.{field}")

    g = p.add_argument_group("output and errors")
    g.add_argument("--save-jsonl", default=None, metavar="FILE", help="write records here (default: stdout)")
    g.add_argument("--continue-on-error", action="store_true", default=None,
                   help="write an error record for a failed input and go on; exit 1 at the end")
    g.add_argument("--max-errors", type=_int_type(0), default=None, metavar="N",
                   help="with --continue-on-error: stop after more than N failed inputs (exit 1)")
    g.add_argument("--profile-json", default=None, metavar="FILE", help="write counts and per-stage seconds here")
    return p


# ----------------------------------------------------------------------------- options
@attrs.frozen(eq=False)
class InferOptions:
    """Resolved settings of one run (explicit flags layered over an infer-config)."""

    inputs: tuple[str, ...]
    input_format: str | None
    model: str | None
    model_kwargs: dict
    preset: str | None
    backbone: str | None
    checkpoint_path: str | None
    contamination: float | None
    train_dir: str | None
    calibration_quantile: float | None
    seed: int | None
    threshold: float | None
    threshold_provenance: dict | None
    include_maps: bool
    save_maps: str | None
    postprocess: dict | None
    tiling: dict | None
    defects: bool
    defects_config: Any  # DefectsConfig | None
    infer_config_pixel_threshold: float | None
    save_masks: str | None
    save_overlays: str | None
    defects_image_space: bool
    save_jsonl: str | None
    batch_size: int
    continue_on_error: bool
    max_errors: int | None
    profile_json: str | None


def _pick(explicit, default):
    return explicit if explicit is not None else default


def _load_config_file(args) -> InferConfig | None:
    if args.infer_config and args.from_run:
        raise UsageError("--infer-config and --from-run both name an infer-config; pass one")
    if args.from_run_category and not args.from_run:
        raise UsageError("--from-run-category needs --from-run DIR")
    try:
        if args.infer_config:
            return load_infer_config(args.infer_config)
        if args.from_run:
            path = find_run_infer_config(args.from_run, args.from_run_category)
            return load_infer_config(path, category=args.from_run_category)
    except InferConfigError as exc:
        raise UsageError(str(exc)) from None
    return None


def _defects_config(args, cfg: InferConfig | None):
    """DefectsConfig: defaults < infer-config block < --defects-preset < explicit flags."""
    from pyimgano.defects import DefectsConfig, config_from_infer_config, get_defects_preset

    try:
        infer_value = None
        config = DefectsConfig()
        if cfg is not None and cfg.defects is not None:
            config, infer_value = config_from_infer_config(cfg.defects)
        if args.defects_preset is not None:
            preset = get_defects_preset(args.defects_preset)
            # A preset sets only what differs from the defaults; the infer-config keeps the rest.
            changed = {
                f.name: getattr(preset, f.name)
                for f in attrs.fields(DefectsConfig)
                if getattr(preset, f.name) != f.default
            }
            config = attrs.evolve(config, **changed)
        explicit = {field: getattr(args, "defect__" + field) for _, field, _ in DEFECT_FLAGS}
        explicit = {k: v for k, v in explicit.items() if v is not None}
        if args.roi_xyxy_norm is not None:
            explicit["roi_xyxy_norm"] = tuple(args.roi_xyxy_norm)
        config = attrs.evolve(config, **explicit)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"invalid defects settings: {exc}") from None
    return config, infer_value


def resolve_options(args) -> InferOptions:
    """Layer explicit flags over the infer-config (if any) into :class:`InferOptions`.

    Raises:
      UsageError: conflicting or bad settings (the message names them).
    """
    cfg = _load_config_file(args)
    c = cfg or InferConfig(path="")
    if not args.input:
        raise UsageError("no inputs: pass --input PATH (a file, folder or glob; repeatable)")

    model = args.model
    model_kwargs = dict(args.model_kwargs or {})
    # The config's model settings and threshold belong to its model: another --model drops them.
    same_model = model is None or model == c.model_name
    if not same_model:
        c = attrs.evolve(c, model_kwargs=None, backbone=None, preset=None, checkpoint_path=None,
                         contamination=None, threshold=None, threshold_provenance=None)
    if same_model:
        # Config kwargs belong to the config's model; explicit kwargs win key by key.
        model_kwargs = {**(c.model_kwargs or {}), **model_kwargs}
        model = _pick(model, c.model_name)
    contamination = model_kwargs.pop("contamination", None)
    contamination = _pick(contamination, c.contamination)
    if contamination is not None:
        if isinstance(contamination, bool) or not isinstance(contamination, (int, float)) or not 0.0 < contamination < 0.5:
            raise UsageError(f"invalid contamination {contamination!r}; accepted: a number in (0, 0.5)")
    checkpoint = _pick(args.checkpoint_path, c.checkpoint_path)

    tiling = dict(c.tiling) if c.tiling else {}
    for key, value in (
        ("tile_size", args.tile_size),
        ("stride", args.tile_stride),
        ("score_reduce", args.tile_score_reduce),
        ("score_topk", args.tile_score_topk),
        ("map_reduce", args.tile_map_reduce),
    ):
        if value is not None:
            tiling[key] = value
    if tiling and tiling.get("tile_size") is None:
        raise UsageError("tiling flags need --tile-size N (or tiling.tile_size in the infer-config)")
    tiling = {k: v for k, v in tiling.items() if v is not None} or None

    postprocess = c.postprocess if args.postprocess is None else args.postprocess
    postprocess = postprocess or None  # {} ("none") disables

    defects = bool(args.defects)
    defects_config, infer_value = (None, None)
    if defects:
        defects_config, infer_value = _defects_config(args, cfg)
    elif any(getattr(args, "defect__" + f) is not None for _, f, _ in DEFECT_FLAGS) or args.roi_xyxy_norm is not None \
            or args.save_masks or args.defects_image_space or args.defects_preset:
        raise UsageError("defect options (--pixel-threshold, --defect-*, --roi-xyxy-norm, --save-masks, ...) need --defects")
    if args.save_overlays and not defects:
        raise UsageError("--save-overlays needs --defects (overlays show the defect mask)")

    if args.max_errors is not None and not args.continue_on_error:
        raise UsageError("--max-errors N needs --continue-on-error")
    include_maps = bool(_pick(args.include_maps, c.include_maps) or args.save_maps)
    return InferOptions(
        inputs=tuple(args.input),
        input_format=_pick(args.input_format, c.input_format),
        model=model,
        model_kwargs=model_kwargs,
        preset=_pick(args.preset, c.preset),
        backbone=_pick(args.backbone, c.backbone),
        checkpoint_path=checkpoint,
        contamination=None if contamination is None else float(contamination),
        train_dir=args.train_dir,
        calibration_quantile=args.calibration_quantile,
        seed=args.seed,
        threshold=c.threshold,
        threshold_provenance=c.threshold_provenance,
        include_maps=include_maps,
        save_maps=args.save_maps,
        postprocess=postprocess,
        tiling=tiling,
        defects=defects,
        defects_config=defects_config,
        infer_config_pixel_threshold=infer_value,
        save_masks=args.save_masks,
        save_overlays=args.save_overlays,
        defects_image_space=bool(args.defects_image_space),
        save_jsonl=args.save_jsonl,
        batch_size=args.batch_size or DEFAULT_BATCH_SIZE,
        continue_on_error=bool(args.continue_on_error),
        max_errors=args.max_errors,
        profile_json=args.profile_json,
    )


# ----------------------------------------------------------------------------- the run
class _Clock:
    """Per-stage seconds for --profile-json."""

    STAGES = ("load_model", "fit_calibrate", "infer", "artifacts")

    def __init__(self):
        self.start = time.perf_counter()
        self.seconds = {stage: 0.0 for stage in self.STAGES}
        self.first_record: float | None = None

    def add(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        self.seconds[stage] += now - since
        return now


def _with_threshold(detector, threshold: float, provenance: Mapping | None):
    """The detector (state or tiled wrapper) carrying ``threshold``."""
    from pyimgano.state import DetectorState

    if isinstance(detector, DetectorState):
        return attrs.evolve(detector, threshold=float(threshold), threshold_provenance=dict(provenance or {}))
    detector.threshold_ = float(threshold)
    detector.threshold_provenance_ = dict(provenance or {})
    return detector


def _current_threshold(detector) -> float | None:
    from pyimgano.inference import detector_threshold

    return detector_threshold(detector)


def _model_overrides(opts: InferOptions, name: str) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if opts.preset is not None:
        overrides.update(preset_overrides(name, opts.preset))
    if opts.backbone is not None:
        overrides["backbone"] = opts.backbone
    overrides.update(opts.model_kwargs)
    if "backbone" in opts.model_kwargs and opts.backbone is not None and opts.model_kwargs["backbone"] != opts.backbone:
        raise UsageError(
            f"--backbone {opts.backbone!r} disagrees with model kwargs backbone {opts.model_kwargs['backbone']!r}; give one"
        )
    if opts.seed is not None:
        overrides["seed"] = opts.seed
    return overrides


class _Runner:
    """One ``pyimgano-infer`` run: model -> thresholds -> records/artifacts."""

    def __init__(self, opts: InferOptions, *, stdout: TextIO, stderr: TextIO):
        self.opts = opts
        self.stdout = stdout
        self.stderr = stderr
        self.clock = _Clock()
        self.counts = {"inputs": 0, "processed": 0, "errors": 0}
        self.postprocess = None
        self.pixel_threshold: float | None = None
        self.pixel_provenance: dict | None = None

    # -- setup ---------------------------------------------------------------
    def _postprocess(self):
        if not self.opts.postprocess:
            return None
        from pyimgano.postprocess import AnomalyMapPostprocess

        try:
            return AnomalyMapPostprocess.from_dict(self.opts.postprocess)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"invalid --postprocess {json.dumps(self.opts.postprocess)}: {exc}") from None

    def _train_items(self) -> list[InputItem]:
        try:
            return discover_inputs([self.opts.train_dir], input_format=self.opts.input_format, what="--train-dir")
        except (InputError, ValueError) as exc:
            raise UsageError(str(exc)) from None

    def _frames_of(self, items: Sequence[InputItem]):
        """Paths when every item is an image file (decoded by the library), else canonical frames."""
        if not any(item.is_npy for item in items):
            return [item.path for item in items], None
        return [load_item(item, input_format=self.opts.input_format) for item in items], "rgb_u8_hwc"

    def _check_defects_early(self, detector_tags: frozenset | None) -> None:
        """Fail before any work when --defects cannot get a pixel threshold (exit 2)."""
        from pyimgano.defects import resolve_pixel_threshold

        cfg = self.opts.defects_config
        strategy = cfg.pixel_threshold_strategy
        if self.opts.train_dir is None or strategy in ("fixed", "infer_config"):
            try:
                resolve_pixel_threshold(cfg, infer_config_value=self.opts.infer_config_pixel_threshold, normal_maps=None)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
        if detector_tags is not None and "pixel_map" not in detector_tags:
            raise UsageError("--defects needs a detector with anomaly maps (tag pixel_map)")

    def load_model(self):
        from pyimgano import api, load_state
        from pyimgano.registry import get_detector

        opts = self.opts
        t0 = time.perf_counter()
        if opts.checkpoint_path is not None:
            try:
                state = load_state(opts.checkpoint_path)
            except (FileNotFoundError, ValueError) as exc:
                raise UsageError(f"--checkpoint-path: {exc}") from None
            ignored = [flag for flag, value in (("--preset", opts.preset), ("--backbone", opts.backbone),
                                                ("--seed", opts.seed)) if value is not None]
            if ignored or opts.model_kwargs:
                # The checkpoint carries its own config; say so rather than silently ignore the flags.
                names = ignored + (["model kwargs"] if opts.model_kwargs else [])
                print(f"{PROG}: warning: {', '.join(names)} ignored: the checkpoint's config is used", file=self.stderr)
            if opts.model is not None and get_detector(opts.model).name != state.detector:
                raise UsageError(
                    f"--model {opts.model!r} disagrees with the checkpoint's detector {state.detector!r}; drop --model or match it"
                )
            if opts.defects:
                self._check_defects_early(get_detector(state.detector).tags)
            self.clock.add("load_model", t0)
            return state, None
        name = opts.model or DEFAULT_MODEL
        try:
            spec = get_detector(name)
            _, config = api.make_config(name, **_model_overrides(opts, spec.name))
        except (TypeError, ValueError) as exc:
            raise UsageError(f"--model {name!r}: {exc}") from None
        if opts.defects:
            self._check_defects_early(spec.tags)
        if opts.train_dir is None:
            raise UsageError(
                f"{spec.name} must be fitted first: pass --train-dir DIR (normal images), "
                "--checkpoint-path FILE, or an infer-config with model.checkpoint_path"
            )
        train = self._train_items()
        self.clock.add("load_model", t0)
        t1 = time.perf_counter()
        frames, fmt = self._frames_of(train)
        with Progress(f"fit {spec.name}", len(frames), stream=self.stderr) as bar:
            try:
                state = api.fit(config, frames, fmt, progress=bar.set)
            except (FileNotFoundError, ValueError, TypeError) as exc:
                raise UsageError(f"fitting {spec.name} on --train-dir {opts.train_dir!r} failed: {exc}") from None
        self.clock.add("fit_calibrate", t1)
        return state, train

    def calibrate(self, detector, train: list[InputItem] | None):
        """Image threshold and (for --defects) pixel threshold, in one pass over the train set."""
        from pyimgano.defects import resolve_pixel_threshold
        from pyimgano.inference import infer, quantile_threshold

        opts = self.opts
        t0 = time.perf_counter()
        if opts.threshold is not None and (opts.calibration_quantile is None or opts.train_dir is None):
            provenance = opts.threshold_provenance or {"method": "fixed", "source": "infer_config"}
            detector = _with_threshold(detector, opts.threshold, provenance)
        if opts.train_dir is not None and train is None:
            train = self._train_items()
        need_image = train is not None and (opts.calibration_quantile is not None or _current_threshold(detector) is None)
        scores: list[float] = []
        complete = {"done": False}

        def normal_maps():
            # Maps of the train images, with the same tiling and postprocess as inference;
            # their scores are collected on the way so the image threshold needs no second pass.
            frames, fmt = self._frames_of(train)
            with Progress("calibrate", len(frames), stream=self.stderr) as bar:
                for start in range(0, len(frames), opts.batch_size):
                    chunk = frames[start : start + opts.batch_size]
                    for result in infer(detector, chunk, input_format=fmt, include_maps=True,
                                        postprocess=self.postprocess, batch_size=opts.batch_size):
                        scores.append(result.score)
                        yield result.anomaly_map
                    bar.set(start + len(chunk))
            complete["done"] = True

        if opts.defects:
            try:
                self.pixel_threshold, self.pixel_provenance = resolve_pixel_threshold(
                    opts.defects_config,
                    infer_config_value=opts.infer_config_pixel_threshold,
                    normal_maps=normal_maps() if train is not None else None,
                )
            except ValueError as exc:
                raise UsageError(str(exc)) from None
        if need_image:
            if not complete["done"]:
                scores.clear()
                frames, fmt = self._frames_of(train)
                with Progress("calibrate", len(frames), stream=self.stderr) as bar:
                    for start in range(0, len(frames), opts.batch_size):
                        chunk = frames[start : start + opts.batch_size]
                        scores.extend(r.score for r in infer(detector, chunk, input_format=fmt, batch_size=opts.batch_size))
                        bar.set(start + len(chunk))
            if opts.calibration_quantile is not None:
                q = opts.calibration_quantile
            elif opts.contamination is not None:
                q = 1.0 - opts.contamination
            else:
                q = DEFAULT_CALIBRATION_QUANTILE
            try:
                threshold, provenance = quantile_threshold(scores, q, source="train_dir")
            except ValueError as exc:
                raise UsageError(f"image threshold calibration on --train-dir failed: {exc}") from None
            detector = _with_threshold(detector, threshold, provenance)
        self.clock.add("fit_calibrate", t0)
        return detector

    def build_detector(self):
        state, train = self.load_model()
        detector = state
        if self.opts.tiling:
            from pyimgano.inference import TiledDetector

            t0 = time.perf_counter()
            try:
                detector = TiledDetector(state, batch_size=1, **self.opts.tiling)
            except (TypeError, ValueError) as exc:
                raise UsageError(f"invalid tiling {json.dumps(self.opts.tiling)}: {exc}") from None
            if state.threshold is not None and self.opts.threshold is None and self.opts.train_dir is None:
                # Tiled scores are on another scale: an untiled threshold does not carry over.
                print(f"{PROG}: warning: the checkpoint's threshold is not used with tiling; "
                      "pass --train-dir to calibrate the tiled scores", file=self.stderr)
            self.clock.add("load_model", t0)
        return self.calibrate(detector, train)

    # -- per input -------------------------------------------------------------
    def _record(self, index: int, item: InputItem, frame, result, stage: list[str]) -> dict[str, Any]:
        """The JSONL record of one scored input; writes its artifacts. ``stage[0]`` tracks the step for errors."""
        from pyimgano.inference import result_to_jsonable

        opts = self.opts
        stage[0] = "artifacts"
        record: dict[str, Any] = {"index": index, "input": item.name}
        amap = result.anomaly_map
        map_path = None
        if amap is not None and opts.save_maps:
            map_path = save_npy(artifact_path(opts.save_maps, index, item.stem, "npy"), amap)["path"]
        shown = result if (opts.include_maps and amap is not None) else attrs.evolve(result, anomaly_map=None)
        record.update(result_to_jsonable(shown, map_path=map_path))
        if opts.defects:
            from pyimgano.defects import extract_defects, save_mask, save_overlay

            if amap is None:
                raise RuntimeError("the detector returned no anomaly map, which --defects needs")
            cfg = opts.defects_config
            stage[0] = "defects"
            found = extract_defects(
                amap,
                cfg,
                pixel_threshold=self.pixel_threshold,
                pixel_threshold_provenance=self.pixel_provenance,
                image_hw=tuple(frame.shape[:2]) if opts.defects_image_space else None,
            )
            stage[0] = "artifacts"
            mask_info = None
            if opts.save_masks:
                ext = "png" if cfg.mask_format == "png" else "npy"
                mask_info = save_mask(artifact_path(opts.save_masks, index, item.stem, ext), found.mask, fmt=cfg.mask_format)
            if opts.save_overlays:
                save_overlay(artifact_path(opts.save_overlays, index, item.stem, "png"), frame, amap, found.mask)
            record["defects"] = found.to_jsonable(mask=mask_info)
        return record

    def _score(self, detector, frames: list) -> list:
        from pyimgano.inference import infer

        return infer(
            detector,
            frames,
            input_format="rgb_u8_hwc",
            include_maps=self.opts.include_maps or self.opts.defects,
            postprocess=self.postprocess,
            batch_size=self.opts.batch_size,
        )

    def run(self) -> int:
        opts = self.opts
        try:
            items = discover_inputs(opts.inputs, input_format=opts.input_format)
        except (InputError, ValueError) as exc:
            raise UsageError(str(exc)) from None
        self.counts["inputs"] = len(items)
        self.postprocess = self._postprocess()
        if opts.tiling:
            from pyimgano.inference import TileConfig

            try:  # validated now so a bad tiling flag does not cost a fit first
                TileConfig(**opts.tiling)
            except (TypeError, ValueError) as exc:
                raise UsageError(f"invalid tiling {json.dumps(opts.tiling)}: {exc}") from None
        for folder in (opts.save_maps, opts.save_masks, opts.save_overlays):
            if folder:
                Path(folder).mkdir(parents=True, exist_ok=True)
        detector = self.build_detector()

        stop_code: int | None = None
        with RecordWriter(opts.save_jsonl, stream=self.stdout) as writer, \
                Progress("infer", len(items), stream=self.stderr) as bar:
            for start in range(0, len(items), opts.batch_size):
                batch = list(enumerate(items[start : start + opts.batch_size], start=start))
                outcome = self._process_batch(detector, batch)
                for index, item, record, failure in outcome:
                    if failure is not None:
                        exc, stage = failure
                        self.counts["errors"] += 1
                        if not opts.continue_on_error:
                            print(f"{PROG}: error: input {item.name!r} failed at {stage}: {type(exc).__name__}: "
                                  f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}", file=self.stderr)
                            stop_code = 2
                            break
                        record = error_record(index, item.name, exc, stage)
                    else:
                        self.counts["processed"] += 1
                    writer.write(record)
                    if self.clock.first_record is None:
                        self.clock.first_record = time.perf_counter() - self.clock.start
                    if opts.max_errors is not None and self.counts["errors"] > opts.max_errors:
                        print(f"{PROG}: error: stopping after {self.counts['errors']} failed inputs "
                              f"(more than --max-errors {opts.max_errors})", file=self.stderr)
                        stop_code = 1
                        break
                bar.set(min(len(items), start + len(batch)))
                if stop_code is not None:
                    break
        if stop_code is not None:
            return stop_code
        if self.counts["errors"]:
            print(f"{PROG}: {self.counts['errors']} of {len(items)} inputs failed (see their error records)",
                  file=self.stderr)
            return 1
        return 0

    def _process_batch(self, detector, batch):
        """``[(index, item, record | None, (exc, stage) | None)]`` in input order."""
        opts = self.opts
        t0 = time.perf_counter()
        frames: dict[int, Any] = {}
        failures: dict[int, tuple[BaseException, str]] = {}
        for index, item in batch:
            try:
                frames[index] = load_item(item, input_format=opts.input_format)
            except Exception as exc:  # noqa: BLE001 - any decoding failure becomes that input's error
                failures[index] = (exc, "load")
        ok = [index for index, _ in batch if index in frames]
        results: dict[int, Any] = {}
        try:
            for index, result in zip(ok, self._score(detector, [frames[i] for i in ok])):
                results[index] = result
        except Exception:  # noqa: BLE001 - isolate the failing input(s) by scoring one at a time
            for index in ok:
                try:
                    results[index] = self._score(detector, [frames[index]])[0]
                except Exception as exc:  # noqa: BLE001
                    failures[index] = (exc, "infer")
        t1 = self.clock.add("infer", t0)
        out = []
        for index, item in batch:
            if index in failures:
                out.append((index, item, None, failures[index]))
                continue
            stage = ["artifacts"]
            try:
                record = self._record(index, item, frames[index], results[index], stage)
                out.append((index, item, record, None))
            except Exception as exc:  # noqa: BLE001 - any failure becomes that input's error
                out.append((index, item, None, (exc, stage[0])))
        self.clock.add("artifacts", t1)
        return out

    def profile(self) -> dict[str, Any]:
        seconds = dict(self.clock.seconds)
        seconds["total"] = time.perf_counter() - self.clock.start
        if self.clock.first_record is not None:
            seconds["first_record"] = self.clock.first_record
        return {"counts": dict(self.counts), "seconds": {k: round(v, 6) for k, v in seconds.items()}}


# ----------------------------------------------------------------------------- entry point
def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run ``pyimgano-infer``; returns the exit code (0 ok, 1 inputs failed, 2 usage error)."""
    stdout = stdout if stdout is not None else sys.stdout
    stderr = stderr if stderr is not None else sys.stderr
    parser = build_parser()
    parser.out_stream, parser.err_stream = stdout, stderr
    try:
        args = parser.parse_args(None if argv is None else list(argv))
    except SystemExit as exc:  # argparse: --help (0) or a bad flag (2, message already printed)
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    runner: _Runner | None = None
    try:
        if args.list_models:
            return list_models(args.tags, args.json, stdout)
        if args.model_info is not None:
            return model_info(args.model_info, args.json, stdout)
        if args.tags is not None:
            raise UsageError("--tags filters --list-models; add --list-models")
        opts = resolve_options(args)
        runner = _Runner(opts, stdout=stdout, stderr=stderr)
        code = runner.run()
    except (UsageError, DiscoveryError) as exc:
        print(f"{PROG}: error: {exc}", file=stderr)
        code = 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=stderr)
        code = 130
    except Exception as exc:  # noqa: BLE001 - one line for users; the traceback on request
        if os.environ.get("PYIMGANO_DEBUG"):
            raise
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"{PROG}: error: {type(exc).__name__}: {detail} (set PYIMGANO_DEBUG=1 for a traceback)", file=stderr)
        code = 2
    if runner is not None and runner.opts.profile_json:
        try:
            atomic_write_json(runner.opts.profile_json, runner.profile())
        except OSError as exc:
            print(f"{PROG}: error: cannot write --profile-json {runner.opts.profile_json!r}: {exc}", file=stderr)
            code = code or 2
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
