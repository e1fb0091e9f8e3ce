"""``DetectorState``: an immutable fitted detector, and its single-file save/load.

The file is a safetensors archive (no pickle): every array leaf of the
detector's state under a ``/``-joined path, plus a JSON metadata header with
``format``, ``schema_version``, the detector name, its config, the image
threshold and its provenance.  Loading refuses files written by a newer schema.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import attrs
import jax
import numpy as np

from pyimgano._version import __version__
from pyimgano.registry import get_detector
from weights_convert.io import atomic_write_bytes
from weights_convert.mapping import flatten_variables, unflatten_variables

__all__ = ["DetectorState", "save_state", "load_state", "STATE_FORMAT", "STATE_SCHEMA_VERSION"]

STATE_FORMAT = "pyimgano-detector-state"
STATE_SCHEMA_VERSION = 1


def _freeze_provenance(value):
    if value is None:
        return None
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), v) for k, v in value.items()))
    return tuple(value)


@attrs.frozen
class DetectorState:
    """A fitted detector: its registered name, its model state, and an optional image threshold.

    A JAX pytree: ``model`` holds the arrays; the name, threshold and provenance
    are static metadata. Create it with :func:`pyimgano.fit` or :func:`load_state`;
    calibration returns a new state (``attrs.evolve``).
    """

    detector: str
    model: Any  # the detector module's state, e.g. PatchCoreState
    threshold: float | None = None
    threshold_provenance: tuple[tuple[str, Any], ...] | None = attrs.field(
        default=None, converter=_freeze_provenance
    )

    @property
    def config(self):
        """The detector's configuration (static, hashable)."""
        return self.model.config

    @property
    def provenance(self) -> dict | None:
        """Threshold provenance as a dict (method, quantile, source, count, ...)."""
        return None if self.threshold_provenance is None else dict(self.threshold_provenance)


jax.tree_util.register_dataclass(
    DetectorState, data_fields=["model"], meta_fields=["detector", "threshold", "threshold_provenance"]
)


def _config_to_json(config) -> dict:
    return attrs.asdict(config)


def _config_from_json(config_cls, data: Mapping) -> Any:
    fields = {f.name for f in attrs.fields(config_cls)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ValueError(f"state file config has unknown fields {unknown} for {config_cls.__name__}")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return config_cls(**kwargs)


def save_state(state: DetectorState, path: str | os.PathLike) -> Path:
    """Write ``state`` to one file atomically (temp file + rename); returns the path."""
    from safetensors.numpy import save

    if not isinstance(state, DetectorState):
        raise TypeError(f"save_state expects a DetectorState, got {type(state).__name__}")
    spec = get_detector(state.detector)
    model = state.model
    tensors: dict[str, np.ndarray] = {}
    for field in attrs.fields(type(model)):
        if field.name == "config":
            continue
        value = getattr(model, field.name)
        if isinstance(value, Mapping):
            tensors.update(flatten_variables(value, field.name))
        else:
            tensors[field.name] = value
    # np.array(order="C") rather than ascontiguousarray, which turns 0-d arrays into 1-d.
    tensors = {name: np.array(value, order="C") for name, value in tensors.items()}
    metadata = {
        "format": STATE_FORMAT,
        "schema_version": str(STATE_SCHEMA_VERSION),
        "pyimgano_version": __version__,
        "detector": spec.name,
        "config": json.dumps(_config_to_json(model.config), sort_keys=True),
        "threshold": json.dumps(state.threshold),
        "threshold_provenance": json.dumps(state.provenance, sort_keys=True),
    }
    path = Path(path)
    atomic_write_bytes(path, save(tensors, metadata=metadata))
    return path


def load_state(path: str | os.PathLike) -> DetectorState:
    """Read a state written by :func:`save_state`.

    Raises:
      FileNotFoundError: the path does not exist.
      ValueError: not a pyimgano state file, a newer schema, or a config this version rejects.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"detector state file not found: {path}")
    try:
        with safe_open(str(path), framework="numpy") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise ValueError(f"{path} is not a readable pyimgano detector state file: {exc}") from exc
    if metadata.get("format") != STATE_FORMAT:
        raise ValueError(f"{path} is not a pyimgano detector state file (format={metadata.get('format')!r})")
    version = int(metadata.get("schema_version", "0"))
    if version > STATE_SCHEMA_VERSION:
        raise ValueError(
            f"{path} was written with state schema {version}, newer than this pyimgano "
            f"({__version__}) supports ({STATE_SCHEMA_VERSION}); upgrade pyimgano to load it"
        )
    spec = get_detector(metadata["detector"])
    config = _config_from_json(spec.config_cls, json.loads(metadata["config"]))
    fields = unflatten_variables(tensors)
    model = spec.state_cls(config=config, **jax.tree_util.tree_map(jax.numpy.asarray, fields))
    return DetectorState(
        detector=spec.name,
        model=model,
        threshold=json.loads(metadata.get("threshold", "null")),
        threshold_provenance=json.loads(metadata.get("threshold_provenance", "null")),
    )
