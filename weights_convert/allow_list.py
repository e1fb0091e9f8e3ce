"""The allow-list of the checkpoint reader: the only globals a checkpoint's pickle can reach.

Unpickling runs ``pickle`` opcodes, and ``GLOBAL`` + ``REDUCE`` can call *any*
importable function. :data:`ALLOWED_GLOBALS` maps the handful of names a tensor
``state_dict`` needs to numpy-producing stand-ins defined here; nothing else
resolves. The stand-ins cannot be changed by the pickle either: markers are
frozen and functions are handed out wrapped (:class:`_Frozen`), because a
``BUILD`` opcode sets attributes on whatever object it is given.
"""

from __future__ import annotations

import collections
from typing import Any

import ml_dtypes
import numpy as np

__all__ = [
    "UnsafeCheckpointError",
    "CheckpointFormatError",
    "StorageType",
    "Storage",
    "PendingTensor",
    "ALLOWED_GLOBALS",
]


class UnsafeCheckpointError(ValueError):
    """The checkpoint's pickle references a global outside the allow-list; nothing was executed."""


class CheckpointFormatError(ValueError):
    """The file is not a readable PyTorch checkpoint (corrupt, truncated, or an unsupported layout)."""




# --- stand-ins for the allow-listed torch globals ------------------------------------------------


class _Frozen:
    """Allow-listed objects a pickle can reach: a ``BUILD`` opcode must not change them.

    ``BUILD`` sets attributes on whatever object is on the stack; without this, a
    checkpoint could rewrite a shared marker (``FloatStorage.dtype``) or an allowed
    function's defaults for every later load in the process.
    """

    __slots__ = ()

    def _init(self, **values) -> None:
        for key, value in values.items():
            object.__setattr__(self, key, value)

    def __setattr__(self, name, value):
        raise CheckpointFormatError(f"the checkpoint tries to modify the allow-listed {self!r}; refused")

    def __delattr__(self, name):
        raise CheckpointFormatError(f"the checkpoint tries to modify the allow-listed {self!r}; refused")


class StorageType(_Frozen):
    """Marker for ``torch.FloatStorage`` & co.: only carries the element dtype."""

    __slots__ = ("name", "dtype")

    def __init__(self, name: str, dtype: np.dtype):
        self._init(name=name, dtype=np.dtype(dtype))

    def __repr__(self) -> str:
        return f"torch.{self.name}"


class _TorchDtype(_Frozen):
    """Marker for a pickled ``torch.<dtype>`` (used by ``_rebuild_tensor_v3``)."""

    __slots__ = ("name", "dtype")

    def __init__(self, name: str, dtype: np.dtype):
        self._init(name=name, dtype=np.dtype(dtype))

    def __repr__(self) -> str:
        return f"torch.{self.name}"


