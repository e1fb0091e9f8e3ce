"""``create_model(name, **kwargs)``: the earlier PyTorch pyimgano's detector object, over the functional core.

The returned :class:`VisionDetector` wraps :func:`pyimgano.fit` / :func:`pyimgano.score` /
:func:`pyimgano.predict` behind the familiar ``fit / decision_function /
get_anomaly_map / predict_anomaly_map / threshold_`` surface. Array inputs are
canonical RGB/u8/HWC (normalise other formats with
:func:`pyimgano.inputs.normalize_numpy_image` first); paths are decoded.
It is mutable (``threshold_`` is set by calibration), unlike a ``DetectorState``;
``pyimgano.inference`` reaches its state through ``__pyimgano_state__``.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from pyimgano import api
from pyimgano.calibration import quantile_threshold
from pyimgano.inputs import ImageFormat, input_items, is_path
from pyimgano.registry import get_detector, list_detectors
from pyimgano.state import DetectorState, with_threshold

__all__ = ["create_model", "VisionDetector", "list_models"]

# Keyword names of the earlier library -> config fields of this one.
_RENAMES = {
    "coreset_sampling_ratio": "coreset_ratio",
    "n_neighbors": "num_neighbors",
    "pretrain_embed_dimension": "pretrain_embed_dim",
    "target_embed_dimension": "target_embed_dim",
    "gaussian_sigma": "blur_sigma",
    "random_state": "seed",
    "random_seed": "seed",
}
# Accepted for compatibility, validated, but without effect (documented per detector).
_COMPAT_ONLY = {"projection_fit_samples"}
_DEVICES = ("cpu", "gpu", "cuda", "tpu", "auto")


def list_models(tags=None) -> list[str]:
    """Registered detector names having all ``tags``."""
    return list_detectors(tags)


class VisionDetector:
    """A fitted-on-demand detector with the earlier library's method names.

    Attributes:
      threshold_: image threshold (``score > threshold_`` is anomalous) or None.
      decision_scores_: training scores, set by ``fit`` when ``contamination`` is given.
      state_: the underlying :class:`~pyimgano.DetectorState` once fitted.
    """

    input_format = ImageFormat.RGB_U8_HWC

    def __init__(self, name: str, *, contamination: float | None = None, device: str = "auto", **config_kwargs):
        if contamination is not None and not 0.0 < float(contamination) < 0.5:
            raise ValueError(f"contamination must be in (0, 0.5), got {contamination!r}")
        if str(device).split(":")[0] not in _DEVICES:
            raise ValueError(f"device must be one of {list(_DEVICES)}, got {device!r}")
        compat = {k: config_kwargs.pop(k) for k in list(config_kwargs) if k in _COMPAT_ONLY}
        if "projection_fit_samples" in compat and int(compat["projection_fit_samples"]) < 1:
            raise ValueError(f"projection_fit_samples must be >= 1, got {compat['projection_fit_samples']!r}")
        renamed = {_RENAMES.get(k, k): v for k, v in config_kwargs.items()}
        self.name, self.config = api.make_config(name, **renamed)
        self.contamination = contamination
        self.device = device
        self.threshold_: float | None = None
        self.threshold_provenance_: dict | None = None
        self.decision_scores_: np.ndarray | None = None
        self._state: DetectorState | None = None

    # -- state -----------------------------------------------------------------
    @property
    def state_(self) -> DetectorState:
        if self._state is None:
            raise RuntimeError(f"{self.name} is not fitted yet: call fit(X) first")
        return self._state

    def __pyimgano_state__(self) -> DetectorState:
        """The fitted state carrying this object's current ``threshold_`` (the inference protocol)."""
        return with_threshold(self.state_, self.threshold_, self.threshold_provenance_)

    def __pyimgano_calibrated__(self, state: DetectorState) -> "VisionDetector":
        """Adopt the threshold of a calibrated state (the inference protocol); returns self."""
        self.threshold_ = state.threshold
        self.threshold_provenance_ = state.provenance
        return self

    def _fmt(self, X):
        items = input_items(X, input_format=self.input_format)
        return self.input_format if len(items) and not is_path(items[0]) else None

    # -- earlier library surface ------------------------------------------------
    def fit(self, X, y: Any = None, *, key: jax.Array | None = None) -> "VisionDetector":
        """Fit on normal images (paths or canonical RGB/u8/HWC arrays); ``y`` is ignored.

        With ``contamination`` the threshold is, as in the earlier library, the
        ``1 - contamination`` quantile of the training scores (provenance source
        ``fit_contamination``); :func:`pyimgano.inference.calibrate_threshold` on
        held-out normal images is the better-founded choice.
        """
        self._state = api.fit(self.config, X, self._fmt(X), key=key)
        if self.contamination is not None:
            self.decision_scores_ = self.decision_function(X)
            q = 1.0 - float(self.contamination)
            self.threshold_, provenance = quantile_threshold(self.decision_scores_, q)
            self.threshold_provenance_ = {**provenance, "source": "fit_contamination"}
        return self

    def decision_function(self, X) -> np.ndarray:
        """Anomaly scores f32[N] (higher = more anomalous)."""
        return np.asarray(api.score(self.state_, X, self._fmt(X)))

    def predict(self, X) -> np.ndarray:
        """Labels i64[N]: 1 when ``score > threshold_``; needs a threshold."""
        if self.threshold_ is None:
            raise RuntimeError("no threshold_: pass contamination= to create_model or call calibrate_threshold")
        return (self.decision_function(X) > self.threshold_).astype(np.int64)

    def predict_anomaly_map(self, X) -> np.ndarray:
        """Anomaly maps f32[N, H, W] at the input size (all inputs one size)."""
        return np.asarray(api.anomaly_maps(self.state_, X, self._fmt(X)))

    def get_anomaly_map(self, x) -> np.ndarray:
        """The anomaly map f32[H, W] of one image (path or RGB/u8/HWC array)."""
        return self.predict_anomaly_map([x])[0]

    def __repr__(self) -> str:
        fitted = "fitted" if self._state is not None else "unfitted"
        return f"VisionDetector({self.name!r}, {fitted}, threshold_={self.threshold_!r})"


def create_model(name: str, **kwargs) -> VisionDetector:
    """Create a detector by registered name with the earlier library's keyword names.

    Raises ``ValueError`` naming unknown detectors or options and the accepted ones.
    """
    get_detector(name)
    return VisionDetector(name, **kwargs)
