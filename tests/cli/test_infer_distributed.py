"""pyimgano-infer --distributed: 2 jax.distributed processes on this machine write the same JSONL as one process."""

import socket
import subprocess
import sys

import numpy as np
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def folder(tmp_path_factory, make_frame_fn, write_png_fn):
    """9 images (5 batches of 2: process 0 scores 3, process 1 two) and one unreadable file."""
    root = tmp_path_factory.mktemp("distributed_inputs")
    for i in range(9):
        write_png_fn(root / f"img_{i:02d}.png", make_frame_fn(200 + i, defect=i in (3, 7)))
    (root / "img_04b.png").write_bytes(b"not a png")
    return root


def _cli(cwd, *argv):
    return subprocess.Popen([sys.executable, "-m", "pyimgano.cli.infer", *map(str, argv)], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_processes_write_the_jsonl_of_one_process(folder, checkpoint, tmp_path):
    common = ["--checkpoint-path", checkpoint, "--input", folder, "--batch-size", 2, "--continue-on-error",
              "--save-maps", "maps", "-q"]
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one = _cli(tmp_path / "one", *common, "--save-jsonl", "records.jsonl")
    port = _free_port()
    two = [_cli(tmp_path / "two", *common, "--distributed", "--coordinator", f"127.0.0.1:{port}",
                "--num-processes", 2, "--process-id", rank) for rank in (0, 1)]
    outputs = [p.communicate(timeout=600) for p in (one, *two)]
    codes = [p.returncode for p in (one, *two)]
    assert codes == [1, 1, 1], [err[-1500:] for _, err in outputs]  # 1: the unreadable input, as one process
    single = (tmp_path / "one" / "records.jsonl").read_text()
    assert [out for out, _ in outputs] == ["", single, ""]  # rank 0 writes the records on stdout, rank 1 nothing
    lines = single.splitlines()
    assert len(lines) == 10 and '"status": "error"' in lines[5]
    maps_one = sorted(p.name for p in (tmp_path / "one" / "maps").glob("*.npy"))
    assert maps_one == sorted(p.name for p in (tmp_path / "two" / "maps").glob("*.npy")) and len(maps_one) == 9
    for name in maps_one:
        assert (np.load(tmp_path / "one" / "maps" / name) == np.load(tmp_path / "two" / "maps" / name)).all()


def test_cluster_flags_need_distributed(run_cli, checkpoint, image_dirs):
    run = run_cli("--checkpoint-path", checkpoint, "--input", image_dirs["test"], "--process-id", "1")
    assert run.code == 2 and "need --distributed" in run.err
    run = run_cli("--checkpoint-path", checkpoint, "--input", image_dirs["test"], "--distributed",
                  "--num-processes", "2", "--process-id", "2")
    assert run.code == 2 and "invalid --process-id 2; accepted: 0..1" in run.err
