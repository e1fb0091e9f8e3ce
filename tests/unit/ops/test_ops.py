"""Exact values of the small device ops."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh

from models_jax.ops import (
    accumulate_moments,
    adaptive_avg_pool_last,
    adaptive_avg_pool_matrix,
    blur_matrix,
    inverse_cholesky_factor,
    finalize_gaussian,
    gaussian_blur,
    gaussian_kernel_1d,
    greedy_coreset,
    init_moments,
    mahalanobis,
    nearest_neighbors,
    nearest_neighbors_sharded,
)


def test_adaptive_pool_uses_torch_bins():
    # torch.nn.functional.adaptive_avg_pool1d(arange(5), 3) -> [0.5, 2.0, 3.5]
    x = jnp.arange(5, dtype=jnp.float32)[None]
    np.testing.assert_allclose(np.asarray(adaptive_avg_pool_last(x, 3))[0], [0.5, 2.0, 3.5])
    # upsampling repeats: 2 -> 5 gives bins [0],[0],[0,1]?? no: floor/ceil bins [0],[0,1],[1]... check the matrix
    m = adaptive_avg_pool_matrix(2, 5)
    np.testing.assert_allclose(m.T @ np.array([0.0, 1.0]), [0.0, 0.0, 0.5, 1.0, 1.0])


@pytest.mark.parametrize("in_dim,out_dim", [(1008, 1024), (2048, 1024), (360, 1024), (97, 10), (6, 6)])
def test_adaptive_pool_matches_its_averaging_matrix(in_dim, out_dim):
    x = np.random.default_rng(0).normal(size=(4, in_dim)).astype(np.float32)
    expected = x.astype(np.float64) @ adaptive_avg_pool_matrix(in_dim, out_dim)
    np.testing.assert_allclose(np.asarray(adaptive_avg_pool_last(jnp.asarray(x), out_dim)), expected, atol=2e-5)


def test_gaussian_kernel_has_scipy_radius_and_unit_sum():
    k = gaussian_kernel_1d(4.0)
    assert len(k) == 2 * int(4 * 4.0 + 0.5) + 1 == 33
    assert abs(k.sum() - 1) < 1e-12
    assert np.argmax(k) == 16


def test_blur_uses_half_sample_symmetric_boundary():
    # scipy.ndimage.gaussian_filter1d([1, 0, 0, 0, 0], sigma=1, mode="reflect"):
    # the reflected copy of pixel 0 sits at offset -1, so output[0] = k[0] + k[-1 offset] = k0 + k1.
    k = gaussian_kernel_1d(1.0)
    r = (len(k) - 1) // 2
    v = np.array([1.0, 0, 0, 0, 0], np.float32)
    out = blur_matrix(5, 1.0) @ v
    assert out[0] == pytest.approx(k[r] + k[r - 1], abs=1e-6)
    assert out[1] == pytest.approx(k[r - 1] + k[r - 2], abs=1e-6)
    # mass is preserved by reflection
    assert out.sum() == pytest.approx(1.0, abs=1e-6)


def test_blur_keeps_constants_and_sigma_zero_is_identity():
    maps = jnp.full((2, 9, 13), 3.5, jnp.float32)
    np.testing.assert_allclose(np.asarray(gaussian_blur(maps, 4.0)), 3.5, atol=1e-5)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(1, 5, 5)).astype(np.float32))
    assert gaussian_blur(x, 0.0) is x
    with pytest.raises(ValueError, match="sigma"):
        gaussian_blur(x, -1.0)


def test_knn_rejects_k_larger_than_the_bank():
    with pytest.raises(ValueError, match="k must be in"):
        nearest_neighbors(jnp.zeros((2, 3)), jnp.zeros((4, 3)), k=5)


@pytest.mark.parametrize("k", [1, 3])
def test_sharded_knn_equals_single_device_knn(k):
    assert jax.device_count() >= 2, "tests/conftest.py forces 2 host devices"
    mesh = Mesh(np.array(jax.devices()[:2]), ("bank",))
    rng = np.random.default_rng(1)
    q = jnp.asarray(rng.normal(size=(7, 4)).astype(np.float32))
    b = jnp.asarray(rng.normal(size=(40, 4)).astype(np.float32))
    d1, i1 = nearest_neighbors(q, b, k=k, bank_chunk=8)
    d2, i2 = nearest_neighbors_sharded(q, b, mesh, k=k, bank_chunk=8)
    np.testing.assert_allclose(np.asarray(d1), np.asarray(d2), atol=1e-5)
    np.testing.assert_array_equal(np.asarray(i1), np.asarray(i2))


def test_coreset_is_deterministic_for_a_key_and_rejects_bad_sizes():
    bank = jnp.asarray(np.random.default_rng(0).normal(size=(50, 16)).astype(np.float32))
    a = greedy_coreset(bank, 10, key=jax.random.key(1), projection_dim=4)
    b = greedy_coreset(bank, 10, key=jax.random.key(1), projection_dim=4)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    with pytest.raises(ValueError, match="coreset size"):
        greedy_coreset(bank, 51, key=jax.random.key(1))


def test_coreset_indices_stay_unique_with_duplicate_rows():
    bank = jnp.zeros((6, 3), jnp.float32)
    idx = np.asarray(greedy_coreset(bank, 6, key=jax.random.key(0), projection_dim=None))
    assert sorted(idx.tolist()) == list(range(6))


def test_streamed_gaussian_matches_numpy_float64():
    rng = np.random.default_rng(0)
    feats = (rng.normal(size=(11, 3, 4)) * 2 + 50).astype(np.float32)  # large mean: cancellation test
    moments = init_moments(3, 4)
    for chunk in (feats[:4], feats[4:5], feats[5:]):
        moments = accumulate_moments(moments, jnp.asarray(chunk))
    mean, cov = finalize_gaussian(moments, 0.01)
    ref_mean = feats.astype(np.float64).mean(0)
    np.testing.assert_allclose(np.asarray(mean), ref_mean, rtol=1e-6, atol=1e-4)
    for p in range(3):
        ref_cov = np.cov(feats[:, p, :].astype(np.float64), rowvar=False) + 0.01 * np.eye(4)
        np.testing.assert_allclose(np.asarray(cov[p]), ref_cov, atol=2e-4)
    x = rng.normal(size=(2, 3, 4)).astype(np.float32) + 50
    d = np.asarray(mahalanobis(jnp.asarray(x), mean, inverse_cholesky_factor(cov)))
    for bi in range(2):
        for p in range(3):
            ref_cov = np.cov(feats[:, p, :].astype(np.float64), rowvar=False) + 0.01 * np.eye(4)
            diff = x[bi, p] - ref_mean[p]
            assert d[bi, p] == pytest.approx(np.sqrt(diff @ np.linalg.solve(ref_cov, diff)), rel=1e-3)
