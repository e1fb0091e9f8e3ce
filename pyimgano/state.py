"""``DetectorState``: one immutable, deployable detector, and its single-file save/load.

A state carries everything a line needs to turn frames into decisions, as data:

- ``detector`` and ``model``: the registered name and the fitted model pytree;
- ``threshold`` / ``threshold_provenance``: the image threshold and where it came from;
- ``pixel_threshold`` / ``pixel_threshold_provenance``: the defect threshold (optional);
- ``tiling``: a :class:`~pyimgano.tiling.TileConfig` (optional);
- ``postprocess``: an :class:`~pyimgano.postprocess.AnomalyMapPostprocess` (optional).

Only ``model`` holds arrays (a pytree data field); the rest is static metadata.
Every change returns a new state (:func:`with_threshold`, :func:`with_tiling`, ...),
and a change that makes a calibrated threshold meaningless drops it: tiled scores
live on another scale than whole-frame scores, so :func:`with_tiling` clears both
thresholds; new map post-processing changes the maps but not the scores, so
:func:`with_postprocess` clears the pixel threshold only.

The file is a safetensors archive (no pickle): every array leaf of the model
under a ``/``-joined path, plus a JSON metadata header (``format``,
``schema_version``, detector, config, thresholds with provenance, tiling,
postprocess). Schema 3 adds ``content_sha256``, a hash of the tensors and every
other header field (:mod:`pyimgano.state_integrity`). Loading reads schemas 1
(image threshold only), 2 and 3, and refuses newer ones.

Loading checks the state before returning it, so a bad state is one clear
``ValueError`` at load time: the content hash (required from schema 3; files of
schemas 1 and 2 have none and load with a logged warning), finite thresholds,
finite numeric arrays, the arrays' shapes and dtypes against the detector's config
(its ``state_shapes`` hook) and a ``jax.eval_shape`` trace of its ``predict``.

How a model becomes tensors and a JSON config is per detector
(:class:`StateCodec`): by default every non-config field of the model state is an
array or a nested mapping of arrays, saved under its field name, and the config is
``attrs.asdict`` (lists read back as tuples). A detector whose state holds other
states (the score ensemble) registers ``encode_state`` / ``decode_state`` hooks,
which receive the codec to encode and decode their members recursively. The
file layout is the same either way, so files written before the hooks existed
load unchanged.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Mapping

import attrs
import jax
import numpy as np

from pyimgano._version import __version__
from pyimgano.devices import place_model
from pyimgano.fileio import atomic_write_bytes
from pyimgano.postprocess import AnomalyMapPostprocess
from pyimgano.registry import get_detector
from pyimgano.state_codec import STATE_CODEC, StateCodec
from pyimgano.state_integrity import HASH_FIELD, check_model_arrays, check_model_traces, content_sha256
from pyimgano.tiling import TileConfig

__all__ = [
    "DetectorState",
    "save_state",
    "load_state",
    "with_threshold",
    "with_pixel_threshold",
    "with_tiling",
    "with_postprocess",
    "state_file_content",
    "state_sha256",
    "place_state",
    "STATE_FORMAT",
    "STATE_SCHEMA_VERSION",
    "StateCodec",
    "STATE_CODEC",
]

STATE_FORMAT = "pyimgano-detector-state"
STATE_SCHEMA_VERSION = 3
_FIRST_HASHED_SCHEMA = 3

log = logging.getLogger("pyimgano.state")


def _freeze_value(value, where: str):
    if isinstance(value, (list, tuple)):
        return tuple(_freeze_value(v, where) for v in value)
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise ValueError(f"{where} values must be JSON scalars or lists of them, got {type(value).__name__}: {value!r}")


def _freeze_provenance(value):
    """A provenance mapping -> a sorted tuple of ``(key, value)`` pairs (hashable, comparable)."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        items = value.items()
    else:
        items = tuple(value)
    return tuple(sorted((str(k), _freeze_value(v, f"provenance {k!r}")) for k, v in items))


def _thaw(value):
    return [_thaw(v) for v in value] if isinstance(value, tuple) else value


