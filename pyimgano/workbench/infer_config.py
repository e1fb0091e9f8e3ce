"""``infer_config.json``: the deployable inference settings of a run (schema in ``docs/cli.md``).

Written by :func:`save_run` (``pyimgano-infer --save-run``, the workbench) next to
the run's detector state; read by ``pyimgano-infer --infer-config FILE`` and
``--from-run DIR``. Values here are defaults; explicit command-line flags win.
Unknown keys are errors that list the accepted ones, so a typo never silently
changes a deployment.

A run directory written by :func:`save_run`::

    DIR/checkpoints/detector_state.safetensors   the calibrated DetectorState (thresholds, tiling, postprocess)
    DIR/artifacts/infer_config.json             model.checkpoint_path -> ../checkpoints/..., defects, maps

A ``pyimgano-train`` run (``--export-infer-config``) keeps one state per category under
``DIR/checkpoints/<cat>/``; its ``artifacts/infer_config.json`` is the flat payload of
:func:`infer_config_payload` (with ``category``) for one category, and for several a header
plus a ``categories`` block of per-category payloads (:func:`multi_category_payload`),
chosen with ``--from-run-category``.
"""

from __future__ import annotations

import datetime
import json
import math
import os
from pathlib import Path
from typing import Any, Mapping

import attrs

from pyimgano._version import __version__
from pyimgano.datasets import check_resize
from pyimgano.devices import DeviceError, parse_device_spec
from pyimgano.fileio import atomic_write_json
from pyimgano.state import DetectorState, save_state

__all__ = [
    "InferConfig",
    "InferConfigError",
    "load_infer_config",
    "find_run_infer_config",
    "infer_config_payload",
    "save_run",
    "multi_category_payload",
    "HEADER_KEYS",
    "RUN_STATE_PATH",
    "RUN_INFER_CONFIG_PATH",
    "INFER_CONFIG_SCHEMA_VERSION",
]

#: Where :func:`save_run` puts the state and the infer-config, relative to the run directory.
RUN_STATE_PATH = Path("checkpoints") / "detector_state.safetensors"
RUN_INFER_CONFIG_PATH = Path("artifacts") / "infer_config.json"

INFER_CONFIG_SCHEMA_VERSION = 1

_TOP_KEYS = frozenset(
    {
        "schema_version",
        "pyimgano_version",
        "timestamp_utc",
        "category",
        "categories",
        "model",
        "threshold",
        "threshold_provenance",
        "tiling",
        "postprocess",
        "defects",
        "include_maps",
        "input_format",
        "resize",
    }
)
_MODEL_KEYS = frozenset(
    {"name", "model_kwargs", "backbone", "preset", "checkpoint_path", "contamination", "pretrained", "device"}
)
_TILING_KEYS = frozenset({"tile_size", "stride", "score_reduce", "score_topk", "map_reduce"})


class InferConfigError(ValueError):
    """An infer-config file that cannot be read or has bad keys/values."""


@attrs.frozen(eq=False)
class InferConfig:
    """The parsed settings; every field may be None (not given).

    ``checkpoint_path`` is resolved relative to the file's folder.
    """

    path: str
    model_name: str | None = None
    model_kwargs: dict | None = None
    backbone: str | None = None
    preset: str | None = None
    checkpoint_path: str | None = None
    contamination: float | None = None
    device: str | None = None
    threshold: float | None = None
    threshold_provenance: dict | None = None
    tiling: dict | None = None
    postprocess: dict | None = None
    defects: dict | None = None
    include_maps: bool | None = None
    input_format: str | None = None
    resize: tuple[int, int] | None = None


def _check_keys(block: Any, accepted: frozenset, where: str) -> Mapping:
    if not isinstance(block, Mapping):
        raise InferConfigError(f"{where} must be a JSON object, got {type(block).__name__}: {block!r}")
    unknown = sorted(set(block) - accepted)
    if unknown:
        raise InferConfigError(f"unknown key(s) {unknown} in {where}; accepted: {sorted(accepted)}")
    return block


_MAX_FILE_BYTES = 16 * 1024 * 1024


