"""A damaged or mismatched state is one clear error at load, never a silent pass or an input's failure."""

import logging

import attrs
import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

import pyimgano
from pyimgano.registry import get_detector
from pyimgano.state_integrity import HASH_FIELD, check_model_arrays, check_model_traces, content_sha256


def _read(path):
    with safe_open(str(path), framework="numpy") as handle:
        return {k: handle.get_tensor(k) for k in handle.keys()}, dict(handle.metadata())


def _rewrite(src, dst, *, tensors=None, metadata=None, rehash=True):
    """Copy a state file, changing tensors / header fields; re-hash unless told otherwise."""
    t, m = _read(src)
    t.update(tensors or {})
    m.update(metadata or {})
    m = {k: v for k, v in m.items() if v is not None}
    if rehash:
        m[HASH_FIELD] = content_sha256(t, m)
    save_file(t, str(dst), metadata=m)
    return dst


@pytest.fixture(scope="module")
def saved(patchcore_state, tmp_path_factory):
    state = attrs.evolve(patchcore_state, threshold=1.5, threshold_provenance={"method": "fixed", "source": "explicit"})
    return pyimgano.save_state(state, tmp_path_factory.mktemp("state") / "good.safetensors")


def test_a_saved_state_carries_a_hash_of_its_content_and_loads(saved):
    tensors, metadata = _read(saved)
    assert metadata["schema_version"] == "3"
    assert metadata[HASH_FIELD] == content_sha256(tensors, metadata)
    assert pyimgano.load_state(saved).threshold == 1.5


@pytest.mark.parametrize("where", ["tensor data", "header value"])
def test_flipped_bytes_are_caught_by_the_hash(saved, tmp_path, where):
    data = bytearray(saved.read_bytes())
    if where == "tensor data":
        data[-5] ^= 0x01
    else:
        at = data.index(b'"threshold":"1.5"') + len(b'"threshold":"')
        data[at] = ord("2")  # an edited threshold: still valid JSON, still a valid number
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"bad\.safetensors: content hash mismatch"):
        pyimgano.load_state(bad)


def test_a_truncated_state_file_is_refused_naming_it(saved, tmp_path):
    bad = tmp_path / "cut.safetensors"
    bad.write_bytes(saved.read_bytes()[: saved.stat().st_size // 2])
    with pytest.raises(ValueError, match="cut.safetensors"):
        pyimgano.load_state(bad)


def test_a_nan_memory_bank_is_refused_at_load(saved, tmp_path):
    bank = _read(saved)[0]["memory_bank"]
    bad = _rewrite(saved, tmp_path / "nan.safetensors", tensors={"memory_bank": np.full_like(bank, np.nan)})
    with pytest.raises(ValueError, match=rf"nan.safetensors: .*memory_bank holds {bank.size} non-finite"):
        pyimgano.load_state(bad)


def test_a_tensor_of_the_wrong_shape_is_refused_at_load_naming_the_expected_shape(saved, tmp_path):
    bank = _read(saved)[0]["memory_bank"]
    bad = _rewrite(saved, tmp_path / "shape.safetensors", tensors={"memory_bank": bank[:, :5].copy()})
    with pytest.raises(ValueError, match=rf"memory_bank has shape \({bank.shape[0]}, 5\), expected \(M, 16\)"):
        pyimgano.load_state(bad)


def test_a_wrong_dtype_and_a_missing_backbone_array_are_all_listed(saved, tmp_path):
    tensors, _ = _read(saved)
    kernel = next(k for k in tensors if k.endswith("kernel"))
    bad = _rewrite(saved, tmp_path / "dtype.safetensors",
                   tensors={"memory_bank": tensors["memory_bank"].astype(np.int32)})
    with pytest.raises(ValueError, match="memory_bank has dtype int32, expected float32"):
        pyimgano.load_state(bad)
    t, m = _read(saved)
    del t[kernel]
    m[HASH_FIELD] = content_sha256(t, m)
    save_file(t, str(tmp_path / "missing.safetensors"), metadata=m)
    with pytest.raises(ValueError, match="missing.safetensors"):
        pyimgano.load_state(tmp_path / "missing.safetensors")


@pytest.mark.parametrize("value", ["NaN", "Infinity", "\"high\""])
def test_a_non_finite_threshold_in_the_header_is_refused(saved, tmp_path, value):
    bad = _rewrite(saved, tmp_path / "thr.safetensors", metadata={"threshold": value})
    with pytest.raises(ValueError, match="threshold must be a finite number"):
        pyimgano.load_state(bad)


def test_an_old_state_without_a_hash_loads_with_a_warning(saved, tmp_path, caplog):
    old = _rewrite(saved, tmp_path / "old.safetensors", metadata={"schema_version": "2", HASH_FIELD: None},
                   rehash=False)
    with caplog.at_level(logging.WARNING, logger="pyimgano.state"):
        state = pyimgano.load_state(old)
    assert state.threshold == 1.5
    assert any("no content hash" in r.getMessage() for r in caplog.records)


def test_a_current_schema_without_its_hash_is_refused(saved, tmp_path):
    bad = _rewrite(saved, tmp_path / "nohash.safetensors", metadata={HASH_FIELD: None}, rehash=False)
    with pytest.raises(ValueError, match="requires a content_sha256"):
        pyimgano.load_state(bad)


def test_a_state_with_non_finite_values_is_not_saved(patchcore_state, tmp_path):
    broken = attrs.evolve(patchcore_state, model=attrs.evolve(
        patchcore_state.model, memory_bank=patchcore_state.model.memory_bank.at[0, 0].set(np.inf)))
    with pytest.raises(ValueError, match="refusing to save.*memory_bank holds 1 non-finite"):
        pyimgano.save_state(broken, tmp_path / "x.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_padim_positions_must_match_the_grid_of_its_config(padim_state):
    spec = get_detector("vision_padim")
    model = padim_state.model
    squeezed = attrs.evolve(model, mean=model.mean[:1], inv_cholesky=model.inv_cholesky[:1])  # would broadcast
    with pytest.raises(ValueError, match=r"mean has shape \(1, 8\), expected \(64, 8\)"):
        check_model_arrays(spec, squeezed, "state")


def test_without_a_shape_hook_a_predict_trace_still_catches_arrays_that_do_not_fit(patchcore_state):
    spec = attrs.evolve(get_detector("vision_patchcore"), state_shapes=None)
    model = patchcore_state.model
    check_model_arrays(spec, model, "state")
    check_model_traces(spec, model, "state")
    narrow = attrs.evolve(model, memory_bank=model.memory_bank[:, :5])
    check_model_arrays(spec, narrow, "state")  # no hook: shapes are not known here
    with pytest.raises(ValueError, match="state: the vision_patchcore state's arrays do not fit together"):
        check_model_traces(spec, narrow, "state")
