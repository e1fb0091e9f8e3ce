"""The neutral file helpers: atomic writes with normal permissions, tree flattening."""

import os
import stat

import numpy as np
import pytest

from pyimgano.fileio import atomic_write_bytes, atomic_write_npy, flatten_tree, unflatten_tree


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_written_files_get_the_permissions_of_a_plain_open_under_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        path = atomic_write_bytes(tmp_path / "sub" / "f.bin", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    target = tmp_path / "f.npy"
    atomic_write_bytes(target, b"old")
    with pytest.raises(ValueError):
        atomic_write_npy(target, np.array([object()], dtype=object))  # object arrays need pickle: refused
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.npy"]


def test_flatten_and_unflatten_are_inverse():
    tree = {"params": {"a": {"kernel": 1}, "b": 2}, "batch_stats": {}}
    flat = flatten_tree(tree)
    assert flat == {"params/a/kernel": 1, "params/b": 2}
    assert unflatten_tree(flat) == {"params": {"a": {"kernel": 1}, "b": 2}}
