"""Tiny detectors and frames for fast core tests."""

import numpy as np
import pytest

import pyimgano

PATCHCORE_TINY = dict(
    backbone="tiny_resnet",
    pretrained=False,
    image_size=32,
    pretrain_embed_dim=16,
    target_embed_dim=16,
    coreset_ratio=0.5,
    batch_size=4,
)
PADIM_TINY = dict(backbone="tiny_resnet", pretrained=False, image_size=32, d_reduced=8, batch_size=4)


def make_frames(n: int, size: int = 32, seed: int = 0) -> np.ndarray:
    """Smooth textured RGB u8 frames (normal parts)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    frames = []
    for _ in range(n):
        phase = rng.uniform(0, 0.3)
        base = 0.5 + 0.25 * np.sin(2 * np.pi * (3 * xx + phase)) * np.cos(2 * np.pi * 2 * yy)
        img = np.stack([base, base * 0.9, base * 0.8], axis=-1) + rng.normal(0, 0.02, (size, size, 3))
        frames.append(np.clip(img * 255, 0, 255).astype(np.uint8))
    return np.stack(frames)


def add_defect(frame: np.ndarray) -> np.ndarray:
    out = frame.copy()
    h, w = out.shape[:2]
    out[h // 3 : h // 3 + 6, w // 2 : w // 2 + 6] = (255, 0, 255)
    return out


@pytest.fixture(scope="session")
def train_frames():
    return make_frames(8, seed=1)


@pytest.fixture(scope="session")
def patchcore_state(train_frames):
    return pyimgano.fit("vision_patchcore", train_frames, "rgb_u8_hwc", **PATCHCORE_TINY)


@pytest.fixture(scope="session")
def padim_state(train_frames):
    return pyimgano.fit("vision_padim", train_frames, "rgb_u8_hwc", **PADIM_TINY)


@pytest.fixture(scope="session")
def frames_factory():
    """``frames_factory(n, size=32, seed=0)`` -> u8[n, size, size, 3]."""
    return make_frames


@pytest.fixture(scope="session")
def defect():
    """``defect(frame)`` -> a copy with a 6x6 magenta spot."""
    return add_defect


@pytest.fixture(scope="session")
def tiny_patchcore_kwargs():
    return dict(PATCHCORE_TINY)
