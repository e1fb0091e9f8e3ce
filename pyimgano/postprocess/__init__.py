"""Anomaly-map post-processing (host side, numpy/OpenCV); maps only, never scores."""

from pyimgano.postprocess.anomaly_map import NORMALIZE_METHODS, AnomalyMapPostprocess

__all__ = ["AnomalyMapPostprocess", "NORMALIZE_METHODS"]
