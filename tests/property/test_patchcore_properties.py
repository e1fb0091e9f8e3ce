"""PatchCore invariants: bank row order does not matter; training frames score ~0."""

import attrs
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyimgano

def _frames(n, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32] / 32
    out = []
    for _ in range(n):
        base = 0.5 + 0.3 * np.sin(2 * np.pi * (2 * xx + rng.uniform(0, 1))) * np.cos(2 * np.pi * yy)
        img = np.stack([base, 1 - base, base * 0.5], -1) + rng.normal(0, 0.03, (32, 32, 3))
        out.append(np.clip(img * 255, 0, 255).astype(np.uint8))
    return np.stack(out)


@pytest.fixture(scope="module")
def train():
    return _frames(6, seed=0)


@pytest.fixture(scope="module")
def full_bank_state(train, tiny_patchcore_kwargs):
    return pyimgano.fit("vision_patchcore", train, "rgb_u8_hwc", **{**tiny_patchcore_kwargs, "coreset_ratio": 1.0})


@pytest.fixture(scope="module")
def coreset_state(train, tiny_patchcore_kwargs):
    return pyimgano.fit("vision_patchcore", train, "rgb_u8_hwc", **{**tiny_patchcore_kwargs, "coreset_ratio": 0.3})


@settings(max_examples=10)
@given(seed=st.integers(0, 2**31 - 1))
def test_scores_and_maps_do_not_depend_on_memory_bank_row_order(coreset_state, seed):
    frames = _frames(3, seed=99)
    bank = np.asarray(coreset_state.model.memory_bank)
    perm = np.random.default_rng(seed).permutation(len(bank))
    shuffled = attrs.evolve(
        coreset_state, model=attrs.evolve(coreset_state.model, memory_bank=jnp.asarray(bank[perm]))
    )
    s0, m0 = pyimgano.predict(coreset_state, frames, "rgb_u8_hwc")
    s1, m1 = pyimgano.predict(shuffled, frames, "rgb_u8_hwc")
    np.testing.assert_allclose(np.asarray(s1), np.asarray(s0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(m1), np.asarray(m0), rtol=1e-5, atol=1e-5)


def test_a_training_frame_scores_near_zero_with_the_full_bank(full_bank_state, train):
    train_scores = np.asarray(pyimgano.score(full_bank_state, train, "rgb_u8_hwc"))
    new_scores = np.asarray(pyimgano.score(full_bank_state, _frames(4, seed=123), "rgb_u8_hwc"))
    # Every training patch is in the bank, so only float rounding is left.
    assert np.all(train_scores <= 1e-2 * new_scores.min())
    patch_maps = np.asarray(pyimgano.anomaly_maps(full_bank_state, train, "rgb_u8_hwc"))
    assert patch_maps.max() <= 1e-2 * new_scores.min()
