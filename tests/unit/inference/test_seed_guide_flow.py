"""The calls of the industrial-inference guide (sections 2 and 5), with a tiny backbone for speed."""

import numpy as np

from pyimgano.inference import calibrate_threshold, infer
from pyimgano.inference.tiling import TiledDetector
from pyimgano.inputs import ImageFormat, normalize_numpy_image
from pyimgano.models import create_model
from pyimgano.postprocess.anomaly_map import AnomalyMapPostprocess


def test_guide_flow_fit_calibrate_infer_bgr_frames_with_minmax_maps(frames_factory):
    detector = create_model(
        "vision_padim",
        backbone="tiny_resnet",
        pretrained=False,
        device="cpu",
        image_size=32,
        d_reduced=8,
        projection_fit_samples=1,
        covariance_eps=0.1,
    )
    train_frames_bgr = list(np.ascontiguousarray(frames_factory(8, seed=1)[..., ::-1]))
    test_frames_bgr = list(np.ascontiguousarray(frames_factory(2, seed=2)[..., ::-1]))
    train_frames_rgb = [
        normalize_numpy_image(frame, input_format=ImageFormat.BGR_U8_HWC) for frame in train_frames_bgr
    ]
    detector.fit(train_frames_rgb)
    calibrate_threshold(detector, train_frames_bgr, input_format=ImageFormat.BGR_U8_HWC, quantile=0.995)
    assert detector.threshold_ is not None

    post = AnomalyMapPostprocess(normalize=True, normalize_method="minmax")
    results = infer(
        detector,
        test_frames_bgr,
        input_format=ImageFormat.BGR_U8_HWC,
        include_maps=True,
        postprocess=post,
    )
    assert len(results) == 2
    for r in results:
        assert r.label in (0, 1) and r.label == int(r.score > detector.threshold_)
        assert r.anomaly_map.shape == (32, 32)
        assert r.anomaly_map.min() == 0.0 and r.anomaly_map.max() == np.float32(1.0)

    tiled = TiledDetector(
        detector=detector,
        tile_size=512,
        stride=384,
        score_reduce="topk_mean",
        score_topk=0.1,
        map_reduce="hann",
    )
    assert (tiled.tile_size, tiled.stride, tiled.score_reduce, tiled.map_reduce) == (512, 384, "topk_mean", "hann")
    # A 32x32 frame is smaller than the 512 tile: one reflect-padded tile, map at frame size.
    tiled_results = infer(tiled, test_frames_bgr[:1], input_format=ImageFormat.BGR_U8_HWC, include_maps=True)
    assert tiled_results[0].anomaly_map.shape == (32, 32)
