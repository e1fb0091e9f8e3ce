"""Local outlier factor and nearest-other distance against a loop-by-loop numpy reference."""

import numpy as np
import pytest

from models_jax.ops import local_outlier_factor, nearest_other_distance


def _lof_reference(points: np.ndarray, k: int) -> np.ndarray:
    """Breunig et al.'s LOF, as scikit-learn computes it, one point at a time in float64."""
    n = len(points)
    k = min(k, n - 1)
    dist = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(-1))
    neighbours, k_distance = [], np.zeros(n)
    for i in range(n):
        order = [j for j in np.argsort(dist[i], kind="stable") if j != i][:k]
        neighbours.append(order)
        k_distance[i] = dist[i, order[-1]]
    lrd = np.array([1.0 / (np.mean([max(dist[i, j], k_distance[j]) for j in neighbours[i]]) + 1e-10) for i in range(n)])
    return np.array([np.mean([lrd[j] for j in neighbours[i]]) / lrd[i] for i in range(n)])


def test_lof_matches_the_reference_and_singles_out_the_outlier():
    rng = np.random.default_rng(0)
    points = rng.normal(0, 1, (30, 5)).astype(np.float32)
    points[7] += 8.0  # far from everything
    lof = np.asarray(local_outlier_factor(points, 5))
    np.testing.assert_allclose(lof, _lof_reference(points.astype(np.float64), 5), rtol=1e-4)
    assert int(np.argmax(lof)) == 7 and lof[7] > 3.0
    assert np.median(lof) == pytest.approx(1.0, abs=0.15)  # inliers sit near 1


def test_k_is_clipped_to_the_other_points_and_duplicates_are_neighbours_at_distance_zero():
    points = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [5.0, 0.0]], np.float32)
    lof = np.asarray(local_outlier_factor(points, 10))  # k -> 3
    np.testing.assert_allclose(lof, _lof_reference(points.astype(np.float64), 10), rtol=1e-4)
    np.testing.assert_array_equal(np.asarray(nearest_other_distance(points)), [0.0, 0.0, 1.0, 4.0])


def test_outlier_scores_need_two_points_and_a_positive_k():
    with pytest.raises(ValueError, match="at least 2 points"):
        local_outlier_factor(np.zeros((1, 3), np.float32), 2)
    with pytest.raises(ValueError, match="k must be >= 1"):
        local_outlier_factor(np.zeros((4, 3), np.float32), 0)
    with pytest.raises(ValueError, match=r"f32\[N, D\]"):
        nearest_other_distance(np.zeros((4,), np.float32))
