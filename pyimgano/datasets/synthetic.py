"""A small synthetic inspection set in the MVTec AD layout, for demos and tests.

Each image shows one machined "part": a brushed-metal plate with rounded corners, a bevelled
rim and two mounting holes, on a dark textured table. Normal images differ from each other
(fresh brushing noise, a few pixels of shift, a few degrees of rotation, brightness and
contrast), so a detector has to learn the texture rather than memorise one picture. Defect
images add, on the plate only:

- ``scratch``: one or two thin (1-2 px), slightly curved bright or dark lines;
- ``spot``: one to three irregular dark (oil, rust) or bright blobs, 3-7 px across;
- ``dent``: a shaded ellipse (lit on one side, shadowed on the other, brushing smoothed out).

Masks are exact: a defect's blend weight is set to zero wherever it is below the mask
threshold, so no pixel outside the mask is touched and the mask has no soft, unchanged rim.

Everything is numpy + OpenCV; the default set (48 + 16 + 32 images of 160 px) is written in
well under two seconds. Each image depends only on ``(seed, role, index)``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np

from pyimgano.datasets.split import DatasetSplit

__all__ = ["DEFECT_TYPES", "make_synthetic_inspection_set"]

#: Defect folders written under ``test/`` (and ``ground_truth/``), assigned round-robin.
DEFECT_TYPES: tuple[str, ...] = ("scratch", "spot", "dent")

# Marks a folder as written by this module, so a later call may replace it without any risk
# of deleting a user's files.
_MARKER = ".pyimgano_synthetic"
# Blend weights below this are dropped, so mask == "pixel changed" exactly.
_ALPHA_MIN = 0.3
_ROLES = {"train": 0, "test_good": 1, "test_defect": 2}


def _brushed(rng: np.random.Generator, size: int, streak: int) -> np.ndarray:
    """Zero-mean anisotropic noise: white noise smeared along x (a brushing direction), f32[S, S]."""
    noise = rng.standard_normal((size, size)).astype(np.float32)
    streaks = cv2.blur(noise, (streak, 1), borderType=cv2.BORDER_REFLECT)
    fine = cv2.GaussianBlur(noise, (0, 0), 0.7)
    texture = streaks * np.sqrt(streak) * 0.8 + fine * 0.35
    return texture / max(float(texture.std()), 1e-6)


def _render_part(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One normal part: (gray f32[S, S] in 0..255, plate mask bool[S, S]), already jittered."""
    s = float(size)
    # Table: dark, faint low-frequency blotches plus sensor noise.
    table_blotch = cv2.GaussianBlur(rng.standard_normal((size, size)).astype(np.float32), (0, 0), s / 16)
    table = 42.0 + 60.0 * table_blotch + 3.0 * rng.standard_normal((size, size)).astype(np.float32)

    # Plate geometry in the canonical frame (centred); jitter comes from one affine warp below.
    plate = np.zeros((size, size), np.uint8)
    half_w, half_h, radius = int(0.36 * s), int(0.30 * s), int(0.08 * s)
    c = size // 2
    cv2.rectangle(plate, (c - half_w + radius, c - half_h), (c + half_w - radius, c + half_h), 255, -1)
    cv2.rectangle(plate, (c - half_w, c - half_h + radius), (c + half_w, c + half_h - radius), 255, -1)
    for sx in (-1, 1):
        for sy in (-1, 1):
            cv2.circle(plate, (c + sx * (half_w - radius), c + sy * (half_h - radius)), radius, 255, -1, cv2.LINE_AA)
    holes = np.zeros_like(plate)
    hole_r = max(2, int(0.045 * s))
    hole_centres = [(c - int(0.24 * s), c), (c + int(0.24 * s), c)]
    for centre in hole_centres:
        cv2.circle(holes, centre, hole_r, 255, -1, cv2.LINE_AA)
    plate_f = plate.astype(np.float32) / 255.0
    holes_f = holes.astype(np.float32) / 255.0

    # Metal: a gentle light gradient, brushing streaks, a bright bevel along the rim.
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / s
    metal = 150.0 + 25.0 * (xx - 0.5) - 15.0 * (yy - 0.5) + 7.0 * _brushed(rng, size, max(5, size // 10))
    rim = cv2.GaussianBlur(plate_f, (0, 0), 1.2)
    bevel = np.clip(rim * (1.0 - rim) * 4.0, 0.0, 1.0)  # peaks on the edge
    metal += 45.0 * bevel
    hole_rim = cv2.GaussianBlur(holes_f, (0, 0), 1.0)
    metal += 35.0 * np.clip(hole_rim * (1.0 - hole_rim) * 4.0, 0.0, 1.0)
    inside = plate_f * (1.0 - holes_f)
    gray = table * (1.0 - inside) + metal * inside

    # Pose and exposure jitter: normal parts are never pixel-identical.
    angle = float(rng.uniform(-3.0, 3.0))
    shift = rng.uniform(-0.02 * s, 0.02 * s, size=2)
    warp = cv2.getRotationMatrix2D((s / 2, s / 2), angle, 1.0)
    warp[:, 2] += shift
    gray = cv2.warpAffine(gray, warp, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    inside = cv2.warpAffine(inside, warp, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    gray = gray * float(rng.uniform(0.93, 1.07)) + float(rng.uniform(-6.0, 6.0))
    gray += 2.0 * rng.standard_normal((size, size)).astype(np.float32)
    # Defects go on solid metal only: away from the rim and the holes.
    margin = max(3, size // 20)
    solid = cv2.erode((inside > 0.99).astype(np.uint8), np.ones((2 * margin + 1, 2 * margin + 1), np.uint8))
    return gray, solid.astype(bool)


def _pick_centre(rng: np.random.Generator, solid: np.ndarray, reach: int) -> tuple[float, float]:
    """A random pixel of ``solid`` at least ``reach`` pixels from its border (when there is one),
    so the whole defect lands on metal instead of being cut off by the rim."""
    inner = cv2.erode(solid.astype(np.uint8), np.ones((2 * reach + 1, 2 * reach + 1), np.uint8))
    ys, xs = np.nonzero(inner if inner.any() else solid)
    i = int(rng.integers(ys.size))
    return float(xs[i]), float(ys[i])


def _scratch(rng: np.random.Generator, size: int, solid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(alpha f32[S, S], delta f32[S, S]): thin curved lines, bright or dark."""
    canvas = np.zeros((size, size), np.uint8)
    for _ in range(int(rng.integers(1, 3))):
        length = float(rng.uniform(0.12, 0.25)) * size
        x0, y0 = _pick_centre(rng, solid, int(length / 2) + 2)
        # Steer away from the brushing direction (x), where a line would hide in the streaks.
        theta = float(rng.uniform(np.pi / 6, 5 * np.pi / 6)) * (1 if rng.random() < 0.5 else -1)
        t = np.linspace(-0.5, 0.5, 9)[:, None]
        bend = float(rng.uniform(-0.08, 0.08)) * length * (1 - (2 * t) ** 2)
        direction = np.array([[np.cos(theta), np.sin(theta)]])
        normal = np.array([[-np.sin(theta), np.cos(theta)]])
        points = np.array([[x0, y0]]) + t * length * direction + bend * normal
        cv2.polylines(canvas, [np.round(points * 16).astype(np.int32)], False, 255,
                      int(rng.integers(1, 3)), cv2.LINE_AA, shift=4)
    alpha = canvas.astype(np.float32) / 255.0
    sign = 1.0 if rng.random() < 0.6 else -1.0
    delta = np.full((size, size), sign * float(rng.uniform(16.0, 30.0)), np.float32)
    return alpha, delta


def _spot(rng: np.random.Generator, size: int, solid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Irregular blobs: an ellipse roughened by blurred noise, dark (mostly) or bright."""
    alpha = np.zeros((size, size), np.float32)
    for _ in range(int(rng.integers(1, 4))):
        x0, y0 = _pick_centre(rng, solid, 8)
        shape = np.zeros((size, size), np.float32)
        axes = (int(rng.integers(2, 5)), int(rng.integers(2, 5)))
        cv2.ellipse(shape, (int(x0), int(y0)), axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1, cv2.LINE_AA)
        rough = cv2.GaussianBlur(rng.standard_normal((size, size)).astype(np.float32), (0, 0), 1.5)
        shape = cv2.GaussianBlur(shape, (0, 0), 1.0) + 0.6 * rough * (shape > 0)
        alpha = np.maximum(alpha, np.clip(shape * 1.6, 0.0, 1.0))
    sign = -1.0 if rng.random() < 0.7 else 1.0
    delta = np.full((size, size), sign * float(rng.uniform(20.0, 36.0)), np.float32)
    return alpha, delta


def _dent(rng: np.random.Generator, size: int, solid: np.ndarray, gray: np.ndarray):
    """A shaded ellipse; returns (alpha, delta) with the brushing inside it smoothed out."""
    axes = (int(rng.integers(max(3, size // 26), max(4, size // 13) + 1)),
            int(rng.integers(max(3, size // 32), max(4, size // 16) + 1)))
    x0, y0 = _pick_centre(rng, solid, max(axes) + 2)
    angle = float(rng.uniform(0, 180))
    region = np.zeros((size, size), np.float32)
    cv2.ellipse(region, (int(x0), int(y0)), axes, angle, 0, 360, 1.0, -1, cv2.LINE_AA)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    light = float(rng.uniform(0, 2 * np.pi))
    # Distance along the light direction, scaled so the ellipse spans about -1..1.
    along = ((xx - x0) * np.cos(light) + (yy - y0) * np.sin(light)) / float(max(axes))
    strength = float(rng.uniform(16.0, 28.0))
    smooth = cv2.GaussianBlur(gray, (0, 0), 2.0)
    # A dent is a bowl: the far wall faces the light (bright), the near wall is in shadow.
    delta = strength * np.clip(along, -1.0, 1.0) - 6.0 + (smooth - gray)
    return region, delta.astype(np.float32)


def _apply(gray: np.ndarray, alpha: np.ndarray, delta: np.ndarray, solid: np.ndarray):
    alpha = np.where((alpha >= _ALPHA_MIN) & solid, alpha, 0.0).astype(np.float32)
    return gray + alpha * delta, alpha > 0


def _to_bgr(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # A faint, per-image colour cast (warm steel), so the images are true 3-channel inputs.
    tint = np.array([0.97, 1.0, 1.03], np.float32) * rng.uniform(0.98, 1.02, size=3).astype(np.float32)
    return np.clip(np.rint(gray[..., None] * tint), 0, 255).astype(np.uint8)


def _write_png(path: Path, image: np.ndarray) -> None:
    ok, encoded = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise OSError(f"cannot encode PNG for {str(path)!r}")
    encoded.tofile(str(path))


def _check_count(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _prepare_root(root: Path) -> None:
    if root.exists() and not root.is_dir():
        raise FileExistsError(f"synthetic set root {str(root)!r} exists and is not a folder")
    if root.is_dir() and any(root.iterdir()):
        if not (root / _MARKER).is_file():
            raise FileExistsError(
                f"synthetic set root {str(root)!r} is not empty and was not written by "
                "make_synthetic_inspection_set; pass an empty or new folder"
            )
        for sub in ("train", "test", "ground_truth"):
            if (root / sub).is_dir():
                shutil.rmtree(root / sub)
    root.mkdir(parents=True, exist_ok=True)
    (root / _MARKER).write_text("written by pyimgano.datasets.make_synthetic_inspection_set\n")


def make_synthetic_inspection_set(
    root: str | os.PathLike,
    *,
    n_train: int = 48,
    n_test_good: int = 16,
    n_test_defect: int = 32,
    size: int = 160,
    seed: int = 0,
) -> DatasetSplit:
    """Write a synthetic MVTec-like category to ``root`` and return its split.

    Layout: ``root/train/good/NNN.png``, ``root/test/good/NNN.png``,
    ``root/test/<scratch|spot|dent>/NNN.png`` and ``root/ground_truth/<type>/NNN_mask.png``
    (0/255, one channel). Images are 3-channel 8-bit PNGs (BGR on disk, as OpenCV writes).
    Defect image ``i`` gets type ``DEFECT_TYPES[i % 3]``. The same folder can be read back
    with ``load_mvtec_split(root.parent, root.name)``, which gives the same split.

    Args:
        root: the category folder to write; created if missing. It must be empty or a set
            written earlier by this function (which is then replaced).
        n_train: normal training images, >= 1.
        n_test_good: normal test images, >= 0.
        n_test_defect: defect test images, >= 0 (at least one test image overall).
        size: image side in pixels, >= 64.
        seed: any non-negative integer; equal arguments give byte-identical files.

    Returns:
        A :class:`DatasetSplit` (``dataset="mvtec"``, ``category=root.name``) with labels 0/1,
        mask paths (None for good images) and defect types, sorted as the MVTec loader sorts.

    Raises:
        ValueError: a count, ``size`` or ``seed`` out of range.
        FileExistsError: ``root`` is a file, or a non-empty folder not written by this function.
    """
    n_train = _check_count("n_train", n_train, 1)
    n_test_good = _check_count("n_test_good", n_test_good, 0)
    n_test_defect = _check_count("n_test_defect", n_test_defect, 0)
    size = _check_count("size", size, 64)
    seed = _check_count("seed", seed, 0)
    if n_test_good + n_test_defect == 0:
        raise ValueError("need at least one test image: n_test_good and n_test_defect are both 0")
    root = Path(root)
    _prepare_root(root)

    def rng_for(role: str, index: int) -> np.random.Generator:
        return np.random.default_rng([seed, _ROLES[role], index])

    train_dir = root / "train" / "good"
    train_dir.mkdir(parents=True)
    train_paths = []
    for i in range(n_train):
        rng = rng_for("train", i)
        gray, _ = _render_part(rng, size)
        path = train_dir / f"{i:03d}.png"
        _write_png(path, _to_bgr(gray, rng))
        train_paths.append(str(path))

    # test entries keyed by (type, name) so the order matches the folder loaders.
    entries: list[tuple[str, str, int, str | None]] = []
    if n_test_good:
        (root / "test" / "good").mkdir(parents=True)
    for i in range(n_test_good):
        rng = rng_for("test_good", i)
        gray, _ = _render_part(rng, size)
        path = root / "test" / "good" / f"{i:03d}.png"
        _write_png(path, _to_bgr(gray, rng))
        entries.append(("good", str(path), 0, None))

    per_type_count = dict.fromkeys(DEFECT_TYPES, 0)
    for i in range(n_test_defect):
        defect = DEFECT_TYPES[i % len(DEFECT_TYPES)]
        rng = rng_for("test_defect", i)
        gray, solid = _render_part(rng, size)
        if defect == "scratch":
            alpha, delta = _scratch(rng, size, solid)
        elif defect == "spot":
            alpha, delta = _spot(rng, size, solid)
        else:
            alpha, delta = _dent(rng, size, solid, gray)
        gray, mask = _apply(gray, alpha, delta, solid)
        index = per_type_count[defect]
        per_type_count[defect] += 1
        image_dir = root / "test" / defect
        mask_dir = root / "ground_truth" / defect
        image_dir.mkdir(parents=True, exist_ok=True)
        mask_dir.mkdir(parents=True, exist_ok=True)
        path = image_dir / f"{index:03d}.png"
        mask_path = mask_dir / f"{index:03d}_mask.png"
        _write_png(path, _to_bgr(gray, rng))
        _write_png(mask_path, mask.astype(np.uint8) * 255)
        entries.append((defect, str(path), 1, str(mask_path)))

    entries.sort(key=lambda e: (e[0], Path(e[1]).name))
    return DatasetSplit(
        train_paths=train_paths,
        test_paths=[e[1] for e in entries],
        test_labels=[e[2] for e in entries],
        test_mask_paths=[e[3] for e in entries],
        test_defect_types=[e[0] for e in entries],
        dataset="mvtec",
        category=root.name,
    )
