"""Trained detectors (STFPM, Reverse Distillation, DRAEM, autoencoder) on MVTec AD "bottle", on a CPU.

Protocol: every image resized to the detector's ``image_size`` (OpenCV INTER_AREA; masks
nearest) without cropping, as the three papers do at 256x256; fit on ``train/good`` with a
per-epoch checkpoint (``pyimgano.fit(..., checkpoint_dir=...)``, whose ``training.json``
gives the seconds and mean loss of every epoch); image AUROC, pixel AUROC and AUPRO
(FPR <= 0.3) on the test split from ``pyimgano.predict``. Printed beside the published
bottle figures.

The default settings are CPU-affordable, far from the papers' (100-700 epochs on a GPU):
see ``SETTINGS``; ``--epochs`` / ``--kwargs`` change them. Seconds per epoch are the
median over epochs 2.. (epoch 1 includes compilation); on a shared machine they are
indicative only.

Usage (from the repo root, inside the project venv):

    python benchmarks/trained_bottle.py
    python benchmarks/trained_bottle.py --detectors vision_ae --epochs 5
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

#: CPU-affordable settings per detector (each stated in the printed table).
SETTINGS = {
    "vision_ae": dict(image_size=128, epochs=10, batch_size=16),
    "vision_reverse_distillation": dict(image_size=256, epochs=10, batch_size=16),
    "vision_stfpm": dict(image_size=256, epochs=10, batch_size=32),
    "vision_draem": dict(image_size=128, epochs=10, batch_size=8, reconstructive_width=16, discriminative_width=8),
}

#: Published MVTec AD bottle figures: (image AUROC, pixel AUROC, source).
PAPER = {
    "vision_stfpm": ("-", "0.988", "Wang et al. 2021, ResNet-18, 100 ep, 256 px (paper reports pixel AUROC per category)"),
    "vision_reverse_distillation": ("1.000", "0.987", "Deng & Li 2022, WRN-50, 200 ep, 256 px"),
    "vision_draem": ("0.992", "0.991", "Zavrtanik et al. 2021, widths 128/64, 700 ep, 256 px, DTD textures"),
    "vision_ae": ("-", "-", "no paper model"),
}


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = Path(__file__).resolve().parent
    parser.add_argument("--root", default=str(here.parent.parent / "shared" / "datasets" / "mvtec_ad"))
    parser.add_argument("--category", default="bottle")
    parser.add_argument("--devices", type=int, default=1, help="host CPU devices exposed to JAX (data parallel)")
    parser.add_argument("--detectors", default=",".join(SETTINGS))
    parser.add_argument("--epochs", type=int, default=None, help="override every detector's epochs")
    parser.add_argument("--kwargs", default="{}", help='JSON {"detector": {field: value}} merged into SETTINGS')
    parser.add_argument("--limit-train", type=int, default=None)
    parser.add_argument("--checkpoints", default=None, help="keep checkpoints here (default: a temp dir)")
    return parser.parse_args()


ARGS = _parse()
os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={ARGS.devices}"

import json  # noqa: E402
import tempfile  # noqa: E402

import cv2  # noqa: E402
import jax  # noqa: E402
import numpy as np  # noqa: E402

import pyimgano  # noqa: E402
from pyimgano.datasets import load_masks, load_split  # noqa: E402
from pyimgano.inputs import load_image  # noqa: E402
from pyimgano.metrics import aupro, image_auroc, pixel_auroc  # noqa: E402


def _resized(paths, sizes):
    """{size: u8[N, size, size, 3]} with every image decoded once."""
    out = {s: [] for s in sizes}
    for path in paths:
        image = load_image(path)
        for s in sizes:
            out[s].append(cv2.resize(image, (s, s), interpolation=cv2.INTER_AREA))
    return {s: np.stack(v) for s, v in out.items()}


def main() -> int:
    split = load_split("mvtec", ARGS.root, ARGS.category)
    train_paths = split.train_paths[: ARGS.limit_train]
    names = [n for n in ARGS.detectors.split(",") if n]
    overrides = json.loads(ARGS.kwargs)
    settings = {}
    for name in names:
        settings[name] = {**SETTINGS[name], **overrides.get(name, {})}
        if ARGS.epochs is not None:
            settings[name]["epochs"] = ARGS.epochs
    sizes = sorted({int(s["image_size"]) for s in settings.values()})
    t0 = time.perf_counter()
    train, test = _resized(train_paths, sizes), _resized(split.test_paths, sizes)
    print(f"# decoding + resizing {len(train_paths)} train / {len(split.test_paths)} test images: "
          f"{time.perf_counter() - t0:.1f} s", flush=True)
    labels = np.asarray(split.test_labels)
    print(f"# {ARGS.category}; JAX {jax.__version__}, devices: {jax.device_count()} x {jax.devices()[0].device_kind}; "
          f"os.cpu_count()={os.cpu_count()}; load average at start {os.getloadavg()[0]:.1f}", flush=True)
    rows = []
    root = Path(ARGS.checkpoints) if ARGS.checkpoints else Path(tempfile.mkdtemp(prefix="trained_bottle_"))
    for name in names:
        kwargs = settings[name]
        size = int(kwargs["image_size"])
        masks = load_masks(split.test_mask_paths, (size, size))
        folder = root / name
        t0 = time.perf_counter()
        state = pyimgano.fit(name, train[size], "rgb_u8_hwc", checkpoint_dir=folder, **kwargs)
        jax.block_until_ready(state.model)
        fit_s = time.perf_counter() - t0
        history = json.loads((folder / "training.json").read_text())["history"]
        epoch_s = [h["seconds"] for h in history]
        per_epoch = float(np.median(epoch_s[1:])) if len(epoch_s) > 1 else float("nan")
        t0 = time.perf_counter()
        scores, maps = pyimgano.predict(state, test[size], "rgb_u8_hwc")
        predict_s = time.perf_counter() - t0
        scores, maps = np.asarray(scores), np.asarray(maps)
        row = dict(
            detector=name,
            setting=", ".join(f"{k}={v}" for k, v in kwargs.items()),
            image_auroc=image_auroc(labels, scores),
            pixel_auroc=pixel_auroc(masks, maps),
            aupro=aupro(masks, maps, fpr_limit=0.3),
            s_per_epoch=per_epoch,
            first_epoch_s=epoch_s[0],
            fit_s=fit_s,
            loss_first=history[0]["loss"],
            loss_last=history[-1]["loss"],
            test_images_per_s=len(scores) / predict_s,
            load_average=os.getloadavg()[0],
        )
        rows.append(row)
        print("# " + json.dumps(row), flush=True)
    head = ["detector", "setting", "s/epoch", "1st epoch s (compile)", "fit s", "loss first->last",
            "image AUROC", "pixel AUROC", "AUPRO", "paper image / pixel AUROC"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        paper = PAPER[r["detector"]]
        print(
            f"| {r['detector']} | {r['setting']} | {r['s_per_epoch']:.1f} | {r['first_epoch_s']:.1f} | "
            f"{r['fit_s']:.0f} | {r['loss_first']:.4g} -> {r['loss_last']:.4g} | {r['image_auroc']:.4f} | "
            f"{r['pixel_auroc']:.4f} | {r['aupro']:.4f} | {paper[0]} / {paper[1]} ({paper[2]}) |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
