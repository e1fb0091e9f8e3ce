"""Where a PatchCore fit and predict hold their memory: resident memory after each phase, and the
working memory (XLA's temp buffers) of the programs that run in them.

Runs the peer benchmark's work in this one process (MVTec bottle, resize 256 / crop 224,
EfficientNet-Lite0 with the packaged ImageNet weights, batches of 16, coreset 0.1) and prints:

- per phase, ``VmRSS`` after it and ``VmHWM`` (the peak so far) of this process;
- per compiled program, ``temp MiB`` from ``compiled.memory_analysis()`` (the buffers XLA
  allocates while it runs, on top of its arguments and outputs).

    python benchmarks/peak_memory.py [--root ../shared/datasets/mvtec_ad] [--category bottle]

Use it with ``benchmarks/peer_anomalib.py``, whose ``peak RSS`` column is the whole process's
``VmHWM`` (``docs/performance.md``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _status() -> dict[str, int]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS", "VmHWM")):
            key, value = line.split(":")
            out[key] = int(value.split()[0]) // 1024
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default=str(HERE.parent.parent / "shared" / "datasets" / "mvtec_ad"))
    p.add_argument("--category", default="bottle")
    args = p.parse_args(argv)

    t0 = time.perf_counter()
    phases: list[tuple[str, float, dict]] = []

    def mark(name: str) -> None:
        phases.append((name, time.perf_counter() - t0, _status()))

    import cv2
    import jax
    import jax.numpy as jnp
    import numpy as np

    import pyimgano
    from models_jax.detectors import patchcore
    from models_jax.ops import coreset
    from pyimgano.datasets import load_mvtec_split
    from pyimgano.inputs import load_image
    from pyimgano.scoring import run_predict

    mark("imports (jax, pyimgano)")

    def crop(path):
        return np.ascontiguousarray(cv2.resize(load_image(path), (256, 256), interpolation=cv2.INTER_AREA)[16:240, 16:240])

    split = load_mvtec_split(args.root, args.category)
    train = np.stack([crop(path) for path in split.train_paths])
    test = np.stack([crop(path) for path in split.test_paths])
    mark(f"decoded {len(train)} + {len(test)} images")
    kwargs = dict(backbone="efficientnet_lite0", image_size=224, batch_size=16, coreset_ratio=0.1)
    state = pyimgano.fit("vision_patchcore", train, "rgb_u8_hwc", **kwargs)
    jax.block_until_ready(state.model)
    mark("fit (features + coreset)")
    pyimgano.predict(state, test[:16], "rgb_u8_hwc")
    mark("predict: batch of 16 compiled and run")
    pyimgano.predict(state, test, "rgb_u8_hwc")
    mark(f"predict: {len(test)} images")

    model, config = state.model, state.model.config
    batch = jax.ShapeDtypeStruct((16, 224, 224, 3), jnp.float32)
    rows = 209 * 784
    points = jax.ShapeDtypeStruct((rows, 128), jnp.float32)
    vector = jax.ShapeDtypeStruct((rows,), jnp.float32)
    programs = {
        "embed (fit, batch 16)": patchcore._embed.lower(config, model.backbone_variables, batch),
        "predict (batch 16)": run_predict.lower(state.detector, model, batch, (224, 224), frozenset()),
        "coreset refresh (164k rows)": coreset._refresh.lower(
            points, vector, vector, jax.ShapeDtypeStruct((rows // 10,), jnp.int32),
            jax.ShapeDtypeStruct((2,), jnp.int32), 64),
    }
    temps = {name: lowered.compile().memory_analysis().temp_size_in_bytes / 2**20 for name, lowered in programs.items()}

    print("| phase | seconds | RSS MiB | peak so far MiB |")
    print("|---|---:|---:|---:|")
    for name, seconds, status in phases:
        print(f"| {name} | {seconds:.1f} | {status['VmRSS']} | {status['VmHWM']} |")
    print()
    print("| program | XLA temp MiB |")
    print("|---|---:|")
    for name, mib in temps.items():
        print(f"| {name} | {mib:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
