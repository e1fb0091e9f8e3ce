"""Anomaly-map post-processing on the host: smoothing, grey-level morphology, normalisation.

Applied to maps only, never to image scores (a score is whatever the detector
said; post-processing is for display and for pixel-level decisions).

Order: Gaussian blur -> grey opening -> grey closing -> normalisation, so the
normalisation sees the cleaned map and its output range is exactly the one
documented for each method.

Normalisation methods:

* ``"none"``: values unchanged.
* ``"minmax"``: per map, ``(m - min) / (max - min)`` in ``[0, 1]`` (a constant map -> 0).
* ``"percentile"``: per map, ``(m - p_lo) / (p_hi - p_lo)`` clipped to ``[0, 1]``
  with ``(p_lo, p_hi) = percentile_range`` of that map's pixels.
* ``"normal_stats"``: the same affine map for every image, from statistics of
  normal (training) maps (:meth:`AnomalyMapPostprocess.with_normal_stats`):
  ``max(0, (m - low) / (high - low))``, with ``low``/``high`` the
  ``percentile_range`` percentiles of all normal pixels, not clipped above.
  A normal pixel lands in about ``[0, 1]`` and a defect above 1 on every image,
  so a fixed pixel threshold keeps its meaning. Per-image ``minmax`` /
  ``percentile`` stretch every map to ``[0, 1]``, so a clean image gets its own
  noise pushed to 1 and a fixed pixel threshold finds "defects" in it; this is
  why ``normal_stats`` is the recommended setting when maps feed defect extraction.
"""

from __future__ import annotations

from typing import Any, Mapping

import attrs
import cv2
import numpy as np

__all__ = ["AnomalyMapPostprocess", "NORMALIZE_METHODS"]

NORMALIZE_METHODS = ("none", "minmax", "percentile", "normal_stats")


def _method_name(value) -> str:
    if isinstance(value, str) and value in NORMALIZE_METHODS:
        return value
    raise ValueError(f"normalize method must be one of {list(NORMALIZE_METHODS)} (or True/False), got {value!r}")


def _check_range(instance, attribute, value) -> None:
    lo, hi = value
    if not (0.0 <= lo < hi <= 100.0):
        raise ValueError(f"percentile_range must satisfy 0 <= low < high <= 100, got {value!r}")


def _check_ksize(instance, attribute, value) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0 (0 disables it), got {value!r}")


def _as_range(value) -> tuple[float, float]:
    try:
        lo, hi = value
        return (float(lo), float(hi))
    except (TypeError, ValueError):
        raise ValueError(f"percentile_range must be a pair (low, high) of percentiles, got {value!r}") from None


def _optional_float(value):
    return None if value is None else float(value)


def _canonical_method(normalize, normalize_method) -> str:
    """The earlier library's ``(normalize=True, normalize_method=...)`` pair -> one method name."""
    if isinstance(normalize, (bool, np.bool_)):
        return _method_name(normalize_method or "minmax") if normalize else "none"
    method = _method_name(normalize)
    if normalize_method is not None and _method_name(normalize_method) != method:
        raise ValueError(
            f"normalize={normalize!r} disagrees with normalize_method={normalize_method!r}; give one method name"
        )
    return method


