"""Canonical frames -> scores and maps: the one path below the input edge.

Every scoring call of the library (``score``, ``predict``, ``anomaly_maps``,
``infer``, ``calibrate``) decodes and canonicalises its inputs once
(:func:`pyimgano.inputs.canonical_batches`) and then calls :func:`predict_frames`
with canonical ``u8[H, W, 3]`` RGB frames. It honours what the state carries:

- no tiling: frames are resized and normalised for the backbone on the host,
  padded to a fixed batch (a multiple of the device count), and scored by one
  jitted program per (detector, batch shape, output size);
- ``state.tiling``: one jitted program per (frame size, tiling) cuts the tiles,
  resizes and normalises them on the device, scores all ``B*T`` tiles as one
  batch, stitches the maps and reduces the tile scores (:func:`pyimgano.tiling.tiled_forward`);
- ``state.postprocess``: applied to the maps on the host, never to scores.

Only the model enters ``jit`` (thresholds are not traced), so a re-calibrated
state reuses every compiled program; scores-only calls prune the maps.
"""

from __future__ import annotations

import functools
from typing import Iterable, Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from models_jax.backbones import get_backbone_spec
from pyimgano.devices import AXIS, data_parallel, device_count, shard_batch, sharded_fields
from pyimgano.inputs import IMAGENET_MEAN, IMAGENET_STD, group_by_size, prepare_backbone_input
from pyimgano.registry import get_detector
from pyimgano.state import DetectorState
from pyimgano.tiling import TileConfig, TilePlan, tiled_forward

__all__ = [
    "input_normalization",
    "prepare_frames",
    "preprocess_on_device",
    "predict_preprocessed",
    "predict_frames",
    "predict_frame_stream",
    "supports_maps",
    "run_scores",
    "run_predict",
    "run_tiled",
    "UNSET",
]

#: Sentinel for "use the state's post-processing" in :func:`predict_frames`.
UNSET = object()

_JAX_RESIZE = {"nearest": "nearest", "bilinear": "linear", "bicubic": "cubic", "area": "linear", "lanczos": "lanczos3"}


def input_normalization(config) -> str:
    """The input normalisation of a detector config (a name of ``pyimgano.inputs.NORMALIZATIONS``).

    A config with a ``backbone`` uses the backbone's (``BackboneSpec.normalization``); a
    config without one (``vision_ae``, ``vision_draem``) declares it as the class
    attribute ``INPUT_NORMALIZATION`` (``"none"``: ``x / 255``).

    Raises:
      ValueError: a config with neither.
    """
    backbone = getattr(config, "backbone", None)
    if backbone is not None:
        return get_backbone_spec(backbone).normalization
    normalization = getattr(type(config), "INPUT_NORMALIZATION", None)
    if normalization is None:
        raise ValueError(f"{type(config).__name__} has neither a backbone nor an INPUT_NORMALIZATION")
    return normalization


def prepare_frames(config, frames: Sequence[np.ndarray]) -> np.ndarray:
    """Canonical u8[H,W,3] frames -> f32[B, h, w, 3] resized and normalised for the detector
    (:func:`input_normalization`)."""
    return prepare_backbone_input(
        frames,
        size=tuple(config.image_size),
        interpolation=config.interpolation,
        normalization=input_normalization(config),
    )


