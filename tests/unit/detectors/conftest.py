"""Tiny configurations and fitted states of the step-9 detectors (32-56 px frames, random backbones), and
tiny trained detectors, each trained once per session (3 epochs of 2 steps on 8 frames of 32x32)."""

import numpy as np
import pytest

import pyimgano

TINY = {
    # Two pyramid taps and a stride-8 image descriptor keep the (eager, no-jit) forward short.
    "vision_spade": dict(
        backbone="tiny_resnet",
        pretrained=False,
        image_size=32,
        layers=("layer1", "layer2"),
        image_layer="layer2",
        k_images=3,
        batch_size=4,
    ),
    "vision_softpatch": dict(
        backbone="tiny_resnet",
        pretrained=False,
        image_size=32,
        pretrain_embed_dim=16,
        target_embed_dim=16,
        coreset_ratio=0.5,
        batch_size=4,
    ),
    # 56 px = a 4x4 grid of 14-px DINOv2 patches; random ViT weights (no DINOv2 weights offline).
    "vision_anomalydino": dict(pretrained=False, image_size=56, batch_size=4),
}


@pytest.fixture(scope="session")
def tiny_kwargs():
    """``tiny_kwargs(name)`` -> a fresh dict of config overrides for a tiny ``name``."""
    return lambda name: dict(TINY[name])


@pytest.fixture(scope="session")
def detector_train_frames(frames_factory):
    return frames_factory(8, seed=1)


@pytest.fixture(scope="session")
def fitted(detector_train_frames):
    """``fitted(name)`` -> a tiny state of ``name`` fitted on 8 textured frames (cached per session)."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = pyimgano.fit(name, detector_train_frames, "rgb_u8_hwc", **TINY[name])
        return cache[name]

    return get


@pytest.fixture(scope="session")
def prepared(frames_factory):
    """``prepared(state, frames)`` -> f32[B, H, W, 3] backbone input for ``state``'s config."""
    from pyimgano.scoring import prepare_frames

    return lambda state, frames: np.asarray(prepare_frames(state.config, list(frames)))


DEFECT_YX = (8, 16)


@pytest.fixture(scope="session")
def probe_frames(frames_factory, defect):
    """``probe_frames(name)`` -> u8[5, 40, 48, 3]: 4 normal frames, then one with a magenta square
    at ``DEFECT_YX`` (12 px for AnomalyDINO's 14-px patches, 8 px otherwise)."""

    def make(name):
        size = 12 if name == "vision_anomalydino" else 8
        normals = frames_factory(4, size=(40, 48), seed=9)
        bad = defect(frames_factory(1, size=(40, 48), seed=10)[0], y=DEFECT_YX[0], x=DEFECT_YX[1], size=size)
        return np.concatenate([normals, bad[None]]), size

    return make


@pytest.fixture(scope="session")
def probed(fitted, probe_frames):
    """``probed(name)`` -> (scores f32[5], maps f32[5, 40, 48], defect side) of the fitted tiny state (cached)."""
    cache = {}

    def get(name):
        if name not in cache:
            frames, size = probe_frames(name)
            scores, maps = pyimgano.predict(fitted(name), frames, "rgb_u8_hwc")
            cache[name] = (scores, maps, size)
        return cache[name]

    return get


# Batch 4 of 8 frames: two steps per epoch, each split over the two host devices (data parallel).
TINY_TRAINED = {
    "vision_stfpm": dict(backbone="tiny_resnet", pretrained=False, image_size=32, epochs=3, batch_size=4),
    "vision_reverse_distillation": dict(backbone="tiny_resnet", pretrained=False, image_size=32, epochs=3, batch_size=4),
    "vision_draem": dict(image_size=32, reconstructive_width=4, discriminative_width=4, epochs=3, batch_size=4, lr=1e-3),
    "vision_ae": dict(image_size=32, widths=(8, 16), latent_channels=8, epochs=3, batch_size=4),
}


@pytest.fixture(scope="session")
def trained_frames(frames_factory):
    return frames_factory(8, seed=11)


@pytest.fixture(scope="session")
def trained(tmp_path_factory, trained_frames):
    """``trained(name) -> (state, checkpoint_dir)``: the tiny detector fitted once with checkpoints."""
    cache = {}

    def get(name):
        if name not in cache:
            folder = tmp_path_factory.mktemp(name)
            state = pyimgano.fit(name, trained_frames, "rgb_u8_hwc", checkpoint_dir=folder, **TINY_TRAINED[name])
            cache[name] = (state, folder)
        return cache[name]

    return get


@pytest.fixture(scope="session")
def tiny_trained_kwargs():
    """``{name: config overrides}`` of the tiny trained detectors (a fresh copy per use)."""
    return {name: dict(kwargs) for name, kwargs in TINY_TRAINED.items()}
