"""Tiny fitted detectors and frames for inference-layer tests (fast: 32x32 images, tiny backbone)."""

import numpy as np
import pytest

PATCHCORE_TINY = dict(
    backbone="tiny_resnet",
    pretrained=False,
    image_size=32,
    pretrain_embed_dim=16,
    target_embed_dim=16,
    coreset_ratio=0.5,
    batch_size=4,
)


def make_frames(n: int, size=32, seed: int = 0) -> np.ndarray:
    """Smooth textured RGB u8 frames (normal parts), ``u8[n, h, w, 3]``."""
    h, w = (size, size) if isinstance(size, int) else size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / 32.0
    frames = []
    for _ in range(n):
        phase = rng.uniform(0, 0.3)
        base = 0.5 + 0.25 * np.sin(2 * np.pi * (3 * xx + phase)) * np.cos(2 * np.pi * 2 * yy)
        img = np.stack([base, base * 0.9, base * 0.8], axis=-1) + rng.normal(0, 0.02, (h, w, 3))
        frames.append(np.clip(img * 255, 0, 255).astype(np.uint8))
    return np.stack(frames)


def add_defect(frame: np.ndarray, y: int, x: int, size: int = 6) -> np.ndarray:
    out = frame.copy()
    out[y : y + size, x : x + size] = (255, 0, 255)
    return out


@pytest.fixture(scope="session")
def frames_factory():
    """``frames_factory(n, size=32 or (h, w), seed=0)`` -> u8[n, h, w, 3] RGB."""
    return make_frames


@pytest.fixture(scope="session")
def defect():
    """``defect(frame, y, x, size=6)`` -> a copy with a magenta square at (y, x)."""
    return add_defect


@pytest.fixture(scope="session")
def tiny_state():
    import pyimgano

    return pyimgano.fit("vision_patchcore", make_frames(6, seed=1), "rgb_u8_hwc", **PATCHCORE_TINY)


@pytest.fixture(scope="session")
def tiny_kwargs():
    return dict(PATCHCORE_TINY)
