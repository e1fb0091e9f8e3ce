"""The steps recipes are composed of: load a category, fit and calibrate, score the test split.

Each step is a plain function of values (a config, a split, a state) to a value, with IO only
where its name says so (images are read, maps written when a folder is given)::

    split = load_category(config, category)                  # load_split + limits
    fitted = fit_and_calibrate(config, split)                # fit on the fit part, calibrate on the hold-out
    scored = score_split(fitted.state, split, config)        # predict (+ the state's tiling / post-processing)
    metrics = evaluate(scored)                               # pyimgano.workbench.evaluation

The calibration hold-out is part of the split: :func:`pyimgano.calibration.split_holdout`
with ``dataset.holdout_fraction`` and the config ``seed``, recorded in the thresholds'
provenance with a fingerprint (``split_sha256``) over the training images' names relative to
the dataset root, so the same data gives the same fingerprint on any machine.
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import attrs
import numpy as np

from pyimgano import api
from pyimgano.calibration import HoldoutSplit, calibrate, split_holdout
from pyimgano.datasets import DatasetSplit, limit_split, load_frame, load_mask, load_split, resize_to
from pyimgano.defects import decide_pixel_threshold
from pyimgano.fileio import atomic_write_npy
from pyimgano.inference import infer_frames
from pyimgano.registry import get_detector
from pyimgano.state import DetectorState, with_pixel_threshold, with_postprocess, with_tiling
from pyimgano.workbench.config import WorkbenchConfig
from pyimgano.workbench.detector import image_quantile, make_detector_config

__all__ = [
    "PIXEL_EVAL_MAX_SIDE",
    "SCORE_BATCH_SIZE",
    "FittedCategory",
    "ScoredSplit",
    "load_category",
    "relative_names",
    "training_inputs",
    "fit_and_calibrate",
    "score_split",
    "eval_size",
    "map_names",
    "CategoryResult",
]

log = logging.getLogger("pyimgano.workbench")

#: Pixel metrics are computed on maps and masks whose longer side is at most this (maps by
#: area averaging, masks by nearest neighbour), as the MVTec AD evaluations at 256 px do; it
#: keeps the pooled pixel sort of a 900 px category at 5.4 M instead of 67 M values.
PIXEL_EVAL_MAX_SIDE = 256
#: Test images decoded and scored per step (pyimgano-infer's default, so scores agree bit for bit).
SCORE_BATCH_SIZE = 16

Progress = Callable[[str, int, int], None]


def load_category(config: WorkbenchConfig, category: str | None) -> DatasetSplit:
    """The split of one category with ``dataset.limit_train`` / ``limit_test`` applied.

    Raises:
        DatasetError / ValueError: as :func:`pyimgano.datasets.load_split`.
    """
    d = config.dataset
    split = load_split(d.name, d.root, category)
    if d.limit_train is not None or d.limit_test is not None:
        split = limit_split(split, max_train=d.limit_train, max_test=d.limit_test)
    return split


def relative_names(paths: Sequence[str], root: str | os.PathLike) -> list[str]:
    """Paths relative to ``root`` (``/``-separated) where they lie under it, else as given."""
    base = Path(root)
    base = base.parent if base.is_file() else base
    out = []
    for p in paths:
        try:
            out.append(Path(p).relative_to(base).as_posix())
        except ValueError:
            out.append(Path(p).as_posix())
    return out


def training_inputs(config: WorkbenchConfig, paths: Sequence[str]):
    """``(frames, fmt)`` for the library: the paths themselves (decoded batch by batch), or, with
    ``dataset.resize`` or ``input_mode: numpy``, decoded (resized) RGB frames."""
    d = config.dataset
    if d.resize is None and d.input_mode == "paths":
        return list(paths), None
    return [load_frame(p, d.resize) for p in paths], "rgb_u8_hwc"


@attrs.frozen(eq=False)
class FittedCategory:
    """A fitted, calibrated state and how it was made."""

    state: DetectorState
    holdout: HoldoutSplit
    split_sha256: str
    fit_seconds: float
    calibrate_seconds: float


def _pick(items, indices):
    return [items[i] for i in indices]


def fit_and_calibrate(
    config: WorkbenchConfig,
    split: DatasetSplit,
    *,
    quantile: float | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    progress: Progress | None = None,
) -> FittedCategory:
    """Fit on the fit part of ``split.train_paths`` and calibrate on the held-out rest.

    The state gets ``adaptation.tiling`` and ``adaptation.postprocess`` before calibrating, so
    the thresholds are those of deployment. With ``defects.enabled`` the pixel threshold is
    decided by :func:`pyimgano.defects.decide_pixel_threshold` (calibrated on the hold-out
    unless fixed). ``checkpoint_dir`` is handed to trained detectors (resumable training).

    Args:
        quantile: image-threshold quantile (default: ``1 - model.contamination``, else 0.995).

    Raises:
        ConfigError: bad model settings; ValueError: too few training images, bad frames.
    """
    name, detector_config = make_detector_config(config)
    train = list(split.train_paths)
    holdout = split_holdout(len(train), config.dataset.holdout_fraction, config.seed)
    names = relative_names(train, config.dataset.root)
    fingerprint = holdout.fingerprint(names)
    fit_items, fmt = training_inputs(config, _pick(train, holdout.fit_indices))
    log.info("%s: fitting %s on %d of %d normal images (%d held out for calibration, seed %d)",
             split.category or "default", name, len(fit_items), len(train), len(holdout.calibration_indices),
             config.seed)
    t0 = time.perf_counter()
    fit_progress = None if progress is None else (lambda n: progress("fit", n, len(fit_items)))
    extra: dict[str, Any] = {}
    if checkpoint_dir is not None and "requires_training" in get_detector(name).tags:
        extra["checkpoint_dir"] = checkpoint_dir
    state = api.fit(detector_config, fit_items, fmt, progress=fit_progress, **extra)
    state = with_postprocess(with_tiling(state, config.adaptation.tiling), config.adaptation.postprocess)
    fit_seconds = time.perf_counter() - t0

    decision = None
    if config.defects.enabled:
        decision = decide_pixel_threshold(config.defects.config, can_calibrate=True)
    pixel = {}
    if decision is not None and decision.calibrates:
        pixel = dict(pixel_quantile=decision.q, pixel_method=decision.calibrate_method,
                     roi_xyxy_norm=config.defects.config.roi_xyxy_norm)
    t1 = time.perf_counter()
    calib_items, fmt = training_inputs(config, _pick(train, holdout.calibration_indices))
    state = calibrate(
        state, calib_items, fmt, quantile=image_quantile(config) if quantile is None else quantile,
        source="holdout", progress=progress, **pixel,
        provenance={"holdout_fraction": holdout.fraction, "holdout_seed": holdout.seed,
                    "fit_count": len(holdout.fit_indices), "split_sha256": fingerprint},
    )
    if decision is not None and not decision.calibrates:
        state = with_pixel_threshold(state, decision.value, decision.provenance)
    return FittedCategory(state=state, holdout=holdout, split_sha256=fingerprint, fit_seconds=fit_seconds,
                          calibrate_seconds=time.perf_counter() - t1)


def eval_size(height: int, width: int, max_side: int = PIXEL_EVAL_MAX_SIDE) -> tuple[int, int]:
    """``(h, w)`` scaled down (never up) so the longer side is at most ``max_side``."""
    scale = min(1.0, max_side / max(height, width))
    return max(1, int(round(height * scale))), max(1, int(round(width * scale)))


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe(part: str) -> str:
    return _UNSAFE.sub("_", str(part)).lstrip(".").strip("_")[:80] or "x"


def map_names(split: DatasetSplit) -> list[str]:
    """``<defect type>/<file stem>`` per test image, file-name safe and unique (an index is
    appended to names that would collide)."""
    names = [f"{_safe(t)}/{_safe(Path(p).stem)}" for t, p in zip(split.test_defect_types, split.test_paths)]
    seen: dict[str, int] = {}
    for n in names:
        seen[n.lower()] = seen.get(n.lower(), 0) + 1
    return [f"{n}__{i:06d}" if seen[n.lower()] > 1 else n for i, n in enumerate(names)]


@attrs.frozen(eq=False)
class ScoredSplit:
    """Test scores (and, when computed, evaluation-size maps and masks) of one split.

    ``eval_maps`` / ``eval_masks``: ``f32[h, w]`` / ``bool[h, w]`` per image at
    :func:`eval_size`, or None when pixel metrics are not computed (``pixel_note`` says why).
    ``map_files``: the saved full-size ``.npy`` per image (None when not saved).
    """

    split: DatasetSplit
    scores: np.ndarray  # f64[N]
    threshold: float | None
    eval_maps: list | None
    eval_masks: list | None
    map_files: list
    map_shapes: list
    pixel_note: str | None
    seconds: float

    @property
    def labels(self) -> np.ndarray:
        return np.asarray(self.split.test_labels, np.int64)

    @property
    def predictions(self) -> np.ndarray | None:
        """``1`` where ``score > threshold`` (the inference label rule), None without a threshold."""
        return None if self.threshold is None else (self.scores > self.threshold).astype(np.int64)


def _pixel_plan(state: DetectorState, split: DatasetSplit) -> tuple[bool, str | None]:
    if "pixel_map" not in get_detector(state.detector).tags:
        return False, f"{state.detector} produces no anomaly maps"
    if split.num_anomalous == 0:
        return False, "no anomalous test image"
    missing = sum(1 for m, y in zip(split.test_mask_paths, split.test_labels) if y == 1 and m is None)
    if missing:
        return False, f"{missing} of {split.num_anomalous} anomalous test images have no ground-truth mask"
    return True, None


def score_split(
    state: DetectorState,
    split: DatasetSplit,
    config: WorkbenchConfig,
    *,
    maps_dir: str | os.PathLike | None = None,
    progress: Progress | None = None,
) -> ScoredSplit:
    """Score every test image of ``split`` with ``state`` (its tiling and post-processing apply).

    Maps are computed when pixel metrics are possible (a detector with maps, masks for every
    anomalous image) or ``maps_dir`` is given; then each full-size map is written to
    ``maps_dir/<defect type>/<stem>.npy`` and kept only at :func:`eval_size`.

    Raises:
        ValueError / ImageLoadError: unreadable images or masks.
    """
    pixel, note = _pixel_plan(state, split)
    want_maps = pixel or (maps_dir is not None and "pixel_map" in get_detector(state.detector).tags)
    names = map_names(split) if maps_dir is not None else None
    scores: list[float] = []
    eval_maps: list | None = [] if pixel else None
    eval_masks: list | None = [] if pixel else None
    map_files: list = []
    map_shapes: list = []
    paths = list(split.test_paths)
    t0 = time.perf_counter()
    for start in range(0, len(paths), SCORE_BATCH_SIZE):
        chunk = paths[start : start + SCORE_BATCH_SIZE]
        frames = [load_frame(p, config.dataset.resize) for p in chunk]
        results = infer_frames(state, frames, include_maps=want_maps, batch_size=SCORE_BATCH_SIZE)
        for offset, result in enumerate(results):
            i = start + offset
            scores.append(result.score)
            amap = result.anomaly_map
            map_shapes.append(None if amap is None else [int(d) for d in amap.shape])
            saved = None
            if amap is not None and names is not None:
                saved = atomic_write_npy(Path(maps_dir) / f"{names[i]}.npy", amap)
            map_files.append(saved)
            if pixel:
                size = eval_size(*amap.shape)
                eval_maps.append(resize_to(np.asarray(amap, np.float32), size))
                mask_path = split.test_mask_paths[i]
                eval_masks.append(np.zeros(size, bool) if mask_path is None else load_mask(mask_path, size))
        if progress is not None:
            progress("test", min(len(paths), start + len(chunk)), len(paths))
    return ScoredSplit(
        split=split,
        scores=np.asarray(scores, np.float64),
        threshold=state.threshold,
        eval_maps=eval_maps,
        eval_masks=eval_masks,
        map_files=map_files,
        map_shapes=map_shapes,
        pixel_note=note,
        seconds=time.perf_counter() - t0,
    )


@attrs.frozen(eq=False)
class CategoryResult:
    """What a recipe returns for one category; the runner writes its reports and pictures.

    Attributes:
        category: the category name (``""`` for a dataset root without categories).
        state: the calibrated, deployable state.
        scored: the scored test split.
        metrics: :func:`pyimgano.workbench.evaluation.evaluate` of ``scored`` (extra keys allowed).
        fitted: how the state was made (hold-out, seconds), when the recipe fitted one.
        checkpoint: the saved state file, when saved.
        extra: anything else a recipe wants in the category report (plain JSON values).
    """

    category: str
    state: DetectorState
    scored: ScoredSplit
    metrics: dict
    fitted: FittedCategory | None = None
    checkpoint: str | None = None
    extra: dict = attrs.Factory(dict)