def preprocess_on_device(config, frames: jax.Array) -> jax.Array:
    """Traceable twin of the host preprocessing: canonical RGB frames -> backbone input.

    Args:
      config: a detector config (names the backbone, size and interpolation); a
        :class:`~pyimgano.DetectorState` is accepted too.
      frames: u8 or f32 ``[B, h, w, 3]`` RGB with values in 0..255 (canonical frames,
        e.g. tiles cut on the device).

    Returns:
      f32[B, S, S', 3] at ``config.image_size``, normalised for the detector
      (:func:`input_normalization`).

    The host path resizes uint8 frames with OpenCV (``INTER_LINEAR``: two taps per
    axis, no antialiasing, half-pixel centres); this one uses ``jax.image.resize``
    with the same convention and ``antialias=False`` in f32, so values differ by
    the host path's uint8 rounding only.
    """
    config = config.config if isinstance(config, DetectorState) else config
    x = jnp.asarray(frames).astype(jnp.float32)
    h, w = config.image_size
    if x.shape[1:3] != (h, w):
        method = _JAX_RESIZE.get(config.interpolation, "linear")
        x = jax.image.resize(x, (x.shape[0], h, w, x.shape[3]), method=method, antialias=False)
    normalization = input_normalization(config)
    if normalization == "imagenet":
        return (x / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    if normalization == "efficientnet_lite":
        return (x - 127.0) / 128.0
    if normalization == "none":
        return x / 255.0
    raise ValueError(f"unknown backbone normalization {normalization!r}")


def predict_preprocessed(state: DetectorState, images: jax.Array, out_hw: tuple[int, int]):
    """Traceable detector call: ``images f32[B, S, S', 3]`` (from :func:`preprocess_on_device`)
    -> ``Prediction(scores f32[B], maps f32[B, *out_hw])``. Call it inside your own ``jit``."""
    return get_detector(state.detector).predict(state.model, images, (int(out_hw[0]), int(out_hw[1])))


# -- the jitted programs (one compilation per detector, batch shape and output size) ------------
# ``model`` is the state's model pytree; batches are sharded over the local devices.


def _device_predict(detector: str, sharded: frozenset[str]):
    """The detector's per-device predict: the plain one, or the bank-sharded one when ``sharded``."""
    spec = get_detector(detector)
    if not sharded:
        return spec.predict
    return lambda m, x, out_hw: spec.predict_bank_sharded(m, x, out_hw, AXIS)


@functools.partial(jax.jit, static_argnums=(0, 3))
def run_scores(detector: str, model, images: jax.Array, sharded: frozenset[str] = frozenset()) -> jax.Array:
    predict = _device_predict(detector, sharded)
    return data_parallel(lambda m, x: predict(m, x, tuple(m.config.image_size)).scores, sharded)(model, images)


@functools.partial(jax.jit, static_argnums=(0, 3, 4))
def run_predict(detector: str, model, images: jax.Array, out_hw: tuple[int, int], sharded: frozenset[str] = frozenset()):
    predict = _device_predict(detector, sharded)

    def run(m, x):
        pred = predict(m, x, out_hw)
        return pred.scores, pred.maps

    return data_parallel(run, sharded)(model, images)


@functools.partial(jax.jit, static_argnames=("detector", "plan", "tiling", "want_maps", "sharded"))
def run_tiled(model, frames, *, detector: str, plan: TilePlan, tiling: TileConfig, want_maps: bool,
              sharded: frozenset[str] = frozenset()):
    """frames u8[B, H, W, 3] canonical RGB -> (scores f32[B], maps f32[B, H, W] | None)."""
    predict = _device_predict(detector, sharded)
    t = plan.tile_size
    n_dev = device_count()

    def run(m, x):
        # One device's share of the tiles (all of them on one device); no collectives unless the bank is sharded.
        pred = predict(m, preprocess_on_device(m.config, x), (t, t))
        return (pred.scores, pred.maps) if want_maps else pred.scores

    def predict_tiles(tiles):
        total = tiles.shape[0]
        padded = -(-total // n_dev) * n_dev
        if padded != total:
            # Repeat the last tile so the tile axis divides over the devices; sliced off below.
            tiles = jnp.concatenate([tiles, jnp.repeat(tiles[-1:], padded - total, axis=0)], axis=0)
        out = data_parallel(run, sharded)(model, tiles)
        return jax.tree.map(lambda a: a[:total], out)

    return tiled_forward(predict_tiles, frames, plan, tiling, want_maps=want_maps)


# -- host drivers -----------------------------------------------------------------------------
# Scoring is split into a dispatch (host preprocessing and the asynchronous jitted calls, which
# return at once) and a gather (waiting for the results). Dispatching every part of a group, or
# the next batch of a stream, before gathering the previous one lets the host resize and
# normalise while the device computes.


def call_batch_size(count: int, batch_size: int, n_dev: int = 1) -> int:
    """Rows of one compiled call for ``count`` frames: the smallest power of two >= ``count``,
    capped at ``batch_size``, rounded up to a multiple of ``n_dev``.

    Calls are padded to it, so a stream of calls of any length compiles at most
    ``log2(batch_size) + 1`` programs (a folder's last, partial batch no longer compiles a
    program of its own size), for at most twice the rows of a small call.
    """
    rows = min(int(batch_size), 1 << max(0, int(count) - 1).bit_length())
    return -(-max(rows, 1) // n_dev) * n_dev


def _pad_rows(chunk: np.ndarray, size: int) -> np.ndarray:
    """Pad to exactly ``size`` rows by repeating the last row, so each shape compiles once."""
    if len(chunk) == size:
        return chunk
    return np.concatenate([chunk, np.repeat(chunk[-1:], size - len(chunk), axis=0)], axis=0)


def _dispatch_whole(state: DetectorState, frames: list[np.ndarray], want_maps: bool, batch_size: int):
    """Untiled: start scoring same-size canonical frames; returns ``[(scores, maps | None, valid)]`` on device."""
    size = call_batch_size(len(frames), batch_size, device_count())
    out_hw = tuple(frames[0].shape[:2])
    sharded = sharded_fields(state.model)
    parts = []
    for start in range(0, len(frames), size):
        prepared = prepare_frames(state.config, frames[start : start + size])
        valid = len(prepared)
        batch = shard_batch(_pad_rows(prepared, size))
        if want_maps:
            s, m = run_predict(state.detector, state.model, batch, out_hw, sharded)
        else:
            s, m = run_scores(state.detector, state.model, batch, sharded), None
        parts.append((s, m, valid))
    return parts


def _dispatch_tiled(state: DetectorState, frames: list[np.ndarray], want_maps: bool, batch_size: int):
    """Tiled: start scoring same-size canonical frames; returns ``[(scores, maps | None, valid)]`` on device."""
    batch = np.stack(frames)
    plan = state.tiling.plan(*batch.shape[1:3])
    # ``batch_size`` counts tiles: frames per call so that one call scores about that many.
    size = max(1, min(len(batch), batch_size // plan.num_tiles))
    parts = []
    for start in range(0, len(batch), size):
        chunk = batch[start : start + size]
        s, m = run_tiled(
            state.model, _pad_rows(chunk, size), detector=state.detector, plan=plan, tiling=state.tiling,
            want_maps=want_maps, sharded=sharded_fields(state.model),
        )
        parts.append((s, m, len(chunk)))
    return parts


def _dispatch(state: DetectorState, frames: Sequence[np.ndarray], want_maps: bool, batch_size: int):
    run = _dispatch_tiled if state.tiling is not None else _dispatch_whole
    return [(indices, run(state, [frames[i] for i in indices], want_maps, batch_size)) for indices in group_by_size(frames)]


def _gather(job, n: int, want_maps: bool, post) -> tuple[np.ndarray, list[np.ndarray] | None]:
    scores = np.zeros(n, np.float32)
    maps: list[np.ndarray | None] = [None] * n
    for indices, parts in job:
        scores[indices] = np.concatenate([np.asarray(s)[:valid] for s, _, valid in parts])
        if want_maps:
            group_maps = np.concatenate([np.asarray(m)[:valid] for _, m, valid in parts])
            for j, i in enumerate(indices):
                one = np.asarray(group_maps[j], dtype=np.float32)
                maps[i] = np.asarray(post(one), dtype=np.float32) if post is not None else one
    return scores, (maps if want_maps else None)


def supports_maps(state: DetectorState) -> bool:
    """True when the state's detector produces pixel maps (tag ``pixel_map``)."""
    return "pixel_map" in get_detector(state.detector).tags


def predict_frames(
    state: DetectorState,
    frames: Sequence[np.ndarray],
    *,
    want_maps: bool,
    batch_size: int | None = None,
    postprocess=UNSET,
) -> tuple[np.ndarray, list[np.ndarray] | None]:
    """Scores (and maps) of canonical frames, honouring the state's tiling and post-processing.

    Args:
      state: a fitted :class:`~pyimgano.DetectorState`.
      frames: canonical ``u8[H, W, 3]`` RGB frames (from :func:`pyimgano.inputs.canonical_batches`);
        sizes may differ (each size is scored as its own group).
      want_maps: also return maps (ignored, i.e. None, for detectors without pixel maps).
      batch_size: images per device call (tiles per call when tiled); default the
        detector config's ``batch_size``.
      postprocess: a callable on one ``f32[H, W]`` map that replaces the state's
        post-processing (None: raw maps); default: the state's.

    Returns:
      ``(scores f32[N], maps)`` in input order; ``maps`` is a list of ``f32[H, W]`` at each
      frame's size, or None.
    """
    batch_size = int(batch_size or getattr(state.config, "batch_size", 16))
    want_maps = bool(want_maps) and supports_maps(state)
    post = state.postprocess if postprocess is UNSET else postprocess
    return _gather(_dispatch(state, frames, want_maps, batch_size), len(frames), want_maps, post)


def predict_frame_stream(
    state: DetectorState,
    chunks: Iterable[Sequence[np.ndarray]],
    *,
    want_maps: bool,
    batch_size: int | None = None,
    postprocess=UNSET,
) -> Iterator[tuple[np.ndarray, list[np.ndarray] | None]]:
    """:func:`predict_frames` over a stream of chunks, one chunk ahead.

    Yields ``(scores, maps)`` per chunk of ``chunks`` (e.g. from
    :func:`pyimgano.inputs.canonical_batches`), in order. Chunk ``i + 1`` is decoded,
    preprocessed and dispatched before the results of chunk ``i`` are waited for, so
    host work overlaps the device's; at most two chunks are in memory.
    """
    batch_size = int(batch_size or getattr(state.config, "batch_size", 16))
    want_maps = bool(want_maps) and supports_maps(state)
    post = state.postprocess if postprocess is UNSET else postprocess
    pending = None
    for frames in chunks:
        job = (_dispatch(state, frames, want_maps, batch_size), len(frames))
        if pending is not None:
            yield _gather(pending[0], pending[1], want_maps, post)
        pending = job
    if pending is not None:
        yield _gather(pending[0], pending[1], want_maps, post)
