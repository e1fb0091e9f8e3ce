"""Build a batch-independent score ensemble from fitted detector states.

:func:`make_score_ensemble` scores normal frames with every member once (raw
member outputs: no tiling, no post-processing), keeps each member's calibration
statistics in the ensemble state, and returns one :class:`~pyimgano.DetectorState`
(``detector="vision_score_ensemble"``) that scores, saves and loads like any
other. The maths is in :mod:`models_jax.detectors.score_ensemble`::

    a = pyimgano.fit("vision_patchcore", train, "bgr_u8_hwc")
    b = pyimgano.fit("vision_padim", train, "bgr_u8_hwc")
    ens = pyimgano.make_score_ensemble([a, b], held_out_normals, "bgr_u8_hwc", combine="mean")
    ens = pyimgano.calibrate(ens, other_normals, "bgr_u8_hwc")     # the ensemble's own threshold

Use normal frames the members were *not* fitted on (as for thresholds, see
:mod:`pyimgano.calibration`): a memory-bank member scores its own training
images near zero, which would make its standard deviation far too small.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from models_jax.backbones import get_backbone_spec
from models_jax.detectors import score_ensemble
from pyimgano.devices import replicate
from pyimgano.inputs import canonical_batches, input_items
from pyimgano.registry import get_detector
from pyimgano.scoring import predict_frames
from pyimgano.state import DetectorState

__all__ = ["ENSEMBLE_DETECTOR", "DEFAULT_MAP_LEVELS", "MAP_SAMPLE_SIDE", "make_score_ensemble"]

ENSEMBLE_DETECTOR = "vision_score_ensemble"
#: Quantiles of the calibration map pixels kept per member (the ``rank_mean`` reference for maps).
DEFAULT_MAP_LEVELS = 1001
#: Calibration maps are subsampled with a stride so that at most about this many pixels per side
#: feed the map quantiles (mean and standard deviation use every pixel).
MAP_SAMPLE_SIDE = 256


def _preparation(state: DetectorState) -> tuple:
    config = state.config
    try:
        return (get_backbone_spec(config.backbone).normalization, tuple(config.image_size), config.interpolation)
    except AttributeError as exc:
        raise ValueError(
            f"ensemble member {state.detector} has no backbone input preparation ({exc}); members need "
            "backbone, image_size and interpolation config fields"
        ) from None


def _check_members(members: Sequence[DetectorState]) -> None:
    if not members:
        raise ValueError("a score ensemble needs at least one member state")
    for i, member in enumerate(members):
        if not isinstance(member, DetectorState):
            raise TypeError(f"member {i} must be a DetectorState (from pyimgano.fit), got {type(member).__name__}")
        if member.tiling is not None:
            raise ValueError(
                f"member {i} ({member.detector}) is tiled; the ensemble combines whole-frame outputs, "
                "so give the members no tiling (pyimgano.with_tiling(state, None))"
            )
        if "pixel_map" not in get_detector(member.detector).tags:
            raise ValueError(f"member {i} ({member.detector}) produces no anomaly maps (no pixel_map tag)")
    preparations = [_preparation(m) for m in members]
    if len(set(preparations)) > 1:
        listed = ", ".join(f"{m.detector}: {p}" for m, p in zip(members, preparations))
        raise ValueError(
            "ensemble members must share one input preparation (normalisation, image_size, interpolation); "
            f"got {listed}"
        )


def make_score_ensemble(
    members: Sequence[DetectorState],
    normal_frames,
    fmt=None,
    *,
    combine: str = "mean",
    batch_size: int | None = None,
    u16_max: int | None = None,
    map_levels: int = DEFAULT_MAP_LEVELS,
) -> DetectorState:
    """A ``vision_score_ensemble`` state combining ``members`` with ``combine``.

    Args:
      members: fitted states (:func:`pyimgano.fit`), untiled, with anomaly maps, sharing
        one input preparation. Their thresholds and post-processing are not used.
      normal_frames: at least 2 normal frames (paths or arrays of format ``fmt``), ideally
        not used to fit the members; every member scores them once.
      combine: ``"mean"``, ``"max"``, ``"median"`` (of per-member z-scores) or
        ``"rank_mean"`` (of per-member calibration ranks); see
        :mod:`models_jax.detectors.score_ensemble`.
      batch_size: frames per scoring step (default: the first member's).
      map_levels: quantiles of the calibration map pixels kept per member.

    Returns:
      A :class:`DetectorState` without threshold (calibrate it with :func:`pyimgano.calibrate`).

    Raises:
      TypeError: a member is not a DetectorState.
      ValueError: no members, a tiled member or one without maps, members with different
        input preparations, fewer than 2 normal frames, an unknown ``combine``.
    """
    members = list(members)
    _check_members(members)
    if combine not in score_ensemble.COMBINE_MODES:
        raise ValueError(f"unknown combine {combine!r}; accepted: {list(score_ensemble.COMBINE_MODES)}")
    items = input_items(normal_frames, input_format=fmt)
    if len(items) < 2:
        raise ValueError(f"the ensemble's calibration statistics need at least 2 normal frames, got {len(items)}")
    batch_size = int(batch_size or members[0].config.batch_size)
    scores: list[list[np.ndarray]] = [[] for _ in members]
    sums = np.zeros((len(members), 2), np.float64)
    counts = np.zeros(len(members), np.int64)
    samples: list[list[np.ndarray]] = [[] for _ in members]
    for chunk in canonical_batches(items, input_format=fmt, batch_size=batch_size, u16_max=u16_max):
        for k, member in enumerate(members):
            s, maps = predict_frames(member, chunk, want_maps=True, batch_size=batch_size, postprocess=None)
            scores[k].append(np.asarray(s, np.float32))
            for m in maps:
                m = np.asarray(m, np.float64)
                sums[k] += (m.sum(), np.square(m).sum())
                counts[k] += m.size
                step = max(1, math.ceil(max(m.shape) / MAP_SAMPLE_SIDE))
                samples[k].append(m[::step, ::step].reshape(-1).astype(np.float32))
    statistics = [
        score_ensemble.member_statistics(
            np.concatenate(scores[k]), sums[k, 0], sums[k, 1], int(counts[k]), np.concatenate(samples[k]), map_levels
        )
        for k in range(len(members))
    ]
    first = members[0].config
    config = score_ensemble.ScoreEnsembleConfig(
        members=[m.detector for m in members],
        combine=combine,
        backbone=first.backbone,
        image_size=tuple(first.image_size),
        interpolation=first.interpolation,
        batch_size=batch_size,
        member_predicts=[get_detector(m.detector).predict for m in members],
    )
    model = score_ensemble.build_state(config, [m.model for m in members], statistics)
    return DetectorState(detector=ENSEMBLE_DETECTOR, model=replicate(model))
