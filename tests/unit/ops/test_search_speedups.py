"""The faster search and fit ops give the brute-force / textbook answers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models_jax.ops import inverse_cholesky_factor, nearest_neighbors
from models_jax.ops.knn import GROUP, chunk_layout


@pytest.mark.parametrize("m, chunk", [(1, 4096), (31, 8), (33, 4096), (100, 64), (1025, 256), (300, 7)])
def test_nearest_neighbour_is_the_brute_force_arg_min_for_any_bank_and_chunk_size(m, chunk):
    rng = np.random.default_rng(m + chunk)
    q = rng.normal(size=(37, 6)).astype(np.float32)
    b = rng.normal(size=(m, 6)).astype(np.float32)
    dists, idx = nearest_neighbors(jnp.asarray(q), jnp.asarray(b), k=1, bank_chunk=chunk)
    brute = np.sqrt(((q[:, None].astype(np.float64) - b[None]) ** 2).sum(-1))
    np.testing.assert_array_equal(np.asarray(idx)[:, 0], brute.argmin(1))
    np.testing.assert_allclose(np.asarray(dists)[:, 0], brute.min(1), rtol=1e-5, atol=1e-6)


def test_nearest_neighbour_of_a_bank_row_is_itself_at_distance_exactly_zero():
    b = np.random.default_rng(0).normal(size=(70, 5)).astype(np.float32) * 100 + 1000
    dists, idx = nearest_neighbors(jnp.asarray(b), jnp.asarray(b), k=1, bank_chunk=16)
    np.testing.assert_array_equal(np.asarray(idx)[:, 0], np.arange(70))
    assert np.all(np.asarray(dists) == 0.0)


@pytest.mark.parametrize("m, chunk, multiple", [(16385, 4096, 32), (16385, 4096, 1), (10, 4096, 32), (4096, 1024, 32)])
def test_chunk_layout_pads_less_than_one_row_group_per_chunk(m, chunk, multiple):
    n, rows = chunk_layout(m, chunk, multiple)
    assert n == -(-m // min(chunk, m))
    assert rows % multiple == 0
    assert 0 <= n * rows - m < n * multiple
    assert GROUP == 32


def test_inverse_cholesky_factor_inverts_the_lower_factor():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 40, 13))
    cov = np.einsum("pni,pnj->pij", x, x) / 39 + 0.01 * np.eye(13)
    inv = np.asarray(inverse_cholesky_factor(jnp.asarray(cov, jnp.float32)), np.float64)
    chol = np.linalg.cholesky(cov)
    np.testing.assert_allclose(inv @ chol, np.broadcast_to(np.eye(13), (3, 13, 13)), atol=1e-4)
    assert np.all(np.triu(inv, 1) == 0.0)
