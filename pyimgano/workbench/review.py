"""The images a reviewer should look at first, as overlay PNGs.

For each category: the normal test images with the highest scores (the nearest to a false
alarm) and the anomalous ones with the lowest scores (the nearest to a miss). Each overlay is
:func:`pyimgano.defects.render_overlay`'s three panels (image | anomaly map | ground-truth
mask), the maps of one category on one colour scale so their heat is comparable, scaled to
:data:`OVERLAY_HEIGHT` pixels high (small images enlarged without smoothing).
"""

from __future__ import annotations

import attrs
import cv2
import numpy as np

from pyimgano.datasets import load_frame, load_mask
from pyimgano.defects import render_overlay
from pyimgano.inference import infer_frames
from pyimgano.state import DetectorState
from pyimgano.workbench.steps import ScoredSplit

__all__ = ["REVIEW_COUNT", "OVERLAY_HEIGHT", "ReviewImage", "review_indices", "render_review"]

REVIEW_COUNT = 3
OVERLAY_HEIGHT = 256


@attrs.frozen(eq=False)
class ReviewImage:
    """One overlay: which image, why it was picked, and the PNG."""

    index: int
    kind: str  # "worst_normal" | "hardest_anomalous"
    path: str
    score: float
    label: int | None
    defect_type: str
    png: bytes


def review_indices(scored: ScoredSplit, count: int = REVIEW_COUNT) -> dict[str, list[int]]:
    """``{"worst_normal": [...], "hardest_anomalous": [...]}``: the ``count`` highest-scored
    normal and lowest-scored anomalous test images (ties by index)."""
    labels, scores = scored.labels, scored.scores
    normal = [i for i in np.argsort(-scores, kind="stable") if labels[i] == 0][:count]
    anomalous = [i for i in np.argsort(scores, kind="stable") if labels[i] == 1][:count]
    return {"worst_normal": [int(i) for i in normal], "hardest_anomalous": [int(i) for i in anomalous]}


def _png(image_rgb: np.ndarray) -> bytes:
    h, w = image_rgb.shape[:2]
    if h != OVERLAY_HEIGHT:  # small images are enlarged pixel by pixel, large ones averaged down
        image_rgb = cv2.resize(image_rgb, (max(1, round(w * OVERLAY_HEIGHT / h)), OVERLAY_HEIGHT),
                               interpolation=cv2.INTER_AREA if h > OVERLAY_HEIGHT else cv2.INTER_NEAREST)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    if not ok:  # pragma: no cover - OpenCV encodes any u8 image
        raise RuntimeError("OpenCV could not encode a review overlay")
    return buf.tobytes()


def render_review(state: DetectorState, scored: ScoredSplit, resize=None, count: int = REVIEW_COUNT) -> list[ReviewImage]:
    """Overlays of :func:`review_indices` (the images are scored again, with maps).

    Raises:
        ValueError / ImageLoadError: unreadable images or masks.
    """
    split = scored.split
    picked = review_indices(scored, count)
    order = [(kind, i) for kind in ("worst_normal", "hardest_anomalous") for i in picked[kind]]
    if not order:
        return []
    frames = [load_frame(split.test_paths[i], resize) for _, i in order]
    results = infer_frames(state, frames, include_maps=True)
    maps = [r.anomaly_map for r in results]
    have_maps = all(m is not None for m in maps)
    if have_maps:
        vmin = float(min(np.min(m) for m in maps))
        vmax = float(max(np.max(m) for m in maps))
    out = []
    for (kind, i), frame, amap in zip(order, frames, maps):
        if have_maps:
            mask_path = split.test_mask_paths[i]
            mask = np.zeros(amap.shape, bool) if mask_path is None else load_mask(mask_path, amap.shape)
            image = render_overlay(frame, amap, mask, vmin=vmin, vmax=vmax)
        else:
            image = frame
        predictions = scored.predictions
        out.append(ReviewImage(
            index=i, kind=kind, path=split.test_paths[i], score=float(scored.scores[i]),
            label=None if predictions is None else int(predictions[i]),
            defect_type=split.test_defect_types[i], png=_png(image),
        ))
    return out
