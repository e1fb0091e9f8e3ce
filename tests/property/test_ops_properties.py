"""Invariants of the device ops: exact kNN, greedy coreset structure."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from models_jax.ops import coreset_coverage, greedy_coreset, nearest_neighbors


def _brute_knn(q, b, k):
    d = np.sqrt(((q[:, None, :].astype(np.float64) - b[None].astype(np.float64)) ** 2).sum(-1))
    return np.sort(d, axis=1)[:, :k]


# Shapes come from small fixed sets so the examples share a few compilations.
@settings(max_examples=25)
@given(
    n_bank=st.sampled_from([1, 7, 37]),
    k=st.sampled_from([1, 3]),
    chunk=st.sampled_from([1, 5, 64]),
    seed=st.integers(0, 2**16),
)
def test_chunked_knn_equals_brute_force(n_bank, k, chunk, seed):
    n_query, dim = 6, 4
    k = min(k, n_bank)
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(n_query, dim)).astype(np.float32)
    b = rng.normal(size=(n_bank, dim)).astype(np.float32)
    dists, idx = nearest_neighbors(jnp.asarray(q), jnp.asarray(b), k=k, bank_chunk=chunk)
    np.testing.assert_allclose(np.asarray(dists), _brute_knn(q, b, k), atol=2e-3)
    # the returned indices really are at the returned distances
    again = np.sqrt(((q[:, None, :] - b[np.asarray(idx)]) ** 2).sum(-1))
    np.testing.assert_allclose(again, np.asarray(dists), atol=2e-3)


def _coverage_radii(bank: np.ndarray, order: np.ndarray) -> np.ndarray:
    """k-center radius of every prefix of ``order`` (float64 numpy reference)."""
    d = np.sqrt(((bank[:, None, :].astype(np.float64) - bank[order][None]) ** 2).sum(-1))  # [M, n]
    return np.minimum.accumulate(d, axis=1).max(axis=0)


@settings(max_examples=20)
@given(seed=st.integers(0, 2**16), active=st.sampled_from([4, 16, 64]), duplicates=st.booleans())
def test_coreset_indices_are_unique_nested_and_cover_better_as_they_grow(seed, active, duplicates):
    rng = np.random.default_rng(seed)
    bank = rng.normal(size=(64, 6)).astype(np.float32)
    if duplicates:
        bank[32:] = bank[:32]
    key = jax.random.key(seed)
    idx = np.asarray(greedy_coreset(jnp.asarray(bank), 24, key=key, projection_dim=None, active_size=active))
    assert len(set(idx.tolist())) == 24
    assert idx.min() >= 0 and idx.max() < 64
    small = np.asarray(greedy_coreset(jnp.asarray(bank), 12, key=key, projection_dim=None, active_size=active))
    np.testing.assert_array_equal(small, idx[:12])
    radii = _coverage_radii(bank, idx)
    assert np.all(np.diff(radii) <= 1e-6)
    # the jitted coverage helper agrees with the reference on the full coreset
    assert float(coreset_coverage(jnp.asarray(bank), jnp.asarray(idx))) == pytest.approx(radii[-1], abs=1e-3)


@settings(max_examples=10)
@given(seed=st.integers(0, 2**16))
def test_phased_coreset_makes_the_dense_greedy_choices(seed):
    rng = np.random.default_rng(seed)
    n_bank = 150
    bank = rng.normal(size=(n_bank, 5)).astype(np.float32)
    n = 50
    idx = np.asarray(greedy_coreset(jnp.asarray(bank), n, key=jax.random.key(seed), projection_dim=None, active_size=8))
    # dense greedy in float64 from the same start
    pts = bank.astype(np.float64)
    chosen = [int(idx[0])]
    min_d = ((pts - pts[chosen[0]]) ** 2).sum(1)
    min_d[chosen[0]] = -1
    for _ in range(n - 1):
        nxt = int(np.argmax(min_d))
        chosen.append(nxt)
        min_d = np.minimum(min_d, ((pts - pts[nxt]) ** 2).sum(1))
        min_d[nxt] = -1
    np.testing.assert_array_equal(idx, np.array(chosen))
