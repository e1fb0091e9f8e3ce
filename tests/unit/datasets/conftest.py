"""Fixtures that write tiny dataset trees into ``tmp_path``."""

from pathlib import Path

import cv2
import numpy as np
import pytest


def _write(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, encoded = cv2.imencode(path.suffix, array)
    assert ok, path
    encoded.tofile(str(path))
    return path


@pytest.fixture
def write_image():
    """``write_image(path, value=128, shape=(8, 8, 3))``: a constant 8-bit image file."""

    def write(path, value=128, shape=(8, 8, 3)):
        return _write(Path(path), np.full(shape, value, np.uint8))

    return write


@pytest.fixture
def write_mask():
    """``write_mask(path, array)``: a 0/255 one-channel mask of a bool array."""

    def write(path, array):
        return _write(Path(path), np.asarray(array, dtype=np.uint8) * 255)

    return write


@pytest.fixture
def tree(write_image, write_mask):
    """``tree(root, spec)`` writes ``{relative path: None | bool mask array}``; None = an image."""

    def build(root, spec):
        root = Path(root)
        for rel, mask in spec.items():
            if mask is None:
                write_image(root / rel)
            else:
                write_mask(root / rel, mask)
        return root

    return build
