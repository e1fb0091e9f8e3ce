"""Scoring across hosts with ``jax.distributed``: one process per host, run here as 2 local processes.

    python examples/multihost_score.py            # launches 2 worker processes on this machine

Each process is one "host": it joins the JAX cluster, loads the same fitted
state file, scores its own share of the frames on its local devices (the same
``pyimgano.score`` call as on a single machine: the batch is sharded over the
process's local devices), and the scores of all hosts are gathered in input
order with ``process_allgather``.  On a real cluster start one process per host
with ``--coordinator HOST:PORT --num-processes N --process-id I``; on CPU the
collectives need ``jax_cpu_collectives_implementation="gloo"``.  Offline, about
half a minute (a tiny random-weight backbone keeps it fast).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def _frames(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:64, 0:64] / 64.0
    base = 0.5 + 0.25 * np.sin(2 * np.pi * 3 * xx) * np.cos(2 * np.pi * 2 * yy)
    frames = np.clip((base[None, ..., None] + rng.normal(0, 0.02, (n, 64, 64, 3))) * 255, 0, 255).astype(np.uint8)
    frames[n // 2 :, 20:30, 20:30] = (255, 0, 255)  # the second half has a defect
    return frames


def worker(args) -> int:
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(args.coordinator, num_processes=args.num_processes, process_id=args.process_id)
    from jax.experimental import multihost_utils

    import pyimgano

    state = pyimgano.load_state(args.state)
    frames = _frames(16, seed=1)
    share = np.array_split(np.arange(len(frames)), jax.process_count())[jax.process_index()]
    local = np.asarray(pyimgano.score(state, frames[share], "rgb_u8_hwc"))
    gathered = multihost_utils.process_allgather(np.pad(local, (0, 8 - len(local))))  # equal shapes per host
    scores = np.concatenate([g[: len(s)] for g, s in zip(gathered, np.array_split(np.arange(16), jax.process_count()))])
    if jax.process_index() == 0:
        print(f"{jax.process_count()} processes x {jax.local_device_count()} local device(s)")
        print("scores:", [round(float(s), 3) for s in scores])
        print("defect frames score higher:", bool(scores[8:].min() > scores[:8].max()))
    jax.distributed.shutdown()
    return 0


def launch(num_processes: int, port: int) -> int:
    import pyimgano

    with tempfile.TemporaryDirectory() as tmp:
        train = _frames(16, seed=0)[:8]  # normal frames only
        state = pyimgano.fit("vision_patchcore", train, "rgb_u8_hwc", backbone="tiny_resnet", pretrained=False,
                             image_size=64, coreset_ratio=0.5)
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
