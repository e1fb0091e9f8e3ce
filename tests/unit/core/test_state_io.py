import json

import numpy as np
import pytest

import pyimgano
from pyimgano.state import STATE_SCHEMA_VERSION, DetectorState


@pytest.mark.parametrize("which", ["patchcore_state", "padim_state"])
def test_save_then_load_gives_identical_scores_and_maps(which, request, tmp_path, frames_factory):
    state = request.getfixturevalue(which)
    import attrs

    state = attrs.evolve(state, threshold=0.25, threshold_provenance={"method": "quantile", "quantile": 0.995})
    path = pyimgano.save_state(state, tmp_path / "model.pyimgano")
    loaded = pyimgano.load_state(path)
    assert isinstance(loaded, DetectorState)
    assert loaded.detector == state.detector and loaded.config == state.config
    assert loaded.threshold == 0.25 and loaded.provenance == {"method": "quantile", "quantile": 0.995}
    frames = frames_factory(3, seed=21)
    s0, m0 = pyimgano.predict(state, frames, "rgb_u8_hwc")
    s1, m1 = pyimgano.predict(loaded, frames, "rgb_u8_hwc")
    np.testing.assert_array_equal(np.asarray(s0), np.asarray(s1))
    np.testing.assert_array_equal(np.asarray(m0), np.asarray(m1))


def test_the_state_file_is_not_a_pickle(patchcore_state, tmp_path):
    path = pyimgano.save_state(patchcore_state, tmp_path / "m.pyimgano")
    head = path.read_bytes()[:16]
    assert not head.startswith(b"\x80")  # pickle protocol marker
    header_len = int.from_bytes(head[:8], "little")
    header = json.loads(path.read_bytes()[8 : 8 + header_len])
    assert header["__metadata__"]["format"] == "pyimgano-detector-state"


def test_a_newer_schema_is_refused(patchcore_state, tmp_path):
    from safetensors.numpy import load_file, save_file
    from safetensors import safe_open

    path = pyimgano.save_state(patchcore_state, tmp_path / "m.pyimgano")
    with safe_open(str(path), framework="numpy") as f:
        meta = dict(f.metadata())
    meta["schema_version"] = str(STATE_SCHEMA_VERSION + 1)
    save_file(load_file(str(path)), str(path), metadata=meta)
    with pytest.raises(ValueError, match="newer"):
        pyimgano.load_state(path)


def test_loading_garbage_or_a_missing_file_names_the_path(tmp_path):
    bad = tmp_path / "bad.pyimgano"
    bad.write_bytes(b"not a state")
    with pytest.raises(ValueError, match="bad.pyimgano"):
        pyimgano.load_state(bad)
    with pytest.raises(FileNotFoundError, match="missing.pyimgano"):
        pyimgano.load_state(tmp_path / "missing.pyimgano")
