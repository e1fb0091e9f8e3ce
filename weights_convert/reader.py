"""Torch-free reader of PyTorch checkpoints (``torch.save`` output).

Two on-disk formats exist:

- **zip** (torch >= 1.6 default): ``<prefix>/data.pkl`` is a pickle of the
  object whose storages are *persistent ids*
  ``("storage", StorageType, key, location, numel)``; the raw bytes of storage
  ``key`` are the zip member ``<prefix>/data/<key>``; ``<prefix>/byteorder``
  (``little``/``big``, absent = little) gives their byte order.
- **legacy** (``_use_new_zipfile_serialization=False`` and torch < 1.6): five
  consecutive pickles -- magic number, protocol version, ``sys_info``, the
  object (persistent ids ``("storage", StorageType, key, location, numel,
  view_metadata)``), the sorted list of storage keys -- followed by each
  storage as ``int64 numel`` + ``numel * itemsize`` raw bytes.

Safety model: unpickling runs ``pickle`` opcodes, and ``GLOBAL`` + ``REDUCE``
can call *any* importable function (``os.system``...).  :class:`_AllowListUnpickler`
resolves globals only through :data:`_ALLOWED`, a table of the handful of
names a tensor ``state_dict`` needs, each mapped to a numpy-producing stand-in
defined here; torch is never imported and any other name raises
:class:`UnsafeCheckpointError` before anything is called.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import sys
import zipfile
from pathlib import Path
from typing import Any, Callable, Mapping

import ml_dtypes
import numpy as np

__all__ = ["read_state_dict", "read_checkpoint", "UnsafeCheckpointError", "CheckpointFormatError"]


class UnsafeCheckpointError(ValueError):
    """The checkpoint's pickle references a global outside the allow-list; nothing was executed."""


class CheckpointFormatError(ValueError):
    """The file is not a readable PyTorch checkpoint (corrupt, truncated, or an unsupported layout)."""


_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
# Wrapper keys under which training scripts commonly nest the state_dict.
_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "module")


# --- stand-ins for the allow-listed torch globals ------------------------------------------------


class _StorageType:
    """Marker for ``torch.FloatStorage`` & co.: only carries the element dtype."""

    __slots__ = ("name", "dtype")

    def __init__(self, name: str, dtype: np.dtype):
        self.name = name
        self.dtype = np.dtype(dtype)

    def __repr__(self) -> str:
        return f"torch.{self.name}"


class _TorchDtype:
    """Marker for a pickled ``torch.<dtype>`` (used by ``_rebuild_tensor_v3``)."""

    __slots__ = ("name", "dtype")

    def __init__(self, name: str, dtype: np.dtype):
        self.name = name
        self.dtype = np.dtype(dtype)


