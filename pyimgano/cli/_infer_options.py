"""``pyimgano-infer`` settings: explicit flags layered over an infer-config, checked before any work.

Layering: library defaults < infer-config (``--infer-config`` / ``--from-run``) <
explicit flags; for defects: ``DefectsConfig`` defaults < the infer-config's
``defects`` block < ``--defects-preset`` (the fields it changes) < explicit flags.
"""

from __future__ import annotations

import os
from typing import Any

import attrs

from pyimgano.cli._infer_parser import DEFAULT_BATCH_SIZE, defect_dest, defect_fields
from pyimgano.cli.common import UsageError
from pyimgano.defects import DefectsConfig, config_from_infer_config, get_defects_preset
from pyimgano.inputs import resolve_max_pixels
from pyimgano.postprocess import AnomalyMapPostprocess
from pyimgano.presets import preset_overrides
from pyimgano.tiling import TileConfig
from pyimgano.workbench import InferConfig, InferConfigError, find_run_infer_config, load_infer_config

__all__ = ["InferOptions", "resolve_options", "model_overrides", "COMPILATION_CACHE_ENV"]

#: Environment variable naming the persistent compilation cache folder (``--compilation-cache``).
COMPILATION_CACHE_ENV = "PYIMGANO_COMPILATION_CACHE"


@attrs.frozen(eq=False)
class InferOptions:
    """Resolved settings of one run."""

    inputs: tuple[str, ...]
    input_format: str | None
    resize: tuple[int, int] | None
    plugins: tuple[str, ...]
    model: str | None
    model_kwargs: dict
    preset: str | None
    backbone: str | None
    checkpoint_path: str | None
    contamination: float | None
    train_dir: str | None
    holdout_fraction: float | None
    calibration_quantile: float | None
    seed: int | None
    threshold: float | None  # an infer-config's image threshold (used when the state has none)
    threshold_provenance: dict | None
    include_maps: bool
    save_maps: str | None
    postprocess: AnomalyMapPostprocess | None
    postprocess_given: bool  # True when a flag or the infer-config set it (None then means "off")
    tiling: TileConfig | None
    defects: bool
    defects_config: DefectsConfig | None
    infer_config_pixel_threshold: float | None
    save_masks: str | None
    save_overlays: str | None
    defects_image_space: bool
    save_run: str | None
    save_jsonl: str | None
    batch_size: int
    max_image_pixels: int | None
    resume: bool
    continue_on_error: bool
    max_errors: int | None
    profile_json: str | None
    device: str
    bank_sharding: str | None
    compilation_cache: str | None
    distributed: bool
    coordinator: str | None
    num_processes: int | None
    process_id: int | None
    ray_workers: int | None = None
    ray_address: str | None = None


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


def _defects_config(args, cfg: InferConfig | None) -> tuple[DefectsConfig, float | None]:
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
        explicit = {f.name: getattr(args, defect_dest(f)) for f in defect_fields()}
        explicit = {k: v for k, v in explicit.items() if v is not None}
        if args.roi_xyxy_norm is not None:
            explicit["roi_xyxy_norm"] = tuple(args.roi_xyxy_norm)
        return attrs.evolve(config, **explicit), infer_value
    except (TypeError, ValueError) as exc:
        raise UsageError(f"invalid defects settings: {exc}") from None


def _tiling(args, c: InferConfig) -> TileConfig | None:
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
    tiling = {k: v for k, v in tiling.items() if v is not None}
    if not tiling:
        return None
    if tiling.get("tile_size") is None:
        raise UsageError("tiling flags need --tile-size N (or tiling.tile_size in the infer-config)")
    if isinstance(tiling.get("score_topk"), float) and tiling["score_topk"].is_integer() and tiling["score_topk"] > 1:
        tiling["score_topk"] = int(tiling["score_topk"])  # "--tile-score-topk 3" is a count
    try:
        return TileConfig.from_dict(tiling)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"invalid tiling {tiling}: {exc}") from None


def _postprocess(args, c: InferConfig) -> tuple[AnomalyMapPostprocess | None, bool]:
    given = args.postprocess is not None or c.postprocess is not None
    block = c.postprocess if args.postprocess is None else args.postprocess
    if not block:  # absent, or {} from "--postprocess none"
        return None, given
    try:
        return AnomalyMapPostprocess.from_dict(block), given
    except (TypeError, ValueError) as exc:
        raise UsageError(f"invalid --postprocess {block}: {exc}") from None


def _contamination(model_kwargs: dict, c: InferConfig) -> float | None:
    value = _pick(model_kwargs.pop("contamination", None), c.contamination)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 0.5:
        raise UsageError(f"invalid contamination {value!r}; accepted: a number in (0, 0.5)")
    return float(value)


