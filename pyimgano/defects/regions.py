"""Connected components, per-component filters, region records, merging and ordering.

Host-side numpy/OpenCV.  Components are 8-connected
(``cv2.connectedComponentsWithStats``); labels run in raster order of each
component's first pixel, and a region's ``id`` is its label, so ``id`` order is
position order.  Geometry conventions are those of
:mod:`pyimgano.defects.geometry` (inclusive ``[x1, y1, x2, y2]`` boxes, pixel
``(x, y)`` covering ``[x, x+1) x [y, y+1)``).
"""

from __future__ import annotations

from typing import Any, Sequence

import cv2
import numpy as np

__all__ = [
    "f32_to_float",
    "label_components",
    "component_records",
    "filter_components",
    "records_to_regions",
    "merge_nearby_records",
    "sort_regions",
]

# Corners of a unit pixel square, added to boundary pixel coordinates so that the
# convex hull encloses whole pixels (a single pixel then has hull area 1, not 0).
_PIXEL_CORNERS = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=np.int32)


def f32_to_float(value) -> float:
    """A float32 value as the shortest python float that reads back to it.

    Map values are float32; ``float(np.float32(0.9))`` is 0.8999999761..., which
    reads badly in JSON and fails ``>= 0.9`` against a user's filter value.
    """
    return float(str(np.float32(value)))