class _Marker:
    """Marker for a class that is only ever compared, never called (``torch.Tensor``)."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name


class _Storage:
    """A storage referenced by a persistent id; its bytes are attached after unpickling.

    ``offset``/``numel`` are in elements of ``dtype`` and select a view of the
    root storage ``key`` (legacy view metadata; zip storages are whole roots).
    """

    __slots__ = ("key", "dtype", "offset", "numel")

    def __init__(self, key: str, dtype: np.dtype, offset: int, numel: int):
        self.key, self.dtype, self.offset, self.numel = key, dtype, offset, numel


class _PendingTensor:
    """A tensor whose storage bytes may not be read yet (legacy storages follow the pickle)."""

    __slots__ = ("storage", "dtype", "offset", "shape", "strides")

    def __init__(self, storage: _Storage, dtype: np.dtype, offset: int, shape: tuple, strides: tuple):
        self.storage, self.dtype, self.offset, self.shape, self.strides = storage, dtype, offset, shape, strides


def _int_tuple(value, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise CheckpointFormatError(f"tensor {what} must be a tuple of ints, got {value!r}")
    return tuple(int(v) for v in value)


def _make_tensor(storage, storage_offset, size, stride, dtype: np.dtype) -> _PendingTensor:
    if not isinstance(storage, _Storage):
        raise CheckpointFormatError(f"tensor storage must come from a persistent id, got {type(storage).__name__}")
    if not isinstance(storage_offset, int) or storage_offset < 0:
        raise CheckpointFormatError(f"tensor storage offset must be a non-negative int, got {storage_offset!r}")
    shape, strides = _int_tuple(size, "size"), _int_tuple(stride, "stride")
    if len(shape) != len(strides) or any(s < 0 for s in shape) or any(s < 0 for s in strides):
        raise CheckpointFormatError(f"invalid tensor size {shape} / stride {strides}")
    return _PendingTensor(storage, np.dtype(dtype), storage_offset, shape, strides)


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
    if not isinstance(data, _PendingTensor):
        raise CheckpointFormatError(f"a Parameter must wrap a tensor, got {type(data).__name__}")
    return data


_TENSOR_REBUILDERS = (_rebuild_tensor_v2, _rebuild_tensor_v3, _rebuild_parameter)


def _rebuild_from_type_v2(func, new_type, args, state):
    # torch uses this for tensors carrying Python attributes; only our own rebuilders may be called.
    if func not in _TENSOR_REBUILDERS:
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
    allowed: dict[tuple[str, str], Any] = {
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor_v2,  # torch < 0.4: (storage, offset, size, stride)
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
        ("torch", "Tensor"): _Marker("torch.Tensor"),
        ("torch.nn.parameter", "Parameter"): _Marker("torch.nn.parameter.Parameter"),
        ("torch", "Size"): _torch_size,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("__builtin__", "set"): set,
        ("_codecs", "encode"): _codecs_encode,
    }
    for name, dtype in _STORAGE_DTYPES.items():
        allowed[("torch", name)] = _StorageType(name, dtype)
        allowed[("torch.storage", name)] = allowed[("torch", name)]
    for name, dtype in _TORCH_DTYPES.items():
        allowed[("torch", name)] = _TorchDtype(name, dtype)
    return allowed


_ALLOWED = _build_allow_list()


class _AllowListUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose globals come only from :data:`_ALLOWED`.

    ``persistent_load`` turns storage ids into :class:`_Storage` placeholders
    (``storages`` collects them by key so the same root is shared).
    """

    def __init__(self, file, path: str, *, legacy: bool):
        super().__init__(file, encoding="latin1")
        self._path = path
        self._legacy = legacy
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafeCheckpointError(
                f"{self._path}: checkpoint references the global {module}.{name}, which is not on the "
                f"allow-list of tensor-rebuilding names; refusing to load it (nothing was executed)"
            ) from None

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise CheckpointFormatError(f"{self._path}: unsupported persistent id {pid!r:.80}")
        expected = 6 if self._legacy else 5
        if len(pid) != expected:
            raise CheckpointFormatError(f"{self._path}: storage id {pid!r:.80} should have {expected} fields")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise CheckpointFormatError(f"{self._path}: storage id names {storage_type!r}, not a storage type")
        if not isinstance(key, str) or not isinstance(numel, int) or numel < 0:
            raise CheckpointFormatError(f"{self._path}: malformed storage id {pid!r:.80}")
        root = self.storages.get(key)
        if root is None:
            root = self.storages[key] = _Storage(key, storage_type.dtype, 0, numel)
        view = pid[5] if self._legacy else None
        if view is None:
            return root
        # Legacy storage views: (view_key, offset, size), in elements of the root storage.
        if not (isinstance(view, tuple) and len(view) == 3 and all(isinstance(v, int) for v in view[1:])):
            raise CheckpointFormatError(f"{self._path}: malformed storage view {view!r:.80}")
        _view_key, offset, size = view
        return _Storage(key, storage_type.dtype, offset, size)


# --- format readers ------------------------------------------------------------------------------


