"""Paired fit and predict cost of PatchCore configurations on every dataset on hand.

For each dataset (MVTec layout; default: bottle, metal_plate and cookie in
``../shared/datasets``), one process decodes the training and test images once, then
for each configuration in turn: fits PatchCore on all training images (decoding
excluded), compiles predict with one call, and times ``pyimgano.predict`` (scores and
full-size maps) on the whole test split. Prints one markdown row per (dataset,
configuration): bank shape, fit wall seconds (process CPU seconds), predict images/s
(process CPU ms per image). The configurations run back to back so their ratios are
comparable on a shared machine; absolute values are not.

Default configurations: the issue's baseline (reference pooling at width 1024, 224 px),
issue 16's default (reference pooling at width 152, 224 px), the channel mean at 224 px,
and today's default (channel mean, 256 px). ``--configs`` replaces them (JSON object of
name -> PatchCore kwargs).

Usage (repo root, project venv)::

    python benchmarks/default_cost.py
    python benchmarks/default_cost.py --datasets ../shared/datasets/lfv/cookie --rounds 2
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import numpy as np

import pyimgano
from pyimgano.datasets import load_frames

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"
DEFAULT_SETS = ("mvtec_ad/bottle", "mpdd/metal_plate", "lfv/cookie")
CONFIGS = {
    "issue baseline: adaptive 1024, 224": dict(aggregation="adaptive_pool", target_embed_dim=1024, image_size=224),
    "issue 16: adaptive 152, 224": dict(aggregation="adaptive_pool", target_embed_dim=152, image_size=224),
    "channel mean 152, 224": dict(aggregation="channel_mean", target_embed_dim=152, image_size=224),
    "default: channel mean 152, 256": {},
}


def _decode(paths) -> np.ndarray:
    return np.stack(load_frames(list(paths)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=",".join(str(SHARED / d) for d in DEFAULT_SETS),
                        help="comma-separated category folders (MVTec layout)")
    parser.add_argument("--configs", default=None, help="JSON object: name -> PatchCore kwargs")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    configs = json.loads(args.configs) if args.configs else CONFIGS
    print("| dataset | configuration | bank | fit s (CPU s) | predict images/s (CPU ms/image) |")
    print("|---|---|---|---:|---:|")
    for folder in (Path(f) for f in args.datasets.split(",")):
        train = _decode(sorted((folder / "train" / "good").iterdir()))
        test = _decode(sorted(p for kind in sorted((folder / "test").iterdir()) for p in kind.iterdir()))
        for _ in range(args.rounds):
            for name, kwargs in configs.items():
                t0, c0 = time.perf_counter(), time.process_time()
                state = pyimgano.fit("vision_patchcore", train, "rgb_u8_hwc", **kwargs)
                jax.block_until_ready(state.model)
                fit_wall, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
                pyimgano.predict(state, test[:16], "rgb_u8_hwc")  # compile
                t0, c0 = time.perf_counter(), time.process_time()
                _, maps = pyimgano.predict(state, test, "rgb_u8_hwc")
                np.asarray(maps)
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                rows, width = state.model.memory_bank.shape
                print(f"| {folder.parent.name}/{folder.name} | {name} | {rows} x {width} | {fit_wall:.1f} ({fit_cpu:.1f}) "
                      f"| {len(test) / wall:.2f} ({1000 * cpu / len(test):.0f}) |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
