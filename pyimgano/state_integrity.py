"""Is a detector state whole and sound? The content hash of a state file and the checks of its arrays.

A state that passes these checks can score; one that fails is refused when it is
loaded, with one error naming the file and every problem, so a damaged state is
never blamed on the first input image (nor does it label every part "good").

* :func:`content_sha256`: SHA-256 over the state file's tensors (name, dtype,
  shape, bytes) and its header fields (all but the hash itself), each
  length-prefixed, in sorted order. :func:`pyimgano.save_state` writes it into the
  header as ``content_sha256``; :func:`pyimgano.load_state` recomputes it. It
  detects damage (flipped bits, a truncated copy, an edited header), not a
  deliberate forgery: whoever can rewrite the file can rewrite the hash, so keep
  state files where only the line's operators can write.
* :func:`check_model_arrays`: every array leaf numeric and finite; with the
  detector's ``state_shapes`` hook (:class:`~pyimgano.registry.DetectorSpec`), the
  exact set of arrays, their dtypes and shapes for the state's config (named free
  dimensions such as the bank size ``M`` must agree across arrays).
* :func:`check_model_traces`: ``jax.eval_shape`` of the detector's ``predict`` on
  one abstract frame at the config's input size: the arrays fit together and give
  ``scores f32[1]`` and ``maps f32[1, H, W]`` (nothing is computed). This is the
  generic check for detectors without a ``state_shapes`` hook.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

import attrs
import jax
import jax.numpy as jnp
import numpy as np

from pyimgano.fileio import flatten_tree

__all__ = ["HASH_FIELD", "content_sha256", "model_arrays", "check_model_arrays", "check_model_traces"]

#: Header field of the content hash in a state file.
HASH_FIELD = "content_sha256"
_DOMAIN = b"pyimgano-detector-state-content/1\n"
_MAX_LISTED = 8


def _chunk(digest, data: bytes) -> None:
    digest.update(len(data).to_bytes(8, "little"))
    digest.update(data)


def content_sha256(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str]) -> str:
    """Hex SHA-256 of a state file's content: tensors and header fields except :data:`HASH_FIELD`.

    Byte order is normalised to little-endian, so the hash names the values, not the
    machine that wrote them.
    """
    digest = hashlib.sha256(_DOMAIN)
    for key in sorted(k for k in metadata if k != HASH_FIELD):
        _chunk(digest, key.encode("utf-8"))
        _chunk(digest, str(metadata[key]).encode("utf-8"))
    for name in sorted(tensors):
        array = np.asarray(tensors[name])
        array = np.ascontiguousarray(array.astype(array.dtype.newbyteorder("<"), copy=False))
        _chunk(digest, name.encode("utf-8"))
        _chunk(digest, array.dtype.str.encode("ascii"))
        _chunk(digest, json.dumps(list(array.shape)).encode("ascii"))
        _chunk(digest, array.tobytes())
    return digest.hexdigest()


def model_arrays(model) -> dict[str, Any]:
    """``{path: array}`` of a model state, paths as in the state file (``backbone_variables/params/...``).

    Fields of an attrs state other than ``config`` are taken as arrays or nested
    mappings of arrays; any other pytree is flattened with ``jax.tree_util`` key paths.
    """
    if attrs.has(type(model)):
        flat: dict[str, Any] = {}
        for field in attrs.fields(type(model)):
            if field.name == "config":
                continue
            value = getattr(model, field.name)
            if isinstance(value, Mapping):
                flat.update(flatten_tree(value, field.name))
            else:
                flat[field.name] = value
        if all(hasattr(v, "shape") and hasattr(v, "dtype") for v in flat.values()):
            return flat
    leaves, _ = jax.tree_util.tree_flatten_with_path(model)
    return {jax.tree_util.keystr(path): leaf for path, leaf in leaves}


def _shape_text(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _listed(items: list[str]) -> str:
    shown = "; ".join(items[:_MAX_LISTED])
    return shown + (f"; and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else "")


def _finite_problems(arrays: Mapping[str, Any]) -> list[str]:
    problems = []
    for path, value in sorted(arrays.items()):
        if not (hasattr(value, "shape") and hasattr(value, "dtype")):
            problems.append(f"{path} is a {type(value).__name__}, not an array")
            continue
        dtype = np.dtype(value.dtype)
        if dtype.kind not in "fiub":
            problems.append(f"{path} has dtype {dtype}, not a number type")
        elif dtype.kind == "f":
            bad = int(np.size(value) - np.count_nonzero(np.isfinite(np.asarray(value))))
            if bad:
                problems.append(f"{path} holds {bad} non-finite value(s) (NaN/inf) of {int(np.size(value))}")
    return problems


def _shape_problems(arrays: Mapping[str, Any], expected: Mapping[str, tuple]) -> list[str]:
    problems = []
    missing = sorted(set(expected) - set(arrays))
    extra = sorted(set(arrays) - set(expected))
    if missing:
        problems.append(f"missing arrays {_listed(missing)}")
    if extra:
        problems.append(f"unexpected arrays {_listed(extra)}")
    free: dict[str, tuple[int, str]] = {}
    for path in sorted(set(expected) & set(arrays)):
        shape, dtype = expected[path]
        got_shape, got_dtype = tuple(np.shape(arrays[path])), np.dtype(arrays[path].dtype).name
        if got_dtype != np.dtype(dtype).name:
            problems.append(f"{path} has dtype {got_dtype}, expected {np.dtype(dtype).name}")
        if len(got_shape) != len(shape):
            problems.append(f"{path} has shape {_shape_text(got_shape)}, expected {_shape_text(shape)}")
            continue
        for got, want in zip(got_shape, shape):
            if isinstance(want, str):
                seen = free.setdefault(want, (got, path))
                if seen[0] != got:
                    problems.append(f"{path} has {want}={got}, but {seen[1]} has {want}={seen[0]}")
                elif got < 1:
                    problems.append(f"{path} has an empty dimension {want}={got}")
            elif got != want:
                problems.append(f"{path} has shape {_shape_text(got_shape)}, expected {_shape_text(shape)}")
                break
    return problems


def check_model_arrays(spec, model, where: str) -> None:
    """Raise ``ValueError`` listing every problem of ``model``'s arrays (module docstring).

    Args:
      spec: the detector's :class:`~pyimgano.registry.DetectorSpec`.
      model: the detector's model state.
      where: what to call the state in the message (e.g. the file path).

    Raises:
      ValueError: non-numeric or non-finite arrays; with a ``state_shapes`` hook,
        missing, unexpected or mis-shaped arrays and wrong dtypes.
    """
    arrays = model_arrays(model)
    problems = _finite_problems(arrays)
    hook = getattr(spec, "state_shapes", None)
    if hook is not None:
        problems += _shape_problems(arrays, hook(model.config))
    if problems:
        raise ValueError(f"{where}: the {spec.name} state is damaged or does not fit its config: {_listed(problems)}")


def check_model_traces(spec, model, where: str) -> None:
    """Raise ``ValueError`` unless ``predict`` traces on one abstract frame at the config's input size.

    Detectors whose config has no ``image_size`` are not traced.

    Raises:
      ValueError: tracing fails (arrays that do not fit together), or the outputs are
        not ``scores f32[1]`` and ``maps f32[1, H, W]``.
    """
    size = getattr(model.config, "image_size", None)
    if size is None:
        return
    out_hw = (int(size[0]), int(size[1]))
    frame = jax.ShapeDtypeStruct((1, *out_hw, 3), jnp.float32)
    try:
        out = jax.eval_shape(lambda m, x: spec.predict(m, x, out_hw), model, frame)
    except Exception as exc:  # noqa: BLE001 - any tracing failure means the arrays do not fit together
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ValueError(
            f"{where}: the {spec.name} state's arrays do not fit together ({type(exc).__name__}: {detail})"
        ) from None
    shapes = (tuple(out.scores.shape), tuple(out.maps.shape))
    if shapes != ((1,), (1, *out_hw)):
        raise ValueError(
            f"{where}: the {spec.name} state predicts scores of shape {shapes[0]} and maps of shape {shapes[1]} "
            f"for one {out_hw} frame, expected (1,) and {(1, *out_hw)}"
        )