@attrs.frozen(init=False)
class AnomalyMapPostprocess:
    """Post-processing for ``f32[H, W]`` or ``f32[N, H, W]`` anomaly maps (hashable, immutable).

    Args:
      normalize: a method name (``"none" | "minmax" | "percentile" | "normal_stats"``)
        or a bool as in the earlier library: ``True`` uses ``normalize_method``
        (default ``"minmax"``), ``False`` means ``"none"``. Stored as the method name.
      normalize_method: the method when ``normalize=True``; when ``normalize`` is a
        name, it must agree or be None. After construction it equals ``normalize``.
      percentile_range: ``(low, high)`` percentiles in ``[0, 100]`` for ``"percentile"``
        and ``"normal_stats"``.
      gaussian_sigma: Gaussian blur sigma in pixels (0 = off).
      morph_open_ksize, morph_close_ksize: square kernel sizes of grey-level opening
        (removes small bright specks) and closing (fills small dark gaps); 0 = off.
      normal_low, normal_high: statistics for ``"normal_stats"``; set them with
        :meth:`with_normal_stats` rather than by hand.

    Raises:
      ValueError: an unknown method, a bad range, negative sizes or sigma.
    """

    normalize: Any = attrs.field(default="none")
    normalize_method: str | None = None
    percentile_range: tuple[float, float] = attrs.field(default=(1.0, 99.0), converter=_as_range, validator=_check_range)
    gaussian_sigma: float = attrs.field(default=0.0, converter=float)
    morph_open_ksize: int = attrs.field(default=0, converter=int, validator=_check_ksize)
    morph_close_ksize: int = attrs.field(default=0, converter=int, validator=_check_ksize)
    normal_low: float | None = attrs.field(default=None, converter=_optional_float)
    normal_high: float | None = attrs.field(default=None, converter=_optional_float)

    def __init__(
        self,
        normalize: Any = "none",
        normalize_method: str | None = None,
        percentile_range=(1.0, 99.0),
        gaussian_sigma: float = 0.0,
        morph_open_ksize: int = 0,
        morph_close_ksize: int = 0,
        normal_low: float | None = None,
        normal_high: float | None = None,
    ):
        # One method name in both fields, so equal settings compare and hash equal.
        method = _canonical_method(normalize, normalize_method)
        self.__attrs_init__(
            method, method, percentile_range, gaussian_sigma, morph_open_ksize, morph_close_ksize, normal_low, normal_high
        )

    def __attrs_post_init__(self) -> None:
        if not (np.isfinite(self.gaussian_sigma) and self.gaussian_sigma >= 0):
            raise ValueError(f"gaussian_sigma must be >= 0 (0 disables it), got {self.gaussian_sigma!r}")
        if (self.normal_low is None) != (self.normal_high is None):
            raise ValueError("normal_low and normal_high must be given together (use with_normal_stats)")
        if self.normal_low is not None and not self.normal_high > self.normal_low:
            raise ValueError(
                f"normal_high must be > normal_low, got low={self.normal_low!r} high={self.normal_high!r}"
            )

    # -- public ---------------------------------------------------------------------
    def __call__(self, maps) -> np.ndarray:
        """Post-process ``f32[H, W]`` or ``f32[N, H, W]`` maps; returns f32 of the same shape.

        Raises:
          ValueError: wrong ndim, empty or non-finite maps; ``"normal_stats"`` without statistics.
        """
        arr = self._check_maps(maps)
        if arr.ndim == 2:
            return self._one(arr)
        return np.stack([self._one(m) for m in arr]) if len(arr) else arr

    @property
    def needs_normal_stats(self) -> bool:
        """True for ``"normal_stats"`` without statistics yet (see :meth:`with_normal_stats`)."""
        return self.normalize == "normal_stats" and self.normal_low is None

    def apply(self, maps) -> np.ndarray:
        """Same as calling the object."""
        return self(maps)

    def with_normal_stats(self, normal_maps) -> "AnomalyMapPostprocess":
        """A copy that normalises with statistics of normal maps (``normalize="normal_stats"``).

        ``normal_maps``: ``f32[H, W]``, ``f32[N, H, W]`` or a list of maps of any sizes,
        from normal (defect-free) images. They go through the same blur and
        morphology first; ``low``/``high`` are the ``percentile_range`` percentiles of
        all their pixels together.

        Raises:
          ValueError: no maps, bad maps, or all normal pixels equal after smoothing.
        """
        if isinstance(normal_maps, np.ndarray) or hasattr(normal_maps, "__array__"):
            items = list(self._check_maps(normal_maps).reshape((-1,) + np.shape(normal_maps)[-2:]))
        else:
            items = [self._check_maps(m) for m in normal_maps]
        if not items:
            raise ValueError("with_normal_stats needs at least one normal map, got none")
        pixels = np.concatenate([self.smooth(m).reshape(-1) for m in items]).astype(np.float64)
        low, high = (float(v) for v in np.percentile(pixels, self.percentile_range))
        if not high > low:
            raise ValueError(
                f"normal maps are flat between percentiles {self.percentile_range} (both {low!r}); "
                "widen percentile_range or use more varied normal images"
            )
        return attrs.evolve(self, normalize="normal_stats", normalize_method=None, normal_low=low, normal_high=high)

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python fields (for configs / JSON); :meth:`from_dict` reads it back."""
        data = attrs.asdict(self)
        data["percentile_range"] = list(self.percentile_range)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "AnomalyMapPostprocess":
        """Build from :meth:`to_dict` output; unknown keys raise ``ValueError`` listing the accepted ones."""
        accepted = [f.name for f in attrs.fields(cls)]
        unknown = sorted(set(data) - set(accepted))
        if unknown:
            raise ValueError(f"unknown postprocess key(s) {unknown}; accepted: {accepted}")
        return cls(**dict(data))

    # -- internals -------------------------------------------------------------------
    @staticmethod
    def _check_maps(maps) -> np.ndarray:
        arr = np.asarray(maps)
        if arr.ndim not in (2, 3):
            raise ValueError(f"anomaly maps must be f32[H, W] or f32[N, H, W], got shape {arr.shape}")
        if arr.shape[-1] == 0 or arr.shape[-2] == 0:
            raise ValueError(f"anomaly maps must not be empty, got shape {arr.shape}")
        arr = arr.astype(np.float32, copy=False)
        if not np.isfinite(arr).all():
            raise ValueError("anomaly maps contain NaN or inf values")
        return arr

    def smooth(self, m: np.ndarray) -> np.ndarray:
        """The blur and morphology steps only (no normalisation), ``f32[H, W]``."""
        out = np.ascontiguousarray(m, dtype=np.float32)
        if self.gaussian_sigma > 0:
            # Kernel size from sigma (OpenCV: about 6 sigma), reflecting at the border
            # so edge pixels are not pulled towards zero.
            out = cv2.GaussianBlur(out, (0, 0), sigmaX=self.gaussian_sigma, borderType=cv2.BORDER_REFLECT)
        for op, k in ((cv2.MORPH_OPEN, self.morph_open_ksize), (cv2.MORPH_CLOSE, self.morph_close_ksize)):
            if k > 1:
                kernel = np.ones((k, k), np.uint8)
                out = cv2.morphologyEx(out, op, kernel, borderType=cv2.BORDER_REPLICATE)
        return out

    def _one(self, m: np.ndarray) -> np.ndarray:
        out = self.smooth(m)
        method = self.normalize
        if method == "minmax":
            lo, hi = float(out.min()), float(out.max())
            out = (out - lo) / (hi - lo) if hi > lo else np.zeros_like(out)
        elif method == "percentile":
            lo, hi = (float(v) for v in np.percentile(out, self.percentile_range))
            out = np.clip((out - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.zeros_like(out)
        elif method == "normal_stats":
            if self.normal_low is None:
                raise ValueError(
                    'normalize="normal_stats" needs statistics of normal maps: '
                    "use AnomalyMapPostprocess(...).with_normal_stats(normal_maps)"
                )
            out = np.maximum((out - self.normal_low) / (self.normal_high - self.normal_low), 0.0)
        return np.ascontiguousarray(out, dtype=np.float32)