def _optional_float(value):
    return None if value is None else float(value)


def _optional_instance(cls):
    def check(_instance, attribute, value) -> None:
        if value is not None and not isinstance(value, cls):
            raise TypeError(f"{attribute.name} must be a {cls.__name__} or None, got {type(value).__name__}")

    return check


@attrs.frozen
class DetectorState:
    """A fitted detector with its deployment settings (a JAX pytree; only ``model`` holds arrays).

    Create one with :func:`pyimgano.fit` (or :func:`pyimgano.fit_calibrated`) or
    :func:`load_state`; change it with :func:`pyimgano.calibrate`, :func:`with_threshold`,
    :func:`with_pixel_threshold`, :func:`with_tiling` or :func:`with_postprocess`, each of
    which returns a new state.
    """

    detector: str
    model: Any  # the detector module's state, e.g. PatchCoreState
    threshold: float | None = attrs.field(default=None, converter=_optional_float)
    threshold_provenance: tuple[tuple[str, Any], ...] | None = attrs.field(default=None, converter=_freeze_provenance)
    pixel_threshold: float | None = attrs.field(default=None, converter=_optional_float)
    pixel_threshold_provenance: tuple[tuple[str, Any], ...] | None = attrs.field(
        default=None, converter=_freeze_provenance
    )
    tiling: TileConfig | None = attrs.field(default=None, validator=_optional_instance(TileConfig))
    postprocess: AnomalyMapPostprocess | None = attrs.field(
        default=None, validator=_optional_instance(AnomalyMapPostprocess)
    )

    @property
    def config(self):
        """The detector's configuration (static, hashable)."""
        return self.model.config

    @property
    def provenance(self) -> dict | None:
        """Image-threshold provenance as a dict (method, quantile, source, count, ...)."""
        return None if self.threshold_provenance is None else {k: _thaw(v) for k, v in self.threshold_provenance}

    @property
    def pixel_provenance(self) -> dict | None:
        """Pixel-threshold provenance as a dict."""
        if self.pixel_threshold_provenance is None:
            return None
        return {k: _thaw(v) for k, v in self.pixel_threshold_provenance}


jax.tree_util.register_dataclass(
    DetectorState,
    data_fields=["model"],
    meta_fields=[
        "detector",
        "threshold",
        "threshold_provenance",
        "pixel_threshold",
        "pixel_threshold_provenance",
        "tiling",
        "postprocess",
    ],
)


def _check_state(state) -> None:
    if not isinstance(state, DetectorState):
        raise TypeError(
            f"expected a DetectorState (from pyimgano.fit or pyimgano.load_state), got {type(state).__name__}"
        )


