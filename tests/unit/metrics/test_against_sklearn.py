"""Image metrics equal scikit-learn's on random data (ties included), and confusion counts equal
a brute-force count."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyimgano.metrics import (
    average_precision,
    confusion_at_threshold,
    f1_at_threshold,
    image_auroc,
    precision_recall_f1,
    roc_curve,
)

sk = pytest.importorskip("sklearn.metrics")


@st.composite
def labelled_scores(draw, both_classes=True):
    n = draw(st.integers(2, 40))
    labels = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    if both_classes and len(set(labels)) < 2:
        labels[0], labels[-1] = 0, 1
    # Few distinct values so ties across classes are common.
    scores = draw(st.lists(st.integers(-5, 5).map(lambda v: v / 4), min_size=n, max_size=n))
    threshold = draw(st.integers(-6, 6).map(lambda v: v / 4 + 0.1))
    return np.asarray(labels), np.asarray(scores, np.float64), threshold


@given(labelled_scores())
def test_auroc_average_precision_and_roc_curve_equal_scikit_learn(data):
    labels, scores, _ = data
    assert image_auroc(labels, scores) == pytest.approx(sk.roc_auc_score(labels, scores), abs=1e-12)
    assert average_precision(labels, scores) == pytest.approx(sk.average_precision_score(labels, scores), abs=1e-12)
    fpr, tpr, thresholds = roc_curve(labels, scores)
    ref_fpr, ref_tpr, ref_thr = sk.roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, ref_fpr, atol=1e-12)
    np.testing.assert_allclose(tpr, ref_tpr, atol=1e-12)
    np.testing.assert_array_equal(thresholds[1:], ref_thr[1:])
    assert thresholds[0] == np.inf


@given(labelled_scores(both_classes=False))
def test_confusion_precision_recall_and_f1_at_a_threshold_equal_scikit_learn_and_a_brute_force_count(data):
    labels, scores, threshold = data
    predicted = (scores > threshold).astype(int)
    counts = confusion_at_threshold(labels, scores, threshold)
    brute = {"tp": 0, "fp": 0, "tn": 0, "fn": 0}
    for y, p in zip(labels, predicted):
        brute[("t" if y == p else "f") + ("p" if p else "n")] += 1
    assert counts == brute
    tn, fp, fn, tp = sk.confusion_matrix(labels, predicted, labels=[0, 1]).ravel()
    assert counts == {"tp": tp, "fp": fp, "tn": tn, "fn": fn}
    prf = precision_recall_f1(labels, scores, threshold)
    assert prf["precision"] == pytest.approx(sk.precision_score(labels, predicted, zero_division=0), abs=1e-12)
    assert prf["recall"] == pytest.approx(sk.recall_score(labels, predicted, zero_division=0), abs=1e-12)
    assert prf["f1"] == pytest.approx(sk.f1_score(labels, predicted, zero_division=0), abs=1e-12)
    assert f1_at_threshold(labels, scores, threshold) == prf["f1"]


def test_confusion_counts_of_a_hand_example_use_the_strict_label_rule():
    # score == threshold is normal (label rule: score > threshold).
    assert confusion_at_threshold([0, 0, 1, 1, 1], [0.1, 0.5, 0.5, 0.9, 0.2], 0.5) == {"tp": 1, "fp": 0, "tn": 2, "fn": 2}
    assert precision_recall_f1([0, 0, 1, 1, 1], [0.1, 0.5, 0.5, 0.9, 0.2], 0.5) == {
        "precision": 1.0, "recall": 1 / 3, "f1": 0.5}


def test_roc_curve_needs_both_classes_and_a_finite_threshold_for_confusion():
    with pytest.raises(ValueError, match="needs both normal"):
        roc_curve([1, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match="threshold is NaN"):
        confusion_at_threshold([0, 1], [0.2, 0.3], float("nan"))
