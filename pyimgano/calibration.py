"""Thresholds from normal images that did not build the model.

- :func:`calibrate`: image and (optionally) pixel thresholds of a state, from one
  pass over normal frames, with provenance. Returns a new state.
- :func:`fit_calibrated`: fit on one part of a folder of normal images and
  calibrate on the rest (a deterministic, seeded hold-out; :func:`split_holdout`).

Why a hold-out, and not the training images themselves: a memory-bank detector
scores its own training images near zero distance (each patch finds itself or
its coreset neighbour), and a Gaussian model fits its own samples best, so a
threshold taken from them sits below the scores of unseen good parts. On MVTec
bottle, calibrating PatchCore on its own 209 training images put the threshold
at 98.1 while unseen good bottles score 91.7-116.9: 13 of 20 good parts were
labelled defective. Scores of held-out images are draws from the same
distribution as unseen good parts. The alternative (scoring each training image
against a model built without it, e.g. PatchCore's bank minus that image's
patches) needs a per-detector leave-one-out implementation and a fit per image
for Gaussian models; a hold-out works the same way for every detector, present
and future, and its provenance is simple to audit. The cost is that the model
sees ``1 - holdout`` of the images (default 80 %).

Quantiles use linear interpolation (numpy's default). A quantile ``q`` can only
be resolved from at least ``1 / (1 - q)`` samples (200 for 0.995); with fewer
the threshold lies between the largest normal scores, and a warning says so.
"""

from __future__ import annotations

import hashlib
import logging
import math
from typing import Any, Callable, Mapping

import attrs
import numpy as np

from pyimgano import api
from pyimgano.defects import PIXEL_CALIBRATION_METHODS, calibrate_pixel_threshold
from pyimgano.inputs import canonical_batches, input_items, is_path
from pyimgano.scoring import predict_frames, supports_maps
from pyimgano.state import DetectorState, with_postprocess, with_tiling

__all__ = [
    "DEFAULT_QUANTILE",
    "DEFAULT_PIXEL_QUANTILE",
    "DEFAULT_HOLDOUT",
    "HoldoutSplit",
    "split_holdout",
    "quantile_threshold",
    "calibrate",
    "fit_calibrated",
]

log = logging.getLogger(__name__)

DEFAULT_QUANTILE = 0.995
DEFAULT_PIXEL_QUANTILE = 0.999
DEFAULT_HOLDOUT = 0.2

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@attrs.frozen
class HoldoutSplit:
    """A seeded split of ``n`` normal images into a fit part and a calibration part (sorted indices)."""

    n: int
    fraction: float
    seed: int
    fit_indices: tuple[int, ...]
    calibration_indices: tuple[int, ...]

    def fingerprint(self, names=None) -> str:
        """SHA-256 (hex, first 16) of the split: which items fit and which calibrate, by index
        and, when ``names`` (one per item) are given, by name."""
        digest = hashlib.sha256(f"{self.n}:{self.fraction}:{self.seed}".encode())
        held = set(self.calibration_indices)
        for i in range(self.n):
            name = "" if names is None else str(names[i])
            digest.update(f"\0{'C' if i in held else 'F'}{i}:{name}".encode("utf-8", "surrogateescape"))
        return digest.hexdigest()[:16]


def split_holdout(n: int, fraction: float = DEFAULT_HOLDOUT, seed: int = 0) -> HoldoutSplit:
    """Hold out ``round(fraction * n)`` (at least 1) of ``n`` items for calibration, seeded.

    The choice is ``numpy.random.default_rng(seed).permutation(n)[:count]``, so it
    depends only on ``n``, ``fraction`` and ``seed`` (not on the platform or the order
    of calls). At least one item stays for fitting.

    Raises:
      ValueError: ``n < 2`` (nothing to hold out) or ``fraction`` outside (0, 1).
    """
    n = int(n)
    fraction = float(fraction)
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"holdout fraction must be in (0, 1), got {fraction!r}")
    if n < 2:
        raise ValueError(
            f"holding out calibration images needs at least 2 normal images, got {n}; "
            "fit on these and calibrate on other normal images (pyimgano.calibrate)"
        )
    count = min(n - 1, max(1, int(round(fraction * n))))
    order = np.random.default_rng(int(seed)).permutation(n)
    return HoldoutSplit(
        n=n,
        fraction=fraction,
        seed=int(seed),
        fit_indices=tuple(sorted(int(i) for i in order[count:])),
        calibration_indices=tuple(sorted(int(i) for i in order[:count])),
    )


