"""Shared test configuration.

Two host CPU devices so sharding code paths run in CI, and a deterministic
Hypothesis profile (DESIGN.md, tests).
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")

from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "deterministic",
    derandomize=True,
    deadline=None,
    max_examples=int(os.environ.get("PYIMGANO_HYPOTHESIS_EXAMPLES", "50")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.load_profile("deterministic")


# --- Tiny detectors and frames shared by the core, inference, property and CLI tests ---------
# (fast: 32x32 images, the tiny backbone; fixtures only, so test modules never import each other)

import numpy as np  # noqa: E402
import pytest  # noqa: E402

TINY_PATCHCORE = dict(
    backbone="tiny_resnet",
    pretrained=False,
    image_size=32,
    pretrain_embed_dim=16,
    target_embed_dim=16,
    coreset_ratio=0.5,
    batch_size=4,
)
TINY_PADIM = dict(backbone="tiny_resnet", pretrained=False, image_size=32, d_reduced=8, batch_size=4)


def _textured_frames(n: int, size=32, seed: int = 0) -> np.ndarray:
    """Smooth textured RGB u8 frames (normal parts), ``u8[n, h, w, 3]``; ``size`` int or (h, w)."""
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


def _with_defect(frame: np.ndarray, y: int | None = None, x: int | None = None, size: int = 6) -> np.ndarray:
    """A copy of ``frame`` with a magenta ``size`` square at (y, x) (default: (h/3, w/2))."""
    out = frame.copy()
    h, w = out.shape[:2]
    y = h // 3 if y is None else y
    x = w // 2 if x is None else x
    out[y : y + size, x : x + size] = (255, 0, 255)
    return out


@pytest.fixture(scope="session")
def frames_factory():
    """``frames_factory(n, size=32 or (h, w), seed=0)`` -> u8[n, h, w, 3] RGB."""
    return _textured_frames


@pytest.fixture(scope="session")
def defect():
    """``defect(frame, y=None, x=None, size=6)`` -> a copy with a magenta square."""
    return _with_defect


@pytest.fixture(scope="session")
def tiny_patchcore_kwargs():
    """Config overrides of a tiny PatchCore (a fresh dict per use)."""
    return dict(TINY_PATCHCORE)


@pytest.fixture(scope="session")
def tiny_padim_kwargs():
    return dict(TINY_PADIM)


@pytest.fixture(scope="session")
def tiny_state():
    """A tiny PatchCore fitted on 6 textured frames (seed 1)."""
    import pyimgano

    return pyimgano.fit("vision_patchcore", _textured_frames(6, seed=1), "rgb_u8_hwc", **TINY_PATCHCORE)
