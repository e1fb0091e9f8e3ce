"""pyimgano-infer --device / infer-config model.device, --bank-sharding, --compilation-cache.

No GPU or TPU here: the tests select CPU devices, check that an unavailable platform is
a usage error naming what is available, and that the compilation cache is written by one
process and read back by the next.
"""

import json
import os
import subprocess
import sys

import pytest

from pyimgano import devices


@pytest.fixture(autouse=True)
def _all_devices_again():
    yield
    devices.use_devices("auto")


def _scores(run):
    return [(r["input"], r["score"]) for r in run.records()]


def test_device_cpu_scores_like_auto_and_the_profile_names_the_devices(run_cli, checkpoint, image_dirs, tmp_path):
    auto = run_cli("--checkpoint-path", checkpoint, "--input", image_dirs["test"])
    prof = tmp_path / "p.json"
    cpu = run_cli("--checkpoint-path", checkpoint, "--input", image_dirs["test"], "--device", "cpu",
                  "--profile-json", prof)
    assert (auto.code, cpu.code) == (0, 0), cpu.err
    assert _scores(cpu) == _scores(auto)
    assert json.loads(prof.read_text())["devices"] == [str(d) for d in devices.select_devices("cpu")]


def test_device_indices_select_one_of_the_host_devices(run_cli, checkpoint, image_dirs, tmp_path):
    prof = tmp_path / "p.json"
    one = run_cli("--checkpoint-path", checkpoint, "--input", image_dirs["test"], "--device", "cpu:1",
                  "--profile-json", prof)
    assert one.code == 0, one.err
    assert json.loads(prof.read_text())["devices"] == [str(devices.select_devices("cpu")[1])]
    both = run_cli("--checkpoint-path", checkpoint, "--input", image_dirs["test"])
    for (name_a, a), (name_b, b) in zip(_scores(one), _scores(both)):
        assert name_a == name_b and a == pytest.approx(b, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("spec, message", [
    ("tpu", "--device: device 'tpu' is not available: JAX has no 'tpu' devices in this process (available platforms: cpu"),
    ("gpu:0", "--device: device 'gpu:0' is not available"),
    ("cpu:7", "--device: device 'cpu:7': index 7 out of range; this process has 2 cpu device(s)"),
    ("banana", "--device: unknown device 'banana'; accepted: auto, cpu, gpu, cuda, rocm, tpu"),
])
def test_an_unavailable_device_is_a_usage_error_not_a_silent_fallback(run_cli, checkpoint, image_dirs, spec, message):
    run = run_cli("--checkpoint-path", checkpoint, "--input", image_dirs["test"], "--device", spec)
    assert run.code == 2
    assert message in run.err
    assert run.out == ""


def test_the_infer_config_model_device_is_used_and_checked(run_cli, checkpoint, image_dirs, tmp_path):
    config = tmp_path / "infer_config.json"
    config.write_text(json.dumps({"model": {"checkpoint_path": checkpoint, "device": "tpu"}}))
    run = run_cli("--infer-config", config, "--input", image_dirs["test"])
    assert run.code == 2 and "device 'tpu' is not available" in run.err
    assert run_cli("--infer-config", config, "--input", image_dirs["test"], "--device", "cpu").code == 0  # flag wins
    config.write_text(json.dumps({"model": {"checkpoint_path": checkpoint, "device": "cpu:9x"}}))
    run = run_cli("--infer-config", config, "--input", image_dirs["test"])
    assert run.code == 2 and "infer-config model.device: device 'cpu:9x': indices must be integers" in run.err


def test_bank_sharding_on_gives_the_same_records(run_cli, checkpoint, image_dirs):
    off = run_cli("--checkpoint-path", checkpoint, "--input", image_dirs["test"], "--bank-sharding", "off")
    on = run_cli("--checkpoint-path", checkpoint, "--input", image_dirs["test"], "--bank-sharding", "on",
                 "--include-maps")
    assert (off.code, on.code) == (0, 0), on.err
    for (name_a, a), (name_b, b) in zip(_scores(off), _scores(on)):
        assert name_a == name_b and a == pytest.approx(b, rel=1e-5, abs=1e-6)


def test_a_restarted_run_reads_its_programs_from_the_compilation_cache(checkpoint, image_dirs, tmp_path):
    cache = tmp_path / "jax-cache"
    env = {**os.environ, "PYIMGANO_COMPILATION_CACHE": str(cache)}

    def run(i):
        prof = tmp_path / f"profile{i}.json"
        cmd = [sys.executable, "-m", "pyimgano.cli.infer", "--checkpoint-path", checkpoint, "--input",
               image_dirs["test"], "--include-maps", "--profile-json", str(prof), "-q"]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc.stdout, json.loads(prof.read_text())["compilation_cache"]

    out1, first = run(1)
    files = sorted(p.name for p in cache.iterdir())
    assert first["dir"] == str(cache.resolve()) and first["misses"] > 0 and files
    out2, second = run(2)
    assert second["hits"] >= first["misses"] and second["misses"] == 0, (first, second)
    assert sorted(p.name for p in cache.iterdir()) == files  # nothing recompiled, nothing new written
    assert out2 == out1
