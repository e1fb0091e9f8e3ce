"""The workbench config (SPEC section 9): typed, frozen sections parsed from a plain mapping.

Sections and keys (defaults in :class:`WorkbenchConfig` and each section class)::

    recipe, seed,
    dataset{name, root, category, resize, input_mode, limit_train, limit_test, holdout_fraction},
    model{name, device, preset, pretrained, contamination, backbone, model_kwargs},
    adaptation{tiling, postprocess, save_maps},
    defects{enabled, <every DefectsConfig field, flat or in the nested groups>},
    training{enabled, epochs, lr, batch_size, checkpoint_name},
    output{output_dir, save_run, per_image_jsonl}

:func:`parse_config` checks everything before any work: an unknown key or a wrong type is a
:class:`~pyimgano.workbench.schema.ConfigError` naming the key path (``dataset.resize``), the
bad value, the nearest valid key and the accepted ones. :func:`config_to_mapping` is its
inverse (``config.json`` and ``--dry-run`` print it).
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Any, Mapping

import attrs

from pyimgano.datasets import DATASET_LOADERS, check_resize
from pyimgano.defects import DefectsConfig
from pyimgano.devices import DEVICE_PLATFORMS, DeviceError, parse_device_spec
from pyimgano.fileio import json_plain
from pyimgano.postprocess import AnomalyMapPostprocess
from pyimgano.tiling import TileConfig
from pyimgano.workbench.schema import (
    ConfigError,
    a_bool,
    a_mapping,
    a_number,
    a_string,
    an_int,
    check_keys,
    one_of,
    optional,
    suggest,
)

__all__ = [
    "WorkbenchConfig",
    "DatasetSection",
    "ModelSection",
    "AdaptationSection",
    "DefectsSection",
    "TrainingSection",
    "OutputSection",
    "SECTION_NAMES",
    "DEVICES",
    "INPUT_MODES",
    "ALL_CATEGORIES",
    "DEFAULT_RECIPE",
    "DEFAULT_MODEL",
    "DEFAULT_CHECKPOINT_NAME",
    "parse_config",
    "config_to_mapping",
    "section_help",
]

DEFAULT_RECIPE = "industrial-adapt"
DEFAULT_MODEL = "vision_patchcore"
DEFAULT_CHECKPOINT_NAME = "detector_state.safetensors"
#: ``dataset.category`` value that runs every category of the dataset.
ALL_CATEGORIES = "all"
#: ``model.device`` platforms (``auto``: JAX's default backend); ``gpu:0,1`` picks devices (pyimgano.devices).
DEVICES = DEVICE_PLATFORMS
#: ``dataset.input_mode``: ``paths`` decodes batch by batch; ``numpy`` decodes a split once into memory.
INPUT_MODES = ("paths", "numpy")
_CATEGORY_REQUIRED = ("mvtec", "visa", "btad")
# The nested groups DefectsConfig.from_mapping accepts besides its flat fields.
_DEFECT_GROUPS = ("map_smoothing", "hysteresis", "shape_filters", "merge_nearby")


def _field(default=attrs.NOTHING, *, check, help: str):
    return attrs.field(default=default, metadata={"check": check, "help": help})


def _resize(value: Any, path: str):
    try:
        return check_resize(value)
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _device(value: Any, path: str) -> str:
    try:
        parse_device_spec(value)
    except DeviceError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return str(value)


def _freeze(value: Any) -> Any:
    """JSON values -> hashable ones (lists -> tuples, objects -> sorted item tuples)."""
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _freeze(v)) for k, v in value.items()))
    return value


@attrs.frozen
class DatasetSection:
    """``dataset``: what to load (see docs/workbench.md)."""

    name: str = _field(check=one_of(sorted(DATASET_LOADERS)), help="layout: mvtec, visa, btad, custom or manifest")
    root: str = _field(check=a_string, help="dataset folder (manifest: the JSONL file)")
    category: str | None = _field(None, check=optional(a_string), help="category folder, or 'all'")
    resize: tuple[int, int] | None = _field(None, check=_resize, help="[height, width] every image is resized to")
    input_mode: str = _field("paths", check=one_of(INPUT_MODES), help="paths (stream) or numpy (decode once)")
    limit_train: int | None = _field(None, check=optional(an_int(1)), help="use the first N training images")
    limit_test: int | None = _field(None, check=optional(an_int(1)), help="use N evenly spaced test images")
    holdout_fraction: float = _field(
        0.2, check=a_number(0.0, 1.0, open_low=True, open_high=True),
        help="share of the training images held out to calibrate the thresholds")


@attrs.frozen
class ModelSection:
    """``model``: the detector and its settings."""

    name: str = _field(DEFAULT_MODEL, check=a_string, help="registered detector name")
    device: str = _field("auto", check=_device, help="JAX devices the run uses: auto, cpu, gpu, tpu, or e.g. gpu:0,1")
    preset: str | None = _field(None, check=optional(a_string), help="model preset (pyimgano.presets)")
    pretrained: bool | None = _field(None, check=optional(a_bool), help="ImageNet backbone weights (default: the detector's)")
    contamination: float | None = _field(
        None, check=optional(a_number(0.0, 0.5, open_low=True, open_high=True)),
        help="expected anomaly share c: image threshold = quantile 1 - c of the held-out normal scores")
    backbone: str | None = _field(None, check=optional(a_string), help="backbone name (wins over preset and kwargs)")
    model_kwargs: tuple = _field((), check=a_mapping, help="detector config fields")

    @property
    def kwargs(self) -> dict[str, Any]:
        """``model_kwargs`` as a dict (values as parsed, lists as tuples)."""
        return dict(self.model_kwargs)


@attrs.frozen
class AdaptationSection:
    """``adaptation``: tiling, map post-processing, saved maps."""

    tiling: TileConfig | None = _field(None, check=None, help="tiled inference (tile_size, stride, ...)")
    postprocess: AnomalyMapPostprocess | None = _field(None, check=None, help="anomaly-map post-processing")
    save_maps: bool = _field(False, check=a_bool, help="write .npy maps under artifacts/maps/")


@attrs.frozen
class DefectsSection:
    """``defects``: ``enabled`` and the :class:`DefectsConfig` exported into infer_config.json."""

    enabled: bool = False
    config: DefectsConfig = DefectsConfig()


@attrs.frozen
class TrainingSection:
    """``training``: epochs / lr / batch size of trained detectors, and the state file name."""

    enabled: bool = _field(False, check=a_bool, help="train a detector that trains (tag requires_training)")
    epochs: int | None = _field(None, check=optional(an_int(1)), help="training epochs")
    lr: float | None = _field(None, check=optional(a_number(0.0, None, open_low=True)), help="learning rate")
    batch_size: int | None = _field(None, check=optional(an_int(1)), help="images per step")
    checkpoint_name: str = _field(DEFAULT_CHECKPOINT_NAME, check=a_string,
                                  help="state file name under checkpoints/<category>/")


@attrs.frozen
class OutputSection:
    """``output``: where and what to write."""

    output_dir: str | None = _field(None, check=optional(a_string), help="run folder (default runs/<time>-<recipe>)")
    save_run: bool = _field(True, check=a_bool, help="write the run folder")
    per_image_jsonl: bool = _field(True, check=a_bool, help="write categories/<cat>/per_image.jsonl")


@attrs.frozen
class WorkbenchConfig:
    """One workbench run (frozen, hashable). Build it with :func:`parse_config`."""

    dataset: DatasetSection
    recipe: str = DEFAULT_RECIPE
    seed: int = 0
    model: ModelSection = ModelSection()
    adaptation: AdaptationSection = AdaptationSection()
    defects: DefectsSection = DefectsSection()
    training: TrainingSection = TrainingSection()
    output: OutputSection = OutputSection()

    @property
    def categories_requested(self) -> str | None:
        return self.dataset.category


#: Top-level keys, in the order ``config_to_mapping`` writes them.
SECTION_NAMES = ("recipe", "seed", "dataset", "model", "adaptation", "defects", "training", "output")


def _parse_section(cls, block: Any, path: str, *, required_hint: str = "") -> Any:
    fields = attrs.fields(cls)
    block = check_keys({} if block is None else block, [f.name for f in fields], path)
    values = {}
    for f in fields:
        where = f"{path}.{f.name}"
        if f.name not in block:
            if f.default is attrs.NOTHING:
                raise ConfigError(f"{where}: required{required_hint}")
            continue
        check = f.metadata.get("check")
        values[f.name] = check(block[f.name], where) if check else block[f.name]
    return values


def _parse_block(cls, block: Any, path: str):
    """A TileConfig / AnomalyMapPostprocess from an object, or None for null."""
    if block is None:
        return None
    accepted = [f.name for f in attrs.fields(cls)]
    block = check_keys(block, accepted, path)
    try:
        return cls.from_dict(dict(block))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _parse_defects(block: Any) -> DefectsSection:
    if block is None:
        return DefectsSection()
    block = a_mapping(block, "defects")
    enabled = a_bool(block.get("enabled", False), "defects.enabled")
    fields = dict(block)
    fields.pop("enabled", None)
    accepted = sorted({"enabled", *DefectsConfig.field_names(), *_DEFECT_GROUPS})
    check_keys(fields, accepted, "defects")
    try:
        config = DefectsConfig.from_mapping(fields)
    except (TypeError, ValueError) as exc:
        raise ConfigError(_defects_message(str(exc))) from None
    return DefectsSection(enabled=enabled, config=config)


def _defects_message(text: str) -> str:
    """A ``DefectsConfig`` error re-worded to start with its key path (``defects.<field>: ...``)."""
    unknown = re.match(r"unknown key (defects\.[\w.]+); accepted: \[(.*)\]$", text)
    if unknown:
        accepted = re.findall(r"'([^']+)'", unknown.group(2))
        key = unknown.group(1).rsplit(".", 1)[1]
        return f"{unknown.group(1)}: unknown key{suggest(key, accepted)}; accepted: {accepted}"
    named = re.search(r"(?:DefectsConfig|defects)\.(\w+)", text)
    return f"defects.{named.group(1)}: {text}" if named else f"defects: {text}"


def _check_checkpoint_name(name: str) -> None:
    where = "training.checkpoint_name"
    if PurePath(name).name != name or name in (".", "..") or "/" in name or "\\" in name:
        raise ConfigError(f"{where}: expected a plain file name, got {name!r}")
    if not name.endswith(".safetensors"):
        raise ConfigError(
            f"{where}: {name!r} is not accepted; accepted: a file name ending in .safetensors "
            f"(a pyimgano state is one safetensors file, never a pickle), e.g. {DEFAULT_CHECKPOINT_NAME!r}"
        )


def _check_training(training: TrainingSection) -> None:
    if not training.enabled:
        given = [k for k in ("epochs", "lr", "batch_size") if getattr(training, k) is not None]
        if given:
            raise ConfigError(
                f"training.{given[0]}: set while training.enabled is false; enable training or remove "
                f"{', '.join('training.' + k for k in given)}"
            )
    _check_checkpoint_name(training.checkpoint_name)


def parse_config(data: Mapping[str, Any]) -> WorkbenchConfig:
    """Check a plain mapping (a parsed JSON/YAML config) and build the :class:`WorkbenchConfig`.

    Only the structure and value types are checked here (no detector registry, no files):
    :func:`pyimgano.workbench.check_config` adds the checks that need them.

    Raises:
        ConfigError: the first problem, naming its key path, the bad value, the nearest valid
            key and the accepted ones.
    """
    check_keys(data, SECTION_NAMES, "")
    if "dataset" not in data or data["dataset"] is None:
        raise ConfigError("dataset: required section missing; it needs at least 'name' and 'root' "
                          "(or pass --dataset NAME --root PATH)")
    hint = " (set it in the config or pass the matching command-line flag)"
    dataset = DatasetSection(**_parse_section(DatasetSection, data["dataset"], "dataset", required_hint=hint))
    if dataset.name in _CATEGORY_REQUIRED and dataset.category is None:
        raise ConfigError(f"dataset.category: required for {dataset.name} (a category name, or {ALL_CATEGORIES!r})")
    model_values = _parse_section(ModelSection, data.get("model"), "model")
    if "model_kwargs" in model_values:
        model_values["model_kwargs"] = _freeze(model_values["model_kwargs"])
    adaptation_block = check_keys(data.get("adaptation") or {}, [f.name for f in attrs.fields(AdaptationSection)],
                                  "adaptation")
    adaptation = AdaptationSection(
        tiling=_parse_block(TileConfig, adaptation_block.get("tiling"), "adaptation.tiling"),
        postprocess=_parse_block(AnomalyMapPostprocess, adaptation_block.get("postprocess"), "adaptation.postprocess"),
        save_maps=a_bool(adaptation_block.get("save_maps", False), "adaptation.save_maps"),
    )
    training = TrainingSection(**_parse_section(TrainingSection, data.get("training"), "training"))
    _check_training(training)
    return WorkbenchConfig(
        recipe=a_string(data.get("recipe", DEFAULT_RECIPE), "recipe"),
        seed=an_int(0)(data.get("seed", 0), "seed"),
        dataset=dataset,
        model=ModelSection(**model_values),
        adaptation=adaptation,
        defects=_parse_defects(data.get("defects")),
        training=training,
        output=OutputSection(**_parse_section(OutputSection, data.get("output"), "output")),
    )


def _section_mapping(section) -> dict[str, Any]:
    return {f.name: getattr(section, f.name) for f in attrs.fields(type(section))}


def config_to_mapping(config: WorkbenchConfig) -> dict[str, Any]:
    """The plain JSON form of ``config``; ``parse_config(config_to_mapping(c)) == c``."""
    model = _section_mapping(config.model)
    model["model_kwargs"] = {k: json_plain(v) for k, v in config.model.model_kwargs}
    adaptation = {
        "tiling": None if config.adaptation.tiling is None else config.adaptation.tiling.to_dict(),
        "postprocess": None if config.adaptation.postprocess is None else config.adaptation.postprocess.to_dict(),
        "save_maps": config.adaptation.save_maps,
    }
    return json_plain({
        "recipe": config.recipe,
        "seed": config.seed,
        "dataset": _section_mapping(config.dataset),
        "model": model,
        "adaptation": adaptation,
        "defects": {"enabled": config.defects.enabled, **config.defects.config.to_mapping()},
        "training": _section_mapping(config.training),
        "output": _section_mapping(config.output),
    })


def section_help() -> dict[str, dict[str, str]]:
    """``{section: {key: help}}`` for the documented sections (``--recipe-info``, docs)."""
    out = {}
    for name, cls in (("dataset", DatasetSection), ("model", ModelSection), ("adaptation", AdaptationSection),
                      ("training", TrainingSection), ("output", OutputSection)):
        out[name] = {f.name: f.metadata.get("help", "") for f in attrs.fields(cls)}
    return out

