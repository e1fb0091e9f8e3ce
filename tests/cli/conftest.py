"""Tiny images, one fitted tiny PatchCore checkpoint, and an in-process runner for CLI tests."""

import io
import json

import cv2
import numpy as np
import pytest

import pyimgano
from pyimgano.cli.infer import main

def write_png(path, frame) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    # imencode + write_bytes: cv2.imwrite cannot write unicode paths on every platform.
    ok, buf = cv2.imencode(".png", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    assert ok
    path.write_bytes(buf.tobytes())
    return str(path)


@pytest.fixture(scope="session")
def make_frame_fn(frames_factory, defect):
    """``make_frame_fn(seed, size=32, defect=False)`` -> u8[size, size, 3] RGB; a defect is an 8x8 magenta square."""

    paint = defect

    def make_frame(seed: int, size: int = 32, defect: bool = False) -> np.ndarray:
        frame = frames_factory(1, size=size, seed=seed)[0]
        return paint(frame, size=8) if defect else frame

    return make_frame


@pytest.fixture(scope="session")
def image_dirs(tmp_path_factory, make_frame_fn):
    """``{"train": dir of 6 normal PNGs, "test": dir with 2 normal + 1 defective PNG}``."""
    make_frame = make_frame_fn
    root = tmp_path_factory.mktemp("cli_images")
    for i in range(6):
        write_png(root / "train" / f"good_{i}.png", make_frame(i))
    write_png(root / "test" / "a_good.png", make_frame(100))
    write_png(root / "test" / "b_good.png", make_frame(101))
    write_png(root / "test" / "c_bad.png", make_frame(102, defect=True))
    return {"root": root, "train": str(root / "train"), "test": str(root / "test")}


@pytest.fixture(scope="session")
def checkpoint(image_dirs, tmp_path_factory, tiny_patchcore_kwargs):
    """A fitted tiny PatchCore state file with a calibrated threshold."""
    import glob

    train = sorted(glob.glob(image_dirs["train"] + "/*.png"))
    state = pyimgano.fit("vision_patchcore", train, **tiny_patchcore_kwargs)
    from pyimgano.inference import calibrate_threshold

    state = calibrate_threshold(state, train, quantile=0.995)
    path = tmp_path_factory.mktemp("cli_ckpt") / "tiny.safetensors"
    pyimgano.save_state(state, path)
    return str(path)


class Run:
    """Result of one in-process ``main`` call."""

    def __init__(self, code, out, err):
        self.code = code
        self.out = out
        self.err = err

    def records(self, path=None):
        text = open(path, encoding="utf-8").read() if path is not None else self.out
        return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="session")
def run_cli():
    """``run_cli(*argv)`` -> :class:`Run` with the exit code and captured stdout/stderr."""

    def run(*argv):
        out, err = io.StringIO(), io.StringIO()
        code = main([str(a) for a in argv], stdout=out, stderr=err)
        return Run(code, out.getvalue(), err.getvalue())

    return run


@pytest.fixture(scope="session")
def write_png_fn():
    """``write_png_fn(path, frame)`` writes an RGB frame as PNG (parents created); returns the path."""
    return write_png
