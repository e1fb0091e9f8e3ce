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
resolves globals only through :data:`~weights_convert.allow_list.ALLOWED_GLOBALS`,
a table of the handful of names a tensor ``state_dict`` needs, each mapped to a
numpy-producing stand-in that the pickle cannot modify; torch is never imported
and any other name raises :class:`UnsafeCheckpointError` before anything is
called. Reading is bounded: zip members may not inflate far beyond their stored
size, a legacy file is read once into memory (so the pickle can ask for no more
bytes than the file has), shared containers are converted once and a container
that contains itself is refused.
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

import numpy as np

from weights_convert.allow_list import (
    ALLOWED_GLOBALS,
    CheckpointFormatError,
    PendingTensor,
    Storage,
    StorageType,
    UnsafeCheckpointError,
)

__all__ = ["read_state_dict", "read_checkpoint", "UnsafeCheckpointError", "CheckpointFormatError"]


_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
# Wrapper keys under which training scripts commonly nest the state_dict.
_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "module")


class _AllowListUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose globals come only from :data:`ALLOWED_GLOBALS`.

    ``persistent_load`` turns storage ids into :class:`Storage` placeholders
    (``storages`` collects them by key so the same root is shared).
    """

    def __init__(self, file, path: str, *, legacy: bool):
        super().__init__(file, encoding="latin1")
        self._path = path
        self._legacy = legacy
        self.storages: dict[str, Storage] = {}

    def find_class(self, module: str, name: str):
        try:
            return ALLOWED_GLOBALS[(module, name)]
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
        if not isinstance(storage_type, StorageType):
            raise CheckpointFormatError(f"{self._path}: storage id names {storage_type!r}, not a storage type")
        if not isinstance(key, str) or not isinstance(numel, int) or numel < 0:
            raise CheckpointFormatError(f"{self._path}: malformed storage id {pid!r:.80}")
        root = self.storages.get(key)
        if root is None:
            root = self.storages[key] = Storage(key, storage_type.dtype, 0, numel)
        view = pid[5] if self._legacy else None
        if view is None:
            return root
        # Legacy storage views: (view_key, offset, size), in elements of the root storage.
        if not (isinstance(view, tuple) and len(view) == 3 and all(isinstance(v, int) for v in view[1:])):
            raise CheckpointFormatError(f"{self._path}: malformed storage view {view!r:.80}")
        _view_key, offset, size = view
        return Storage(key, storage_type.dtype, offset, size)


# --- format readers ------------------------------------------------------------------------------


def _materialize(tensor: PendingTensor, buffers: Mapping[str, bytes], byteorder: str, path: str) -> np.ndarray:
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


def _resolve(obj, convert: Callable[[PendingTensor], np.ndarray], memo: dict | None = None):
    """Containers rebuilt with tensors materialised. Shared sub-objects are converted once
    (memo by id: a pickle of a few hundred bytes can share one list 2**60 ways), and a
    container that contains itself is refused."""
    memo = {} if memo is None else memo
    key = id(obj)
    if key in memo:
        if memo[key] is _IN_PROGRESS:
            raise CheckpointFormatError("the checkpoint holds a container that contains itself")
        return memo[key]
    if isinstance(obj, PendingTensor):
        memo[key] = convert(obj)
    elif isinstance(obj, dict):
        memo[key] = _IN_PROGRESS
        out = type(obj)() if isinstance(obj, collections.OrderedDict) else {}
        for k, v in obj.items():
            out[k] = _resolve(v, convert, memo)
        memo[key] = out
    elif isinstance(obj, (list, tuple)):
        memo[key] = _IN_PROGRESS
        memo[key] = (list if isinstance(obj, list) else tuple)(_resolve(v, convert, memo) for v in obj)
    else:
        return obj
    return memo[key]


_IN_PROGRESS = object()


_MAX_INFLATION = 100  # a compressed member may expand at most this much ...
_INFLATION_FLOOR = 16 * 1024 * 1024  # ... beyond this size (torch stores members uncompressed)


def _read_member(path: str, zf: zipfile.ZipFile, name: str) -> bytes:
    """A zip member's bytes, refusing a declared size far beyond its stored size (a zip bomb)."""
    info = zf.getinfo(name)
    if info.file_size > max(_INFLATION_FLOOR, _MAX_INFLATION * info.compress_size):
        raise CheckpointFormatError(
            f"{path}: zip member {name!r} would expand from {info.compress_size} to {info.file_size} bytes; refused"
        )
    return zf.read(name)


def _load_zip(path: str, zf: zipfile.ZipFile):
    names = zf.namelist()
    pickles = [n for n in names if n.endswith("data.pkl") and n.count("/") <= 1]
    if len(pickles) != 1:
        raise CheckpointFormatError(f"{path}: zip file has no single '<prefix>/data.pkl' record ({names[:5]}...)")
    prefix = pickles[0][: -len("data.pkl")]
    byteorder = "little"
    if prefix + "byteorder" in names:
        byteorder = _read_member(path, zf, prefix + "byteorder").decode("ascii", "replace").strip()
        if byteorder not in ("little", "big"):
            raise CheckpointFormatError(f"{path}: byteorder record says {byteorder!r}, expected 'little' or 'big'")
    unpickler = _AllowListUnpickler(io.BytesIO(_read_member(path, zf, pickles[0])), path, legacy=False)
    obj = unpickler.load()
    buffers = {}
    for key, storage in unpickler.storages.items():
        member = f"{prefix}data/{key}"
        if member not in names:
            raise CheckpointFormatError(f"{path}: storage record {member!r} is missing")
        buffers[key] = _read_member(path, zf, member)
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
            # In memory: every read the pickle asks for is bounded by the file's real size.
            obj, buffers, byteorder = _load_legacy(path_str, io.BytesIO(Path(path_str).read_bytes()))
        return _resolve(obj, lambda t: _materialize(t, buffers, byteorder, path_str))
    except (UnsafeCheckpointError, CheckpointFormatError):
        raise
    except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError, TypeError, KeyError,
            AttributeError, IndexError, struct.error, UnicodeDecodeError, OverflowError, MemoryError,
            RecursionError, NotImplementedError, zipfile.LargeZipFile) as err:
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
