"""Image-threshold calibration: a quantile of scores on normal images, with provenance."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["quantile_threshold"]


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
