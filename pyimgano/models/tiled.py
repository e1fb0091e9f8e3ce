"""``TiledDetector``: the seed guide's overlapping-window wrapper, over a state with tiling.

It holds a detector (a :class:`~pyimgano.DetectorState` or a ``create_model``
object, which may be fitted after wrapping) and a
:class:`~pyimgano.tiling.TileConfig`; every call builds the state
``with_tiling(inner_state, config)`` and runs the functional core's tiled path
(:func:`pyimgano.scoring.predict_frames`), which cuts, scores, stitches and
reduces tiles in one jitted program. The object is mutable only in
``threshold_`` (set by :func:`pyimgano.inference.calibrate_threshold`).
"""

from __future__ import annotations

import numpy as np

from pyimgano.inputs import ImageFormat, canonicalize_images, group_by_size, input_items, is_path
from pyimgano.registry import get_detector
from pyimgano.scoring import predict_frames
from pyimgano.state import DetectorState, with_threshold, with_tiling
from pyimgano.tiling import TileConfig, TilePlan

__all__ = ["TiledDetector"]


class TiledDetector:
    """Overlapping-window wrapper around a fitted detector (state or ``create_model`` object).

    Example::

        tiled = TiledDetector(detector=detector, tile_size=512, stride=384,
                              score_reduce="topk_mean", score_topk=0.1, map_reduce="hann")
        scores = tiled.decision_function(frames_rgb)        # f32[N]
        maps = tiled.predict_anomaly_map(frames_rgb)        # f32[N, H, W] at frame size

    Each tile is resized to the detector's ``image_size``, so a 512 tile of a 2048
    frame is seen at 4x the detail of the whole frame resized once.

    Tiled scores live on a different scale from untiled ones (a reduction over tiles),
    so a threshold is NOT inherited from the wrapped detector: ``threshold_`` starts as
    None; set it with :func:`pyimgano.inference.calibrate_threshold` on this object.
    The functional equivalent is ``pyimgano.with_tiling(state, TileConfig(...))``.

    Args:
      detector_or_state: a :class:`~pyimgano.DetectorState` or a ``create_model`` object
        (may be fitted after wrapping). Also accepted as ``detector=``.
      tile_size, stride, score_reduce, score_topk, map_reduce: see :class:`TileConfig`.
      batch_size: frames per jitted call (all their tiles run together); memory grows
        with ``batch_size * T``.

    Raises:
      ValueError / TypeError: bad settings or a wrong detector type.
    """

    def __init__(
        self,
        detector_or_state=None,
        *,
        detector=None,
        tile_size: int,
        stride: int | None = None,
        score_reduce: str = "max",
        score_topk: int | float = 0.1,
        map_reduce: str = "max",
        batch_size: int = 1,
    ):
        if (detector_or_state is None) == (detector is None):
            raise TypeError("pass exactly one detector: TiledDetector(state_or_detector, ...) or detector=...")
        inner = detector if detector is not None else detector_or_state
        if not isinstance(inner, DetectorState) and getattr(type(inner), "__pyimgano_state__", None) is None:
            raise TypeError(
                "TiledDetector wraps a DetectorState or a create_model(...) detector, "
                f"got {type(inner).__name__}"
            )
        self.detector = inner
        self.config = TileConfig(
            tile_size=tile_size, stride=stride, score_reduce=score_reduce, score_topk=score_topk, map_reduce=map_reduce
        )
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = int(batch_size)
        self.threshold_: float | None = None
        self.threshold_provenance_: dict | None = None

    # -- the state ----------------------------------------------------------------------
    @property
    def state(self) -> DetectorState:
        """The wrapped detector's untiled :class:`~pyimgano.DetectorState` (RuntimeError if not fitted)."""
        return self.detector if isinstance(self.detector, DetectorState) else self.detector.state_

    def __pyimgano_state__(self) -> DetectorState:
        """The wrapped state with this tiling and this object's ``threshold_`` (the inference protocol)."""
        tiled = with_tiling(with_threshold(self.state, None), self.config)
        return with_threshold(tiled, self.threshold_, self.threshold_provenance_)

    def __pyimgano_calibrated__(self, state: DetectorState) -> "TiledDetector":
        """Adopt the threshold of a calibrated state (the inference protocol); returns self."""
        self.threshold_ = state.threshold
        self.threshold_provenance_ = state.provenance
        return self

    @property
    def supports_maps(self) -> bool:
        """True when the wrapped detector produces pixel maps (tag ``pixel_map``)."""
        name = self.detector.detector if isinstance(self.detector, DetectorState) else self.detector.name
        return "pixel_map" in get_detector(name).tags

    @property
    def tile_size(self) -> int:
        return self.config.tile_size

    @property
    def stride(self) -> int:
        return self.config.stride

    @property
    def score_reduce(self) -> str:
        return self.config.score_reduce

    @property
    def score_topk(self):
        return self.config.score_topk

    @property
    def map_reduce(self) -> str:
        return self.config.map_reduce

    def plan_for(self, height: int, width: int) -> TilePlan:
        """The tile grid used for a ``height x width`` frame."""
        return self.config.plan(height, width)

    # -- core call ----------------------------------------------------------------------
    def tiled_predict(self, frames, *, want_maps: bool = True):
        """Scores and stitched maps for canonical frames of one size.

        Args:
          frames: ``u8[B, H, W, 3]`` canonical RGB (or a list of such frames of one size).
          want_maps: False skips stitching (and lets XLA drop the map computation).

        Returns:
          ``(scores f32[B], maps f32[B, H, W] or None)`` as numpy arrays, in input order.
        """
        batch = np.ascontiguousarray(np.stack(list(frames)) if not isinstance(frames, np.ndarray) else frames)
        if batch.ndim != 4 or batch.shape[-1] != 3:
            raise ValueError(f"tiled_predict expects canonical RGB frames u8[B, H, W, 3], got shape {batch.shape}")
        plan = self.plan_for(*batch.shape[1:3])
        if len(batch) == 0:
            return np.zeros((0,), np.float32), (np.zeros((0, plan.height, plan.width), np.float32) if want_maps else None)
        scores, maps = predict_frames(
            self.__pyimgano_state__(), list(batch), want_maps=want_maps, batch_size=self.batch_size * plan.num_tiles
        )
        return scores, (np.stack(maps) if maps is not None else None)

    # -- earlier library surface ---------------------------------------------------------
    def _canonical(self, X, input_format):
        items = input_items(X, input_format=input_format or ImageFormat.RGB_U8_HWC)
        if len(items) and not is_path(items[0]) and input_format is None:
            input_format = ImageFormat.RGB_U8_HWC  # as the create_model objects: arrays are RGB/u8/HWC
        return canonicalize_images(items if isinstance(items, np.ndarray) else list(items), input_format=input_format)

    def decision_function(self, X, *, input_format=None) -> np.ndarray:
        """Tiled image scores ``f32[N]`` (paths, or arrays of ``input_format``, default RGB/u8/HWC)."""
        frames = self._canonical(X, input_format)
        out = np.zeros(len(frames), np.float32)
        for indices in group_by_size(frames):
            out[indices] = self.tiled_predict([frames[i] for i in indices], want_maps=False)[0]
        return out

    def predict_anomaly_map(self, X, *, input_format=None) -> np.ndarray:
        """Stitched maps ``f32[N, H, W]`` at the frame size (all frames one size)."""
        frames = self._canonical(X, input_format)
        sizes = sorted({f.shape[:2] for f in frames})
        if len(sizes) > 1:
            raise ValueError(f"predict_anomaly_map needs frames of one size, got sizes {sizes}")
        if not frames:
            return np.zeros((0, 0, 0), np.float32)
        return self.tiled_predict(frames)[1]

    def get_anomaly_map(self, x, *, input_format=None) -> np.ndarray:
        """The stitched map ``f32[H, W]`` of one frame."""
        return self.predict_anomaly_map([x], input_format=input_format)[0]

    def predict(self, X, *, input_format=None) -> np.ndarray:
        """Labels i64[N] (1 when ``score > threshold_``); needs a calibrated ``threshold_``."""
        if self.threshold_ is None:
            raise RuntimeError("no threshold_: call pyimgano.inference.calibrate_threshold on this TiledDetector")
        return (self.decision_function(X, input_format=input_format) > self.threshold_).astype(np.int64)

    def __repr__(self) -> str:
        c = self.config
        return (
            f"TiledDetector(tile_size={c.tile_size}, stride={c.stride}, score_reduce={c.score_reduce!r}, "
            f"score_topk={c.score_topk!r}, map_reduce={c.map_reduce!r}, threshold_={self.threshold_!r})"
        )