def _finite_threshold(value, what: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a finite number, got {value!r}") from None
    if not np.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return value


def with_threshold(state: DetectorState, threshold: float | None, provenance: Mapping | None = None) -> DetectorState:
    """A copy with the image threshold set (None removes it). Default provenance: ``fixed / explicit``."""
    _check_state(state)
    if threshold is None:
        return attrs.evolve(state, threshold=None, threshold_provenance=None)
    value = _finite_threshold(threshold, "threshold")
    return attrs.evolve(
        state, threshold=value, threshold_provenance=provenance or {"method": "fixed", "source": "explicit"}
    )


def with_pixel_threshold(
    state: DetectorState, pixel_threshold: float | None, provenance: Mapping | None = None
) -> DetectorState:
    """A copy with the pixel (defect) threshold set (None removes it). Default provenance: ``fixed / explicit``."""
    _check_state(state)
    if pixel_threshold is None:
        return attrs.evolve(state, pixel_threshold=None, pixel_threshold_provenance=None)
    value = _finite_threshold(pixel_threshold, "pixel_threshold")
    return attrs.evolve(
        state,
        pixel_threshold=value,
        pixel_threshold_provenance=provenance or {"method": "fixed", "source": "explicit"},
    )


def with_tiling(state: DetectorState, tiling: TileConfig | Mapping | None) -> DetectorState:
    """A copy that scores tile by tile with ``tiling`` (a :class:`TileConfig`, its dict, or None).

    When the tiling changes, both thresholds are dropped: tiled scores and maps live
    on another scale, so a threshold calibrated without this tiling means nothing
    with it. Calibrate again (:func:`pyimgano.calibrate`). The same tiling returns
    ``state`` unchanged.
    """
    _check_state(state)
    if isinstance(tiling, Mapping):
        tiling = TileConfig.from_dict(tiling)
    if tiling == state.tiling:
        return state
    return attrs.evolve(
        state,
        tiling=tiling,
        threshold=None,
        threshold_provenance=None,
        pixel_threshold=None,
        pixel_threshold_provenance=None,
    )


def with_postprocess(state: DetectorState, postprocess: AnomalyMapPostprocess | Mapping | None) -> DetectorState:
    """A copy whose maps are post-processed with ``postprocess`` (or not, for None).

    Scores do not change, so the image threshold is kept; maps do, so a pixel
    threshold set for other post-processing is dropped. The same settings return
    ``state`` unchanged.
    """
    _check_state(state)
    if isinstance(postprocess, Mapping):
        postprocess = AnomalyMapPostprocess.from_dict(postprocess)
    if postprocess == state.postprocess:
        return state
    return attrs.evolve(state, postprocess=postprocess, pixel_threshold=None, pixel_threshold_provenance=None)


def place_state(state: DetectorState, *, bank_sharding: str | None = None) -> DetectorState:
    """A copy of ``state`` placed on the devices in use (:func:`pyimgano.devices.use_devices`).

    The model is replicated on every device, except a memory bank (PatchCore's) whose rows
    are sharded over the devices when ``bank_sharding`` is ``on``, or ``auto`` (the
    default, or ``PYIMGANO_BANK_SHARDING``) and the bank is too large for one device's
    memory (:func:`pyimgano.devices.should_shard_bank`). Scoring then reduces the
    nearest-neighbour search across the devices; scores and maps are the same either way.
    :func:`pyimgano.fit` and :func:`load_state` place their states like this already.

    Raises:
      ValueError: an unknown ``bank_sharding``.
    """
    _check_state(state)
    spec = get_detector(state.detector)
    return attrs.evolve(state, model=place_model(state.model, bank_field=spec.bank_field, bank_sharding=bank_sharding))


# -- the state file ---------------------------------------------------------------------------


def state_file_content(state: DetectorState) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """``(tensors, header)`` of the file :func:`save_state` writes, hash included.

    Raises:
      TypeError: not a :class:`DetectorState`.
      ValueError: the model's arrays are non-finite or do not fit its config.
    """
    _check_state(state)
    spec = get_detector(state.detector)
    check_model_arrays(spec, state.model, f"refusing to save the {state.detector} state")
    tensors, config = STATE_CODEC.encode(spec.name, state.model)
    metadata = {
        "format": STATE_FORMAT,
        "schema_version": str(STATE_SCHEMA_VERSION),
        "pyimgano_version": __version__,
        "detector": spec.name,
        "config": json.dumps(config, sort_keys=True),
        "threshold": json.dumps(state.threshold),
        "threshold_provenance": json.dumps(state.provenance, sort_keys=True),
        "pixel_threshold": json.dumps(state.pixel_threshold),
        "pixel_threshold_provenance": json.dumps(state.pixel_provenance, sort_keys=True),
        "tiling": json.dumps(None if state.tiling is None else state.tiling.to_dict(), sort_keys=True),
        "postprocess": json.dumps(None if state.postprocess is None else state.postprocess.to_dict(), sort_keys=True),
    }
    metadata[HASH_FIELD] = content_sha256(tensors, metadata)
    return tensors, metadata


def save_state(state: DetectorState, path: str | os.PathLike) -> Path:
    """Write ``state`` to one file atomically (temp file + rename); returns the path.

    The header carries a content hash (schema 3) that :func:`load_state` checks.

    Raises:
      TypeError: not a :class:`DetectorState`.
      ValueError: the model holds non-finite values or arrays that do not fit its
        config (such a state is refused rather than saved).
    """
    from safetensors.numpy import save

    tensors, metadata = state_file_content(state)
    path = Path(path)
    atomic_write_bytes(path, save(tensors, metadata=metadata))
    return path


def state_sha256(state: DetectorState) -> str:
    """The content hash :func:`save_state` would write for ``state`` (a fingerprint of the
    model, thresholds, tiling and post-processing, independent of where it is stored)."""
    return state_file_content(state)[1][HASH_FIELD]


def _json_field(metadata: Mapping[str, str], key: str, path: Path):
    try:
        return json.loads(metadata.get(key, "null"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: state header field {key!r} is not valid JSON ({exc.msg})") from None


def _check_hash(metadata: Mapping[str, str], tensors: Mapping[str, np.ndarray], version: int, path: Path) -> None:
    recorded = metadata.get(HASH_FIELD)
    if recorded is None:
        if version >= _FIRST_HASHED_SCHEMA:
            raise ValueError(f"{path}: state schema {version} requires a {HASH_FIELD} header field, and it is missing")
        log.warning("%s: state schema %d has no content hash, so damage to it cannot be detected; "
                    "load it and save it again (pyimgano.save_state) to add one", path, version)
        return
    actual = content_sha256(tensors, metadata)
    if actual != recorded:
        raise ValueError(
            f"{path}: content hash mismatch (header {str(recorded)[:16]}..., content {actual[:16]}...): the file "
            "was damaged or changed after it was written; restore it from a good copy"
        )


def _finite_or_none(value, what: str, path: Path) -> float | None:
    if value is None:
        return None
    try:
        return _finite_threshold(value, what)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def load_state(path: str | os.PathLike) -> DetectorState:
    """Read a state written by :func:`save_state`, and check it (module docstring).

    Raises:
      FileNotFoundError: the path does not exist.
      ValueError: not a pyimgano state file, a newer schema, a content hash that does
        not match, a non-finite threshold, non-finite or mis-shaped arrays, arrays that
        do not fit the detector's config, or a config / tiling / post-processing block
        this version rejects. The message names the file and every problem.
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
    try:
        version = int(metadata.get("schema_version", "0"))
    except ValueError:
        raise ValueError(f"{path}: schema_version {metadata.get('schema_version')!r} is not an integer") from None
    if version > STATE_SCHEMA_VERSION:
        raise ValueError(
            f"{path} was written with state schema {version}, newer than this pyimgano "
            f"({__version__}) supports ({STATE_SCHEMA_VERSION}); upgrade pyimgano to load it"
        )
    _check_hash(metadata, tensors, version, path)
    try:
        spec = get_detector(metadata.get("detector"))
        model = STATE_CODEC.decode(spec.name, _json_field(metadata, "config", path), tensors)
    except (TypeError, ValueError, AttributeError) as exc:
        message = str(exc) if str(exc).startswith(str(path)) else f"{path}: {exc}"
        raise ValueError(message) from None
    check_model_arrays(spec, model, str(path))
    check_model_traces(spec, model, str(path))
    try:
        tiling = _json_field(metadata, "tiling", path)
        postprocess = _json_field(metadata, "postprocess", path)
        return place_state(DetectorState(
            detector=spec.name,
            model=model,
            threshold=_finite_or_none(_json_field(metadata, "threshold", path), "threshold", path),
            threshold_provenance=_json_field(metadata, "threshold_provenance", path),
            pixel_threshold=_finite_or_none(_json_field(metadata, "pixel_threshold", path), "pixel_threshold", path),
            pixel_threshold_provenance=_json_field(metadata, "pixel_threshold_provenance", path),
            tiling=None if tiling is None else TileConfig.from_dict(tiling),
            postprocess=None if postprocess is None else AnomalyMapPostprocess.from_dict(postprocess),
        ))
    except (TypeError, ValueError, AttributeError) as exc:
        message = str(exc) if str(exc).startswith(str(path)) else f"{path}: {exc}"
        raise ValueError(message) from None
