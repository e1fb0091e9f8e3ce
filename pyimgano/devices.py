"""Which devices pyimgano uses, and how a state and a batch are placed on them.

- **Selection**: :func:`select_devices` turns a device spec (``auto``, ``cpu``, ``gpu``,
  ``cuda``, ``rocm``, ``tpu``, optionally with local indices: ``gpu:0,1``) into this
  process's JAX devices, or raises :class:`DeviceError` naming what is available;
  :func:`use_devices` makes a selection the one scoring uses (``pyimgano-infer --device``,
  the workbench's ``model.device``). Select before fitting or loading a state: a state is
  placed on the devices in use when it is created.
- **Placement**: batches are split along axis 0 over the devices in use
  (:func:`shard_batch`); a fitted model is replicated on every device
  (:func:`replicate`), except that a memory bank too large for one device has its rows
  sharded over them (:func:`place_model`, :func:`shard_rows`; automatic rule in
  :func:`should_shard_bank`, switch ``PYIMGANO_BANK_SHARDING=auto|on|off``).
- **Programs**: :func:`data_parallel` runs a detector over the devices under
  ``jax.shard_map``, each device on its slice of the batch; with a sharded bank each
  device also holds only its rows of the bank and the nearest-neighbour search is
  reduced across devices inside the detector.
- **Compilation cache**: :func:`enable_compilation_cache` turns on JAX's persistent
  cache, so a restarted service loads its compiled programs instead of recompiling.

On one device placement is a plain ``device_put`` and ``data_parallel`` returns the
function unchanged. Batches are padded to a multiple of the device count by the
callers (:mod:`pyimgano.scoring`), so the batch axis always divides.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Callable, Sequence

import attrs
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = [
    "AXIS",
    "DEVICE_PLATFORMS",
    "BANK_SHARDING",
    "BANK_PAD_VALUE",
    "MIN_BANK_ROWS_PER_DEVICE",
    "DeviceError",
    "parse_device_spec",
    "available_platforms",
    "select_devices",
    "use_devices",
    "active_devices",
    "local_mesh",
    "device_count",
    "shard_batch",
    "replicate",
    "shard_rows",
    "should_shard_bank",
    "place_model",
    "sharded_fields",
    "data_parallel",
    "enable_compilation_cache",
    "compilation_cache_stats",
]

#: The mesh axis the batch (and a sharded memory bank's rows) are split along.
AXIS = "batch"
#: Platforms a device spec may name (``auto`` = JAX's default backend).
DEVICE_PLATFORMS = ("auto", "cpu", "gpu", "cuda", "rocm", "tpu")
#: ``PYIMGANO_BANK_SHARDING`` / ``place_model(bank_sharding=...)`` values.
BANK_SHARDING = ("auto", "on", "off")
#: Value of the rows that pad a sharded bank to a multiple of the device count: so far from
#: any feature vector that they are never a nearest neighbour (their squared distance,
#: about ``D * 1e30``, stays finite in f32 for D up to 10^8).
BANK_PAD_VALUE = 1e15
#: A bank is sharded only when every device gets at least this many rows (small banks
#: gain nothing, and PatchCore's re-weighting needs ``num_neighbors`` real rows).
MIN_BANK_ROWS_PER_DEVICE = 16

_ENV_BANK_SHARDING = "PYIMGANO_BANK_SHARDING"
_ENV_BANK_SHARD_BYTES = "PYIMGANO_BANK_SHARD_BYTES"

_active: tuple | None = None
_cache: dict = {}


class DeviceError(ValueError):
    """A device spec that names no available device (the message lists what JAX has)."""


# -- selection ----------------------------------------------------------------------------


def parse_device_spec(spec: str) -> tuple[str, tuple[int, ...] | None]:
    """``"gpu:0,1"`` -> ``("gpu", (0, 1))``; ``"cpu"`` -> ``("cpu", None)``.

    Raises:
      DeviceError: an unknown platform or malformed indices (the message lists the accepted forms).
    """
    text = str(spec).strip().lower()
    platform, _, tail = text.partition(":")
    if platform not in DEVICE_PLATFORMS:
        raise DeviceError(
            f"unknown device {spec!r}; accepted: {', '.join(DEVICE_PLATFORMS)}, optionally with local "
            "device indices, e.g. gpu:0 or gpu:0,1"
        )
    if not tail:
        return platform, None
    if platform == "auto":
        raise DeviceError(f"device {spec!r}: 'auto' takes no indices; name the platform, e.g. gpu:0,1")
    try:
        indices = tuple(int(part) for part in tail.split(","))
    except ValueError:
        raise DeviceError(f"device {spec!r}: indices must be integers, e.g. {platform}:0,1") from None
    if any(i < 0 for i in indices) or len(set(indices)) != len(indices):
        raise DeviceError(f"device {spec!r}: indices must be distinct and >= 0")
    return platform, indices


def available_platforms() -> list[str]:
    """The platforms JAX can run on in this process (``cpu`` always; ``gpu``/``tpu`` with their plugins)."""
    found = []
    for platform in ("cpu", "gpu", "tpu"):
        try:
            if jax.local_devices(backend=platform):
                found.append(platform)
        except RuntimeError:
            pass
    return found


def select_devices(spec: str = "auto") -> tuple:
    """This process's JAX devices named by ``spec`` (see :func:`parse_device_spec`).

    ``auto`` is every local device of JAX's default backend; a platform is every local
    device of it (``cuda``/``rocm`` are ``gpu`` of that vendor); indices pick among them.

    Raises:
      DeviceError: the platform is not available (JAX without its CUDA/TPU build, no
        device) or an index is out of range; the message says what is available.
    """
    platform, indices = parse_device_spec(spec)
    if platform == "auto":
        devices = tuple(jax.local_devices())
    else:
        try:
            devices = tuple(jax.local_devices(backend=platform))
        except RuntimeError:
            devices = ()
        if not devices:
            hint = {"tpu": "pip install 'jax[tpu]' on a TPU host"}.get(platform, "pip install 'pyimgano[cuda12]' on a host with an NVIDIA GPU")
            raise DeviceError(
                f"device {spec!r} is not available: JAX has no {platform!r} devices in this process "
                f"(available platforms: {', '.join(available_platforms())}; JAX_PLATFORMS="
                f"{os.environ.get('JAX_PLATFORMS', '')!r}); use --device auto or one of those, or {hint}"
            )
    if indices is None:
        return devices
    bad = [i for i in indices if i >= len(devices)]
    if bad:
        raise DeviceError(
            f"device {spec!r}: index {bad[0]} out of range; this process has {len(devices)} "
            f"{devices[0].platform} device(s), indices 0..{len(devices) - 1}"
        )
    return tuple(devices[i] for i in indices)


def use_devices(spec: str | Sequence = "auto") -> tuple:
    """Make ``spec`` (a device spec or a sequence of devices) the devices scoring uses; returns them.

    Also sets JAX's default device to the first of them, so unplaced arrays land there.
    States fitted or loaded afterwards are placed on these devices.

    Raises:
      DeviceError: as :func:`select_devices`.
    """
    global _active
    devices = select_devices(spec) if isinstance(spec, str) else tuple(spec)
    if not devices:
        raise DeviceError("use_devices needs at least one device")
    _active = None if isinstance(spec, str) and spec.strip().lower() == "auto" else devices
    jax.config.update("jax_default_device", None if _active is None else devices[0])
    return devices


def active_devices() -> tuple:
    """The devices scoring uses: the last :func:`use_devices` selection, else every local device."""
    return _active if _active is not None else tuple(jax.local_devices())


@functools.lru_cache(maxsize=None)
def _mesh(devices: tuple) -> Mesh:
    return Mesh(np.asarray(devices), (AXIS,))


def local_mesh() -> Mesh:
    """A 1-D mesh over the devices in use (axis :data:`AXIS`)."""
    return _mesh(active_devices())


def device_count() -> int:
    return len(active_devices())


# -- placement ----------------------------------------------------------------------------


def shard_batch(array: np.ndarray) -> jax.Array:
    """Put ``array`` on the devices split along axis 0 (which must divide by the device count)."""
    if device_count() == 1:
        return jax.device_put(array, active_devices()[0])
    return jax.device_put(array, NamedSharding(local_mesh(), PartitionSpec(AXIS)))


def replicate(tree):
    """A copy of ``tree`` replicated on every device in use (so jit never re-copies it per call)."""
    if device_count() == 1:
        return jax.device_put(tree, active_devices()[0])
    return jax.device_put(tree, NamedSharding(local_mesh(), PartitionSpec()))


def shard_rows(array) -> jax.Array:
    """``f32[M, D]`` with its rows split over the devices in use.

    The rows are padded to a multiple of the device count with rows of
    :data:`BANK_PAD_VALUE` (never a nearest neighbour), appended at the end, so row
    indices below ``M`` are unchanged.
    """
    n = device_count()
    array = np.asarray(array)
    pad = (-array.shape[0]) % n
    if pad:
        array = np.concatenate([array, np.full((pad,) + array.shape[1:], BANK_PAD_VALUE, array.dtype)])
    return jax.device_put(array, NamedSharding(local_mesh(), PartitionSpec(AXIS)))


def _bank_sharding_mode(value: str | None) -> str:
    mode = (value if value is not None else os.environ.get(_ENV_BANK_SHARDING, "auto")).strip().lower()
    if mode not in BANK_SHARDING:
        raise ValueError(f"bank sharding {mode!r} (from {_ENV_BANK_SHARDING} or the argument); accepted: {BANK_SHARDING}")
    return mode


def _auto_shard_bytes() -> int | None:
    """Banks above this many bytes are sharded by ``auto``; None: never (no device memory limit known)."""
    env = os.environ.get(_ENV_BANK_SHARD_BYTES)
    if env:
        return int(float(env))
    limits = []
    for device in active_devices():
        try:
            stats = device.memory_stats()
        except Exception:  # noqa: BLE001 - backends without memory statistics
            stats = None
        if not stats or "bytes_limit" not in stats:
            return None  # CPU devices share the host's memory: sharding would save none
        limits.append(int(stats["bytes_limit"]))
    return min(limits) // 4 if limits else None


def should_shard_bank(rows: int, nbytes: int, bank_sharding: str | None = None) -> bool:
    """Whether a bank of ``rows`` rows and ``nbytes`` bytes is sharded over the devices in use.

    ``off``: never. ``on``: whenever there are several devices and every device gets at
    least :data:`MIN_BANK_ROWS_PER_DEVICE` rows. ``auto`` (default): as ``on``, but only
    when the bank is larger than a quarter of the smallest device's memory
    (``memory_stats()['bytes_limit']``; GPUs and TPUs report it) or than
    ``PYIMGANO_BANK_SHARD_BYTES`` when that is set. CPU devices report no limit, so
    ``auto`` keeps banks replicated there (host devices share one memory).
    ``bank_sharding=None`` reads ``PYIMGANO_BANK_SHARDING`` (default ``auto``).

    Raises:
      ValueError: an unknown mode.
    """
    mode = _bank_sharding_mode(bank_sharding)
    n = device_count()
    if mode == "off" or n == 1 or rows < n * MIN_BANK_ROWS_PER_DEVICE:
        return False
    if mode == "on":
        return True
    limit = _auto_shard_bytes()
    return limit is not None and nbytes > limit


def place_model(model, *, bank_field: str | None = None, bank_sharding: str | None = None):
    """``model`` (an attrs pytree) on the devices in use: replicated, its ``bank_field`` row-sharded
    when :func:`should_shard_bank` says so (always replicated when ``bank_field`` is None)."""
    bank = getattr(model, bank_field) if bank_field is not None else None
    if bank is None or not should_shard_bank(bank.shape[0], int(bank.size) * bank.dtype.itemsize, bank_sharding):
        return replicate(model)
    rest = replicate(attrs.evolve(model, **{bank_field: jnp.zeros((0,) + bank.shape[1:], bank.dtype)}))
    return attrs.evolve(rest, **{bank_field: shard_rows(bank)})


def sharded_fields(model) -> frozenset[str]:
    """Names of ``model``'s array fields whose rows are split over the current mesh (see :func:`shard_rows`)."""
    if device_count() == 1 or not attrs.has(type(model)):
        return frozenset()
    mesh = local_mesh()
    names = []
    for field in attrs.fields(type(model)):
        value = getattr(model, field.name)
        sharding = getattr(value, "sharding", None)
        if (
            isinstance(sharding, NamedSharding)
            and tuple(sharding.mesh.devices.flat) == tuple(mesh.devices.flat)
            and len(sharding.spec) > 0
            and sharding.spec[0] == AXIS
        ):
            names.append(field.name)
    return frozenset(names)


