"""Industrial inference on frames already in memory (OpenCV BGR/u8/HWC), offline.

The flow of the "Inference API" guide: create a detector, fit it on normal frames,
calibrate its image threshold at the 0.995 quantile of normal scores, then score
test frames with anomaly maps and min-max map post-processing, and print one
JSON record per frame.

Runs offline in well under a minute on a CPU: a small synthetic set and a
randomly initialised backbone (``pretrained=False``, no weight downloads). With
real weights (``pretrained=True``, efficientnet_lite0) the same code detects
real defects; random features only illustrate the plumbing.

    python examples/industrial_infer_numpy.py
"""

from __future__ import annotations

import json

import numpy as np

from pyimgano.inference import calibrate_threshold, infer, result_to_jsonable
from pyimgano.inputs import ImageFormat, normalize_numpy_image
from pyimgano.models import create_model
from pyimgano.postprocess.anomaly_map import AnomalyMapPostprocess


def synthetic_bgr_frames(n: int, *, size: int = 64, seed: int = 0, defect: bool = False) -> list[np.ndarray]:
    """Textured 'parts' as OpenCV would hand them over (BGR/u8/HWC); optionally a bright scratch."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    frames = []
    for _ in range(n):
        base = 0.5 + 0.2 * np.sin(2 * np.pi * (4 * xx + rng.uniform(0, 0.02))) * np.cos(2 * np.pi * 3 * yy)
        rgb = np.stack([base, 0.9 * base, 0.7 * base], axis=-1) + rng.normal(0, 0.02, (size, size, 3))
        frame = np.clip(rgb * 255, 0, 255).astype(np.uint8)[..., ::-1]  # RGB -> BGR, as cv2 delivers
        if defect:
            frame[20:26, 30:50] = (40, 220, 250)
        frames.append(np.ascontiguousarray(frame))
    return frames


def main() -> None:
    # A small, no-download config (the guide's PaDiM settings).
    detector = create_model(
        "vision_padim",
        pretrained=False,
        device="cpu",
        image_size=64,
        d_reduced=8,
        projection_fit_samples=1,
        covariance_eps=0.1,
    )

    train_frames_bgr = synthetic_bgr_frames(16, seed=1)
    calib_frames_bgr = synthetic_bgr_frames(24, seed=2)
    test_frames_bgr = synthetic_bgr_frames(2, seed=3) + synthetic_bgr_frames(2, seed=4, defect=True)

    # fit() takes canonical RGB/u8/HWC: normalise the BGR frames first (explicit, never guessed).
    train_frames_rgb = [normalize_numpy_image(f, input_format=ImageFormat.BGR_U8_HWC) for f in train_frames_bgr]
    detector.fit(train_frames_rgb)

    # Threshold = 0.995 quantile (linear interpolation) of scores on held-out normal frames.
    calibrate_threshold(detector, calib_frames_bgr, input_format=ImageFormat.BGR_U8_HWC, quantile=0.995)
    print("threshold_:", detector.threshold_, detector.threshold_provenance_)

    post = AnomalyMapPostprocess(normalize=True, normalize_method="minmax")
    results = infer(
        detector,
        test_frames_bgr,
        input_format=ImageFormat.BGR_U8_HWC,
        include_maps=True,
        postprocess=post,
    )
    for index, result in enumerate(results):
        record = {"index": index, **result_to_jsonable(result)}
        print(json.dumps(record, sort_keys=True))


if __name__ == "__main__":
    main()