def _materialize(tensor: _PendingTensor, buffers: Mapping[str, bytes], byteorder: str, path: str) -> np.ndarray:
    storage = tensor.storage
    raw = buffers.get(storage.key)
    if raw is None:
        raise CheckpointFormatError(f"{path}: storage {storage.key!r} has no data")
    start = storage.offset * storage.dtype.itemsize
    view_bytes = storage.numel * storage.dtype.itemsize
    if start + view_bytes > len(raw):
        raise CheckpointFormatError(
            f"{path}: storage {storage.key!r} holds {len(raw)} bytes, a view needs {start + view_bytes}"
        )
    dtype = tensor.dtype
    flat = np.frombuffer(raw, dtype=dtype, count=view_bytes // dtype.itemsize, offset=start)
    numel = int(np.prod(tensor.shape, dtype=np.int64))
    if numel == 0:
        return np.zeros(tensor.shape, dtype=tensor.dtype)
    # Bounds check before as_strided: a lying size/stride must not read outside the buffer.
    last = tensor.offset + sum((n - 1) * s for n, s in zip(tensor.shape, tensor.strides))
    if last >= flat.size:
        raise CheckpointFormatError(
            f"{path}: tensor of size {tensor.shape}, stride {tensor.strides}, offset {tensor.offset} "
            f"reaches element {last} of a {flat.size}-element storage {storage.key!r}"
        )
    base = flat[tensor.offset :]
    view = np.lib.stride_tricks.as_strided(
        base, shape=tensor.shape, strides=tuple(s * dtype.itemsize for s in tensor.strides), writeable=False
    )
    array = np.array(view, copy=True, order="C")
    if byteorder != sys.byteorder and dtype.itemsize > 1:
        array = array.byteswap()  # stored in the other byte order: swap the copy, keep a native dtype
    return array


def _resolve(obj, convert: Callable[[_PendingTensor], np.ndarray]):
    if isinstance(obj, _PendingTensor):
        return convert(obj)
    if isinstance(obj, dict):
        out = type(obj)() if isinstance(obj, collections.OrderedDict) else {}
        for k, v in obj.items():
            out[k] = _resolve(v, convert)
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_resolve(v, convert) for v in obj)
    return obj


def _load_zip(path: str, zf: zipfile.ZipFile):
    names = zf.namelist()
    pickles = [n for n in names if n.endswith("data.pkl") and n.count("/") <= 1]
    if len(pickles) != 1:
        raise CheckpointFormatError(f"{path}: zip file has no single '<prefix>/data.pkl' record ({names[:5]}...)")
    prefix = pickles[0][: -len("data.pkl")]
    byteorder = "little"
    if prefix + "byteorder" in names:
        byteorder = zf.read(prefix + "byteorder").decode("ascii", "replace").strip()
        if byteorder not in ("little", "big"):
            raise CheckpointFormatError(f"{path}: byteorder record says {byteorder!r}, expected 'little' or 'big'")
    unpickler = _AllowListUnpickler(io.BytesIO(zf.read(pickles[0])), path, legacy=False)
    obj = unpickler.load()
    buffers = {}
    for key, storage in unpickler.storages.items():
        member = f"{prefix}data/{key}"
        if member not in names:
            raise CheckpointFormatError(f"{path}: storage record {member!r} is missing")
        buffers[key] = zf.read(member)
        need = storage.numel * storage.dtype.itemsize
        if len(buffers[key]) < need:
            raise CheckpointFormatError(f"{path}: storage {key!r} has {len(buffers[key])} bytes, expected {need}")
    return obj, buffers, byteorder


def _load_legacy(path: str, f) -> tuple[Any, dict, str]:
    header = _AllowListUnpickler(f, path, legacy=True)
    magic = header.load()
    if magic != _LEGACY_MAGIC:
        raise CheckpointFormatError(f"{path}: not a PyTorch checkpoint (no zip archive, no legacy magic number)")
    protocol = header.load()
    if protocol != _LEGACY_PROTOCOL:
        raise CheckpointFormatError(f"{path}: legacy protocol version {protocol!r}, expected {_LEGACY_PROTOCOL}")
    sys_info = header.load()
    little = bool(sys_info.get("little_endian", True)) if isinstance(sys_info, dict) else True
    byteorder = "little" if little else "big"
    unpickler = _AllowListUnpickler(f, path, legacy=True)
    obj = unpickler.load()
    keys = unpickler.load()
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise CheckpointFormatError(f"{path}: legacy storage key list is malformed")
    buffers = {}
    fmt = "<q" if little else ">q"
    for key in keys:
        storage = unpickler.storages.get(key)
        if storage is None:
            raise CheckpointFormatError(f"{path}: storage {key!r} is listed but never referenced")
        head = f.read(8)
        if len(head) != 8:
            raise CheckpointFormatError(f"{path}: truncated before storage {key!r}")
        (numel,) = struct.unpack(fmt, head)
        if numel < 0 or numel < storage.numel:
            raise CheckpointFormatError(f"{path}: storage {key!r} records {numel} elements, expected {storage.numel}")
        nbytes = numel * storage.dtype.itemsize
        data = f.read(nbytes)
        if len(data) != nbytes:
            raise CheckpointFormatError(f"{path}: storage {key!r} truncated ({len(data)} of {nbytes} bytes)")
        buffers[key] = data
    return obj, buffers, byteorder


