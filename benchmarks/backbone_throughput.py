"""Backbone throughput on CPU: Flax (jit, 1 and 2 host devices) next to PyTorch.

Each backbone runs the forward pass the detectors use -- up to its stride-16
tap, returning the stride-8 and stride-16 taps (Lite0/1/2 ``stage3``/``stage5``,
ResNets ``layer2``/``layer3``) -- on a batch of random 224x224 images with
random weights (speed does not depend on the values).  Reported: images/s
from the median of ``--repeats`` timed calls after one warm-up call.

- ``jax 1 dev``: ``jax.jit`` on the first host device.
- ``jax 2 dev``: the batch sharded over two host devices with
  ``jax.sharding.NamedSharding`` (``--xla_force_host_platform_device_count=2``,
  set here before jax is imported); needs an even batch.
- ``torch``: the reference PyTorch model (``efficientnet_lite_pytorch`` for
  the Lites, torchvision for the ResNets) truncated at the same depth, NCHW,
  ``torch.inference_mode``, ``torch.set_num_threads(os.cpu_count())``, denormals
  flushed to zero as XLA does.  "n/a"
  when torch or the model's package is not importable; ``--torch-python``
  runs the torch side in another interpreter (e.g. one with torchvision).

Usage (repo root)::

    /work/main/.venv-torch/bin/python benchmarks/backbone_throughput.py \\
        --torch-python /work/main/.venv-tv/bin/python

Prints a markdown table.  The numbers are only comparable on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

DEFAULT_BACKBONES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "resnet18", "wide_resnet50_2")
# The detectors' stride-8 / stride-16 taps; the forward stops after the second.
DETECTOR_TAPS = {
    "efficientnet_lite0": ("stage3", "stage5"),
    "efficientnet_lite1": ("stage3", "stage5"),
    "efficientnet_lite2": ("stage3", "stage5"),
    "resnet18": ("layer2", "layer3"),
    "wide_resnet50_2": ("layer2", "layer3"),
}


def _parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", default=",".join(DEFAULT_BACKBONES))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--torch-python", default=None, help="interpreter to run the torch measurements in")
    parser.add_argument("--torch-only", action="store_true", help=argparse.SUPPRESS)  # child mode: JSON out
    args = parser.parse_args(argv)
    args.backbones = tuple(b for b in args.backbones.split(",") if b)
    unknown = [b for b in args.backbones if b not in DETECTOR_TAPS]
    if unknown:
        parser.error(f"unknown backbone(s) {unknown}; accepted: {list(DETECTOR_TAPS)}")
    if args.batch < 2 or args.batch % 2:
        parser.error(f"--batch must be even and >= 2 (it is split over 2 devices), got {args.batch}")
    return args


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: compilation / allocator
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# ----------------------------------------------------------------------------- torch


def _torch_model(name: str):
    """A callable NCHW tensor -> tensor running the reference model up to the stride-16 tap."""
    if name.startswith("efficientnet_lite"):
        from efficientnet_lite_pytorch import EfficientNet

        model = EfficientNet.from_name(name.replace("_", "-"), image_size=None).eval()
        # The end of block group 5 (stage5): Lite0 1 + 2 + 2 + 3 + 3 blocks, Lite1/2 1 + 3 + 3 + 4 + 4.
        last_block = 11 if name == "efficientnet_lite0" else 15

        def forward(x):
            x = model._swish(model._bn0(model._conv_stem(x)))
            for block in model._blocks[:last_block]:
                x = block(x, drop_connect_rate=None)
            return x

        return forward
    import torchvision

    model = getattr(torchvision.models, name)(weights=None).eval()

    def forward(x):
        x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        return model.layer3(model.layer2(model.layer1(x)))

    return forward


def torch_images_per_second(args) -> dict[str, float | None]:
    """``{backbone: images/s or None}``; None where torch or the model's package is missing."""
    try:
        import torch
    except ImportError:
        return {name: None for name in args.backbones}
    torch.set_num_threads(os.cpu_count() or 1)
    # XLA's CPU backend flushes denormals to zero; without the same, random-weight torch models
    # spend up to half their time on denormal arithmetic (measured 2x on Lite0 here).
    torch.set_flush_denormal(True)
    results: dict[str, float | None] = {}
    x = torch.randn(args.batch, 3, args.size, args.size)
    for name in args.backbones:
        try:
            forward = _torch_model(name)
        except ImportError:
            results[name] = None
            continue
        with torch.inference_mode():
            seconds = _median_seconds(lambda: forward(x), args.repeats)
        results[name] = args.batch / seconds
    return results


