"""Kill ``pyimgano-infer`` (SIGKILL, in a subprocess) at several points, ``--resume``: the same output as one run."""

import os
import shutil
import signal
import subprocess
import sys

import pytest

DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kill_driver.py")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def job(image_dirs, checkpoint, tmp_path_factory):
    """Inputs (six images, one corrupt) and the argv of a run writing records, maps and masks into ``out``."""
    root = tmp_path_factory.mktemp("resume")
    inputs = root / "inputs"
    shutil.copytree(image_dirs["train"], inputs)
    (inputs / "good_2b.png").write_bytes(b"not an image")  # an error record in the middle
    out = root / "out"
    argv = ["--checkpoint-path", checkpoint, "--input", str(inputs), "--continue-on-error", "--batch-size", "2",
            "--save-jsonl", str(out / "r.jsonl"), "--save-maps", str(out / "maps"), "--defects",
            "--pixel-threshold", "0.5", "--save-masks", str(out / "masks")]
    return {"out": out, "argv": argv}


def _snapshot(folder):
    """``{relative path: bytes}`` of every file under ``folder``."""
    found = {}
    for base, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(base, name)
            found[os.path.relpath(path, folder)] = open(path, "rb").read()
    return found


@pytest.fixture(scope="module")
def reference(job, run_cli):
    shutil.rmtree(job["out"], ignore_errors=True)
    run = run_cli(*job["argv"])
    assert run.code == 1, run.err  # the corrupt input
    snap = _snapshot(job["out"])
    assert len([k for k in snap if k.startswith("maps") and k.endswith(".npy")]) == 6
    return run.code, snap


def _killed(job, point, n):
    env = dict(os.environ, PYTHONPATH=REPO)
    done = subprocess.run([sys.executable, DRIVER, point, str(n), "--", *job["argv"]], capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=600)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]


@pytest.mark.parametrize(
    "point, n, kept",
    [
        ("before_scoring", 1, 0),  # the JSONL exists, empty
        ("artifact_rename", 3, 0),  # the second input's map: a temp file left, no record yet
        ("before_record", 4, 2),  # three records written: whole batches kept (two inputs each)
        ("mid_record", 3, 2),  # the error record of the corrupt input, half written
        ("after_record", 5, 4),  # the middle of the third batch; the sixth input's artifacts exist
    ],
)
def test_a_killed_run_resumed_equals_an_uninterrupted_run(job, reference, run_cli, point, n, kept):
    code, expected = reference
    shutil.rmtree(job["out"], ignore_errors=True)
    _killed(job, point, n)
    resumed = run_cli(*job["argv"], "--resume")
    assert resumed.code == code, resumed.err
    assert f"--resume: keeping {kept} of 7 record(s)" in resumed.err
    got = _snapshot(job["out"])
    assert sorted(got) == sorted(expected)  # no temporary file, no stale artifact
    assert got == expected


def test_a_kill_while_resuming_is_resumed_too(job, reference, run_cli):
    code, expected = reference
    shutil.rmtree(job["out"], ignore_errors=True)
    _killed(job, "after_record", 3)
    _killed_resume = [*job["argv"], "--resume"]
    env = dict(os.environ, PYTHONPATH=REPO)
    done = subprocess.run([sys.executable, DRIVER, "manifest", "1", "--", *_killed_resume], capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=600)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    resumed = run_cli(*_killed_resume)
    assert resumed.code == code, resumed.err
    assert "--resume: keeping 2 of 7 record(s)" in resumed.err
    assert _snapshot(job["out"]) == expected


def test_resume_refuses_other_settings_or_inputs_and_a_jsonl_without_its_run_record(job, reference, run_cli,
                                                                                       tmp_path):
    shutil.rmtree(job["out"], ignore_errors=True)
    _killed(job, "after_record", 2)
    other = [a if a != "0.5" else "0.6" for a in job["argv"]]
    refused = run_cli(*other, "--resume")
    assert refused.code == 2 and "settings differ" in refused.err and "pixel_threshold" in refused.err
    fewer = [*job["argv"][:3], os.path.join(job["argv"][3], "good_0.png"), *job["argv"][4:]]
    refused = run_cli(*fewer, "--resume")
    assert refused.code == 2 and "inputs differ" in refused.err
    os.unlink(job["out"] / "r.jsonl.pyimgano-run.json")
    refused = run_cli(*job["argv"], "--resume")
    assert refused.code == 2 and "run record" in refused.err


def test_resume_without_a_jsonl_starts_afresh_and_needs_save_jsonl(job, reference, run_cli):
    code, expected = reference
    shutil.rmtree(job["out"], ignore_errors=True)
    run = run_cli(*job["argv"], "--resume")
    assert run.code == code and _snapshot(job["out"]) == expected
    assert run_cli("--input", "x.png", "--resume").code == 2
