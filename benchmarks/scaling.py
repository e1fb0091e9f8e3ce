"""Scaling tables: PatchCore images/s vs CPU device count, and scoring latency vs memory-bank size.

The work (both tables): PatchCore with a **random-init** ``efficientnet_lite0`` backbone
(the cost of a forward pass does not depend on the weights) at 224x224, embedding width
152 (the default ``target_embed_dim``), fitted once with coreset 0.1 on 8 synthetic
textured 224x224 frames; it is scored with ``pyimgano.predict`` (scores and full-size
maps, host preparation and the copy back included) on synthetic 224x224 u8 frames, so no
resize runs. The first call (compilation) is reported apart and excluded from the rates.

(a) images/s vs CPU devices: the same state and frames in a fresh process per device
    count N (``XLA_FLAGS=--xla_force_host_platform_device_count=N``); the batch of
    ``--batch`` frames is split N ways (``pyimgano.devices``). Host devices share the
    machine's cores, so this measures the overhead of data-parallel scoring, not a
    speed-up: more devices only add speed with more cores (or real accelerators).
(b) latency vs bank size: the fitted bank replaced by synthetic rows ``f32[M, 152]``
    (the exact search costs the same for any values of that shape), one batch of
    ``--batch`` frames per call; the largest bank (``--shard-rows`` and up) has its rows
    sharded over ``--shard-devices`` host devices (``bank_sharding='on'``, the search
    reduced across them), the others are on one device. ``search GFLOP/image`` counts every
    chunk of the exact search: patches x M x D x 2.

Usage (repo root, project venv):

    python benchmarks/scaling.py                                   # both tables (a few minutes on 2 cores)
    python benchmarks/scaling.py --table devices --devices 1,2,8
    python benchmarks/scaling.py --table bank --rows 10000,100000,1000000
    python benchmarks/scaling.py --backbone tiny_resnet --image-size 32 --rows 1000,10000   # smoke run

Prints the load average at the start and end of every measurement: on a shared machine it
says how much of the CPU the run had.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--table", choices=("devices", "bank", "both"), default="both")
    p.add_argument("--devices", default="1,2,8", help="table (a): comma-separated host device counts")
    p.add_argument("--rows", default="10000,100000,1000000", help="table (b): comma-separated bank sizes")
    p.add_argument("--shard-rows", type=int, default=1_000_000, help="table (b): shard banks of this many rows or more")
    p.add_argument("--shard-devices", type=int, default=8, help="table (b): host devices a sharded bank is split over")
    p.add_argument("--backbone", default="efficientnet_lite0")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--batch", type=int, default=8, help="frames per call (a multiple of every device count)")
    p.add_argument("--images", type=int, default=16, help="table (a): frames scored per timed repeat")
    p.add_argument("--repeats", type=int, default=2, help="timed repeats after the compile call (best is reported)")
    p.add_argument("--json", action="store_true", help="also print every row as one JSON line")
    # internal: one measurement in this process
    p.add_argument("--worker", choices=("fit", "devices", "bank"), default=None, help=argparse.SUPPRESS)
    p.add_argument("--state", default=None, help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--n-rows", type=int, default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _frames(n: int, size: int, seed: int):
    """Smooth textured RGB u8 frames ``u8[n, size, size, 3]`` (normal-looking parts) plus noise."""
    import numpy as np

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / 32.0
    base = 0.55 + 0.15 * np.sin(2 * np.pi * xx) * np.cos(2 * np.pi * yy)
    out = base[None, ..., None] * np.array([1.0, 0.95, 0.85]) + rng.normal(0, 0.03, (n, size, size, 3))
    return np.clip(255 * out, 0, 255).astype(np.uint8)


def _timed(fn, repeats: int) -> tuple[float, list[float]]:
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return first, times


def _worker(args: argparse.Namespace) -> dict:
    if args.worker != "fit":
        os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={args.n}"
    import jax
    import numpy as np

    import pyimgano
    from models_jax.detectors.patchcore import embed_patches
    from pyimgano.devices import sharded_fields

    load_start = os.getloadavg()[0]
    if args.worker == "fit":
        start = time.perf_counter()
        state = pyimgano.fit("vision_patchcore", _frames(8, args.image_size, 1), "rgb_u8_hwc", backbone=args.backbone,
                             pretrained=False, image_size=args.image_size, coreset_ratio=0.1, batch_size=args.batch)
        pyimgano.save_state(state, args.state)
        return {"fit_s": round(time.perf_counter() - start, 1), "bank_rows": int(state.model.memory_bank.shape[0])}

    state = pyimgano.load_state(args.state)
    config = state.config
    h, w, width = jax.eval_shape(lambda im: embed_patches(config, state.model.backbone_variables, im),
                                 jax.ShapeDtypeStruct((1, *config.image_size, 3), np.float32)).shape[1:]
    row = {"devices": jax.local_device_count(), "patches": h * w, "width": width, "batch": args.batch}
    if args.worker == "devices":
        frames = _frames(args.images, args.image_size, 7)
        first, times = _timed(lambda: pyimgano.predict(state, frames, "rgb_u8_hwc", batch_size=args.batch),
                              args.repeats)
        row.update(bank_rows=int(state.model.memory_bank.shape[0]), images=args.images, first_call_s=round(first, 1),
                   best_s=round(min(times), 3), images_per_s=round(args.images / min(times), 2))
    else:
        import attrs

        rows = args.n_rows
        bank = np.random.default_rng(3).standard_normal((rows, width), dtype=np.float32)
        sharding = "on" if jax.local_device_count() > 1 else "off"
        state = pyimgano.place_state(attrs.evolve(state, model=attrs.evolve(state.model, memory_bank=bank)),
                                     bank_sharding=sharding)
        del bank
        sharded = "memory_bank" in sharded_fields(state.model)
        frames = _frames(args.batch, args.image_size, 7)
        first, times = _timed(lambda: pyimgano.predict(state, frames, "rgb_u8_hwc", batch_size=args.batch),
                              args.repeats)
        per_device = -(-rows // jax.local_device_count()) if sharded else rows
        row.update(bank_rows=rows, bank_sharded=sharded, bank_mib_per_device=round(per_device * width * 4 / 2**20, 1),
                   first_call_s=round(first, 1), best_s=round(min(times), 3),
                   ms_per_image=round(1000 * min(times) / args.batch, 1),
                   search_gflop_per_image=round(h * w * rows * width * 2 / 1e9, 2))
    row["load_avg_1min"] = [round(load_start, 2), round(os.getloadavg()[0], 2)]
    return row


def _run_worker(args: argparse.Namespace, worker: str, n: int | None = None, rows: int | None = None) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", worker, "--state", args.state,
           "--backbone", args.backbone, "--image-size", str(args.image_size), "--batch", str(args.batch),
           "--images", str(args.images), "--repeats", str(args.repeats)]
    if n is not None:
        cmd += ["--n", str(n)]
    if rows is not None:
        cmd += ["--n-rows", str(rows)]
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(f"worker {worker} n={n} rows={rows} failed:\n{done.stderr[-4000:]}")
    row = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"  [{worker} n={n} rows={rows}] {json.dumps(row)}", file=sys.stderr, flush=True)
    return row


def _table(header: tuple[str, ...], lines: list[tuple]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" for _ in header) + "|"]
    out += ["| " + " | ".join(str(v) for v in line) + " |" for line in lines]
    return "\n".join(out)


def main(argv=None) -> int:
    args = _parse(argv)
    if args.worker is not None:
        print(json.dumps(_worker(args)))
        return 0
    sys.path.insert(0, str(HERE))
    from _cpu import cpu_peak_gflops

    started = time.time()
    print(f"machine: {cpu_peak_gflops()[0]}; load average at start {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        args.state = str(Path(tmp) / "state.safetensors")
        fit = _run_worker(args, "fit")
        print(f"PatchCore, {args.backbone} (random init) at {args.image_size}x{args.image_size}, fitted on 8 "
              f"synthetic frames in {fit['fit_s']} s (coreset 0.1 -> {fit['bank_rows']} bank rows); "
              f"pyimgano.predict, scores + full maps, {args.batch} frames per call, best of {args.repeats} "
              "timed repeats after the compile call", flush=True)
        rows_out = []
        if args.table in ("devices", "both"):
            rows = [_run_worker(args, "devices", n=int(n)) for n in args.devices.split(",")]
            rows_out += rows
            base = rows[0]["images_per_s"]
            print(f"\n(a) images/s vs host CPU devices ({args.images} frames per timed repeat, "
                  f"bank {rows[0]['bank_rows']} x {rows[0]['width']})")
            print(_table(("CPU devices", "frames per device per call", "first call s", "best s", "images/s",
                          "vs 1 device", "load avg (start, end)"),
                         [(r["devices"], args.batch // r["devices"], r["first_call_s"], r["best_s"], r["images_per_s"],
                           f"{r['images_per_s'] / base:.2f}x", "{}, {}".format(*r["load_avg_1min"])) for r in rows]))
        if args.table in ("bank", "both"):
            rows = []
            for m in (int(v) for v in args.rows.split(",")):
                n = args.shard_devices if m >= args.shard_rows else 1
                rows.append(_run_worker(args, "bank", n=n, rows=m))
            rows_out += rows
            base = rows[0]["ms_per_image"]
            print(f"\n(b) scoring latency vs memory-bank size (width {rows[0]['width']}, {rows[0]['patches']} "
                  f"patches per image, {args.batch} frames per call)")
            print(_table(("bank rows", "devices", "bank sharded", "bank MiB per device", "search GFLOP/image",
                          "first call s", "best s per call", "ms/image", "vs smallest", "load avg (start, end)"),
                         [(f"{r['bank_rows']:,}", r["devices"], "yes" if r["bank_sharded"] else "no",
                           r["bank_mib_per_device"], r["search_gflop_per_image"], r["first_call_s"], r["best_s"],
                           r["ms_per_image"], f"{r['ms_per_image'] / base:.1f}x",
                           "{}, {}".format(*r["load_avg_1min"])) for r in rows]))
    print(f"\ntotal {time.time() - started:.0f} s; load average at end {os.getloadavg()}")
    if args.json:
        for r in rows_out:
            print(json.dumps(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
