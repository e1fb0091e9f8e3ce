"""Scoring across hosts with ``jax.distributed``: one process per host, run here as 2 local processes.

    python examples/multihost_score.py            # launches 2 worker processes on this machine

Each process is one "host": it joins the JAX cluster (:func:`pyimgano.multihost.join`),
loads the same fitted state file, scores its own share of the frames on its local
devices (the same ``pyimgano.score`` call as on a single machine: the batch is sharded
over the process's local devices), and the per-frame records of all hosts are
exchanged (:meth:`~pyimgano.multihost.Cluster.exchange`, JAX's ``process_allgather``
underneath) so that process 0 prints them in input order as JSONL, the lines one
process would print. On a real cluster start one process per host with
``--coordinator HOST:PORT --num-processes N --process-id I`` (or let the scheduler's
environment drive :func:`~pyimgano.multihost.join`); on CPU the collectives use gloo.
For folders of images, ``pyimgano-infer --distributed`` does the same with every
record field (docs/scaling.md). Offline, about half a minute (a tiny random-weight
backbone keeps it fast).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import jax
import numpy as np

import pyimgano
from pyimgano import multihost


def _frames(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:64, 0:64] / 64.0
    base = 0.5 + 0.25 * np.sin(2 * np.pi * 3 * xx) * np.cos(2 * np.pi * 2 * yy)
    frames = np.clip((base[None, ..., None] + rng.normal(0, 0.02, (n, 64, 64, 3))) * 255, 0, 255).astype(np.uint8)
    frames[n // 2 :, 20:30, 20:30] = (255, 0, 255)  # the second half has a defect
    return frames


def records(state, frames: np.ndarray, indices) -> list[dict]:
    """``{index, score, label}`` of ``frames[indices]``, scored in batches of 4 (the same batches on every host)."""
    out = []
    for start in range(0, len(indices), 4):
        chunk = list(indices[start : start + 4])
        scores = np.asarray(pyimgano.score(state, frames[chunk], "rgb_u8_hwc"))
        out += [{"index": i, "score": float(s), "label": int(s > state.threshold)} for i, s in zip(chunk, scores)]
    return out


def worker(args) -> int:
    cluster = multihost.join(args.coordinator, args.num_processes, args.process_id)  # before any other JAX use
    state = pyimgano.load_state(args.state)
    frames = _frames(16, seed=1)
    batches = [list(range(b, min(b + 4, len(frames)))) for b in range(0, len(frames), 4)]
    own = [r for b in cluster.share(len(batches)) for r in records(state, frames, batches[b])]  # round-robin batches
    gathered = sorted((r for part in cluster.exchange(own) for r in part), key=lambda r: r["index"])
    if cluster.is_leader:
        print(f"# {cluster.size} processes x {jax.local_device_count()} local device(s)", file=sys.stderr)
        for record in gathered:
            print(json.dumps(record, sort_keys=True))
        alone = records(state, frames, range(len(frames)))  # what one process would print
        print(f"# same records as one process: {gathered == alone}; defect frames flagged: "
              f"{[r['index'] for r in gathered if r['label']]}", file=sys.stderr)
    multihost.leave(cluster)
    return 0


def launch(num_processes: int, port: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        train = _frames(16, seed=0)[:8]  # normal frames only
        state = pyimgano.fit("vision_patchcore", train, "rgb_u8_hwc", backbone="tiny_resnet", pretrained=False,
                             image_size=64, coreset_ratio=0.5)
        state = pyimgano.calibrate(state, _frames(32, seed=2)[:16], "rgb_u8_hwc")  # other normal frames
        path = pyimgano.save_state(state, Path(tmp) / "state.pyimgano")
        cmd = [sys.executable, __file__, "--state", str(path), "--coordinator", f"127.0.0.1:{port}",
               "--num-processes", str(num_processes)]
        procs = [subprocess.Popen(cmd + ["--process-id", str(i)]) for i in range(num_processes)]
        return max(p.wait() for p in procs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state", help="(worker) fitted state file")
    parser.add_argument("--coordinator", help="(worker) HOST:PORT of process 0")
    parser.add_argument("--num-processes", type=int, default=2)
    parser.add_argument("--process-id", type=int)
    parser.add_argument("--port", type=int, default=23457)
    args = parser.parse_args()
    if args.process_id is None:
        return launch(args.num_processes, args.port)
    return worker(args)


if __name__ == "__main__":
    raise SystemExit(main())
