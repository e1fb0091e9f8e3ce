"""A detector's model state <-> the tensors and config JSON of a state file.

:class:`StateCodec` is what :func:`pyimgano.save_state` and :func:`pyimgano.load_state`
use to turn a model pytree into ``(tensors, config_json)`` and back; detectors with
states that are not plain arrays register ``encode_state`` / ``decode_state`` hooks
(:class:`~pyimgano.registry.DetectorSpec`) that receive the codec.
"""

from __future__ import annotations

from typing import Any, Mapping

import attrs
import jax
import numpy as np

from pyimgano.fileio import flatten_tree, json_plain, unflatten_tree
from pyimgano.registry import get_detector

__all__ = ["StateCodec", "STATE_CODEC"]


def _config_from_json(config_cls, data: Mapping) -> Any:
    fields = {f.name for f in attrs.fields(config_cls)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ValueError(f"state file config has unknown fields {unknown} for {config_cls.__name__}")
    kwargs = {k: _tuples(v) if isinstance(v, list) else v for k, v in data.items()}
    return config_cls(**kwargs)


def _tuples(value):
    """JSON lists -> tuples, recursively (configs are hashable)."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


class StateCodec:
    """Turns a detector's model state into ``(tensors, config_json)`` and back.

    ``tensors`` is a flat ``{"path/of/leaf": array}`` dict (safetensors names),
    ``config_json`` a JSON-serialisable dict. A detector spec may register hooks
    that replace the default for its own states:

    - ``encode_state(model, codec) -> (tensors, config_json)``
    - ``decode_state(config_json, tensors, codec) -> model``

    where ``codec`` is this object, so a hook can encode nested member states with
    :meth:`encode`, decode them with :meth:`decode` and look up their specs with
    :meth:`spec` (e.g. to find a member's ``predict``).
    """

    def spec(self, detector: str):
        """The registered :class:`~pyimgano.registry.DetectorSpec` of ``detector``."""
        return get_detector(detector)

    def encode(self, detector: str, model) -> tuple[dict[str, np.ndarray], dict]:
        """``(tensors, config_json)`` of ``model``, a state of detector ``detector``.

        Raises:
          ValueError: a field is neither an array nor a mapping of arrays (register
            ``encode_state`` for such states), or an unknown detector.
        """
        spec = self.spec(detector)
        if spec.encode_state is not None:
            tensors, config = spec.encode_state(model, self)
        else:
            tensors, config = self._encode_fields(spec, model), attrs.asdict(model.config, recurse=True)
        # np.array(order="C") rather than ascontiguousarray, which turns 0-d arrays into 1-d.
        return {name: np.array(value, order="C") for name, value in tensors.items()}, json_plain(config)

    def decode(self, detector: str, config_json: Mapping, tensors: Mapping[str, np.ndarray]):
        """The model state of detector ``detector`` from :meth:`encode`'s output.

        Raises:
          ValueError: unknown detector or config fields, a detector registered without
            ``state_cls`` (and no ``decode_state``), or tensors that do not fit the state.
        """
        spec = self.spec(detector)
        if spec.decode_state is not None:
            return spec.decode_state(dict(config_json), dict(tensors), self)
        if spec.state_cls is None:
            raise ValueError(
                f"detector {spec.name!r} was registered without state_cls, so its states cannot be loaded; "
                "register it with state_cls= (or decode_state=)"
            )
        config = _config_from_json(spec.config_cls, config_json)
        # One device_put of the whole tree: a jnp.asarray per leaf dispatches a small program per
        # shape (about 60 MiB of resident memory for a Lite0 state's 250 arrays).
        fields = jax.device_put(unflatten_tree(tensors))
        try:
            return spec.state_cls(config=config, **fields)
        except TypeError as exc:
            raise ValueError(f"the saved tensors do not fit {spec.state_cls.__name__}: {exc}") from None

    @staticmethod
    def _encode_fields(spec, model) -> dict[str, Any]:
        tensors: dict[str, Any] = {}
        for field in attrs.fields(type(model)):
            if field.name == "config":
                continue
            value = getattr(model, field.name)
            if isinstance(value, Mapping):
                tensors.update(flatten_tree(value, field.name))
            elif hasattr(value, "shape") and hasattr(value, "dtype"):
                tensors[field.name] = value
            else:
                raise ValueError(
                    f"{spec.name} state field {field.name!r} is a {type(value).__name__}, not an array or a "
                    "mapping of arrays; register the detector with encode_state/decode_state to save it"
                )
        return tensors


#: The codec :func:`save_state` and :func:`load_state` use.
STATE_CODEC = StateCodec()
