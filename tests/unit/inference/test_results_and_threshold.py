import json
import math

import numpy as np
import pytest

from pyimgano.inference import InferenceResult, label_from_score, quantile_threshold, result_to_jsonable


def test_label_is_one_only_when_score_is_strictly_above_threshold():
    assert label_from_score(0.51, 0.5) == 1
    assert label_from_score(0.5, 0.5) == 0
    assert label_from_score(0.49, 0.5) == 0
    assert label_from_score(-1.0, -2.0) == 1


def test_label_is_none_without_threshold():
    assert label_from_score(10.0, None) is None


def test_result_is_frozen():
    result = InferenceResult(score=1.0, label=0)
    with pytest.raises(AttributeError):
        result.score = 2.0


def test_jsonable_result_uses_plain_types_and_describes_the_map_without_values():
    result = InferenceResult(score=np.float32(0.25), label=1, anomaly_map=np.zeros((3, 5), np.float32))
    out = result_to_jsonable(result, map_path="maps/000000_a.npy")
    assert out == {
        "score": 0.25,
        "label": 1,
        "anomaly_map": {"shape": [3, 5], "dtype": "float32", "path": "maps/000000_a.npy"},
    }
    assert type(out["score"]) is float and type(out["label"]) is int
    json.dumps(out)


def test_jsonable_result_omits_label_and_map_when_absent():
    assert result_to_jsonable(InferenceResult(score=2.0)) == {"score": 2.0}


def test_jsonable_result_turns_non_finite_score_into_null():
    assert result_to_jsonable(InferenceResult(score=math.nan))["score"] is None


def test_jsonable_rejects_other_objects():
    with pytest.raises(TypeError, match="InferenceResult"):
        result_to_jsonable({"score": 1.0})


def test_quantile_threshold_interpolates_linearly_between_order_statistics():
    # q*(n-1) = 0.5*3 = 1.5 -> halfway between 1 and 2.
    assert quantile_threshold([3.0, 0.0, 2.0, 1.0], 0.5)[0] == pytest.approx(1.5)
    # 0.9*4 = 3.6 -> s[3] + 0.6*(s[4]-s[3]) = 40 + 6 = 46.
    assert quantile_threshold([10, 20, 30, 40, 50], 0.9)[0] == pytest.approx(46.0)
    # 0.995*9 = 8.955 -> 8 + 0.955*(9-8).
    assert quantile_threshold(np.arange(10.0), 0.995)[0] == pytest.approx(8.955)
    assert quantile_threshold([4.0, 7.0], 0.0)[0] == 4.0
    assert quantile_threshold([4.0, 7.0], 1.0)[0] == 7.0


def test_quantile_threshold_reports_its_provenance():
    _, provenance = quantile_threshold([1.0, 2.0, 3.0], 0.9, source="calib")
    assert provenance == {"method": "quantile", "quantile": 0.9, "source": "calib", "count": 3}


@pytest.mark.parametrize("q", [-0.1, 1.5, float("nan"), "high"])
def test_quantile_outside_unit_interval_is_rejected(q):
    with pytest.raises(ValueError, match="quantile"):
        quantile_threshold([1.0, 2.0], q)


def test_quantile_of_no_scores_is_rejected():
    with pytest.raises(ValueError, match="zero scores"):
        quantile_threshold([], 0.5)


def test_quantile_of_non_finite_scores_is_rejected():
    with pytest.raises(ValueError, match="non-finite"):
        quantile_threshold([1.0, np.inf], 0.5)


@pytest.mark.parametrize("score", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_score_is_never_labelled(score):
    from pyimgano.inference import NonFiniteScoreError

    with pytest.raises(NonFiniteScoreError, match="non-finite score cannot be labelled"):
        label_from_score(score, 0.5)
    with pytest.raises(NonFiniteScoreError, match="threshold"):
        label_from_score(0.1, score)
    assert label_from_score(score, None) is None  # no threshold, no label to get wrong


def test_infer_frames_names_the_non_finite_frame_and_keeps_the_others(tiny_state, frames_factory, monkeypatch):
    import numpy as np

    import pyimgano.inference.api as api
    from pyimgano.inference import NonFiniteScoreError, infer_frames
    from pyimgano.state import with_threshold

    real = api.predict_frames

    def one_nan(state, frames, **kwargs):
        scores, maps = real(state, frames, **kwargs)
        scores = scores.copy()
        scores[1] = np.nan
        return scores, maps

    monkeypatch.setattr(api, "predict_frames", one_nan)
    state = with_threshold(tiny_state, 0.5)
    with pytest.raises(NonFiniteScoreError, match="frame 1 of 3 scored nan") as info:
        infer_frames(state, list(frames_factory(3, seed=4)))
    assert info.value.indices == (1,)
    assert info.value.results[1] is None
    assert [r.label for r in info.value.results if r is not None] == [int(r.score > 0.5) for r in
                                                                    info.value.results if r is not None]