def label_components(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """8-connected components of ``bool[H, W]``.

    Returns:
      ``(n_labels, labels i32[H, W], stats i32[n, 5], centroids f64[n, 2])``
      as ``cv2.connectedComponentsWithStats``; label 0 is the background.
    """
    return cv2.connectedComponentsWithStats(
        np.ascontiguousarray(mask, dtype=np.uint8), connectivity=8, ltype=cv2.CV_32S
    )


def _hull_points(component: np.ndarray, x0: int, y0: int) -> np.ndarray:
    """``i32[K, 2]`` pixel-corner points whose convex hull is the component's.

    Only boundary pixels can carry hull vertices, so the corners of the
    external contour pixels (``cv2.findContours``) are enough.
    """
    contours, _ = cv2.findContours(component.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    pts = np.concatenate([c.reshape(-1, 2) for c in contours], axis=0) + np.array([x0, y0], np.int32)
    return (pts[:, None, :] + _PIXEL_CORNERS[None, :, :]).reshape(-1, 2)


def _hull_area(points: np.ndarray) -> float:
    hull = cv2.convexHull(points.reshape(-1, 1, 2).astype(np.int32))
    return float(cv2.contourArea(hull))


def component_records(
    labels: np.ndarray,
    stats: np.ndarray,
    centroids: np.ndarray,
    scores: np.ndarray,
    *,
    with_hull: bool = True,
) -> list[dict[str, Any]]:
    """One internal record per component (label 1..n-1), in label order.

    Record keys: ``id``, ``x1, y1, x2, y2`` (inclusive), ``area``, ``cx, cy``,
    ``score_max``, ``score_sum`` (of ``scores f32[H, W]`` over the component),
    ``hull_points`` (``None`` unless ``with_hull``), ``members`` (ids).
    """
    n = stats.shape[0]
    if n <= 1:
        return []
    flat_labels = labels.ravel()
    fg = flat_labels > 0
    lab = flat_labels[fg]
    vals = scores.ravel()[fg].astype(np.float64)
    sums = np.bincount(lab, weights=vals, minlength=n)
    maxes = np.full(n, -np.inf)
    np.maximum.at(maxes, lab, vals)
    out: list[dict[str, Any]] = []
    for i in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[i])
        rec: dict[str, Any] = {
            "id": i,
            "x1": x,
            "y1": y,
            "x2": x + w - 1,
            "y2": y + h - 1,
            "area": area,
            "cx": float(centroids[i, 0]),
            "cy": float(centroids[i, 1]),
            "score_max": f32_to_float(maxes[i]),
            "score_sum": float(sums[i]),
            "hull_points": None,
            "members": [i],
        }
        if with_hull:
            crop = labels[y : y + h, x : x + w] == i
            rec["hull_points"] = _hull_points(crop, x, y)
        out.append(rec)
    return out


def _derived(rec: dict[str, Any]) -> dict[str, float]:
    w = rec["x2"] - rec["x1"] + 1
    h = rec["y2"] - rec["y1"] + 1
    bbox_area = w * h
    out = {
        "bbox_area": bbox_area,
        "fill_ratio": rec["area"] / bbox_area,
        "aspect_ratio": max(w, h) / min(w, h),
        # Rounded to float32 like the map it averages, so a uniform 0.9 region passes ">= 0.9".
        "score_mean": f32_to_float(rec["score_sum"] / rec["area"]),
    }
    if rec["hull_points"] is not None:
        # Hull of whole pixels contains every pixel, so solidity <= 1; min() guards rounding.
        out["solidity"] = min(1.0, rec["area"] / _hull_area(rec["hull_points"]))
    return out


def filter_components(
    mask: np.ndarray,
    scores: np.ndarray,
    *,
    min_area: int = 0,
    min_score_max: float | None = None,
    min_score_mean: float | None = None,
    min_fill_ratio: float | None = None,
    max_aspect_ratio: float | None = None,
    min_solidity: float | None = None,
) -> np.ndarray:
    """Drop 8-connected components of ``bool[H, W]`` that fail any filter.

    A component is kept when ``area >= min_area``, ``score_max >=
    min_score_max``, ``score_mean >= min_score_mean``, ``area / bbox_area >=
    min_fill_ratio``, ``max(w, h) / min(w, h) <= max_aspect_ratio`` and
    ``area / convex_hull_area >= min_solidity`` (None skips a filter).  Scores
    are ``scores f32[H, W]`` over the component's pixels.

    Returns:
      ``bool[H, W]``, a subset of ``mask``.
    """
    active = (
        min_area > 0
        or min_score_max is not None
        or min_score_mean is not None
        or min_fill_ratio is not None
        or max_aspect_ratio is not None
        or min_solidity is not None
    )
    if not active or not mask.any():
        return mask
    n, labels, stats, centroids = label_components(mask)
    recs = component_records(labels, stats, centroids, scores, with_hull=min_solidity is not None)
    keep = np.zeros(n, dtype=bool)
    for rec in recs:
        d = _derived(rec)
        ok = rec["area"] >= min_area
        ok = ok and (min_score_max is None or rec["score_max"] >= min_score_max)
        ok = ok and (min_score_mean is None or d["score_mean"] >= min_score_mean)
        ok = ok and (min_fill_ratio is None or d["fill_ratio"] >= min_fill_ratio)
        ok = ok and (max_aspect_ratio is None or d["aspect_ratio"] <= max_aspect_ratio)
        ok = ok and (min_solidity is None or d["solidity"] >= min_solidity)
        keep[rec["id"]] = ok
    return keep[labels]


def merge_nearby_records(
    records: Sequence[dict[str, Any]], labels: np.ndarray, *, max_gap_px: int
) -> list[dict[str, Any]]:
    """Merge records whose pixels are at most ``max_gap_px`` empty pixels apart.

    Two components are neighbours when the Chebyshev distance between some
    pair of their pixels is ``<= max_gap_px + 1`` (found by dilating each
    component with a ``(2g+3)``-square kernel and looking up the labels it
    reaches; ``max_gap_px=1`` merges blobs with one empty pixel between them); groups are the transitive closure (union-find).  A merged record
    takes the smallest member id, the union bbox, summed area and score sum,
    the max score_max, the area-weighted centroid, the hull of all members,
    and ``members`` = sorted member ids.  Order follows the smallest member id.
    """
    if max_gap_px <= 0 or len(records) <= 1:
        return list(records)
    h, w = labels.shape
    by_id = {r["id"]: r for r in records}
    parent = {i: i for i in by_id}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    # g empty pixels between two pixels = Chebyshev distance g + 1, the reach of a
    # (2(g+1)+1)-square dilation.
    reach_px = int(max_gap_px) + 1
    kernel = np.ones((2 * reach_px + 1, 2 * reach_px + 1), np.uint8)
    for r in records:
        x0, y0 = max(r["x1"] - reach_px, 0), max(r["y1"] - reach_px, 0)
        x1, y1 = min(r["x2"] + reach_px + 1, w), min(r["y2"] + reach_px + 1, h)
        crop = labels[y0:y1, x0:x1]
        reach = cv2.dilate((crop == r["id"]).astype(np.uint8), kernel) > 0
        for other in np.unique(crop[reach]):
            other = int(other)
            if other > 0 and other != r["id"] and other in by_id:
                a, b = find(r["id"]), find(other)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    groups: dict[int, list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault(find(r["id"]), []).append(r)
    out = []
    for root in sorted(groups):
        members = groups[root]
        if len(members) == 1:
            out.append(members[0])
            continue
        area = sum(m["area"] for m in members)
        hulls = [m["hull_points"] for m in members]
        out.append(
            {
                "id": root,
                "x1": min(m["x1"] for m in members),
                "y1": min(m["y1"] for m in members),
                "x2": max(m["x2"] for m in members),
                "y2": max(m["y2"] for m in members),
                "area": area,
                "cx": sum(m["cx"] * m["area"] for m in members) / area,
                "cy": sum(m["cy"] * m["area"] for m in members) / area,
                "score_max": max(m["score_max"] for m in members),
                "score_sum": sum(m["score_sum"] for m in members),
                "hull_points": None if any(p is None for p in hulls) else np.concatenate(hulls, axis=0),
                "members": sorted(i for m in members for i in m["members"]),
            }
        )
    return out


def records_to_regions(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Public region dicts (SPEC section 7 fields, plain python types) from internal records."""
    regions = []
    for rec in records:
        d = _derived(rec)
        region: dict[str, Any] = {
            "id": int(rec["id"]),
            "bbox_xyxy": [int(rec["x1"]), int(rec["y1"]), int(rec["x2"]), int(rec["y2"])],
            "area": int(rec["area"]),
            "centroid_xy": [float(rec["cx"]), float(rec["cy"])],
            "bbox_area": int(d["bbox_area"]),
            "fill_ratio": float(d["fill_ratio"]),
            "aspect_ratio": float(d["aspect_ratio"]),
            "solidity": float(d["solidity"]),
            "score_max": float(rec["score_max"]),
            "score_mean": float(d["score_mean"]),
        }
        if len(rec["members"]) > 1:
            region["merged_from_ids"] = [int(i) for i in rec["members"]]
        regions.append(region)
    return regions


def sort_regions(regions: Sequence[dict[str, Any]], sort_by: str, max_regions: int | None = None) -> list[dict[str, Any]]:
    """Regions by ``sort_by`` (``score_max | score_mean | area``) descending, ties by ``id``
    (raster position of the first pixel), then the first ``max_regions`` (None keeps all).

    Raises:
      ValueError: unknown ``sort_by``.
    """
    if sort_by not in ("score_max", "score_mean", "area"):
        raise ValueError(f"max_regions_sort_by={sort_by!r} is not accepted; accepted: ['score_max', 'score_mean', 'area']")
    ordered = sorted(regions, key=lambda r: (-r[sort_by], r["id"]))
    return ordered if max_regions is None else ordered[: int(max_regions)]
