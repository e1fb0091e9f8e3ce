"""The ViT's torch-compatible position-embedding resampling and input checks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from models_jax.backbones.vit import DinoViT, torch_bicubic_matrix


@given(st.integers(1, 40), st.integers(1, 80), st.sampled_from([None, 0.1]))
def test_bicubic_weights_of_every_output_sample_sum_to_one(in_size, out_size, offset):
    scale = None if offset is None else (out_size + offset) / in_size
    weights = torch_bicubic_matrix(in_size, out_size, scale)
    assert weights.shape == (out_size, in_size)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-6)


@given(st.integers(1, 40))
def test_resampling_to_the_same_size_by_size_is_the_identity(size):
    np.testing.assert_allclose(torch_bicubic_matrix(size, size), np.eye(size), atol=1e-7)


def test_the_scale_offset_moves_the_sample_positions():
    # (4 + 0.1) / 37 instead of 4 / 37: torch places samples with the given scale factor.
    assert not np.allclose(torch_bicubic_matrix(37, 4, 4.1 / 37), torch_bicubic_matrix(37, 4))


def test_bad_sizes_are_rejected():
    with pytest.raises(ValueError, match="in_size=0"):
        torch_bicubic_matrix(0, 4)
    with pytest.raises(ValueError, match="scale_factor must be > 0"):
        torch_bicubic_matrix(4, 4, -1.0)


def _small_vit():
    return DinoViT(patch_size=2, embed_dim=8, depth=1, num_heads=2, pos_grid=4, arch="small_vit")


def test_native_grid_uses_the_stored_embedding_and_other_grids_resample_it():
    vit = _small_vit()
    pos = jnp.asarray(np.random.default_rng(0).standard_normal((1, 17, 8)), jnp.float32)
    np.testing.assert_array_equal(np.asarray(vit._position_embedding(pos, 4, 4)), np.asarray(pos))
    resampled = vit._position_embedding(pos, 3, 5)
    assert resampled.shape == (1, 1 + 15, 8)
    np.testing.assert_array_equal(np.asarray(resampled[:, 0]), np.asarray(pos[:, 0]))  # class token untouched
    constant = jnp.ones((1, 17, 8))
    np.testing.assert_allclose(np.asarray(vit._position_embedding(constant, 7, 2)), 1.0, atol=1e-6)


def test_vit_refuses_sides_that_are_not_multiples_of_the_patch():
    vit = _small_vit()
    with pytest.raises(ValueError, match="multiples of 2, got 6x5"):
        vit.init(jax.random.key(0), jnp.zeros((1, 6, 5, 3)))


def test_vit_grid_taps_follow_the_patch_grid_and_cls_is_a_vector():
    vit = _small_vit()
    # An rbg key: XLA's CPU compiler is slow on threefry's per-parameter call sites.
    variables = jax.jit(vit.init)(jax.random.key(0, impl="rbg"), jnp.zeros((1, 8, 8, 3)))
    out = vit.apply(variables, jnp.ones((2, 6, 10, 3)))
    assert out["block1"].shape == (2, 3, 5, 8)
    assert out["patch_tokens"].shape == (2, 3, 5, 8)
    assert out["cls_token"].shape == (2, 8)
