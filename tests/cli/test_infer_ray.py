"""pyimgano-infer --ray-workers: a local Ray instance with 2 workers writes the same JSONL as one process."""

import subprocess
import sys

import numpy as np
import pytest



@pytest.fixture(scope="module")
def folder(tmp_path_factory, make_frame_fn, write_png_fn):
    root = tmp_path_factory.mktemp("ray_inputs")
    for i in range(7):
        write_png_fn(root / f"img_{i:02d}.png", make_frame_fn(300 + i, defect=i == 5))
    (root / "img_02b.png").write_bytes(b"not a png")
    return root


def test_two_ray_workers_write_the_jsonl_of_one_process(folder, checkpoint, tmp_path):
    pytest.importorskip("ray.data", reason="Ray batch scoring is the optional extra pyimgano[ray]")
    common = ["--checkpoint-path", checkpoint, "--input", folder, "--batch-size", 2, "--continue-on-error",
              "--save-maps", "maps", "-q"]
    for name in ("one", "ray"):
        (tmp_path / name).mkdir()
    procs = [subprocess.Popen([sys.executable, "-m", "pyimgano.cli.infer", *map(str, common + extra)], cwd=tmp_path / name,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, extra in (("one", []), ("ray", ["--ray-workers", 2]))]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [1, 1], [err[-2000:] for _, err in outputs]
    single, with_ray = (out for out, _ in outputs)
    assert with_ray == single and len(single.splitlines()) == 8
    names = sorted(p.name for p in (tmp_path / "one" / "maps").glob("*.npy"))
    assert names == sorted(p.name for p in (tmp_path / "ray" / "maps").glob("*.npy")) and len(names) == 7
    for name in names:
        assert (np.load(tmp_path / "one" / "maps" / name) == np.load(tmp_path / "ray" / "maps" / name)).all()


def test_ray_flags_are_checked(run_cli, checkpoint, image_dirs):
    run = run_cli("--checkpoint-path", checkpoint, "--input", image_dirs["test"], "--ray-address", "auto")
    assert run.code == 2 and "--ray-address needs --ray-workers N" in run.err
    run = run_cli("--checkpoint-path", checkpoint, "--input", image_dirs["test"], "--ray-workers", "2", "--distributed")
    assert run.code == 2 and "pass one" in run.err


def test_without_ray_installed_the_message_names_the_extra(run_cli, checkpoint, image_dirs, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError, as when it is not installed
    run = run_cli("--checkpoint-path", checkpoint, "--input", image_dirs["test"], "--ray-workers", "2")
    assert run.code == 2
    assert "--ray-workers: Ray batch scoring needs the ray extra: pip install 'pyimgano[ray]'" in run.err
    assert run.out == ""
