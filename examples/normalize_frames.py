"""Frames from OpenCV, PIL and a torch-style pipeline -> one canonical RGB/u8/HWC frame.

Offline and model-free; runs in about a second.  It builds one small synthetic
RGB scene, expresses it the way three common sources hand images over, and
shows that each one, once its format is *declared*, converts to the same
canonical frame (``u8[H, W, 3]``, RGB, C-contiguous).  Then it shows a 12-bit
sensor frame, an ``(N, ...)`` batch, a PNG file round trip, a rejected frame,
and the conversion of canonical frames to a backbone's ``f32[N, h, w, 3]`` input.

Usage::

    python examples/normalize_frames.py
"""

from __future__ import annotations

import pathlib
import tempfile

import cv2
import numpy as np
from PIL import Image

from pyimgano.inputs import (
    ImageFormat,
    canonicalize_images,
    load_image,
    normalize_numpy_image,
    prepare_backbone_input,
)


def synthetic_scene(h: int = 48, w: int = 64) -> np.ndarray:
    """u8[h, w, 3] RGB: a red-to-blue gradient with a green square."""
    x = np.linspace(0, 255, w, dtype=np.float64)
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[..., 0] = np.rint(255 - x).astype(np.uint8)
    rgb[..., 2] = np.rint(x).astype(np.uint8)
    rgb[h // 4 : h // 2, w // 4 : w // 2, 1] = 200
    return rgb


def describe(label: str, array) -> None:
    array = np.asarray(array)
    print(f"  {label:<34} {str(array.dtype):<8} {str(tuple(array.shape)):<18} "
          f"range [{array.min():g}, {array.max():g}]")


def main() -> None:
    scene = synthetic_scene()

    # Three ways the same picture reaches a program.
    opencv_bgr = cv2.cvtColor(scene, cv2.COLOR_RGB2BGR)  # what cv2.imread / VideoCapture give
    pil_rgb = np.asarray(Image.fromarray(scene))  # np.asarray(PIL.Image) is RGB, u8, HWC
    # torchvision's ToTensor(): float32 CHW in [0, 1]; a CPU torch tensor can be passed as is.
    torch_chw = np.ascontiguousarray(scene.transpose(2, 0, 1)).astype(np.float32) / np.float32(255)

    print("inputs (the format is declared by the caller, never guessed):")
    describe("OpenCV frame    -> bgr_u8_hwc", opencv_bgr)
    describe("PIL frame       -> rgb_u8_hwc", pil_rgb)
    describe("ToTensor frame  -> rgb_f32_chw", torch_chw)

    canonical = {
        "bgr_u8_hwc": normalize_numpy_image(opencv_bgr, input_format=ImageFormat.BGR_U8_HWC),
        "rgb_u8_hwc": normalize_numpy_image(pil_rgb, input_format="rgb_u8_hwc"),
        "rgb_f32_chw": normalize_numpy_image(torch_chw, input_format=ImageFormat.RGB_F32_CHW),
    }
    print("canonical frames:")
    for name, frame in canonical.items():
        describe(f"from {name}", frame)
        assert frame.flags.c_contiguous and np.array_equal(frame, scene), name
    print("  all three equal the original RGB scene")

    # A 12-bit monochrome sensor stores 0..4095 in uint16: declare its full scale.
    sensor = np.array([[0, 2048, 4095]], np.uint16)
    gray = normalize_numpy_image(sensor, input_format="gray_u16_hw", u16_max=4095)
    print(f"12-bit gray {sensor[0].tolist()} -> {gray[0, :, 0].tolist()} (repeated to {gray.shape[-1]} channels)")

    # Floats round half to even: 0.5 -> 128, and float32(0.3) * 255 == 76.5 -> 76.
    halves = normalize_numpy_image(np.array([[[0.5, 0.3, 1.0]]], np.float32), input_format="rgb_f32_hwc")
    print(f"float [0.5, 0.3, 1.0] -> {halves[0, 0].tolist()}")

    # A batch (N, ...) of one format is accepted wherever a list of frames is.
    batch = np.stack([opencv_bgr, opencv_bgr[::-1].copy()])
    frames = canonicalize_images(batch, input_format="bgr_u8_hwc")
    print(f"batch {batch.shape} bgr_u8_hwc -> {len(frames)} frames of {frames[0].shape}")

    # Files are decoded to the same canonical form (here an RGBA PNG: alpha is dropped).
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / "scene_rgba.png"
        alpha = np.full(scene.shape[:2], 128, np.uint8)
        Image.fromarray(np.dstack([scene, alpha]), "RGBA").save(path)
        decoded = load_image(path)
        describe("load_image(RGBA png)", decoded)
        assert np.array_equal(decoded, scene)

    # Strictness: an HWC float frame declared as CHW is refused, with the reason.
    try:
        normalize_numpy_image(torch_chw.transpose(1, 2, 0), input_format="rgb_f32_chw")
    except ValueError as error:
        print(f"rejected: {error}")

    # Canonical frames -> a backbone's batch: float32 NHWC, resized, normalised.
    for normalization in ("imagenet", "efficientnet_lite"):
        inputs = prepare_backbone_input(
            list(canonical.values()), size=(32, 32), interpolation="bilinear", normalization=normalization
        )
        describe(f"backbone input ({normalization})", inputs)


if __name__ == "__main__":
    main()
