"""PatchCore's accuracy and cost against its embedding width, on every dataset on hand.

For each dataset (MVTec layout; default: every one in ``../shared/datasets``) and each
``target_embed_dim`` in ``--widths``, fits PatchCore (Lite0, ImageNet weights, coreset
0.1, everything else default) and scores the test split. Protocol as the bottle
benchmark: resize 256 (area), centre crop 224, masks likewise (nearest).

Prints one markdown row per (dataset, width): image AUROC, pixel AUROC, fit seconds,
predict images/s (wall) and predict CPU milliseconds per image (user + system of this
process: less disturbed than wall time when other work shares the cores), and the
exact-search GFLOP per image (``2 x patches x bank rows x width``).

Usage (repo root, project venv)::

    python benchmarks/embedding_width.py --widths 1024,512,256,152,128
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import numpy as np

import pyimgano
from peer_anomalib import prepare  # same decoding, resize and crop as the peer benchmark
from pyimgano.metrics import image_auroc, pixel_auroc

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"
DEFAULT_SETS = ("mvtec_ad/bottle", "mpdd/metal_plate", "lfv/cookie")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=",".join(str(SHARED / d) for d in DEFAULT_SETS),
                        help="comma-separated category folders (MVTec layout)")
    parser.add_argument("--widths", default="1024,512,256,152,128")
    parser.add_argument("--kwargs", default="{}", help="extra PatchCore config fields, JSON")
    args = parser.parse_args()
    import json
    import tempfile

    extra = json.loads(args.kwargs)
    print("| dataset | width | image AUROC | pixel AUROC | fit s | images/s | predict CPU ms/image | search GFLOP/image |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for folder in args.datasets.split(","):
        folder = Path(folder)
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp)
            prepare(argparse.Namespace(root=str(folder.parent), category=folder.name), data)
            train, test = np.load(data / "train.npy"), np.load(data / "test.npy")
            masks, labels = np.load(data / "masks.npy"), np.load(data / "labels.npy")
        for width in (int(w) for w in args.widths.split(",")):
            kwargs = dict(image_size=224, coreset_ratio=0.1, target_embed_dim=width, **extra)
            t0 = time.perf_counter()
            state = pyimgano.fit("vision_patchcore", train, "rgb_u8_hwc", **kwargs)
            jax.block_until_ready(state.model)
            fit_s = time.perf_counter() - t0
            pyimgano.predict(state, test[:16], "rgb_u8_hwc")
            t0, c0 = time.perf_counter(), time.process_time()
            scores, maps = pyimgano.predict(state, test, "rgb_u8_hwc")
            scores, maps = np.asarray(scores), np.asarray(maps)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            rows = state.model.memory_bank.shape[0]
            gflop = 2 * 28 * 28 * rows * width / 1e9
            print(
                f"| {folder.parent.name}/{folder.name} | {width} | {image_auroc(labels, scores):.4f} "
                f"| {pixel_auroc(masks, maps):.4f} | {fit_s:.1f} | {len(test) / wall:.2f} "
                f"| {1000 * cpu / len(test):.0f} | {gflop:.2f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
