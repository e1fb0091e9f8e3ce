"""The functional core: ``fit``, ``score``, ``anomaly_maps``, ``predict``.

Each public function takes user frames (arrays of a declared
:class:`~pyimgano.inputs.ImageFormat`, or image paths), canonicalises them once
at this edge (:func:`pyimgano.inputs.canonical_batches`, a batch at a time) and hands
canonical frames to :func:`pyimgano.scoring.predict_frame_stream`, which runs the
detector's jitted program with the state's tiling and post-processing, decoding the
next batch while the device scores the current one (at most two batches in memory).
``fit`` reads the backbone weights through the shell (:mod:`pyimgano.weights`) and
gives them to the detector's pure ``fit``. Trained detectors (tag ``requires_training``)
also receive a checkpoint store when ``checkpoint_dir`` is given
(:class:`pyimgano.checkpoints.CheckpointDir`), which makes an interrupted fit resumable.
"""

from __future__ import annotations

import itertools
import os
from typing import Callable

import attrs
import jax
import jax.numpy as jnp
import numpy as np

from models_jax.detectors.common import CountedBatches, resolve_image_size
from pyimgano.checkpoints import CheckpointDir
from pyimgano.inputs import canonical_batches, input_items
from pyimgano.registry import get_detector, spec_for_config
from pyimgano.scoring import predict_frame_stream, prepare_frames
from pyimgano.state import DetectorState, place_state
from pyimgano.weights import backbone_variables_for

__all__ = ["fit", "score", "anomaly_maps", "predict", "make_config"]


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
    spec = spec_for_config(name_or_config)
    return spec.name, attrs.evolve(name_or_config, **overrides) if overrides else name_or_config


def _check_state(state) -> None:
    if not isinstance(state, DetectorState):
        raise TypeError(
            f"expected a DetectorState (from pyimgano.fit or pyimgano.load_state), got {type(state).__name__}"
        )


def fit(
    name_or_config,
    frames,
    fmt=None,
    *,
    key: jax.Array | None = None,
    u16_max: int | None = None,
    progress: Callable[[int], None] | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    **overrides,
) -> DetectorState:
    """Fit a detector on normal frames and return its immutable :class:`DetectorState` (no threshold).

    Args:
      name_or_config: a registered name (``"vision_patchcore"``) or a config object.
      frames: a batch array ``(N, ...)``, a sequence of arrays (all of format ``fmt``),
        or a sequence of image paths (``fmt`` must then be None). Decoded one batch at a time.
      fmt: the :class:`~pyimgano.inputs.ImageFormat` (or its name) of array frames.
      key: PRNG key for the detector's randomness; default ``PRNGKey(config.seed)``.
      u16_max: full-scale value for 16-bit inputs (e.g. 4095 for 12-bit sensors).
      progress: optional callable receiving the number of frames processed so far
        (for trained detectors: ``N`` times the fraction of optimiser steps done).
      checkpoint_dir: for trained detectors (tag ``requires_training``) only: a directory
        that receives a checkpoint after every epoch; calling ``fit`` again with the same
        arguments after an interruption resumes from it and gives the same weights as an
        uninterrupted run (``docs/training.md``).
      **overrides: config fields when ``name_or_config`` is a name.

    Calibrate a threshold on other normal images with :func:`pyimgano.calibrate`, or
    use :func:`pyimgano.fit_calibrated` to hold part of ``frames`` out for it.

    Raises:
      ValueError / TypeError: bad names, options, formats or frames (messages name them);
        ``checkpoint_dir`` for a detector that does not train, or holding another run's checkpoint.
    """
    name, config = make_config(name_or_config, **overrides)
    spec = get_detector(name)
    fit_options = {}
    if checkpoint_dir is not None:
        if "requires_training" not in spec.tags:
            raise ValueError(f"checkpoint_dir is for trained detectors; {name} does not train")
        fit_options["checkpoints"] = CheckpointDir(checkpoint_dir)
    items = input_items(frames, input_format=fmt)
    if len(items) == 0:
        raise ValueError(f"{name} needs at least one training frame, got none")
    batches = iter(canonical_batches(items, input_format=fmt, batch_size=config.batch_size, u16_max=u16_max))
    first = next(batches)
    # The model input keeps the training frames' aspect ratio (config.keep_aspect): decided here, once.
    config = resolve_image_size(config, first[0].shape[:2])
    variables = backbone_variables_for(config)
    key = jax.random.PRNGKey(config.seed) if key is None else key
    # Counted, so a fit can allocate its per-image results once (collect_embeddings).
    prepared = CountedBatches(
        (prepare_frames(config, chunk) for chunk in itertools.chain([first], batches)), count=len(items)
    )
    model = spec.fit(config, prepared, key=key, backbone_variables=variables, progress=progress, **fit_options)
    return place_state(DetectorState(detector=name, model=model))


def _predict(state, frames, fmt, u16_max, batch_size, want_maps):
    _check_state(state)
    batch_size = batch_size or state.config.batch_size
    scores, maps = [], []
    chunks = canonical_batches(frames, input_format=fmt, batch_size=batch_size, u16_max=u16_max)
    for s, m in predict_frame_stream(state, chunks, want_maps=want_maps, batch_size=batch_size):
        scores.append(s)
        maps.extend(m or ())
    return (np.concatenate(scores) if scores else np.zeros((0,), np.float32)), maps


def score(state: DetectorState, frames, fmt=None, *, u16_max: int | None = None, batch_size: int | None = None):
    """Image anomaly scores ``f32[N]`` (higher = more anomalous), in input order.

    Frames of different sizes may be mixed. A tiled state scores tile by tile.
    """
    scores, _ = _predict(state, frames, fmt, u16_max, batch_size, want_maps=False)
    return jnp.asarray(scores)


def predict(state: DetectorState, frames, fmt=None, *, u16_max: int | None = None, batch_size: int | None = None):
    """Scores ``f32[N]`` and anomaly maps ``f32[N, H, W]`` at the input frame size.

    Maps carry the state's post-processing (if any). All frames must share one
    size (``ValueError`` lists the sizes otherwise; :func:`pyimgano.inference.infer`
    handles mixed sizes). Detectors without pixel maps raise ``ValueError``.
    """
    _check_state(state)
    if "pixel_map" not in get_detector(state.detector).tags:
        raise ValueError(f"{state.detector} produces no anomaly maps (it lacks the pixel_map tag)")
    scores, maps = _predict(state, frames, fmt, u16_max, batch_size, want_maps=True)
    if not maps:
        h, w = state.config.image_size
        return jnp.zeros((0,), jnp.float32), jnp.zeros((0, h, w), jnp.float32)
    sizes = sorted({m.shape for m in maps})
    if len(sizes) > 1:
        raise ValueError(
            f"anomaly maps need frames of one size, got sizes {sizes}; "
            "call once per size or use pyimgano.inference.infer"
        )
    return jnp.asarray(scores), jnp.asarray(np.stack(maps))


def anomaly_maps(state: DetectorState, frames, fmt=None, *, u16_max: int | None = None, batch_size: int | None = None):
    """Anomaly maps ``f32[N, H, W]`` at the input frame resolution (see :func:`predict`)."""
    return predict(state, frames, fmt, u16_max=u16_max, batch_size=batch_size)[1]
