"""Accuracy and speed of PatchCore and PaDiM on MVTec AD "bottle" (the paper protocol).

Protocol: resize to 256 (bilinear, antialiased), centre-crop 224, masks likewise
(nearest); fit on train/good; image AUROC, pixel AUROC and AUPRO (FPR <= 0.3)
on the test split; fit seconds, inference images/s, the whole predict's GFLOP per
image and achieved GFLOP/s as a fraction of the CPU's theoretical f32 peak, and the
same for the backbone alone.

FLOPs are counted with every iteration of the exact search's loop over bank chunks
(``_flops.py``); XLA's cost analysis of the whole program counts a loop body once.

Usage (from the repo root, inside the project venv):

    python benchmarks/mvtec_bottle.py --devices 1
    python benchmarks/mvtec_bottle.py --devices 2 --detectors vision_patchcore

``--devices N`` exposes N host CPU devices to JAX (set before JAX is imported).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = Path(__file__).resolve().parent
    parser.add_argument("--root", default=str(here.parent.parent / "shared" / "datasets" / "mvtec_ad"))
    parser.add_argument("--category", default="bottle")
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--detectors", default="vision_patchcore,vision_padim")
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--coreset-ratio", type=float, default=0.1)
    parser.add_argument("--limit-train", type=int, default=None)
    parser.add_argument("--kwargs", default="{}", help="extra detector config fields as JSON")
    return parser.parse_args()


ARGS = _parse()
os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={ARGS.devices}"
sys.path.insert(0, str(Path(__file__).resolve().parent))

import json  # noqa: E402

import cv2  # noqa: E402
import jax  # noqa: E402
import numpy as np  # noqa: E402

import pyimgano  # noqa: E402
from _cpu import cpu_peak_gflops  # noqa: E402
from _flops import predict_gflop_per_image  # noqa: E402
from pyimgano.datasets import load_mask, load_mvtec_split  # noqa: E402
from pyimgano.inputs import load_image  # noqa: E402
from pyimgano.metrics import aupro, image_auroc, pixel_auroc  # noqa: E402


def resize_crop(image: np.ndarray, *, resize: int = 256, crop: int = 224, nearest: bool = False) -> np.ndarray:
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_AREA
    out = cv2.resize(image, (resize, resize), interpolation=interp)
    off = (resize - crop) // 2
    return np.ascontiguousarray(out[off : off + crop, off : off + crop])


def _gflop(lowered) -> float:
    cost = lowered.compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost.get("flops", 0.0)) / 1e9


def backbone_rate(state, images: np.ndarray) -> tuple[float, float]:
    """(GFLOP per image, images/s) of the backbone alone, up to the detector's taps, as the detectors
    run it (``tap_features``: one image at a time inside the program on the CPU)."""
    from models_jax.detectors.patch_embedding import tap_features
    from pyimgano.scoring import prepare_frames

    config = state.config
    variables = state.model.backbone_variables
    run = jax.jit(lambda v, x: tap_features(config.backbone, v, x, config.layers))
    batch = prepare_frames(config, list(images[:16]))
    gflop = _gflop(run.lower(variables, batch[:1]))  # one image: no loop for the cost analysis to miscount
    jax.block_until_ready(run(variables, batch))
    t0 = time.perf_counter()
    for _ in range(3):
        jax.block_until_ready(run(variables, batch))
    return gflop, 3 * len(batch) / (time.perf_counter() - t0)


def main() -> int:
    split = load_mvtec_split(ARGS.root, ARGS.category)
    train_paths = split.train_paths[: ARGS.limit_train]
    t0 = time.perf_counter()
    train = np.stack([resize_crop(load_image(p)) for p in train_paths])
    decode_s = time.perf_counter() - t0
    test = np.stack([resize_crop(load_image(p)) for p in split.test_paths])
    masks = np.stack(
        [
            resize_crop(load_mask(m).astype(np.uint8), nearest=True).astype(bool)
            if m
            else np.zeros((224, 224), bool)
            for m in split.test_mask_paths
        ]
    )
    labels = np.asarray(split.test_labels)
    desc, peak = cpu_peak_gflops()
    print(f"# {ARGS.category}: {len(train)} train, {len(test)} test; JAX devices: {jax.device_count()}; {desc}")
    extra = json.loads(ARGS.kwargs)
    rows = []
    for name in ARGS.detectors.split(","):
        kwargs = dict(backbone=ARGS.backbone, image_size=224, **extra)
        if name == "vision_patchcore":
            kwargs.setdefault("coreset_ratio", ARGS.coreset_ratio)
        t0 = time.perf_counter()
        state = pyimgano.fit(name, train, "rgb_u8_hwc", **kwargs)
        jax.block_until_ready(state.model)
        fit_s = time.perf_counter() - t0
        # Compile outside the timing: full batches and the last partial batch's bucket.
        pyimgano.predict(state, test[:16], "rgb_u8_hwc")
        pyimgano.predict(state, test[: len(test) % 16 or 16], "rgb_u8_hwc")
        t0 = time.perf_counter()
        scores, maps = pyimgano.predict(state, test, "rgb_u8_hwc")
        maps = np.asarray(maps)
        infer_s = time.perf_counter() - t0
        scores = np.asarray(scores)
        gflop = predict_gflop_per_image(state)["total"]
        bb_gflop, bb_ips = backbone_rate(state, test)
        ips = len(test) / infer_s
        rows.append(
            dict(
                detector=name,
                image_auroc=image_auroc(labels, scores),
                pixel_auroc=pixel_auroc(masks, maps),
                aupro=aupro(masks, maps, fpr_limit=0.3),
                fit_s=fit_s,
                images_per_s=ips,
                predict_gflop_per_image=gflop,
                predict_gflops=gflop * ips,
                predict_peak_fraction=gflop * ips / peak,
                backbone_gflop_per_image=bb_gflop,
                backbone_images_per_s=bb_ips,
                backbone_gflops=bb_gflop * bb_ips,
                backbone_peak_fraction=bb_gflop * bb_ips / peak,
            )
        )
    print(f"# decoding + resize/crop of the {len(train)} training images: {decode_s:.1f} s (not in fit_s)")
    head = [
        "detector", "image_auroc", "pixel_auroc", "aupro", "fit_s", "images_per_s", "predict_gflop_per_image",
        "predict_gflops", "predict_peak_fraction",
        "backbone_gflop_per_image", "backbone_images_per_s", "backbone_gflops", "backbone_peak_fraction",
    ]
    FORMATS = {"fit_s": ".1f", "images_per_s": ".2f", "predict_gflop_per_image": ".2f", "predict_gflops": ".1f", "predict_peak_fraction": ".3f", "backbone_gflop_per_image": ".3f",
               "backbone_images_per_s": ".1f", "backbone_gflops": ".1f", "backbone_peak_fraction": ".3f"}
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in rows:
        cells = [row[h] if isinstance(row[h], str) else format(row[h], FORMATS.get(h, ".4f")) for h in head]
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