class _Marker(_Frozen):
    """Marker for a class that is only ever compared, never called (``torch.Tensor``)."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self._init(name=name)

    def __repr__(self) -> str:
        return self.name


class _AllowedCall(_Frozen):
    """An allow-listed function as the unpickler hands it out: callable, not modifiable."""

    __slots__ = ("function",)

    def __init__(self, function):
        self._init(function=function)

    def __call__(self, *args, **kwargs):
        return self.function(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<allow-listed {self.function.__name__}>"


class Storage:
    """A storage referenced by a persistent id; its bytes are attached after unpickling.

    ``offset``/``numel`` are in elements of ``dtype`` and select a view of the
    root storage ``key`` (legacy view metadata; zip storages are whole roots).
    """

    __slots__ = ("key", "dtype", "offset", "numel")

    def __init__(self, key: str, dtype: np.dtype, offset: int, numel: int):
        self.key, self.dtype, self.offset, self.numel = key, dtype, offset, numel


class PendingTensor:
    """A tensor whose storage bytes may not be read yet (legacy storages follow the pickle)."""

    __slots__ = ("storage", "dtype", "offset", "shape", "strides")

    def __init__(self, storage: Storage, dtype: np.dtype, offset: int, shape: tuple, strides: tuple):
        self.storage, self.dtype, self.offset, self.shape, self.strides = storage, dtype, offset, shape, strides


def _int_tuple(value, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise CheckpointFormatError(f"tensor {what} must be a tuple of ints, got {value!r}")
    return tuple(int(v) for v in value)


def _make_tensor(storage, storage_offset, size, stride, dtype: np.dtype) -> PendingTensor:
    if not isinstance(storage, Storage):
        raise CheckpointFormatError(f"tensor storage must come from a persistent id, got {type(storage).__name__}")
    if not isinstance(storage_offset, int) or storage_offset < 0:
        raise CheckpointFormatError(f"tensor storage offset must be a non-negative int, got {storage_offset!r}")
    shape, strides = _int_tuple(size, "size"), _int_tuple(stride, "stride")
    if len(shape) != len(strides) or any(s < 0 for s in shape) or any(s < 0 for s in strides):
        raise CheckpointFormatError(f"invalid tensor size {shape} / stride {strides}")
    return PendingTensor(storage, np.dtype(dtype), storage_offset, shape, strides)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    return _make_tensor(storage, storage_offset, size, stride, getattr(storage, "dtype", np.uint8))


def _rebuild_tensor_v3(
    storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype, metadata=None
):
    # v3 pairs an untyped (byte) storage with an explicit dtype; offsets/strides are in dtype elements.
    if not isinstance(dtype, _TorchDtype):
        raise CheckpointFormatError(f"_rebuild_tensor_v3 expects a torch dtype, got {dtype!r}")
    return _make_tensor(storage, storage_offset, size, stride, dtype.dtype)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    if not isinstance(data, PendingTensor):
        raise CheckpointFormatError(f"a Parameter must wrap a tensor, got {type(data).__name__}")
    return data


_TENSOR_REBUILDERS = (_rebuild_tensor_v2, _rebuild_tensor_v3, _rebuild_parameter)


def _rebuild_from_type_v2(func, new_type, args, state):
    # torch uses this for tensors carrying Python attributes; only our own rebuilders may be called.
    if getattr(func, "function", None) not in _TENSOR_REBUILDERS:
        raise CheckpointFormatError(f"_rebuild_from_type_v2 with an unexpected function {func!r}")
    if not isinstance(args, tuple):
        raise CheckpointFormatError("_rebuild_from_type_v2 arguments must be a tuple")
    return func(*args)


def _torch_size(values=()):
    return tuple(_int_tuple(tuple(values), "torch.Size"))


def _codecs_encode(text, encoding="utf-8"):
    # Protocol-2 pickles spell ``bytes`` objects as _codecs.encode(str, "latin1").
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "utf-8", "utf8"):
        raise CheckpointFormatError(f"_codecs.encode({text!r:.40}, {encoding!r}) is not a bytes literal")
    return text.encode(encoding)


_STORAGE_DTYPES = {
    "DoubleStorage": np.float64,
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "BFloat16Storage": ml_dtypes.bfloat16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
    "ComplexDoubleStorage": np.complex128,
    "ComplexFloatStorage": np.complex64,
    "UntypedStorage": np.uint8,
}

_TORCH_DTYPES = {
    "float64": np.float64,
    "float32": np.float32,
    "float16": np.float16,
    "bfloat16": ml_dtypes.bfloat16,
    "int64": np.int64,
    "int32": np.int32,
    "int16": np.int16,
    "int8": np.int8,
    "uint8": np.uint8,
    "uint16": np.uint16,
    "uint32": np.uint32,
    "uint64": np.uint64,
    "bool": np.bool_,
    "complex64": np.complex64,
    "complex128": np.complex128,
    "float8_e4m3fn": ml_dtypes.float8_e4m3fn,
    "float8_e5m2": ml_dtypes.float8_e5m2,
}


def _build_allow_list() -> dict[tuple[str, str], Any]:
    # Functions are handed out wrapped (_AllowedCall) and markers are _Frozen, so a pickle can call
    # them but never change them; the classes (OrderedDict, set, frozenset) are immutable types.
    allowed: dict[tuple[str, str], Any] = {
        ("torch._utils", "_rebuild_tensor"): _AllowedCall(_rebuild_tensor_v2),  # torch < 0.4
        ("torch._utils", "_rebuild_tensor_v2"): _AllowedCall(_rebuild_tensor_v2),
        ("torch._utils", "_rebuild_tensor_v3"): _AllowedCall(_rebuild_tensor_v3),
        ("torch._utils", "_rebuild_parameter"): _AllowedCall(_rebuild_parameter),
        ("torch._utils", "_rebuild_parameter_with_state"): _AllowedCall(_rebuild_parameter),
        ("torch._tensor", "_rebuild_from_type_v2"): _AllowedCall(_rebuild_from_type_v2),
        ("torch", "Tensor"): _Marker("torch.Tensor"),
        ("torch.nn.parameter", "Parameter"): _Marker("torch.nn.parameter.Parameter"),
        ("torch", "Size"): _AllowedCall(_torch_size),
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("__builtin__", "set"): set,
        ("_codecs", "encode"): _AllowedCall(_codecs_encode),
    }
    for name, dtype in _STORAGE_DTYPES.items():
        allowed[("torch", name)] = StorageType(name, dtype)
        allowed[("torch.storage", name)] = allowed[("torch", name)]
    for name, dtype in _TORCH_DTYPES.items():
        allowed[("torch", name)] = _TorchDtype(name, dtype)
    return allowed


ALLOWED_GLOBALS = _build_allow_list()