def quantile_threshold(scores, q: float, *, source: str = "normal_images") -> tuple[float, dict]:
    """The ``q`` quantile of ``scores`` with linear interpolation, and its provenance.

    Linear interpolation (``numpy.quantile(method="linear")``, type 7 of Hyndman &
    Fan): for sorted scores ``s[0..n-1]`` the threshold is ``s[i] + f*(s[i+1]-s[i])``
    with ``i + f = q*(n-1)``. Example: ``[0, 1, 2, 3]`` at ``q=0.5`` -> ``1.5``.

    Args:
      scores: image scores, any shape (flattened), at least one, all finite.
      q: quantile in ``[0, 1]`` (e.g. 0.995; ``1 - contamination`` is the usual heuristic).
      source: where the scores came from, recorded in the provenance.

    Returns:
      ``(threshold, {"method": "quantile", "quantile": q, "source": source, "count": n})``.

    Raises:
      ValueError: ``q`` outside ``[0, 1]`` or not a number; no scores; non-finite scores.
    """
    try:
        q = float(q)
    except (TypeError, ValueError):
        raise ValueError(f"quantile must be a number in [0, 1], got {q!r}") from None
    if not (math.isfinite(q) and 0.0 <= q <= 1.0):
        raise ValueError(f"quantile must be in [0, 1], got {q!r}")
    values = np.asarray(scores, dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise ValueError("cannot calibrate a threshold from zero scores; pass at least one normal image")
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(
            f"scores must be finite to calibrate a threshold; got {int(bad.sum())} non-finite "
            f"value(s), first at index {int(np.flatnonzero(bad)[0])}"
        )
    threshold = float(np.quantile(values, q, method="linear"))
    provenance = {"method": "quantile", "quantile": q, "source": str(source), "count": int(values.size)}
    return threshold, provenance


def _warn_if_small(count: int, q: float, what: str) -> None:
    needed = math.ceil(1.0 / (1.0 - q)) if q < 1.0 else math.inf
    if count < needed:
        log.warning(
            "%s: %d normal sample(s) cannot resolve the %s quantile (needs at least %s); "
            "the threshold lies between the largest normal values",
            what,
            count,
            q,
            needed,
        )


def calibrate(
    state: DetectorState,
    normal_frames,
    fmt=None,
    *,
    quantile: float | None = DEFAULT_QUANTILE,
    pixel_quantile: float | None = None,
    pixel_method: str = PIXEL_CALIBRATION_METHODS[0],
    roi_xyxy_norm=None,
    source: str = "normal_images",
    provenance: Mapping[str, Any] | None = None,
    batch_size: int | None = None,
    u16_max: int | None = None,
    progress: Progress | None = None,
) -> DetectorState:
    """A new state with the image threshold (and, with ``pixel_quantile``, the pixel threshold)
    calibrated on normal frames, in one pass. ``state`` is unchanged.

    Scores and maps are those of deployment: the state's tiling and post-processing
    apply. A ``"normal_stats"`` post-processing without statistics gets them from
    these maps first (all maps are then held in memory once).

    Args:
      state: a fitted state. Never pass the images that built it (see the module docstring).
      normal_frames: paths, or arrays of format ``fmt`` (as :func:`pyimgano.score`).
      quantile: image threshold = this quantile of the normal scores; None keeps the state's
        image threshold (to calibrate the pixel threshold only).
      pixel_quantile: when given, also calibrate the pixel threshold with ``pixel_method``
        (``normal_map_max_quantile`` or ``normal_pixel_quantile``, see
        :mod:`pyimgano.defects.threshold`), within ``roi_xyxy_norm`` if given.
      source: recorded in the provenance (``normal_images``, ``train_dir``, ``holdout``, ...).
      provenance: extra items recorded in both provenances (e.g. the hold-out split).

    Provenance: image ``{"method": "quantile", "quantile", "source", "count", ...}``; pixel
    ``{"method": pixel_method, "q", "source", "n_maps", "n_pixels", ...}``.

    Raises:
      TypeError: not a state.
      ValueError: no frames, a quantile outside [0, 1], non-finite scores, a pixel
        calibration for a detector without maps, bad frames.
    """
    if not isinstance(state, DetectorState):
        raise TypeError(f"calibrate expects a DetectorState, got {type(state).__name__}")
    if quantile is None and pixel_quantile is None:
        raise ValueError("nothing to calibrate: give quantile and/or pixel_quantile")
    if pixel_quantile is not None and not supports_maps(state):
        raise ValueError(f"{state.detector} produces no anomaly maps, so no pixel threshold can be calibrated")
    items = input_items(normal_frames, input_format=fmt)
    if len(items) == 0:
        raise ValueError("calibration needs at least one normal image, got none")
    batch_size = int(batch_size or state.config.batch_size)
    extra = dict(provenance or {})
    want_maps = pixel_quantile is not None
    post = state.postprocess
    keep_raw = want_maps and post is not None and post.needs_normal_stats
    scores: list[np.ndarray] = []

    def scored_maps():
        # One pass: scores are collected while the maps stream to the pixel calibration,
        # which keeps one number per map (or the ROI pixels for the pooled method).
        done = 0
        for chunk in canonical_batches(items, input_format=fmt, batch_size=batch_size, u16_max=u16_max):
            s, m = predict_frames(
                state, chunk, want_maps=want_maps, batch_size=batch_size, postprocess=None if keep_raw else post
            )
            scores.append(s)
            done += len(chunk)
            if progress is not None:
                progress("calibrate", done, len(items))
            yield from m or ()

    new = state
    if want_maps:
        maps = scored_maps()
        if keep_raw:  # "normal_stats" needs every raw map for its percentiles first
            raw = list(maps)
            post = post.with_normal_stats(raw)
            maps = (post(m) for m in raw)
            new = attrs.evolve(new, postprocess=post)
        value, pixel_prov = calibrate_pixel_threshold(
            maps, method=pixel_method, q=pixel_quantile, roi_xyxy_norm=roi_xyxy_norm, source=source
        )
        if pixel_method == "normal_map_max_quantile":
            _warn_if_small(pixel_prov["n_maps"], float(pixel_quantile), "pixel threshold")
        new = attrs.evolve(new, pixel_threshold=value, pixel_threshold_provenance={**pixel_prov, **extra})
    else:
        for _ in scored_maps():
            pass
    all_scores = np.concatenate(scores)
    if quantile is not None:
        threshold, image_prov = quantile_threshold(all_scores, quantile, source=source)
        _warn_if_small(len(all_scores), float(quantile), "image threshold")
        new = attrs.evolve(new, threshold=threshold, threshold_provenance={**image_prov, **extra})
    log.info(
        "calibrated %s on %d normal images (%s):%s%s",
        state.detector,
        len(all_scores),
        source,
        "" if quantile is None else f" image threshold {new.threshold:.6g} (quantile {quantile})",
        "" if not want_maps else f" pixel threshold {new.pixel_threshold:.6g} ({pixel_method} {pixel_quantile})",
    )
    return new


def _take(items, indices):
    if isinstance(items, np.ndarray):
        return items[np.asarray(indices, dtype=np.int64)]
    return [items[i] for i in indices]


def fit_calibrated(
    name_or_config,
    frames,
    fmt=None,
    *,
    holdout: float = DEFAULT_HOLDOUT,
    holdout_seed: int | None = None,
    quantile: float = DEFAULT_QUANTILE,
    pixel_quantile: float | None = None,
    pixel_method: str = PIXEL_CALIBRATION_METHODS[0],
    roi_xyxy_norm=None,
    tiling=None,
    postprocess=None,
    key=None,
    u16_max: int | None = None,
    progress: Progress | None = None,
    checkpoint_dir=None,
    **overrides,
) -> DetectorState:
    """Fit on a seeded part of ``frames`` and calibrate on the held-out rest: a deployable state.

    Args:
      name_or_config, frames, fmt, key, u16_max, checkpoint_dir, **overrides: as :func:`pyimgano.fit`
        (config fields such as ``batch_size`` go to the detector config, which calibration uses too).
      holdout: fraction of the images held out for calibration (default 0.2, at least one image).
      holdout_seed: seed of the split (default: the detector config's ``seed``).
      quantile, pixel_quantile, pixel_method, roi_xyxy_norm: as :func:`calibrate`.
      tiling, postprocess: set on the state before calibrating (a ``TileConfig`` /
        ``AnomalyMapPostprocess`` or their dicts), so the thresholds are those of deployment.
      progress: optional ``progress(stage, done, total)`` with stages ``fit`` and ``calibrate``.

    Provenance (image and pixel) records ``source: "holdout"``, the count, and
    ``holdout_fraction``, ``holdout_seed``, ``fit_count`` and ``split_sha256``.

    Raises:
      ValueError: fewer than 2 images, a bad ``holdout``, or any error of fit / calibrate.
    """
    name, config = api.make_config(name_or_config, **overrides)
    items = input_items(frames, input_format=fmt)
    seed = int(config.seed if holdout_seed is None else holdout_seed)
    split = split_holdout(len(items), holdout, seed)
    names = [str(item) for item in items] if len(items) and is_path(items[0]) else None
    fit_items = _take(items, split.fit_indices)
    log.info(
        "fitting %s on %d of %d normal images (%d held out for calibration, seed %d)",
        name,
        len(fit_items),
        split.n,
        len(split.calibration_indices),
        seed,
    )
    fit_progress = None if progress is None else (lambda n: progress("fit", n, len(fit_items)))
    state = api.fit(
        config, fit_items, fmt, key=key, u16_max=u16_max, progress=fit_progress, checkpoint_dir=checkpoint_dir
    )
    state = with_postprocess(with_tiling(state, tiling), postprocess)
    return calibrate(
        state,
        _take(items, split.calibration_indices),
        fmt,
        quantile=quantile,
        pixel_quantile=pixel_quantile,
        pixel_method=pixel_method,
        roi_xyxy_norm=roi_xyxy_norm,
        source="holdout",
        provenance={
            "holdout_fraction": split.fraction,
            "holdout_seed": split.seed,
            "fit_count": len(split.fit_indices),
            "split_sha256": split.fingerprint(names),
        },
        u16_max=u16_max,
        progress=progress,
    )