def _check_resize_limit(resize, max_image_pixels) -> None:
    """A resize target is decoded pixels too: it may not exceed the decode limit."""
    if resize is None:
        return
    try:
        limit = resolve_max_pixels(max_image_pixels)
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    if resize[0] * resize[1] > limit:
        raise UsageError(
            f"resize {list(resize)} is {resize[0] * resize[1]:,} pixels, above the decode limit of {limit:,} "
            "(--max-image-pixels / PYIMGANO_MAX_IMAGE_PIXELS)"
        )


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
    if model is not None and model != c.model_name:
        c = attrs.evolve(c, model_kwargs=None, backbone=None, preset=None, checkpoint_path=None,
                         contamination=None, threshold=None, threshold_provenance=None)
    else:
        model_kwargs = {**(c.model_kwargs or {}), **model_kwargs}  # explicit kwargs win key by key
        model = _pick(model, c.model_name)
    contamination = _contamination(model_kwargs, c)

    defects = bool(args.defects)
    defects_config, infer_value = _defects_config(args, cfg) if defects else (None, None)
    defect_flag_given = any(getattr(args, defect_dest(f)) is not None for f in defect_fields())
    if not defects and (defect_flag_given or args.roi_xyxy_norm is not None or args.save_masks
                        or args.defects_image_space or args.defects_preset):
        raise UsageError("defect options (--pixel-threshold, --defect-*, --roi-xyxy-norm, --save-masks, ...) need --defects")
    if args.save_overlays and not defects:
        raise UsageError("--save-overlays needs --defects (overlays show the defect mask)")
    if args.max_errors is not None and not args.continue_on_error:
        raise UsageError("--max-errors N needs --continue-on-error")
    if args.resume and not args.save_jsonl:
        raise UsageError("--resume needs --save-jsonl FILE (records on stdout cannot be resumed)")
    if args.save_run and not args.train_dir:
        raise UsageError("--save-run DIR needs --train-dir (it saves the state fitted and calibrated in this run)")
    if args.holdout_fraction is not None and not 0.0 < args.holdout_fraction < 1.0:
        raise UsageError(f"invalid --holdout-fraction {args.holdout_fraction!r}; accepted: a number in (0, 1)")
    if not args.distributed and (args.coordinator or args.num_processes is not None or args.process_id is not None):
        raise UsageError("--coordinator, --num-processes and --process-id need --distributed")
    if args.process_id is not None and args.num_processes is not None and args.process_id >= args.num_processes:
        raise UsageError(f"invalid --process-id {args.process_id}; accepted: 0..{args.num_processes - 1} "
                         f"(--num-processes {args.num_processes})")
    if args.ray_address and not args.ray_workers:
        raise UsageError("--ray-address needs --ray-workers N")
    if args.ray_workers and args.distributed:
        raise UsageError("--ray-workers and --distributed are two ways to scale out; pass one")
    if args.resume and args.distributed:
        raise UsageError("--resume is not supported with --distributed yet; resume the run in one process, "
                         "or re-run all processes without --resume")
    postprocess, postprocess_given = _postprocess(args, c)
    resize = tuple(args.resize) if args.resize is not None else c.resize
    _check_resize_limit(resize, args.max_image_pixels)
    return InferOptions(
        inputs=tuple(args.input),
        input_format=_pick(args.input_format, c.input_format),
        resize=resize,
        plugins=tuple(args.plugin or ()),
        model=model,
        model_kwargs=model_kwargs,
        preset=_pick(args.preset, c.preset),
        backbone=_pick(args.backbone, c.backbone),
        checkpoint_path=_pick(args.checkpoint_path, c.checkpoint_path),
        contamination=contamination,
        train_dir=args.train_dir,
        holdout_fraction=args.holdout_fraction,
        calibration_quantile=args.calibration_quantile,
        seed=args.seed,
        threshold=c.threshold,
        threshold_provenance=c.threshold_provenance,
        include_maps=bool(_pick(args.include_maps, c.include_maps) or args.save_maps),
        save_maps=args.save_maps,
        postprocess=postprocess,
        postprocess_given=postprocess_given,
        tiling=_tiling(args, c),
        defects=defects,
        defects_config=defects_config,
        infer_config_pixel_threshold=infer_value,
        save_masks=args.save_masks,
        save_overlays=args.save_overlays,
        defects_image_space=bool(args.defects_image_space),
        save_run=args.save_run,
        save_jsonl=args.save_jsonl,
        batch_size=args.batch_size or DEFAULT_BATCH_SIZE,
        max_image_pixels=args.max_image_pixels,
        resume=bool(args.resume),
        continue_on_error=bool(args.continue_on_error),
        max_errors=args.max_errors,
        profile_json=args.profile_json,
        device=_pick(args.device, c.device) or "auto",
        bank_sharding=args.bank_sharding,
        compilation_cache=_pick(args.compilation_cache, os.environ.get(COMPILATION_CACHE_ENV) or None),
        distributed=bool(args.distributed),
        coordinator=args.coordinator,
        num_processes=args.num_processes,
        process_id=args.process_id,
        ray_workers=args.ray_workers,
        ray_address=args.ray_address,
    )


def model_overrides(opts: InferOptions, name: str) -> dict[str, Any]:
    """Config overrides for detector ``name``: preset < model kwargs < --backbone / --seed."""
    overrides: dict[str, Any] = {}
    if opts.preset is not None:
        try:
            overrides.update(preset_overrides(name, opts.preset))
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    overrides.update(opts.model_kwargs)
    if opts.backbone is not None:
        if "backbone" in opts.model_kwargs and opts.model_kwargs["backbone"] != opts.backbone:
            raise UsageError(
                f"--backbone {opts.backbone!r} disagrees with model kwargs backbone "
                f"{opts.model_kwargs['backbone']!r}; give one"
            )
        overrides["backbone"] = opts.backbone
    if opts.seed is not None:
        overrides["seed"] = opts.seed
    return overrides
