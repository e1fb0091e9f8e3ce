"""The faster search and fit ops give the brute-force / textbook answers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models_jax.ops import inverse_cholesky_factor, nearest_neighbors
from hypothesis import given, settings, strategies as st

from models_jax.ops.knn import BLOCK_ELEMENTS, GROUP, chunk_layout, nearest_neighbors as _nn, step_rows


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


def test_step_rows_exact_values():
    assert BLOCK_ELEMENTS == 2**21
    assert step_rows(784, 4096, 32) == 2656  # one 224-px PatchCore image: 2**21 // 784 = 2674, down to a multiple of 32
    assert step_rows(12544, 4096, 32) == 160  # a batch of 16: 167 -> 160
    assert step_rows(100, 4096, 32) == 4096  # few queries: the configured chunk
    assert step_rows(10**7, 4096, 32) == 128  # never below 128 rows
    assert step_rows(10**7, 64, 32) == 64  # unless the configured chunk is smaller
    assert step_rows(10**7, 4096, 1) == 128


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 10**7), st.integers(1, 10**5), st.sampled_from([1, 8, 32]))
def test_step_rows_bounds_the_distance_block(queries, bank_chunk, multiple):
    rows = step_rows(queries, bank_chunk, multiple)
    assert rows % multiple == 0 and rows >= multiple
    assert rows <= max(bank_chunk, multiple)
    if rows > max(128, multiple):
        assert queries * rows <= BLOCK_ELEMENTS


@pytest.mark.parametrize("k", [1, 3])
def test_many_queries_search_in_smaller_steps_with_the_same_answer(k):
    # 20,000 queries: 128-row steps instead of the configured 1000; a padded last step.
    rng = np.random.default_rng(k)
    q = rng.normal(size=(20000, 4)).astype(np.float32)
    b = rng.normal(size=(1000, 4)).astype(np.float32)
    assert step_rows(len(q), 1000) == 128
    dists, idx = _nn(jnp.asarray(q), jnp.asarray(b), k=k, bank_chunk=1000)
    brute = np.sqrt(((q[:, None].astype(np.float64) - b[None]) ** 2).sum(-1))
    order = np.argsort(brute, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(np.asarray(idx), order)
    np.testing.assert_allclose(np.asarray(dists), np.take_along_axis(brute, order, 1), rtol=1e-4, atol=1e-5)


def test_the_search_working_memory_does_not_grow_with_the_configured_chunk():
    # 16,384 queries against an 8,192-row bank in 4,096-row chunks would write a 256 MiB
    # distance block per step; the step is cut to keep it within BLOCK_ELEMENTS (8 MiB).
    q = jax.ShapeDtypeStruct((16384, 8), jnp.float32)
    b = jax.ShapeDtypeStruct((8192, 8), jnp.float32)
    compiled = jax.jit(lambda q, b: _nn(q, b, k=1, bank_chunk=4096)).lower(q, b).compile()
    assert compiled.memory_analysis().temp_size_in_bytes < 48 * 2**20


def test_inverse_cholesky_factor_inverts_the_lower_factor():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 40, 13))
    cov = np.einsum("pni,pnj->pij", x, x) / 39 + 0.01 * np.eye(13)
    inv = np.asarray(inverse_cholesky_factor(jnp.asarray(cov, jnp.float32)), np.float64)
    chol = np.linalg.cholesky(cov)
    np.testing.assert_allclose(inv @ chol, np.broadcast_to(np.eye(13), (3, 13, 13)), atol=1e-4)
    assert np.all(np.triu(inv, 1) == 0.0)
