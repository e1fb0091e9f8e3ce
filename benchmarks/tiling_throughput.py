"""Throughput of tiled PatchCore on a 2048x2048 frame (tiles/s and frames/s), 1 and 2 CPU devices.

Setup: PatchCore (efficientnet_lite0 with the packaged ImageNet weights when
available, else a random init; ``--backbone tiny_resnet`` for a smoke run) fitted
on 512x512 crops; ``TiledDetector(tile_size=512, stride=384, map_reduce=hann)``
-> 25 tiles per frame, each resized to ``--image-size`` on the device, all tiles
of a batch in one jit-compiled call, split over the local devices. The first
call (compilation) is reported separately and excluded from the rates.

Usage (repo root, project venv):

    python benchmarks/tiling_throughput.py                 # runs 1 and 2 devices, prints a table
    python benchmarks/tiling_throughput.py --devices 2     # one configuration only

Each device count runs in its own process (the host device count is fixed when
JAX starts).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SIZE, TILE, STRIDE = 2048, 512, 384


def _parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=None, help="run one device count (default: 1 and 2)")
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--image-size", type=int, default=224, help="detector input size per tile")
    parser.add_argument("--frames", type=int, default=2, help="frames per jitted call (batch_size)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls after the compile call")
    parser.add_argument("--maps", choices=("on", "off"), default="on", help="stitch maps (on) or scores only")
    parser.add_argument("--json", action="store_true", help="print one JSON line (used by the parent run)")
    return parser.parse_args(argv)


def _worker(args: argparse.Namespace) -> dict:
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={args.devices}"
    import jax
    import numpy as np

    import pyimgano
    from models_jax.backbones import get_backbone_spec
    from pyimgano.inference.tiling import TiledDetector

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / 64.0
    base = 0.55 + 0.15 * np.sin(2 * np.pi * xx) * np.cos(2 * np.pi * yy)
    frame = np.clip(255 * (base[..., None] * [1.0, 0.95, 0.85] + rng.normal(0, 0.02, (SIZE, SIZE, 3))), 0, 255)
    frame = frame.astype(np.uint8)
    crops = np.stack([frame[y : y + TILE, x : x + TILE] for y in (0, 768, 1536) for x in (0, 768, 1536)])

    pretrained = get_backbone_spec(args.backbone).has_pretrained
    try:
        state = pyimgano.fit(
            "vision_patchcore", crops, "rgb_u8_hwc", backbone=args.backbone, pretrained=pretrained,
            image_size=args.image_size, coreset_ratio=0.1,
        )
    except Exception as exc:  # packaged weights missing -> random init, said in the table
        print(f"pretrained weights unavailable ({exc}); using a random init", file=sys.stderr)
        pretrained = False
        state = pyimgano.fit(
            "vision_patchcore", crops, "rgb_u8_hwc", backbone=args.backbone, pretrained=False,
            image_size=args.image_size, coreset_ratio=0.1,
        )
    tiled = TiledDetector(state, tile_size=TILE, stride=STRIDE, map_reduce="hann", batch_size=args.frames)
    tiles_per_frame = tiled.plan_for(SIZE, SIZE).num_tiles
    batch = np.stack([frame] * args.frames)
    want_maps = args.maps == "on"

    start = time.perf_counter()
    scores, maps = tiled.tiled_predict(batch, want_maps=want_maps)
    compile_s = time.perf_counter() - start
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        scores, maps = tiled.tiled_predict(batch, want_maps=want_maps)
        times.append(time.perf_counter() - start)
    best = min(times)
    return {
        "devices": jax.local_device_count(),
        "backbone": args.backbone + (" (ImageNet)" if pretrained else " (random init)"),
        "image_size": args.image_size,
        "memory_bank": int(state.model.memory_bank.shape[0]),
        "frames_per_call": args.frames,
        "tiles_per_frame": tiles_per_frame,
        "maps": want_maps,
        "first_call_s": round(compile_s, 2),
        "best_call_s": round(best, 3),
        "median_call_s": round(sorted(times)[len(times) // 2], 3),
        "frames_per_s": round(args.frames / best, 3),
        "tiles_per_s": round(args.frames * tiles_per_frame / best, 2),
    }


def main(argv=None) -> int:
    args = _parse(argv)
    if args.devices is not None:
        row = _worker(args)
        print(json.dumps(row) if args.json else "\n".join(f"{k}: {v}" for k, v in row.items()))
        return 0
    rows = []
    for devices in (1, 2):
        cmd = [
            sys.executable, str(Path(__file__).resolve()), "--devices", str(devices), "--json",
            "--backbone", args.backbone, "--image-size", str(args.image_size), "--frames", str(args.frames),
            "--repeats", str(args.repeats), "--maps", args.maps,
        ]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _cpu import cpu_peak_gflops

    print(f"tiled PatchCore, {SIZE}x{SIZE} frame, tile {TILE} / stride {STRIDE} / hann; {cpu_peak_gflops()[0]}")
    print(f"backbone {rows[0]['backbone']}, input {rows[0]['image_size']}, memory bank {rows[0]['memory_bank']} rows")
    header = ("devices", "frames/call", "tiles/frame", "maps", "first call s", "best call s", "frames/s", "tiles/s")
    print(" | ".join(header))
    for r in rows:
        print(
            " | ".join(
                str(v)
                for v in (
                    r["devices"], r["frames_per_call"], r["tiles_per_frame"], r["maps"], r["first_call_s"],
                    r["best_call_s"], r["frames_per_s"], r["tiles_per_s"],
                )
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
