"""Image-level metrics: exact values on hand-computed examples, input errors, invariants."""

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyimgano.metrics import average_precision, f1_at_threshold, image_auroc


def _pairwise_auroc(labels, scores):
    """Definition of AUROC: P(pos > neg) + 0.5 P(pos == neg) over all pairs."""
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    pos, neg = scores[labels == 1], scores[labels == 0]
    wins = sum((p > n) + 0.5 * (p == n) for p, n in itertools.product(pos, neg))
    return wins / (pos.size * neg.size)


def test_auroc_of_hand_example_counts_correctly_ordered_pairs():
    # Pairs (pos, neg): (0.35, 0.1) right, (0.35, 0.4) wrong, (0.8, *) right -> 3/4.
    assert image_auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75


def test_auroc_counts_a_tie_across_classes_as_one_half():
    # (0.5 vs 0.2) right, (0.5 vs 0.5) tie, (0.9 vs both) right -> 3.5 / 4.
    assert image_auroc([0, 0, 1, 1], [0.2, 0.5, 0.5, 0.9]) == 0.875


def test_auroc_of_all_tied_scores_is_one_half():
    assert image_auroc([0, 1, 0, 1, 1], [3.0] * 5) == 0.5


def test_auroc_is_one_for_perfect_and_zero_for_reversed_ranking():
    labels = [0, 0, 0, 1, 1]
    scores = [0.1, 0.2, 0.3, 0.7, 0.9]
    assert image_auroc(labels, scores) == 1.0
    assert image_auroc(labels, [-s for s in scores]) == 0.0


def test_auroc_accepts_bool_labels_and_integer_scores():
    assert image_auroc(np.array([False, True, True]), np.array([1, 3, 2])) == 1.0


def test_auroc_with_only_one_class_is_rejected():
    with pytest.raises(ValueError, match=r"both normal \(0\) and anomalous \(1\).*only normal"):
        image_auroc([0, 0, 0], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="only anomalous"):
        image_auroc([1, 1], [0.1, 0.2])


def test_auroc_with_mismatched_lengths_is_rejected():
    with pytest.raises(ValueError, match="differ in length: 3 vs 2"):
        image_auroc([0, 1, 1], [0.1, 0.2])


def test_auroc_rejects_non_binary_labels_and_nan_scores():
    with pytest.raises(ValueError, match=r"only 0/1.*\[2\]"):
        image_auroc([0, 1, 2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="NaN"):
        image_auroc([0, 1], [0.1, float("nan")])
    with pytest.raises(ValueError, match="1-D"):
        image_auroc([[0, 1]], [[0.1, 0.2]])


def test_average_precision_of_hand_example_averages_precision_at_each_positive():
    # Ranked: 0.8 (pos, precision 1/1), 0.4 (neg), 0.35 (pos, precision 2/3), 0.1 (neg).
    assert average_precision([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx((1 + 2 / 3) / 2, abs=1e-15)


def test_average_precision_takes_tied_samples_together():
    # Threshold 0.5 takes the tied pos and neg together: precision 1/2 at recall 1/2; then 2/3 at recall 1.
    assert average_precision([1, 0, 1], [0.5, 0.5, 0.2]) == pytest.approx(0.5 * 0.5 + 0.5 * 2 / 3, abs=1e-15)


def test_average_precision_is_one_for_perfect_ranking_and_needs_a_positive():
    assert average_precision([0, 1, 0, 1], [0.1, 0.8, 0.2, 0.9]) == 1.0
    with pytest.raises(ValueError, match="at least one anomalous"):
        average_precision([0, 0], [0.1, 0.2])


def test_f1_uses_strictly_greater_than_threshold():
    labels = [0, 1, 1, 0]
    scores = [0.2, 0.5, 0.7, 0.5]
    # score > 0.5 flags only 0.7: TP=1, FP=0, FN=1 -> 2/3 (">=" would give TP=2, FP=1 -> 0.8).
    assert f1_at_threshold(labels, scores, 0.5) == pytest.approx(2 / 3, abs=1e-15)
    assert f1_at_threshold(labels, scores, 0.49) == pytest.approx(0.8, abs=1e-15)


def test_f1_is_zero_when_nothing_can_be_a_true_positive():
    assert f1_at_threshold([0, 0], [0.1, 0.2], 0.5) == 0.0
    assert f1_at_threshold([1, 1], [0.1, 0.2], 0.5) == 0.0


def test_f1_rejects_a_nan_threshold():
    with pytest.raises(ValueError, match="threshold is NaN"):
        f1_at_threshold([0, 1], [0.1, 0.2], float("nan"))


# Scores on a coarse grid make ties common and keep the transforms below exact in float64.
_cases = st.integers(min_value=2, max_value=24).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 1), min_size=n, max_size=n).filter(lambda y: 0 < sum(y) < len(y)),
        st.lists(st.integers(-16, 16), min_size=n, max_size=n),
    )
)


@given(_cases)
def test_auroc_matches_the_pairwise_definition(case):
    labels, grid = case
    scores = np.asarray(grid, dtype=np.float64) / 8
    assert image_auroc(labels, scores) == pytest.approx(_pairwise_auroc(labels, scores), abs=1e-12)


@given(_cases)
def test_auroc_is_invariant_under_strictly_increasing_transforms(case):
    labels, grid = case
    scores = np.asarray(grid, dtype=np.float64) / 8
    reference = image_auroc(labels, scores)
    assert image_auroc(labels, scores**3 + 7.0) == reference
    assert image_auroc(labels, np.exp(scores)) == reference
    assert image_auroc(labels, 2.5 * scores - 1.0) == reference


@given(_cases)
def test_auroc_of_reversed_scores_is_one_minus_auroc(case):
    labels, grid = case
    scores = np.asarray(grid, dtype=np.float64) / 8
    assert image_auroc(labels, 1.0 - scores) == pytest.approx(1.0 - image_auroc(labels, scores), abs=1e-12)


@given(_cases)
def test_average_precision_is_one_for_a_perfect_ranking_and_otherwise_in_the_unit_interval(case):
    labels, grid = case
    labels = np.asarray(labels)
    assert average_precision(labels, labels.astype(float)) == 1.0
    ap = average_precision(labels, np.asarray(grid, dtype=np.float64))
    assert 0.0 < ap <= 1.0
