"""A memory bank sharded over devices: the search and PatchCore scoring equal the single-device ones.

The 8-device checks run in a fresh process (``XLA_FLAGS`` fixes the host device count when
JAX starts, and this session has 2); the placement rule is tested here on the 2 devices.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pyimgano
from pyimgano import devices

WORKER = Path(__file__).with_name("sharded_bank_worker.py")
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def eight_device_report():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8", "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(WORKER)], capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_sharded_bank_search_equals_brute_force_on_8_devices(eight_device_report):
    r = eight_device_report
    for k in (1, 5):
        assert r[f"k{k}_index_equal_brute"] and r[f"k{k}_index_equal_single"], r
        assert r[f"k{k}_dist_vs_brute"] < 1e-5, r
    assert r["take_rows_equal"]


def test_sharded_patchcore_scoring_equals_single_device_scoring_on_8_devices(eight_device_report):
    r = eight_device_report
    assert r["sharded_fields"] == ["memory_bank"]
    assert r["bank_rows"] % 8 != 0, "the bank should need padding rows"
    assert r["rows_per_device"] == [-(-r["bank_rows"] // 8)] * 8
    assert r["score_diff"] <= 1e-5 * max(1.0, r["score_scale"]), r
    assert r["map_diff"] <= 1e-5, r
    assert r["tiled_score_diff"] <= 1e-5, r
    assert r["defects_score_higher"]


def test_banks_stay_replicated_on_cpu_unless_sharding_is_asked_for(patchcore_state, monkeypatch):
    monkeypatch.delenv("PYIMGANO_BANK_SHARDING", raising=False)
    monkeypatch.delenv("PYIMGANO_BANK_SHARD_BYTES", raising=False)
    assert devices.device_count() == 2
    bank = patchcore_state.model.memory_bank
    assert devices.sharded_fields(patchcore_state.model) == frozenset()
    assert not devices.should_shard_bank(10**6, 4 * 10**9)  # CPU devices report no memory limit
    assert devices.should_shard_bank(64, 1, "on")
    assert not devices.should_shard_bank(2 * devices.MIN_BANK_ROWS_PER_DEVICE - 1, 1, "on")
    assert not devices.should_shard_bank(10**6, 4 * 10**9, "off")
    monkeypatch.setenv("PYIMGANO_BANK_SHARD_BYTES", "1000")
    assert devices.should_shard_bank(64, 1001) and not devices.should_shard_bank(64, 1000)
    monkeypatch.setenv("PYIMGANO_BANK_SHARDING", "off")
    assert not devices.should_shard_bank(64, 10**9)
    with pytest.raises(ValueError, match="accepted"):
        devices.should_shard_bank(64, 1, "sometimes")
    assert bank.shape[0] >= 2 * devices.MIN_BANK_ROWS_PER_DEVICE


def test_a_sharded_state_scores_saves_and_loads_like_a_replicated_one(patchcore_state, frames_factory, tmp_path):
    sharded = pyimgano.place_state(patchcore_state, bank_sharding="on")
    assert devices.sharded_fields(sharded.model) == frozenset({"memory_bank"})
    frames = frames_factory(3, seed=5)
    np.testing.assert_allclose(np.asarray(pyimgano.score(sharded, frames, "rgb_u8_hwc")),
                               np.asarray(pyimgano.score(patchcore_state, frames, "rgb_u8_hwc")), rtol=1e-5, atol=1e-6)
    loaded = pyimgano.load_state(pyimgano.save_state(sharded, tmp_path / "s.safetensors"))
    assert devices.sharded_fields(loaded.model) == frozenset()  # auto on CPU: replicated again
    np.testing.assert_allclose(np.asarray(pyimgano.score(loaded, frames, "rgb_u8_hwc")),
                               np.asarray(pyimgano.score(patchcore_state, frames, "rgb_u8_hwc")), rtol=1e-5, atol=1e-6)


def test_padim_has_no_bank_and_is_always_replicated(padim_state):
    placed = pyimgano.place_state(padim_state, bank_sharding="on")
    assert devices.sharded_fields(placed.model) == frozenset()