def read_checkpoint(path: str | os.PathLike) -> Any:
    """The whole unpickled object of a checkpoint, tensors as numpy arrays.

    Containers (dict, OrderedDict, list, tuple) are rebuilt; tensors become
    contiguous numpy arrays of the tensor's dtype (``bfloat16``/``float8`` via
    ``ml_dtypes``), in native byte order.

    Raises:
      FileNotFoundError: ``path`` does not exist.
      UnsafeCheckpointError: the pickle names a global outside the allow-list.
      CheckpointFormatError: not a checkpoint, corrupt or truncated (the message names ``path``).
    """
    path_str = os.fspath(path)
    if not Path(path_str).is_file():
        raise FileNotFoundError(f"checkpoint {path_str!r} does not exist or is not a file")
    try:
        if zipfile.is_zipfile(path_str):
            with zipfile.ZipFile(path_str) as zf:
                obj, buffers, byteorder = _load_zip(path_str, zf)
        else:
            with open(path_str, "rb") as f:
                obj, buffers, byteorder = _load_legacy(path_str, f)
        return _resolve(obj, lambda t: _materialize(t, buffers, byteorder, path_str))
    except (UnsafeCheckpointError, CheckpointFormatError):
        raise
    except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError, TypeError, KeyError,
            AttributeError, IndexError, struct.error, UnicodeDecodeError, OverflowError, MemoryError) as err:
        raise CheckpointFormatError(f"{path_str}: not a readable PyTorch checkpoint ({type(err).__name__}: {err})") from err


def _is_tensor_dict(obj) -> bool:
    return isinstance(obj, dict) and bool(obj) and any(isinstance(v, np.ndarray) for v in obj.values())


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a PyTorch ``state_dict`` checkpoint without torch.

    Accepts the zip format (any archive prefix directory, either byte order)
    and the legacy format, a bare ``state_dict`` or one nested under
    ``"state_dict"``, ``"model"``, ``"model_state_dict"`` or ``"module"``.

    Returns:
      ``{torch_key: np.ndarray}`` in checkpoint order; arrays are contiguous
      copies in the tensor's dtype and torch layout (e.g. conv ``OIHW``).

    Raises:
      FileNotFoundError: ``path`` does not exist.
      UnsafeCheckpointError: the pickle references a global outside the
        allow-list (e.g. ``os.system``); it is never called.
      CheckpointFormatError: corrupt/non-checkpoint file, or the object is
        not a ``{str: tensor}`` mapping (the message names ``path`` and the
        offending keys).
    """
    path_str = os.fspath(path)
    obj = read_checkpoint(path_str)
    if isinstance(obj, dict):
        for wrapper in _WRAPPER_KEYS:
            if wrapper in obj and _is_tensor_dict(obj[wrapper]):
                obj = obj[wrapper]
                break
    if not _is_tensor_dict(obj):
        top = sorted(map(str, obj))[:10] if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointFormatError(
            f"{path_str}: no state_dict found (expected a mapping of names to tensors, optionally under one of "
            f"{list(_WRAPPER_KEYS)}; got {top})"
        )
    bad = [str(k) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, np.ndarray)]
    if bad:
        raise CheckpointFormatError(f"{path_str}: state_dict entries that are not tensors: {bad}")
    return dict(obj)