def _torch_results(args) -> tuple[dict[str, float | None], str]:
    if args.torch_python is None:
        try:
            import torch

            version = torch.__version__
        except ImportError:
            version = "not installed"
        return torch_images_per_second(args), version
    cmd = [args.torch_python, __file__, "--torch-only", "--backbones", ",".join(args.backbones),
           "--batch", str(args.batch), "--size", str(args.size), "--repeats", str(args.repeats)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    payload = json.loads(out.strip().splitlines()[-1])
    return payload["results"], payload["version"]


# ----------------------------------------------------------------------------- jax


def jax_images_per_second(args) -> dict[str, tuple[float, float]]:
    """``{backbone: (images/s on 1 device, images/s on 2 devices)}``."""
    import jax
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    from models_jax.backbones import build_backbone, init_backbone_variables

    devices = jax.devices()
    if len(devices) < 2:
        raise SystemExit(f"need 2 host devices, jax sees {devices}; is XLA_FLAGS overridden?")
    mesh = Mesh(np.asarray(devices[:2]), ("batch",))
    batch_sharded = NamedSharding(mesh, PartitionSpec("batch"))
    replicated = NamedSharding(mesh, PartitionSpec())
    images = np.random.default_rng(0).standard_normal((args.batch, args.size, args.size, 3)).astype(np.float32)
    results = {}
    for name in args.backbones:
        module = build_backbone(name)
        taps = DETECTOR_TAPS[name]
        variables = init_backbone_variables(name, key=jax.random.key(0))
        forward = jax.jit(lambda v, x: module.apply(v, x, taps=taps))

        one_v = jax.device_put(variables, devices[0])
        one_x = jax.device_put(images, devices[0])
        one = _median_seconds(lambda: jax.block_until_ready(forward(one_v, one_x)), args.repeats)

        two_v = jax.device_put(variables, replicated)
        two_x = jax.device_put(images, batch_sharded)
        two = _median_seconds(lambda: jax.block_until_ready(forward(two_v, two_x)), args.repeats)
        results[name] = (args.batch / one, args.batch / two)
    return results


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def main(argv=None) -> int:
    args = _parse(argv)
    if args.torch_only:
        results = torch_images_per_second(args)
        try:
            import torch

            version = torch.__version__
        except ImportError:
            version = "not installed"
        print(json.dumps({"results": results, "version": version}))
        return 0
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
    ).strip()
    torch_results, torch_version = _torch_results(args)
    jax_results = jax_images_per_second(args)

    import jax

    print(
        f"Backbone throughput, images/s, batch {args.batch} at {args.size}x{args.size}, forward to the stride-16 tap, "
        f"median of {args.repeats}; jax {jax.__version__}, torch {torch_version}, {os.cpu_count()} CPU cores\n"
    )
    print("| backbone | taps | jax jit, 1 device | jax jit, 2 devices (batch sharded) | torch CPU |")
    print("|---|---|---:|---:|---:|")
    for name in args.backbones:
        one, two = jax_results[name]
        taps = "/".join(DETECTOR_TAPS[name])
        print(f"| {name} | {taps} | {_fmt(one)} | {_fmt(two)} | {_fmt(torch_results.get(name))} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
