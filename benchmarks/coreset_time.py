"""Time PatchCore's greedy coreset on MVTec AD bottle, next to the dense k-center loop.

Fits PatchCore (Lite0, coreset 0.1) on bottle's 209 training images and times the
``greedy_coreset`` call inside the fit (163,856 patches -> 16,385 centres), then times
the plain dense loop (one pass over the whole projected bank per centre) for 500 steps
and extrapolates to the same number of centres. Prints a markdown table.

Usage (repo root, project venv)::

    python benchmarks/coreset_time.py [--root ../shared/datasets/mvtec_ad]
"""

from __future__ import annotations

import argparse
import glob
import os
import time

import jax
import jax.numpy as jnp

import models_jax.detectors.memory_bank as memory_bank  # PatchCore selects its coreset here
import pyimgano
from models_jax.ops.coreset import random_projection

DEFAULT_ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "datasets", "mvtec_ad")


@jax.jit
def _dense_steps(proj, steps):
    sq = jnp.sum(proj * proj, axis=1)

    def body(_, carry):
        min_d, c = carry
        min_d = jnp.minimum(min_d, sq - 2.0 * proj @ proj[c] + sq[c])
        return min_d, jnp.argmax(min_d)

    return jax.lax.fori_loop(0, steps, body, (jnp.full(proj.shape[0], jnp.inf), 0))[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=DEFAULT_ROOT)
    parser.add_argument("--category", default="bottle")
    args = parser.parse_args()
    train = sorted(glob.glob(os.path.join(args.root, args.category, "train", "good", "*.png")))
    if not train:
        raise SystemExit(f"no training images under {args.root}/{args.category}/train/good")

    seen = {}
    greedy = memory_bank.greedy_coreset

    def timed(features, n, **kwargs):
        jax.block_until_ready(features)
        t0 = time.perf_counter()
        idx = jax.block_until_ready(greedy(features, n, **kwargs))
        seen.update(seconds=time.perf_counter() - t0, features=features, n=n)
        return idx

    memory_bank.greedy_coreset = timed
    try:
        pyimgano.fit("vision_patchcore", train)
    finally:
        memory_bank.greedy_coreset = greedy
    proj = random_projection(seen["features"], 128, key=jax.random.key(0))
    jax.block_until_ready(_dense_steps(proj, 500))
    t0 = time.perf_counter()
    jax.block_until_ready(_dense_steps(proj, 500))
    per_step = (time.perf_counter() - t0) / 500
    m = seen["features"].shape[0]
    print(f"| patches | centres | greedy_coreset s | dense step ms | dense loop s (extrapolated) |")
    print("|---:|---:|---:|---:|---:|")
    print(f"| {m} | {seen['n']} | {seen['seconds']:.1f} | {per_step * 1e3:.2f} | {per_step * seen['n']:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
