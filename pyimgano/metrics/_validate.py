"""Input checks shared by the metric functions (host-side numpy, no JAX)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__: list[str] = []


def _describe_values(values: np.ndarray, limit: int = 5) -> str:
    distinct = np.unique(values)
    return f"{distinct[:limit].tolist()}{' ...' if distinct.size > limit else ''}"


def as_binary(values: Any, name: str, *, ndim: int | None = None) -> np.ndarray:
    """Return ``values`` as a bool array; only bool or numbers equal to 0/1 are accepted.

    Raises:
        ValueError: non-numeric dtype, wrong ``ndim``, empty, or a value other than 0/1.
    """
    array = np.asarray(values)
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    if array.dtype == np.bool_:
        return array
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"{name} must be bool or 0/1 numbers, got dtype {array.dtype}")
    is_binary = (array == 0) | (array == 1)
    if not is_binary.all():
        # 0/255 masks are the usual mistake: say how to convert them.
        raise ValueError(
            f"{name} must contain only 0/1 (or be bool), found values {_describe_values(array[~is_binary])}; "
            f"convert with `{name} > 0` if it is a 0/255 image"
        )
    return array != 0


def as_scores(values: Any, name: str, *, ndim: int | None = None) -> np.ndarray:
    """Return ``values`` as a real-valued array with no NaN (infinities are ordered, so allowed).

    Raises:
        ValueError: non-real dtype, wrong ``ndim``, empty, or NaN present.
    """
    array = np.asarray(values)
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    if array.dtype == np.bool_ or np.issubdtype(array.dtype, np.integer):
        array = array.astype(np.float64)
    elif not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"{name} must be real numbers, got dtype {array.dtype}")
    nan_count = int(np.isnan(array).sum())
    if nan_count:
        raise ValueError(f"{name} contains {nan_count} NaN value(s)")
    return array


def labels_and_scores(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate a 1-D label vector and a 1-D score vector of the same length."""
    y = as_binary(labels, "labels", ndim=1)
    s = as_scores(scores, "scores", ndim=1)
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length: {y.shape[0]} vs {s.shape[0]}")
    return y, s


def require_both_classes(y: np.ndarray, name: str) -> None:
    positives = int(y.sum())
    if positives == 0 or positives == y.size:
        present = "only anomalous (1)" if positives else "only normal (0)"
        raise ValueError(f"{name} needs both normal (0) and anomalous (1) samples, got {present} ({y.size} samples)")


def mask_map_pairs(masks: Any, maps: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pair ground-truth masks with anomaly maps.

    Accepts two arrays of shape ``(N, H, W)`` (or ``(H, W)`` for one image), or two equally
    long sequences of 2-D arrays whose shapes match pairwise (images may differ in size).
    Returns ``[(bool[H, W], float[H, W]), ...]``; slices of array inputs are views, not copies.
    """
    if isinstance(masks, (list, tuple)) or isinstance(maps, (list, tuple)):
        mask_seq: Sequence[Any] = list(masks)
        map_seq: Sequence[Any] = list(maps)
        if len(mask_seq) != len(map_seq):
            raise ValueError(f"masks and maps differ in count: {len(mask_seq)} vs {len(map_seq)}")
        if not mask_seq:
            raise ValueError("masks and maps are empty")
        pairs = []
        for index, (mask, amap) in enumerate(zip(mask_seq, map_seq)):
            m = as_binary(mask, f"masks[{index}]", ndim=2)
            a = as_scores(amap, f"maps[{index}]", ndim=2)
            if m.shape != a.shape:
                raise ValueError(f"masks[{index}] has shape {m.shape} but maps[{index}] has shape {a.shape}")
            pairs.append((m, a))
        return pairs
    mask_arr = np.asarray(masks)
    map_arr = np.asarray(maps)
    if mask_arr.ndim not in (2, 3):
        raise ValueError(f"masks must be (N, H, W) or (H, W), got shape {mask_arr.shape}")
    if mask_arr.shape != map_arr.shape:
        raise ValueError(f"masks shape {mask_arr.shape} does not match maps shape {map_arr.shape}")
    m = as_binary(mask_arr, "masks")
    a = as_scores(map_arr, "maps")
    if m.ndim == 2:
        return [(m, a)]
    return [(m[i], a[i]) for i in range(m.shape[0])]
