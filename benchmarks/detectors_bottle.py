"""Accuracy and speed of the step-9 detectors on MVTec AD "bottle".

Protocol (as ``benchmarks/mvtec_bottle.py``): resize to 256 (area), centre-crop 224,
masks likewise (nearest); fit on ``train/good``; image AUROC, pixel AUROC and AUPRO
(FPR <= 0.3, ``pyimgano.metrics``) on the test split; fit seconds (decoded frames in,
fitted state out, compilation included) and inference images/s (``pyimgano.predict``
with full-size maps, after a warm-up call that compiles).

Rows:

- ``vision_spade`` (K = ``--spade-k``, default the paper's 50), ``vision_softpatch``:
  EfficientNet-Lite0 with its packaged ImageNet weights, 224 input;
- ``vision_anomalydino``: DINOv2 ViT-S/14 with **random weights** (no DINOv2
  checkpoint is available offline; pass ``--dino-weights CONVERTED.safetensors``
  for real ones), 224 input, every training image as reference (full-shot);
- ``vision_score_ensemble``: PatchCore + PaDiM (Lite0) fitted on 80 % of the
  training images, standardised with the other 20 % (seeded hold-out), ``combine``
  mean and rank_mean; fit s = both members' fits + the statistics pass;
- ``vision_patchcore`` (when listed): the step-3 reference, to compare the load of
  the machine with the README's idle-machine figures;
- with ``--noise 0.1``: PatchCore and SoftPatch fitted on the training set plus
  10 % as many anomalous test images (seeded), evaluated on the remaining test
  images (the SoftPatch paper's "noisy" protocol, no overlap).

The CPU may be shared: timings are indicative. Usage (repo root, project venv)::

    python benchmarks/detectors_bottle.py
    python benchmarks/detectors_bottle.py --detectors vision_softpatch --noise 0.1
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
    parser.add_argument(
        "--detectors", default="vision_spade,vision_softpatch,vision_anomalydino,vision_score_ensemble"
    )
    parser.add_argument("--noise", type=float, default=0.0, help="also run PatchCore vs SoftPatch with this fraction of anomalous training images")
    parser.add_argument("--spade-k", default="50", help="comma-separated k_images values for vision_spade rows")
    parser.add_argument("--dino-weights", default=None, help="converted dinov2_vits14 weights (default: random init)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


ARGS = _parse()
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import cv2  # noqa: E402
import jax  # noqa: E402
import numpy as np  # noqa: E402

import pyimgano  # noqa: E402
from _cpu import cpu_peak_gflops  # noqa: E402
from pyimgano.calibration import split_holdout  # noqa: E402
from pyimgano.datasets import load_mask, load_split  # noqa: E402
from pyimgano.inputs import load_image  # noqa: E402
from pyimgano.metrics import aupro, image_auroc, pixel_auroc  # noqa: E402

LITE0 = dict(backbone="efficientnet_lite0", pretrained=True, image_size=224)


def resize_crop(image: np.ndarray, *, resize: int = 256, crop: int = 224, nearest: bool = False) -> np.ndarray:
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_AREA
    out = cv2.resize(image, (resize, resize), interpolation=interp)
    off = (resize - crop) // 2
    return np.ascontiguousarray(out[off : off + crop, off : off + crop])


def evaluate(label: str, note: str, state, fit_s: float, test, labels, masks) -> dict:
    pyimgano.predict(state, test[:16], "rgb_u8_hwc")  # compile outside the timing
    t0 = time.perf_counter()
    scores, maps = pyimgano.predict(state, test, "rgb_u8_hwc")
    scores, maps = np.asarray(scores), np.asarray(maps)
    infer_s = time.perf_counter() - t0
    row = dict(
        detector=label,
        setup=note,
        image_auroc=image_auroc(labels, scores),
        pixel_auroc=pixel_auroc(masks, maps),
        aupro=aupro(masks, maps, fpr_limit=0.3),
        fit_s=fit_s,
        images_per_s=len(test) / infer_s,
    )
    print("  " + ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
    return row


def timed_fit(name, frames, **kwargs):
    t0 = time.perf_counter()
    state = pyimgano.fit(name, frames, "rgb_u8_hwc", key=jax.random.PRNGKey(ARGS.seed), **kwargs)
    jax.block_until_ready(state.model)
    return state, time.perf_counter() - t0


def main() -> int:
    split = load_split("mvtec", ARGS.root, ARGS.category)
    train = np.stack([resize_crop(load_image(p)) for p in split.train_paths])
    test = np.stack([resize_crop(load_image(p)) for p in split.test_paths])
    masks = np.stack(
        [
            resize_crop(load_mask(m).astype(np.uint8), nearest=True).astype(bool) if m else np.zeros((224, 224), bool)
            for m in split.test_mask_paths
        ]
    )
    labels = np.asarray(split.test_labels)
    desc, _ = cpu_peak_gflops()
    print(f"# {ARGS.category}: {len(train)} train, {len(test)} test; JAX devices: {jax.device_count()}; {desc}")
    rows = []
    for name in ARGS.detectors.split(","):
        print(f"# {name}", flush=True)
        if name == "vision_spade":
            for k in (int(v) for v in ARGS.spade_k.split(",")):
                state, fit_s = timed_fit(name, train, k_images=k, **LITE0)
                rows.append(evaluate(name, f"Lite0 ImageNet, K={k}", state, fit_s, test, labels, masks))
        elif name == "vision_patchcore":  # reference row: compare with README's idle-machine figures
            state, fit_s = timed_fit(name, train, **LITE0)
            rows.append(evaluate(name, "Lite0 ImageNet (reference)", state, fit_s, test, labels, masks))
        elif name == "vision_softpatch":
            state, fit_s = timed_fit(name, train, **LITE0)
            rows.append(evaluate(name, "Lite0 ImageNet, clean train set", state, fit_s, test, labels, masks))
        elif name == "vision_anomalydino":
            weights = dict(pretrained=True, weights_path=ARGS.dino_weights) if ARGS.dino_weights else dict(pretrained=False)
            state, fit_s = timed_fit(name, train, image_size=224, **weights)
            note = "DINOv2-S/14 converted weights" if ARGS.dino_weights else "DINOv2-S/14 RANDOM weights"
            rows.append(evaluate(name, f"{note}, 224, full-shot", state, fit_s, test, labels, masks))
        elif name == "vision_score_ensemble":
            hold = split_holdout(len(train), 0.2, ARGS.seed)
            fit_part, cal_part = train[list(hold.fit_indices)], train[list(hold.calibration_indices)]
            patchcore, fit_a = timed_fit("vision_patchcore", fit_part, **LITE0)
            padim, fit_b = timed_fit("vision_padim", fit_part, **LITE0)
            for combine in ("mean", "rank_mean"):
                t0 = time.perf_counter()
                state = pyimgano.make_score_ensemble([patchcore, padim], cal_part, "rgb_u8_hwc", combine=combine)
                stats_s = time.perf_counter() - t0
                note = f"PatchCore+PaDiM Lite0, {combine}, fit {len(fit_part)} / stats {len(cal_part)}"
                rows.append(evaluate(name, note, state, fit_a + fit_b + stats_s, test, labels, masks))
        else:
            raise SystemExit(f"unknown detector {name!r}")
    if ARGS.noise > 0:
        rng = np.random.default_rng(ARGS.seed)
        anomalous = np.flatnonzero(labels == 1)
        noisy = np.sort(rng.choice(anomalous, int(ARGS.noise * len(train)), replace=False))
        keep = np.setdiff1d(np.arange(len(test)), noisy)
        noisy_train = np.concatenate([train, test[noisy]])
        print(f"# noise {ARGS.noise}: {len(noisy)} anomalous test images added to training, {len(keep)} left to test")
        for name in ("vision_patchcore", "vision_softpatch"):
            state, fit_s = timed_fit(name, noisy_train, **LITE0)
            note = f"Lite0 ImageNet, train + {len(noisy)} anomalous"
            rows.append(evaluate(name, note, state, fit_s, test[keep], labels[keep], masks[keep]))
    head = ["detector", "setup", "image_auroc", "pixel_auroc", "aupro", "fit_s", "images_per_s"]
    formats = {"fit_s": ".1f", "images_per_s": ".2f"}
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in rows:
        cells = [row[h] if isinstance(row[h], str) else format(row[h], formats.get(h, ".4f")) for h in head]
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
