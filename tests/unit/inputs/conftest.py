"""Small image files written by the tests themselves (no external data)."""

import io

import cv2
import numpy as np
import pytest
from PIL import Image


@pytest.fixture
def rgb_pixels():
    """A deterministic u8[6, 5, 3] RGB frame with distinct channels."""
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)


@pytest.fixture
def write_pil(tmp_path):
    """write_pil(name, image, format=None, **save_kwargs) -> path, using Pillow."""

    def write(name, image, fmt=None, **kwargs):
        path = tmp_path / name
        image.save(path, format=fmt, **kwargs)
        return path

    return write


@pytest.fixture
def write_cv2(tmp_path):
    """write_cv2(name, array) -> path, using OpenCV (BGR order, keeps 16-bit)."""

    def write(name, array):
        path = tmp_path / name
        ok, encoded = cv2.imencode(path.suffix, array)
        assert ok
        path.write_bytes(encoded.tobytes())
        return path

    return write


def pil_bytes(image, fmt, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


@pytest.fixture
def encode_pil():
    return pil_bytes
