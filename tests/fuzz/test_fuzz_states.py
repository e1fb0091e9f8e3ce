"""Fuzz the state loader: damaged bytes, then header edits that keep a valid hash (deep parsing reached)."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.numpy import save_file

import pyimgano
from pyimgano.state import DetectorState
from pyimgano.state_integrity import HASH_FIELD, content_sha256


def _check(path):
    try:
        state = pyimgano.load_state(path)
    except ValueError as exc:
        assert str(path) in str(exc)
        return "refused"
    assert isinstance(state, DetectorState)
    return "loaded"


def test_damaged_state_bytes_load_or_raise_one_value_error_naming_the_file(tiny_state, tmp_path, fuzz_budget,
                                                                          fuzz_case):
    good = pyimgano.save_state(tiny_state, tmp_path / "good.safetensors").read_bytes()
    path = tmp_path / "damaged.safetensors"
    outcomes = []

    @settings(max_examples=fuzz_budget["load_state (damaged bytes)"])
    @given(kind=st.sampled_from(["truncate", "flip", "insert", "header_length"]), at=st.integers(0, len(good) - 1),
           value=st.integers(1, 255))
    def check(kind, at, value):
        if kind == "truncate":
            data = good[:at]
        elif kind == "flip":
            data = bytearray(good)
            data[at] ^= value
            data = bytes(data)
        elif kind == "insert":
            data = good[:at] + bytes([value]) * (value % 7 + 1) + good[at:]
        else:  # the u64 header length: may claim more than the file holds
            data = (int.from_bytes(good[:8], "little") + value * 1_000_003).to_bytes(8, "little") + good[8:]
        path.write_bytes(data)
        with fuzz_case():
            outcomes.append(_check(path))

    check()
    assert fuzz_case.count >= 0.8 * fuzz_budget["load_state (damaged bytes)"]
    assert "refused" in outcomes


FIELDS = ["format", "schema_version", "detector", "config", "threshold", "threshold_provenance", "pixel_threshold",
          "pixel_threshold_provenance", "tiling", "postprocess", "pyimgano_version"]
JSONISH = st.one_of(
    st.sampled_from(["null", "NaN", "-Infinity", "1e999", "0.5", "[]", "{}", '"x"', "true", "{bad", "4", "99",
                     '{"tile_size": 0}', '{"tile_size": 8, "stride": 4}', '{"normalize": "minmax"}',
                     '{"backbone": "tiny_resnet", "image_size": [32, 32]}', '{"image_size": -1}',
                     '{"nope": 1}', '"vision_padim"', '"vision_patchcore"', '"pyimgano-detector-state"']),
    st.text(max_size=20),
    st.recursive(st.one_of(st.none(), st.integers(-(10**20), 10**20), st.floats(allow_nan=False), st.text(max_size=5)),
                 lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner,
                                                                                      max_size=3)),
                 max_leaves=6).map(json.dumps),
)


def test_header_edits_with_a_valid_hash_load_or_raise_one_value_error(tiny_state, tmp_path, fuzz_budget, fuzz_case):
    source = pyimgano.save_state(tiny_state, tmp_path / "good.safetensors")
    with safe_open(str(source), framework="numpy") as handle:
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
        header = dict(handle.metadata())
    path = tmp_path / "edited.safetensors"

    @settings(max_examples=fuzz_budget["load_state (re-hashed header edits)"])
    @given(edits=st.dictionaries(st.sampled_from(FIELDS), JSONISH, min_size=1, max_size=3),
           drop=st.lists(st.sampled_from(FIELDS), max_size=1))
    def check(edits, drop):
        metadata = {**header, **edits}
        for key in drop:
            metadata.pop(key, None)
        metadata[HASH_FIELD] = content_sha256(tensors, metadata)
        save_file(tensors, str(path), metadata=metadata)
        with fuzz_case():
            _check(path)

    check()
    assert fuzz_case.count >= 0.8 * fuzz_budget["load_state (re-hashed header edits)"]