def _model_specs(model, sharded: frozenset[str]):
    """A PartitionSpec per leaf: rows split for the fields in ``sharded``, replicated otherwise."""

    def spec(path, _leaf):
        name = getattr(path[0], "name", None) if path else None
        return PartitionSpec(AXIS) if name in sharded else PartitionSpec()

    return jax.tree_util.tree_map_with_path(spec, model)


def data_parallel(fn: Callable, sharded: frozenset[str] = frozenset()) -> Callable:
    """``fn(model, images)`` run over the devices in use (call it inside ``jit``).

    Each device runs ``fn`` on its own slice of the batch axis; outputs are
    concatenated along axis 0. The model is replicated, except the fields named in
    ``sharded`` (:func:`sharded_fields`), of which each device sees only its rows:
    ``fn`` must then reduce across axis :data:`AXIS` itself (PatchCore's
    ``predict_bank_sharded``). With a replicated model there is no cross-device
    communication: letting the partitioner propagate a batch sharding through a
    detector instead inserts all-gathers (kNN, blur), and on XLA:CPU with few
    cores those collectives can leave every device waiting on the others (seen
    with a 16k-row PatchCore bank on 2 host devices). On one device ``fn`` is
    returned unchanged. The batch must divide by the device count.
    """
    if device_count() == 1:
        return fn
    mesh = local_mesh()

    def run(model, images):
        return jax.shard_map(
            fn, mesh=mesh, in_specs=(_model_specs(model, sharded), PartitionSpec(AXIS)),
            out_specs=PartitionSpec(AXIS), check_vma=False,
        )(model, images)

    return run