def _number_or_none(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InferConfigError(f"{where} must be a number or null, got {value!r:.80}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise InferConfigError(f"{where} must be a finite number or null, got {value!r:.80}")
    return number


def _text_or_none(value: Any, where: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InferConfigError(f"{where} must be a string or null, got {value!r:.80}")
    return value


def _reject_constant(name: str):
    raise InferConfigError(f"{name} is not a number JSON allows (NaN and Infinity are refused)")


def _parse_json(path: Path) -> Any:
    try:
        size = path.stat().st_size
        if size > _MAX_FILE_BYTES:
            raise InferConfigError(f"infer-config {path} holds {size} bytes; at most {_MAX_FILE_BYTES} are read")
        return json.loads(path.read_text(encoding="utf-8"), parse_constant=_reject_constant)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise InferConfigError(f"cannot read infer-config {path}: {reason}") from None
    except InferConfigError as exc:
        raise InferConfigError(f"cannot read infer-config {path}: {exc}") from None


def _device_or_none(value: Any) -> str | None:
    if value is None:
        return None
    try:
        parse_device_spec(value)
    except DeviceError as exc:
        raise InferConfigError(f"infer-config model.device: {exc}") from None
    return str(value)


def _select_category(data: Mapping, category: str | None, path: Path) -> Mapping:
    cats = data.get("categories")
    if cats is None:
        own = data.get("category")
        if category is not None and own is not None and own != category:
            raise InferConfigError(f"{path} is the infer-config of category {own!r}, not {category!r}")
        return data
    if not isinstance(cats, Mapping) or not cats:
        raise InferConfigError(f"{path}: 'categories' must be a non-empty JSON object of per-category blocks")
    if category is None:
        if len(cats) > 1:
            raise InferConfigError(
                f"{path} holds several categories {sorted(cats)}; choose one with --from-run-category"
            )
        category = next(iter(cats))
    if category not in cats:
        raise InferConfigError(f"category {category!r} is not in {path}; accepted: {sorted(cats)}")
    merged = {k: v for k, v in data.items() if k != "categories"}
    block = cats[category]
    if not isinstance(block, Mapping):
        raise InferConfigError(f"{path}: categories.{category} must be a JSON object")
    merged.update(block)
    merged["category"] = category
    return merged


def _resize_or_none(value, path) -> tuple[int, int] | None:
    try:
        return check_resize(value)
    except ValueError as exc:
        raise InferConfigError(f"infer-config {path} 'resize': {exc}") from None


def load_infer_config(path: str | os.PathLike, *, category: str | None = None) -> InferConfig:
    """Parse an ``infer_config.json`` file.

    Raises:
      InferConfigError: missing file, a file over 16 MiB, invalid JSON (NaN and
        Infinity included, or nested too deeply), unknown keys, wrong types,
        non-finite numbers, a newer ``schema_version`` or an unknown category.
    """
    path = Path(path)
    if not path.is_file():
        raise InferConfigError(f"infer-config file not found: {path}")
    data = _parse_json(path)
    _check_keys(data, _TOP_KEYS, f"infer-config {path}")
    version = data.get("schema_version", INFER_CONFIG_SCHEMA_VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or version > INFER_CONFIG_SCHEMA_VERSION:
        raise InferConfigError(
            f"infer-config {path} has schema_version {version!r}; this pyimgano reads up to {INFER_CONFIG_SCHEMA_VERSION}"
        )
    data = _select_category(data, category, path)
    _check_keys(data, _TOP_KEYS - {"categories"}, f"infer-config {path}")

    model = _check_keys(data.get("model") or {}, _MODEL_KEYS, "infer-config 'model'")
    kwargs = model.get("model_kwargs")
    if kwargs is not None and not isinstance(kwargs, Mapping):
        raise InferConfigError(f"infer-config model.model_kwargs must be a JSON object, got {kwargs!r}")
    kwargs = dict(kwargs or {})
    if "pretrained" in model and model["pretrained"] is not None:
        kwargs.setdefault("pretrained", bool(model["pretrained"]))
    checkpoint = _text_or_none(model.get("checkpoint_path"), "infer-config model.checkpoint_path")
    if checkpoint is not None:
        checkpoint = Path(checkpoint)
        if not checkpoint.is_absolute():
            checkpoint = path.parent / checkpoint
        checkpoint = str(checkpoint)

    tiling = data.get("tiling")
    if tiling is not None:
        tiling = dict(_check_keys(tiling, _TILING_KEYS, "infer-config 'tiling'"))
        if tiling.get("tile_size") is None:
            tiling = None
    postprocess = data.get("postprocess")
    if postprocess is not None and not isinstance(postprocess, Mapping):
        raise InferConfigError(f"infer-config 'postprocess' must be a JSON object or null, got {postprocess!r}")
    defects = data.get("defects")
    if defects is not None and not isinstance(defects, Mapping):
        raise InferConfigError(f"infer-config 'defects' must be a JSON object or null, got {defects!r}")
    provenance = data.get("threshold_provenance")
    if provenance is not None and not isinstance(provenance, Mapping):
        raise InferConfigError("infer-config 'threshold_provenance' must be a JSON object or null")
    include_maps = data.get("include_maps")
    if include_maps is not None and not isinstance(include_maps, bool):
        raise InferConfigError(f"infer-config 'include_maps' must be true, false or null, got {include_maps!r}")
    return InferConfig(
        path=str(path),
        model_name=_text_or_none(model.get("name"), "infer-config model.name"),
        model_kwargs=kwargs or None,
        backbone=_text_or_none(model.get("backbone"), "infer-config model.backbone"),
        preset=_text_or_none(model.get("preset"), "infer-config model.preset"),
        checkpoint_path=checkpoint,
        contamination=_number_or_none(model.get("contamination"), "infer-config model.contamination"),
        device=_device_or_none(model.get("device")),
        threshold=_number_or_none(data.get("threshold"), "infer-config 'threshold'"),
        threshold_provenance=dict(provenance) if provenance is not None else None,
        tiling=tiling,
        postprocess=dict(postprocess) if postprocess is not None else None,
        defects=dict(defects) if defects is not None else None,
        include_maps=include_maps,
        input_format=_text_or_none(data.get("input_format"), "infer-config 'input_format'"),
        resize=_resize_or_none(data.get("resize"), path),
    )


def find_run_infer_config(run_dir: str | os.PathLike, category: str | None = None) -> Path:
    """The ``infer_config.json`` of a ``pyimgano-train`` run directory.

    With a category, the first existing of ``categories/<cat>/infer_config.json``,
    ``categories/<cat>/artifacts/infer_config.json``, ``artifacts/categories/<cat>/infer_config.json``;
    otherwise (or when none exists) ``artifacts/infer_config.json``, whose
    ``categories`` block, if any, is then searched for the category.

    Raises:
      InferConfigError: not a folder, or no infer-config in it.
    """
    run = Path(run_dir)
    if not run.is_dir():
        raise InferConfigError(f"--from-run {str(run)!r} is not a directory")
    candidates = []
    if category is not None:
        candidates += [
            run / "categories" / category / "infer_config.json",
            run / "categories" / category / "artifacts" / "infer_config.json",
            run / "artifacts" / "categories" / category / "infer_config.json",
        ]
    candidates.append(run / "artifacts" / "infer_config.json")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise InferConfigError(
        f"--from-run {str(run)!r} has no infer_config.json (looked for {[str(c) for c in candidates]}); "
        "write one with pyimgano-train --config CFG --export-infer-config "
        "(or pyimgano-infer --train-dir DIR --save-run RUN_DIR)"
    )


def infer_config_payload(
    state: DetectorState,
    *,
    checkpoint_path: str,
    defects: Mapping[str, Any] | None = None,
    include_maps: bool | None = None,
    input_format: str | None = None,
    resize=None,
    category: str | None = None,
) -> dict[str, Any]:
    """The ``infer_config.json`` dict for a saved state.

    The state file is the source of truth for the threshold, tiling and
    post-processing; they are repeated here so a person (or an older reader)
    can see them. ``checkpoint_path`` is relative to the infer-config's folder.
    ``defects`` is a ``DefectsConfig.to_mapping()`` block (its ``pixel_threshold``
    is set from the state's when the state has one).
    """
    block = None
    if defects is not None:
        block = dict(defects)
        if state.pixel_threshold is not None:
            block["pixel_threshold"] = state.pixel_threshold
    payload: dict[str, Any] = {
        "schema_version": INFER_CONFIG_SCHEMA_VERSION,
        "pyimgano_version": __version__,
        "timestamp_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "model": {"name": state.detector, "checkpoint_path": str(checkpoint_path)},
        "threshold": state.threshold,
        "threshold_provenance": state.provenance,
        "tiling": None if state.tiling is None else state.tiling.to_dict(),
        "postprocess": None if state.postprocess is None else state.postprocess.to_dict(),
        "defects": block,
        "include_maps": include_maps,
        "input_format": input_format,
        "resize": None if resize is None else [int(v) for v in resize],
    }
    if category is not None:
        payload["category"] = category
    return payload


#: Keys a multi-category infer-config keeps at the top; the rest go into each category's block.
HEADER_KEYS = ("schema_version", "pyimgano_version", "timestamp_utc", "input_format", "resize")


def multi_category_payload(payloads: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """One infer-config for several categories: ``{cat: infer_config_payload(...)}`` ->
    the header keys (:data:`HEADER_KEYS`, from the first payload) and a ``categories`` block.
    A single category gives its own payload unchanged.

    Raises:
      ValueError: no payloads, or payloads whose header keys (other than the time) differ.
    """
    if not payloads:
        raise ValueError("multi_category_payload needs at least one category")
    items = list(payloads.items())
    if len(items) == 1:
        return dict(items[0][1])
    first = items[0][1]
    header = {k: first.get(k) for k in HEADER_KEYS}
    for name, payload in items[1:]:
        differ = [k for k in ("schema_version", "input_format", "resize") if payload.get(k) != header[k]]
        if differ:
            raise ValueError(f"category {name!r} differs from {items[0][0]!r} in {differ}; one infer-config cannot hold both")
    blocks = {name: {k: v for k, v in payload.items() if k not in HEADER_KEYS} for name, payload in items}
    for name, block in blocks.items():
        block["category"] = name
    return {**header, "categories": blocks}


def save_run(
    run_dir: str | os.PathLike,
    state: DetectorState,
    *,
    defects: Mapping[str, Any] | None = None,
    include_maps: bool | None = None,
    input_format: str | None = None,
) -> Path:
    """Write ``state`` and its ``infer_config.json`` into ``run_dir`` (see the module docstring).

    Both files are written atomically, the state first, so an infer-config never
    points at a missing or partial state. Returns the infer-config path.
    """
    run = Path(run_dir)
    save_state(state, run / RUN_STATE_PATH)
    config_path = run / RUN_INFER_CONFIG_PATH
    relative = os.path.relpath(run / RUN_STATE_PATH, config_path.parent)
    payload = infer_config_payload(
        state, checkpoint_path=relative, defects=defects, include_maps=include_maps, input_format=input_format
    )
    atomic_write_json(config_path, payload)
    return config_path
