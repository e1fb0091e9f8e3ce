"""pyimgano: industrial visual anomaly detection in JAX/Flax.

The functional core::

    state = pyimgano.fit("vision_patchcore", frames, "bgr_u8_hwc")
    scores = pyimgano.score(state, frames, "bgr_u8_hwc")        # f32[N]
    maps = pyimgano.anomaly_maps(state, frames, "bgr_u8_hwc")   # f32[N, H, W]
    state = pyimgano.calibrate(state, other_normal_frames, "bgr_u8_hwc")  # a new state with a threshold
    state = pyimgano.fit_calibrated("vision_patchcore", frames, "bgr_u8_hwc")  # holds out 20 % to calibrate

The top-level names are imported lazily, so host-only subpackages
(``pyimgano.inputs``, ``pyimgano.defects``, ``pyimgano.metrics``) load without jax.
"""

from __future__ import annotations

import importlib

from pyimgano._version import __version__

__all__ = [
    "__version__",
    "fit",
    "score",
    "anomaly_maps",
    "predict",
    "calibrate",
    "fit_calibrated",
    "DetectorState",
    "with_threshold",
    "with_pixel_threshold",
    "with_tiling",
    "with_postprocess",
    "place_state",
    "TileConfig",
    "save_state",
    "load_state",
    "get_detector",
    "list_detectors",
    "register_detector",
    "load_plugins",
    "make_score_ensemble",
]

_LAZY = {
    "fit": "pyimgano.api",
    "score": "pyimgano.api",
    "anomaly_maps": "pyimgano.api",
    "predict": "pyimgano.api",
    "calibrate": "pyimgano.calibration",
    "fit_calibrated": "pyimgano.calibration",
    "DetectorState": "pyimgano.state",
    "with_threshold": "pyimgano.state",
    "with_pixel_threshold": "pyimgano.state",
    "with_tiling": "pyimgano.state",
    "with_postprocess": "pyimgano.state",
    "place_state": "pyimgano.state",
    "TileConfig": "pyimgano.tiling",
    "save_state": "pyimgano.state",
    "load_state": "pyimgano.state",
    "get_detector": "pyimgano.registry",
    "list_detectors": "pyimgano.registry",
    "register_detector": "pyimgano.registry",
    "load_plugins": "pyimgano.plugins",
    "make_score_ensemble": "pyimgano.ensemble",
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pyimgano' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