# -- compilation cache --------------------------------------------------------------------


def enable_compilation_cache(path: str | os.PathLike) -> Path:
    """Turn on JAX's persistent compilation cache in folder ``path`` (created if missing).

    Every program is cached, however fast it compiled, so a restarted service or
    ``pyimgano-infer`` run reads its programs back instead of recompiling them (same
    jax/jaxlib version, same devices, same shapes). Call it before the first
    compilation of the process. JAX's own ``JAX_COMPILATION_CACHE_DIR`` does the same
    but caches only programs that took over a second to compile.

    Returns the folder.
    """
    folder = Path(path).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    if not _cache:
        _cache.update(requests=0, hits=0, misses=0)
        jax.monitoring.register_event_listener(_count_cache_event)
    _cache["dir"] = str(folder)
    return folder


_CACHE_EVENTS = {
    "/jax/compilation_cache/compile_requests_use_cache": "requests",
    "/jax/compilation_cache/cache_hits": "hits",
    "/jax/compilation_cache/cache_misses": "misses",
}


def _count_cache_event(event: str, **_kwargs) -> None:
    key = _CACHE_EVENTS.get(event)
    if key is not None:
        _cache[key] += 1


def compilation_cache_stats() -> dict | None:
    """``{dir, requests, hits, misses}`` of this process's persistent-cache lookups since
    :func:`enable_compilation_cache`; None when it was not called."""
    return dict(_cache) if _cache else None
