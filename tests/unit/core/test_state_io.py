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


def test_a_file_in_the_layout_written_before_codec_hooks_still_loads(patchcore_state, tmp_path, frames_factory):
    """The pre-hook writer: one tensor per array field / nested mapping leaf, config as attrs.asdict JSON."""
    import attrs
    from safetensors.numpy import save_file

    from pyimgano.fileio import flatten_tree

    model = patchcore_state.model
    tensors = dict(flatten_tree(model.backbone_variables, "backbone_variables"))
    tensors["memory_bank"] = model.memory_bank
    tensors = {k: np.array(v, order="C") for k, v in tensors.items()}
    metadata = {
        "format": "pyimgano-detector-state",
        "schema_version": "2",
        "detector": "vision_patchcore",
        "config": json.dumps(attrs.asdict(model.config), sort_keys=True),
        "threshold": "1.5",
        "tiling": "null",
        "postprocess": "null",
    }
    save_file(tensors, str(tmp_path / "old.pyimgano"), metadata=metadata)
    loaded = pyimgano.load_state(tmp_path / "old.pyimgano")
    assert loaded.config == patchcore_state.config and loaded.threshold == 1.5
    frames = frames_factory(2, seed=22)
    np.testing.assert_array_equal(
        np.asarray(pyimgano.score(loaded, frames, "rgb_u8_hwc")),
        np.asarray(pyimgano.score(patchcore_state, frames, "rgb_u8_hwc")),
    )


def test_a_detector_registers_codec_hooks_for_a_state_the_generic_writer_cannot_hold(tmp_path):
    """A state field that is a tuple of arrays round-trips through encode_state / decode_state."""
    import attrs
    import jax
    import jax.numpy as jnp

    from pyimgano.registry import register_detector, unregister_detector
    from pyimgano.state import STATE_CODEC

    @attrs.frozen
    class PairConfig:
        scale: float = 1.0

    @attrs.frozen
    class PairState:
        config: PairConfig
        parts: tuple  # (f32[2], f32[3])

    jax.tree_util.register_dataclass(PairState, data_fields=["parts"], meta_fields=["config"])

    def encode(model, codec):
        assert codec is STATE_CODEC
        return {f"part{i}": p for i, p in enumerate(model.parts)}, {"scale": model.config.scale, "n": len(model.parts)}

    def decode(config, tensors, codec):
        parts = tuple(jnp.asarray(tensors[f"part{i}"]) for i in range(config["n"]))
        return PairState(config=PairConfig(scale=config["scale"]), parts=parts)

    def unused(*args, **kwargs):
        raise AssertionError("not called")

    state = pyimgano.DetectorState(
        detector="test_pair", model=PairState(config=PairConfig(2.0), parts=(jnp.arange(2.0), jnp.ones(3)))
    )
    register_detector("test_pair_generic", PairConfig, unused, unused, state_cls=PairState)
    try:
        with pytest.raises(ValueError, match="encode_state"):
            pyimgano.save_state(attrs.evolve(state, detector="test_pair_generic"), tmp_path / "no.pyimgano")
    finally:
        unregister_detector("test_pair_generic")
    register_detector("test_pair", PairConfig, unused, unused, encode_state=encode, decode_state=decode)
    try:
        loaded = pyimgano.load_state(pyimgano.save_state(state, tmp_path / "pair.pyimgano"))
    finally:
        unregister_detector("test_pair")
    assert loaded.config == PairConfig(2.0)
    np.testing.assert_array_equal(np.asarray(loaded.model.parts[0]), [0.0, 1.0])
    np.testing.assert_array_equal(np.asarray(loaded.model.parts[1]), [1.0, 1.0, 1.0])


def test_a_detector_registered_without_state_cls_cannot_be_loaded(patchcore_state, tmp_path):
    from pyimgano.registry import get_detector, register_detector, unregister_detector

    spec = get_detector("vision_patchcore")
    register_detector("test_no_state_cls", spec.config_cls, spec.fit, spec.predict)
    try:
        import attrs

        path = pyimgano.save_state(attrs.evolve(patchcore_state, detector="test_no_state_cls"), tmp_path / "x.pyimgano")
        with pytest.raises(ValueError, match="without state_cls"):
            pyimgano.load_state(path)
    finally:
        unregister_detector("test_no_state_cls")
