"""Load test: score 10,000 frames streamed from a generator in one process; record RSS and throughput.

A tiny PatchCore (tiny ResNet, 32 px input, random init: no weights needed) is fitted
on 8 frames; then ``pyimgano.inference.infer`` scores frames that a generator makes
one at a time (64 x 64 RGB, a new pattern each, every 50th with a defect), ``--batch-size``
at a time. The generator samples the process's resident set size (``VmRSS``) every
``--every`` frames, so the curve shows what the library holds while it streams; the
10,000 ``InferenceResult`` objects it returns are part of it (``--api score`` keeps
only an ``f32[N]`` of scores).

Prints a markdown table (RSS and throughput per window after the warm-up, the RSS slope)
and, with ``--plot PNG``, draws the curve (needs matplotlib: ``pip install 'pyimgano[plots]'``).

Usage (repo root, project venv)::

    python benchmarks/rss_stream.py [--frames 10000] [--batch-size 32] [--json out.json] [--plot docs/rss_stream.png]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _cpu import cpu_peak_gflops  # noqa: E402

TINY = dict(backbone="tiny_resnet", pretrained=False, image_size=32, pretrain_embed_dim=16, target_embed_dim=16,
            coreset_ratio=0.5, batch_size=4)


def rss_mib() -> float:
    """Resident set size of this process in MiB (Linux ``/proc/self/status``)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS in /proc/self/status (this benchmark reads Linux's process status)")


def frame(i: int, size: int = 64) -> np.ndarray:
    """A textured RGB frame (u8[size, size, 3]) that differs for every ``i``; every 50th has a defect."""
    yy, xx = np.mgrid[0:size, 0:size] / float(size)
    base = 0.5 + 0.25 * np.sin(2 * np.pi * (3 * xx + 0.001 * i)) * np.cos(2 * np.pi * 2 * yy)
    img = (np.stack([base, base * 0.9, base * 0.8], axis=-1) * 255).astype(np.uint8)
    if i % 50 == 0:
        img[20:28, 30:38] = (255, 0, 255)
    return img


def run(frames: int, batch_size: int, every: int, api: str = "infer") -> dict:
    import pyimgano
    from pyimgano.inference import infer

    state = pyimgano.fit("vision_patchcore", np.stack([frame(-1 - k) for k in range(8)]), "rgb_u8_hwc", **TINY)
    samples: list[tuple[int, float, float]] = []  # (frames produced, seconds, RSS MiB)
    start = time.perf_counter()

    def stream():
        for i in range(frames):
            if i % every == 0:
                samples.append((i, time.perf_counter() - start, rss_mib()))
            yield frame(i)
        samples.append((frames, time.perf_counter() - start, rss_mib()))

    if api == "infer":
        results = infer(state, stream(), input_format="rgb_u8_hwc", batch_size=batch_size)
        scores = np.array([r.score for r in results])
    else:  # scores only: f32[N], nothing else is kept
        scores = np.asarray(pyimgano.score(state, stream(), "rgb_u8_hwc", batch_size=batch_size))
    assert len(scores) == frames and np.isfinite(scores).all()
    return {"frames": frames, "batch_size": batch_size, "api": api, "samples": samples,
            "scores_mean": float(scores.mean())}


def summarise(result: dict, warmup: int, window: int) -> dict:
    samples = result["samples"]
    after = [s for s in samples if s[0] >= warmup]
    rss = np.array([s[2] for s in after])
    n = np.array([s[0] for s in after], float)
    slope = float(np.polyfit(n / 1000.0, rss, 1)[0]) if len(after) > 2 else float("nan")
    rates = []
    by_frame = {s[0]: s for s in samples}
    for lo in range(warmup, result["frames"], window):
        hi = min(lo + window, result["frames"])
        if lo in by_frame and hi in by_frame and hi > lo:
            rates.append((lo, hi, (hi - lo) / (by_frame[hi][1] - by_frame[lo][1]), by_frame[hi][2]))
    return {"rss_start": float(samples[0][2]), "rss_after_warmup": float(rss[0]), "rss_end": float(rss[-1]),
            "rss_min": float(rss.min()), "rss_max": float(rss.max()), "slope_mib_per_1000": slope, "windows": rates}


def _label(result: dict) -> str:
    return "pyimgano.inference.infer" if result.get("api", "infer") == "infer" else "pyimgano.score"


def plot(runs: list[tuple[dict, dict]], warmup: int, path: str) -> None:
    """RSS (top) and throughput per window (bottom) of one or more runs ``(result, summary)``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"(no plot: matplotlib is not installed; pip install 'pyimgano[plots]' to draw {path})")
        return
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.4, 4.2), sharex=True, dpi=80)
    peak_rss = peak_rate = 0.0
    for result, summary in runs:
        n = [s[0] for s in result["samples"]]
        rss = [s[2] for s in result["samples"]]
        top.plot(n, rss, lw=1.2, label=_label(result))
        mids = [(lo + hi) / 2 for lo, hi, _, _ in summary["windows"]]
        rates = [r for _, _, r, _ in summary["windows"]]
        bottom.plot(mids, rates, marker="o", ms=3, lw=1, label=_label(result))
        peak_rss, peak_rate = max(peak_rss, max(rss)), max(peak_rate, max(rates))
    top.axvline(warmup, color="grey", ls=":", lw=1)
    top.set_ylabel("RSS (MiB)")
    top.set_ylim(0, peak_rss * 1.15)
    top.legend(fontsize=8, loc="lower right")
    result = runs[0][0]
    top.set_title(f"{result['frames']} frames streamed from a generator, one process (batch {result['batch_size']})",
                  fontsize=9)
    bottom.set_ylabel("frames / s")
    bottom.set_xlabel("frames scored")
    bottom.set_ylim(0, peak_rate * 1.2)
    fig.tight_layout()
    fig.savefig(path)
    print(f"plot written to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--every", type=int, default=100, help="sample RSS every N frames")
    parser.add_argument("--warmup", type=int, default=1000, help="frames before the curve is judged")
    parser.add_argument("--window", type=int, default=1000, help="frames per throughput window")
    parser.add_argument("--api", choices=("infer", "score"), default="infer",
                        help="pyimgano.inference.infer (InferenceResult per frame) or pyimgano.score (f32[N])")
    parser.add_argument("--json", default=None, help="write the samples and summary here")
    parser.add_argument("--plot", default=None, help="draw the curve into this PNG (needs matplotlib)")
    parser.add_argument("--overlay", action="append", default=[], metavar="JSON",
                        help="also draw a run saved earlier with --json (repeatable)")
    args = parser.parse_args()

    result = run(args.frames, args.batch_size, args.every, args.api)
    summary = summarise(result, args.warmup, args.window)
    desc, _ = cpu_peak_gflops()
    print(f"machine: {desc}; python {platform.python_version()}")
    print(f"\nRSS: {summary['rss_start']:.0f} MiB at start, {summary['rss_after_warmup']:.0f} MiB after "
          f"{args.warmup} frames, {summary['rss_end']:.0f} MiB at {args.frames}; after warm-up min "
          f"{summary['rss_min']:.0f} / max {summary['rss_max']:.0f} MiB, slope "
          f"{summary['slope_mib_per_1000']:+.2f} MiB per 1000 frames\n")
    print("| frames | frames/s | RSS at end (MiB) |\n|---|---:|---:|")
    for lo, hi, rate, rss in summary["windows"]:
        print(f"| {lo}-{hi} | {rate:.0f} | {rss:.0f} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump({"result": result, "summary": summary}, out, indent=1)
    if args.plot:
        runs = [(result, summary)]
        for path in args.overlay:
            with open(path, encoding="utf-8") as saved:
                earlier = json.load(saved)
            runs.append((earlier["result"], earlier["summary"]))
        plot(runs, args.warmup, args.plot)


if __name__ == "__main__":
    main()
