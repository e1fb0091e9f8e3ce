"""The functional core: ``fit``, ``score``, ``anomaly_maps``, ``predict``.

Host side (here): turn user frames (arrays of a declared :class:`ImageFormat`,
or paths) into canonical RGB/u8 frames, resize and normalise them for the
detector's backbone, pad each batch to a fixed size and shard it over the
local devices.  Device side: one jit-compiled ``predict`` per detector, which
compiles once per (batch shape, output size) and never again for new frames
or a new state of the same shapes.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable, Iterator, Mapping, Sequence

import attrs
import jax
import jax.numpy as jnp
import numpy as np

from models_jax.backbones import get_backbone_spec
from pyimgano.devices import data_parallel, device_count, replicate, shard_batch
from pyimgano.inputs import IMAGENET_MEAN, IMAGENET_STD, canonicalize_images, prepare_backbone_input
from pyimgano.registry import get_detector
from pyimgano.state import DetectorState

__all__ = [
    "fit",
    "score",
    "anomaly_maps",
    "predict",
    "make_config",
    "prepare_frames",
    "preprocess_on_device",
    "predict_preprocessed",
]


def make_config(name_or_config, **overrides):
    """A detector config from a registered name (+ field overrides) or a config object.

    Returns ``(detector_name, config)``. Unknown override names raise
    ``ValueError`` listing the accepted fields.
    """
    if isinstance(name_or_config, str):
        spec = get_detector(name_or_config)
        accepted = [f.name for f in attrs.fields(spec.config_cls)]
        unknown = sorted(set(overrides) - set(accepted))
        if unknown:
            raise ValueError(f"unknown {spec.name} option(s) {unknown}; accepted: {accepted}")
        return spec.name, spec.config_cls(**overrides)
    for spec in _unique_specs():
        if isinstance(name_or_config, spec.config_cls):
            return spec.name, attrs.evolve(name_or_config, **overrides) if overrides else name_or_config
    raise TypeError(
        f"expected a detector name or config object, got {type(name_or_config).__name__}; "
        f"names: {sorted(s.name for s in _unique_specs())}"
    )


def _unique_specs():
    from pyimgano.registry import DETECTORS

    return {id(s): s for s in DETECTORS.values()}.values()


def _is_path(item) -> bool:
    return isinstance(item, (str, os.PathLike))


def _as_items(frames) -> Sequence:
    """A sliceable sequence of frames: a batch array, a list of arrays, or a list of paths."""
    if isinstance(frames, np.ndarray) or _is_path(frames):
        return frames if isinstance(frames, np.ndarray) else [frames]
    if isinstance(frames, jax.Array):
        return np.asarray(frames)
    items = list(frames)
    kinds = {_is_path(item) for item in items}
    if len(kinds) > 1:
        raise TypeError("paths and arrays may not be mixed in one call; pass one kind")
    return items


def _batches(items: Sequence, batch_size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), batch_size):
        yield items[start : start + batch_size]


def prepare_frames(config, frames: Sequence[np.ndarray]) -> np.ndarray:
    """Canonical u8[H,W,3] frames -> f32[B, h, w, 3] resized and normalised for ``config.backbone``."""
    spec = get_backbone_spec(config.backbone)
    return prepare_backbone_input(
        frames, size=tuple(config.image_size), interpolation=config.interpolation, normalization=spec.normalization
    )


def fit(
    name_or_config,
    frames,
    fmt=None,
    *,
    key: jax.Array | None = None,
    u16_max: int | None = None,
    progress: Callable[[int], None] | None = None,
    **overrides,
) -> DetectorState:
    """Fit a detector on normal frames and return its immutable :class:`DetectorState`.

    Args:
      name_or_config: a registered name (``"vision_patchcore"``) or a config object.
      frames: a batch array ``(N, ...)``, a sequence of arrays (all of format ``fmt``),
        or a sequence of image paths (``fmt`` must then be None). Decoded one batch at a time.
      fmt: the :class:`~pyimgano.inputs.ImageFormat` (or its name) of array frames.
      key: PRNG key for the detector's randomness; default ``PRNGKey(config.seed)``.
      u16_max: full-scale value for 16-bit inputs (e.g. 4095 for 12-bit sensors).
      progress: optional callable receiving the number of frames processed so far.
      **overrides: config fields when ``name_or_config`` is a name.

    Raises:
      ValueError / TypeError: bad names, options, formats or frames (messages name them).
    """
    name, config = make_config(name_or_config, **overrides)
    spec = get_detector(name)
    items = _as_items(frames)
    if len(items) == 0:
        raise ValueError(f"{name} needs at least one training frame, got none")
    key = jax.random.PRNGKey(config.seed) if key is None else key

    def prepared_batches():
        for chunk in _batches(items, config.batch_size):
            yield prepare_frames(config, canonicalize_images(chunk, input_format=fmt, u16_max=u16_max))

    model = spec.fit(config, prepared_batches(), key=key, progress=progress)
    return DetectorState(detector=name, model=replicate(model))


# Only the model state enters jit (the threshold is not traced), so a re-calibrated
# state reuses the compiled function; the maps are pruned from the scores-only path.
@functools.partial(jax.jit, static_argnums=0)
def _run_scores(detector: str, model, images: jax.Array) -> jax.Array:
    predict = get_detector(detector).predict
    return data_parallel(lambda m, x: predict(m, x, tuple(m.config.image_size)).scores)(model, images)


@functools.partial(jax.jit, static_argnums=(0, 3))
def _run_predict(detector: str, model, images: jax.Array, out_hw: tuple[int, int]):
    predict = get_detector(detector).predict

    def run(m, x):
        pred = predict(m, x, out_hw)
        return pred.scores, pred.maps

    return data_parallel(run)(model, images)


_JAX_RESIZE = {"nearest": "nearest", "bilinear": "linear", "bicubic": "cubic", "area": "linear", "lanczos4": "lanczos3"}


def preprocess_on_device(state: DetectorState, frames: jax.Array) -> jax.Array:
    """Traceable twin of the host preprocessing: canonical RGB frames -> backbone input.

    Args:
      state: a fitted state (its config names the backbone, size and interpolation).
      frames: u8 or f32 ``[B, h, w, 3]`` RGB with values in 0..255 (canonical frames,
        e.g. tiles cut on the device).

    Returns:
      f32[B, S, S', 3] at ``config.image_size``, normalised for the backbone.

    The host path resizes uint8 frames with OpenCV (``INTER_LINEAR``: two taps per
    axis, no antialiasing, half-pixel centres); this one uses ``jax.image.resize``
    with the same convention and ``antialias=False`` in f32, so values differ by
    the host path's uint8 rounding only.
    """
    config = state.config
    x = jnp.asarray(frames).astype(jnp.float32)
    h, w = config.image_size
    if x.shape[1:3] != (h, w):
        method = _JAX_RESIZE.get(config.interpolation, "linear")
        x = jax.image.resize(x, (x.shape[0], h, w, x.shape[3]), method=method, antialias=False)
    normalization = get_backbone_spec(config.backbone).normalization
    if normalization == "imagenet":
        return (x / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    if normalization == "efficientnet_lite":
        return (x - 127.0) / 128.0
    raise ValueError(f"unknown backbone normalization {normalization!r}")


def predict_preprocessed(state: DetectorState, images: jax.Array, out_hw: tuple[int, int]):
    """Traceable detector call: ``images f32[B, S, S', 3]`` (from :func:`preprocess_on_device`)
    -> ``Prediction(scores f32[B], maps f32[B, *out_hw])``. Call it inside your own ``jit``."""
    return get_detector(state.detector).predict(state.model, images, (int(out_hw[0]), int(out_hw[1])))


def _padded_chunks(prepared: np.ndarray, batch_size: int) -> Iterator[tuple[np.ndarray, int]]:
    """Fixed-size chunks (a multiple of the device count) so each shape compiles once."""
    n_dev = device_count()
    size = min(batch_size, len(prepared))
    size = -(-size // n_dev) * n_dev
    for start in range(0, len(prepared), size):
        chunk = prepared[start : start + size]
        valid = len(chunk)
        if valid < size:
            pad = np.repeat(chunk[-1:], size - valid, axis=0)
            chunk = np.concatenate([chunk, pad], axis=0)
        yield chunk, valid


def _check_state(state) -> None:
    if not isinstance(state, DetectorState):
        raise TypeError(
            f"expected a DetectorState (from pyimgano.fit or pyimgano.load_state), got {type(state).__name__}"
        )


def score(state: DetectorState, frames, fmt=None, *, u16_max: int | None = None, batch_size: int | None = None):
    """Image anomaly scores ``f32[N]`` (higher = more anomalous), in input order.

    Frames of different sizes may be mixed (each is resized to the model input).
    """
    _check_state(state)
    items = _as_items(frames)
    if len(items) == 0:
        return jnp.zeros((0,), jnp.float32)
    batch_size = batch_size or state.config.batch_size
    out = []
    for chunk in _batches(items, batch_size):
        prepared = prepare_frames(state.config, canonicalize_images(chunk, input_format=fmt, u16_max=u16_max))
        for padded, valid in _padded_chunks(prepared, batch_size):
            out.append(_run_scores(state.detector, state.model, shard_batch(padded))[:valid])
    return jnp.concatenate(out)


def predict(state: DetectorState, frames, fmt=None, *, u16_max: int | None = None, batch_size: int | None = None):
    """Scores ``f32[N]`` and anomaly maps ``f32[N, H, W]`` at the input frame size.

    All frames must share one size (``ValueError`` lists the sizes otherwise;
    :func:`pyimgano.inference.infer` handles mixed sizes).
    """
    _check_state(state)
    items = _as_items(frames)
    if len(items) == 0:
        h, w = state.config.image_size
        return jnp.zeros((0,), jnp.float32), jnp.zeros((0, h, w), jnp.float32)
    batch_size = batch_size or state.config.batch_size
    scores, maps, out_hw = [], [], None
    for chunk in _batches(items, batch_size):
        canonical = canonicalize_images(chunk, input_format=fmt, u16_max=u16_max)
        sizes = sorted({frame.shape[:2] for frame in canonical} | ({out_hw} if out_hw else set()))
        if len(sizes) > 1:
            raise ValueError(
                f"anomaly maps need frames of one size, got sizes {sizes}; "
                "call once per size or use pyimgano.inference.infer"
            )
        out_hw = sizes[0]
        prepared = prepare_frames(state.config, canonical)
        for padded, valid in _padded_chunks(prepared, batch_size):
            s, m = _run_predict(state.detector, state.model, shard_batch(padded), tuple(out_hw))
            scores.append(s[:valid])
            maps.append(m[:valid])
    return jnp.concatenate(scores), jnp.concatenate(maps)


def anomaly_maps(state: DetectorState, frames, fmt=None, *, u16_max: int | None = None, batch_size: int | None = None):
    """Anomaly maps ``f32[N, H, W]`` at the input frame resolution (see :func:`predict`)."""
    return predict(state, frames, fmt, u16_max=u16_max, batch_size=batch_size)[1]
