"""End-to-end ``pyimgano-infer`` on MVTec AD bottle: images/s and time to first record.

Runs the command line as a user would (one process per run) on bottle's 83 test
images with PatchCore on Lite0, reading ``--profile-json`` of each run:

1. ``--train-dir`` (fit + image-threshold calibration on the 209 training images), scores only;
2. the same with ``--include-maps --save-maps``;
3. the same with ``--defects --save-masks`` (fixed pixel threshold);
4. ``--from-run DIR`` of a saved state (written once by this script), scores only;
5. ``--infer-config`` of that state with ``--defects --save-masks``.

images/s = processed / (infer + artifacts); first record and total from the profile.

Usage (repo root, project venv; writes under a temporary folder)::

    python benchmarks/infer_cli_bottle.py [--root ../shared/datasets/mvtec_ad]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

DEFAULT_ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "datasets", "mvtec_ad")
SAVE_STATE = """
import glob, sys, pyimgano
from pyimgano.inference import calibrate_threshold
train = sorted(glob.glob(sys.argv[1] + "/*.png"))
state = calibrate_threshold(pyimgano.fit("vision_patchcore", train), train, quantile=0.995)
pyimgano.save_state(state, sys.argv[2])
"""


def run(label: str, argv: list[str], out: str) -> dict:
    profile = os.path.join(out, f"profile_{len(os.listdir(out))}.json")
    cmd = [sys.executable, "-m", "pyimgano.cli.infer", *argv, "--profile-json", profile]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    p = json.load(open(profile))
    s, c = p["seconds"], p["counts"]
    return dict(run=label, ips=c["processed"] / (s["infer"] + s["artifacts"]), first=s["first_record"], total=s["total"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=DEFAULT_ROOT)
    args = parser.parse_args()
    b = os.path.join(os.path.abspath(args.root), "bottle")
    train, test = os.path.join(b, "train", "good"), os.path.join(b, "test")
    with tempfile.TemporaryDirectory(prefix="pyimgano-cli-bench-") as out:
        prof = os.path.join(out, "profiles")
        os.makedirs(prof)
        fit = ["--model", "vision_patchcore", "--train-dir", train, "--input", test]
        rows = [
            run("--train-dir + score", fit + ["--save-jsonl", f"{out}/a.jsonl"], prof),
            run("--train-dir + --include-maps --save-maps", fit + ["--include-maps", "--save-maps", f"{out}/maps",
                                                                   "--save-jsonl", f"{out}/b.jsonl"], prof),
            run("--train-dir + --defects --save-masks (fixed)", fit + ["--defects", "--pixel-threshold", "0.5",
                                                                      "--save-masks", f"{out}/masks",
                                                                      "--save-jsonl", f"{out}/c.jsonl"], prof),
        ]
        run_dir = os.path.join(out, "run")
        os.makedirs(os.path.join(run_dir, "artifacts"))
        subprocess.run([sys.executable, "-c", SAVE_STATE, train, f"{run_dir}/artifacts/state.safetensors"], check=True)
        config = {"schema_version": 1, "model": {"name": "vision_patchcore", "checkpoint_path": "state.safetensors"},
                  "defects": {"pixel_threshold": 150.0}}
        with open(f"{run_dir}/artifacts/infer_config.json", "w") as fh:
            json.dump(config, fh)
        rows.append(run("--from-run (saved state) + score", ["--from-run", run_dir, "--input", test,
                                                               "--save-jsonl", f"{out}/d.jsonl"], prof))
        rows.append(run("--infer-config (saved state) + --defects --save-masks",
                        ["--infer-config", f"{run_dir}/artifacts/infer_config.json", "--input", test, "--defects",
                         "--save-masks", f"{out}/masks2", "--save-jsonl", f"{out}/e.jsonl"], prof))
    print("| run | images/s | time to first record s | total s |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['run']} | {r['ips']:.2f} | {r['first']:.1f} | {r['total']:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
