"""A service that scores frames with an exported detector, without pyimgano.

    pyimgano-export --checkpoint-path state.safetensors -o exported/          # once, where pyimgano is installed
    python examples/serve_exported.py exported/ frames.npy                     # jax only (StableHLO)
    python examples/serve_exported.py exported/ a.png b.png --runtime onnx     # onnxruntime only

The service needs ``jax`` for ``model.stablehlo`` (or ``onnxruntime`` for ``model.onnx``),
``numpy``, and Pillow to decode image files; it never imports pyimgano or the detector
code: ``export.json`` says what the artifact takes (``u8[B, H, W, 3]`` RGB frames of a fixed
batch and size) and the threshold that turns a score into a label. Prints one JSON line
per frame: ``{"input", "score", "label", "map_max"}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def load_frames(paths: list[str]) -> tuple[list[str], np.ndarray]:
    """RGB u8 HWC frames from ``.npy`` files (``u8[H, W, 3]`` or ``u8[N, H, W, 3]``) or image files."""
    names, frames = [], []
    for path in paths:
        if path.endswith(".npy"):
            array = np.load(path)
            array = array[None] if array.ndim == 3 else array
            names += [f"{path}[{i}]" for i in range(len(array))]
            frames += list(array)
        else:
            from PIL import Image  # only for image files

            with Image.open(path) as image:
                frames.append(np.asarray(image.convert("RGB")))
            names.append(path)
    return names, np.stack(frames).astype(np.uint8)


class StableHLOScorer:
    """``model.stablehlo`` through ``jax.export``: compiled once per process, then called per batch."""

    def __init__(self, folder: Path):
        import jax

        self.exported = jax.export.deserialize(bytearray((folder / "model.stablehlo").read_bytes()))

    def __call__(self, frames: np.ndarray):
        scores, maps = self.exported.call(frames)
        return np.asarray(scores), np.asarray(maps)


class OnnxScorer:
    """``model.onnx`` through onnxruntime (input ``frames``, outputs ``scores`` and ``maps``)."""

    def __init__(self, folder: Path):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(str(folder / "model.onnx"), options,
                                                    providers=["CPUExecutionProvider"])

    def __call__(self, frames: np.ndarray):
        scores, maps = self.session.run(["scores", "maps"], {"frames": frames})
        return scores, maps


def score_all(scorer, frames: np.ndarray, batch: int):
    """Scores and maps of any number of frames: fixed batches, the last padded by repeating a frame."""
    scores, maps = [], []
    for start in range(0, len(frames), batch):
        chunk = frames[start : start + batch]
        valid = len(chunk)
        if valid < batch:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - valid, axis=0)])
        s, m = scorer(chunk)
        scores.append(s[:valid])
        maps.append(m[:valid])
    return np.concatenate(scores), np.concatenate(maps)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="a pyimgano-export output folder (export.json beside the artifacts)")
    parser.add_argument("inputs", nargs="+", help=".npy frame arrays or image files")
    parser.add_argument("--runtime", choices=("stablehlo", "onnx"), default="stablehlo")
    args = parser.parse_args(argv)
    folder = Path(args.folder)
    manifest = json.loads((folder / "export.json").read_text())
    batch, height, width, _ = manifest["input"]["shape"]
    names, frames = load_frames(args.inputs)
    if frames.shape[1:3] != (height, width):
        raise SystemExit(f"the artifact takes {height}x{width} frames, got {frames.shape[1]}x{frames.shape[2]}")
    scorer = StableHLOScorer(folder) if args.runtime == "stablehlo" else OnnxScorer(folder)
    scores, maps = score_all(scorer, frames, batch)
    threshold = manifest["threshold"]
    for name, score, amap in zip(names, scores, maps):
        record = {"input": name, "score": float(score), "map_max": float(amap.max())}
        if threshold is not None:
            record["label"] = int(score > threshold)
        print(json.dumps(record, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
