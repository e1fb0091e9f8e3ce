"""Tiny trained detectors: each is trained once per session (3 epochs of 2 steps on 8 frames of 32x32)."""

import pytest

import pyimgano

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
