"""From the ``model`` / ``training`` / ``seed`` settings of a workbench config to a detector config.

Layering (the same as ``pyimgano-infer``): the detector's defaults < ``model.preset`` <
``model.model_kwargs`` < ``model.backbone`` / ``model.pretrained`` < ``seed`` < ``training``
(``epochs``, ``lr``, ``batch_size``, only when ``training.enabled``). Every problem is a
:class:`~pyimgano.workbench.schema.ConfigError` naming the key path.
"""

from __future__ import annotations

from typing import Any

import attrs

from pyimgano import api
from pyimgano.calibration import DEFAULT_QUANTILE
from pyimgano.devices import DeviceError, use_devices
from pyimgano.presets import preset_overrides
from pyimgano.registry import get_detector, list_detectors
from pyimgano.workbench.config import WorkbenchConfig
from pyimgano.workbench.schema import ConfigError, suggest

__all__ = ["detector_overrides", "make_detector_config", "image_quantile", "check_device", "TRAINING_KEYS"]

#: ``training`` keys passed to a trained detector's config (when it has the field).
TRAINING_KEYS = ("epochs", "lr", "batch_size")
def _spec(name: str):
    try:
        return get_detector(name)
    except ValueError:
        names = list_detectors()
        raise ConfigError(f"model.name: unknown detector {name!r}{suggest(name, names)}; accepted: {names}") from None


def detector_overrides(config: WorkbenchConfig) -> tuple[str, dict[str, Any]]:
    """``(canonical detector name, config overrides)`` for ``config`` (module docstring).

    Raises:
        ConfigError: an unknown detector, preset or model kwarg; ``model.pretrained`` for a
            detector without a pretrained backbone; ``training.enabled`` for a detector that
            does not train.
    """
    model = config.model
    spec = _spec(model.name)
    fields = [f.name for f in attrs.fields(spec.config_cls)]
    overrides: dict[str, Any] = {}
    if model.preset is not None:
        try:
            overrides.update(preset_overrides(spec.name, model.preset))
        except ValueError as exc:
            raise ConfigError(f"model.preset: {exc}") from None
    for key, value in model.model_kwargs:
        if key not in fields:
            raise ConfigError(
                f"model.model_kwargs.{key}: not a {spec.name} option{suggest(key, fields)}; accepted: {fields}"
            )
        overrides[key] = value
    for key in ("backbone", "pretrained"):
        value = getattr(model, key)
        if value is None:
            continue
        if key not in fields:
            raise ConfigError(f"model.{key}: {spec.name} has no {key} option (its options: {fields})")
        overrides[key] = value
    if "seed" in fields:
        overrides["seed"] = config.seed
    training = config.training
    if training.enabled:
        if "requires_training" not in spec.tags:
            trained = list_detectors(["requires_training"])
            raise ConfigError(
                f"training.enabled: {spec.name} does not train (no epochs / lr); set training.enabled false "
                f"or choose a detector tagged requires_training: {trained or 'none registered'}"
            )
        for key in TRAINING_KEYS:
            value = getattr(training, key)
            if value is not None and key in fields:
                overrides[key] = value
    return spec.name, overrides


def make_detector_config(config: WorkbenchConfig):
    """``(name, detector config)``: :func:`detector_overrides` applied to the registered config class.

    Raises:
        ConfigError: as :func:`detector_overrides`, or a value the detector config rejects.
    """
    name, overrides = detector_overrides(config)
    try:
        return api.make_config(name, **overrides)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model.model_kwargs: {name} rejects {overrides}: {exc}") from None


def image_quantile(config: WorkbenchConfig) -> float:
    """The image-threshold quantile: ``1 - model.contamination``, else the library default (0.995)."""
    c = config.model.contamination
    return DEFAULT_QUANTILE if c is None else 1.0 - c


def check_device(device: str) -> str:
    """Select the JAX devices the run uses (:func:`pyimgano.devices.use_devices`); returns their platform.

    ``device`` is ``auto`` (every device of JAX's default backend), a platform (``cpu``,
    ``gpu``/``cuda``/``rocm``, ``tpu``) or a platform with local indices (``gpu:0,1``).
    A run never falls back silently to another device than the one asked for.

    Raises:
        ConfigError: the requested devices are not available (the message lists what is).
    """
    try:
        return use_devices(device)[0].platform
    except DeviceError as exc:
        raise ConfigError(f"model.device: {exc}") from None
