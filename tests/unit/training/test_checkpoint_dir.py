"""The checkpoint directory (shell): safetensors + JSON, atomic replacement, schema checks."""

import json

import numpy as np
import pytest

from models_jax.training import Checkpoint
from pyimgano.checkpoints import CHECKPOINT_SCHEMA_VERSION, CheckpointDir


def _checkpoint(epoch=1):
    arrays = {"params/w": np.arange(4, dtype=np.float32), "step": np.array(3, np.int32)}
    return Checkpoint(arrays=arrays, epoch=epoch, run={"config": {"lr": 0.1}}, history=({"loss": 1.0},))


def test_an_empty_directory_has_no_checkpoint(tmp_path):
    assert CheckpointDir(tmp_path / "none").load() is None


def test_save_then_load_round_trips_arrays_and_header(tmp_path):
    store = CheckpointDir(tmp_path / "c")
    store.save(_checkpoint())
    store.save(_checkpoint(epoch=2))  # replaces the first
    loaded = store.load()
    assert loaded.epoch == 2 and loaded.run == {"config": {"lr": 0.1}} and loaded.history == ({"loss": 1.0},)
    np.testing.assert_array_equal(loaded.arrays["params/w"], np.arange(4, dtype=np.float32))
    assert loaded.arrays["step"].shape == () and int(loaded.arrays["step"]) == 3
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["checkpoint.safetensors", "training.json"]
    assert json.loads((tmp_path / "c" / "training.json").read_text())["epoch"] == 2


def test_the_checkpoint_is_safetensors_not_pickle(tmp_path):
    store = CheckpointDir(tmp_path)
    store.save(_checkpoint())
    raw = store.checkpoint_file.read_bytes()
    assert not raw.startswith(b"\x80")
    header = json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")])
    assert header["__metadata__"]["format"] == "pyimgano-training-checkpoint"


def test_a_newer_schema_or_a_foreign_file_is_refused(tmp_path):
    from safetensors.numpy import load_file, save_file

    store = CheckpointDir(tmp_path)
    store.save(_checkpoint())
    path = str(store.checkpoint_file)
    from safetensors import safe_open

    with safe_open(path, framework="numpy") as f:
        meta = dict(f.metadata())
    save_file(load_file(path), path, metadata={**meta, "schema_version": str(CHECKPOINT_SCHEMA_VERSION + 1)})
    with pytest.raises(ValueError, match="newer"):
        store.load()
    save_file(load_file(path), path, metadata={**meta, "format": "something-else"})
    with pytest.raises(ValueError, match="not a pyimgano training checkpoint"):
        store.load()
    store.checkpoint_file.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="checkpoint.safetensors"):
        store.load()
