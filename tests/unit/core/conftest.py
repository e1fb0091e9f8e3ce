"""Fitted tiny detectors for the core tests (frames and kwargs come from tests/conftest.py)."""

import pytest

import pyimgano


@pytest.fixture(scope="session")
def train_frames(frames_factory):
    return frames_factory(8, seed=1)


@pytest.fixture(scope="session")
def patchcore_state(train_frames, tiny_patchcore_kwargs):
    return pyimgano.fit("vision_patchcore", train_frames, "rgb_u8_hwc", **tiny_patchcore_kwargs)


@pytest.fixture(scope="session")
def padim_state(train_frames, tiny_padim_kwargs):
    return pyimgano.fit("vision_padim", train_frames, "rgb_u8_hwc", **tiny_padim_kwargs)
