"""Torch-free helpers shared by the golden generator and the parity tests.

Imported by ``make_goldens.py`` (run with a torch/torchvision interpreter) and
loaded by ``conftest.py`` for the tests, so it depends on numpy and Pillow only.

Random reference weights are generated here in *torch layout* (OIHW convs,
``(out, in)`` linears, torch key names) from ``numpy.random.default_rng(seed)``:
the golden script loads them into torchvision/timm with ``load_state_dict``,
the CI test converts the very same arrays with the Flax key mapping, so the
goldens stay small (no weights stored) and the mapping tables are exercised.

Scaling: convolution and linear weights are drawn with fan-in scaling
(He-normal for convs feeding ReLUs, ``1/sqrt(fan_in)`` for linears) and the
BatchNorm statistics/affine parameters are drawn near their identity values,
so activations stay O(1) through 50 layers and a 1e-4 absolute tolerance is a
meaningful float32 bound.  The last BatchNorm of each residual branch gets a
smaller scale (0.2-0.5) for the same reason: without it, WRN-50-2's
activations grow with the 16 residual additions.
"""

from __future__ import annotations

import importlib.util
import math
import pathlib

import numpy as np
from PIL import Image

__all__ = [
    "GOLDEN_DIR",
    "GOLDEN_CASES",
    "LITE0_GOLDEN_SHAPE",
    "LITE0_GROUP_ENDS",
    "golden_path",
    "golden_input",
    "random_torch_state_dict",
    "classification_photos",
    "lite0_photo_pixels",
    "lite0_normalize",
    "lite0_photo_batch",
    "lite0_sample_indices",
    "LITE0_STORED_PHOTOS",
    "LITE_SCALED_ARCHS",
    "LITE_GOLDEN_SHAPES",
    "LITE_GOLDEN_TAPS",
    "LITE_INPUT_SIZES",
    "lite_golden_pixels",
]

GOLDEN_DIR = pathlib.Path(__file__).resolve().parent / "goldens"

# arch -> (input H, W, weight seed). Non-square inputs catch H/W transpositions;
# sizes keep each golden file well under 1 MB.
GOLDEN_CASES: dict[str, tuple[int, int, int]] = {
    "resnet18": (64, 48, 18),
    "wide_resnet50_2": (32, 48, 50),
    "dinov2_vits14": (42, 56, 14),
}
# Lite0 uses the real packaged weights; only the input is random.
LITE0_GOLDEN_SHAPE = (64, 32)
# Cumulative block count at the end of each of Lite0's seven block groups.
LITE0_GROUP_ENDS = (1, 3, 5, 8, 11, 15, 16)
# Photos whose 224x224 crops the top-1 golden stores, so the check runs without ai-benchmark.
LITE0_STORED_PHOTOS = 6
# Lite1/Lite2 goldens (real packaged weights): two small u8 frames, one with odd sides (asymmetric
# TF-SAME padding), and only the taps detectors use at strides 8/16/32 plus the classifier.
LITE_SCALED_ARCHS = ("efficientnet_lite1", "efficientnet_lite2")
LITE_GOLDEN_SHAPES = ((64, 96), (45, 37))
LITE_GOLDEN_TAPS = ("stage3", "stage5", "stage7", "logits")
# The reference's training resolution: the top-1 check crops the photos to it.
LITE_INPUT_SIZES = {"efficientnet_lite0": 224, "efficientnet_lite1": 240, "efficientnet_lite2": 260}


def golden_path(name: str) -> pathlib.Path:
    return GOLDEN_DIR / f"{name}.npz"


def lite_golden_pixels(height: int, width: int, seed: int) -> np.ndarray:
    """A reproducible u8[1, H, W, 3] frame: smooth random colour blobs plus pixel noise (NHWC)."""
    rng = np.random.default_rng(seed + 2000)
    coarse = rng.uniform(0, 255, (1, 4, 4, 3))
    rows = np.linspace(0, 3, height)
    cols = np.linspace(0, 3, width)
    r0, c0 = np.floor(rows).astype(int).clip(0, 2), np.floor(cols).astype(int).clip(0, 2)
    fr, fc = (rows - r0)[None, :, None, None], (cols - c0)[None, None, :, None]
    top = coarse[:, r0][:, :, c0] * (1 - fc) + coarse[:, r0][:, :, c0 + 1] * fc
    bottom = coarse[:, r0 + 1][:, :, c0] * (1 - fc) + coarse[:, r0 + 1][:, :, c0 + 1] * fc
    smooth = top * (1 - fr) + bottom * fr
    return np.clip(smooth + rng.normal(0, 20, smooth.shape), 0, 255).round().astype(np.uint8)


def golden_input(height: int, width: int, seed: int) -> np.ndarray:
    """A reproducible f32[1, H, W, 3] input of roughly unit scale (NHWC)."""
    rng = np.random.default_rng(seed + 1000)
    return rng.standard_normal((1, height, width, 3)).astype(np.float32)


# ----------------------------------------------------------------------------- weights


def _conv(rng, out_c, in_c, k, gain=2.0):
    fan_in = in_c * k * k
    return (rng.standard_normal((out_c, in_c, k, k)) * math.sqrt(gain / fan_in)).astype(np.float32)


def _bn(rng, prefix, c, sd, scale=(0.5, 1.0)):
    sd[f"{prefix}.weight"] = rng.uniform(*scale, c).astype(np.float32)
    sd[f"{prefix}.bias"] = (0.1 * rng.standard_normal(c)).astype(np.float32)
    sd[f"{prefix}.running_mean"] = (0.1 * rng.standard_normal(c)).astype(np.float32)
    sd[f"{prefix}.running_var"] = rng.uniform(0.5, 1.5, c).astype(np.float32)
    sd[f"{prefix}.num_batches_tracked"] = np.asarray(0, dtype=np.int64)


def _linear(rng, prefix, out_f, in_f, sd, bias_std=0.02):
    sd[f"{prefix}.weight"] = (rng.standard_normal((out_f, in_f)) / math.sqrt(in_f)).astype(np.float32)
    sd[f"{prefix}.bias"] = (bias_std * rng.standard_normal(out_f)).astype(np.float32)


def _resnet_state_dict(rng, block, stage_sizes, stem_width, stage_widths, base_width, num_classes):
    sd: dict[str, np.ndarray] = {}
    residual_scale = (0.2, 0.5)
    sd["conv1.weight"] = _conv(rng, stem_width, 3, 7)
    _bn(rng, "bn1", stem_width, sd)
    in_c = stem_width
    expansion = 4 if block == "bottleneck" else 1
    for s, (size, planes) in enumerate(zip(stage_sizes, stage_widths)):
        for i in range(size):
            stride = 2 if (s > 0 and i == 0) else 1
            p = f"layer{s + 1}.{i}"
            out_c = planes * expansion
            if block == "basic":
                sd[f"{p}.conv1.weight"] = _conv(rng, planes, in_c, 3)
                _bn(rng, f"{p}.bn1", planes, sd)
                sd[f"{p}.conv2.weight"] = _conv(rng, planes, planes, 3)
                _bn(rng, f"{p}.bn2", planes, sd, residual_scale)
            else:
                width = planes * base_width // 64
                sd[f"{p}.conv1.weight"] = _conv(rng, width, in_c, 1)
                _bn(rng, f"{p}.bn1", width, sd)
                sd[f"{p}.conv2.weight"] = _conv(rng, width, width, 3)
                _bn(rng, f"{p}.bn2", width, sd)
                sd[f"{p}.conv3.weight"] = _conv(rng, out_c, width, 1)
                _bn(rng, f"{p}.bn3", out_c, sd, residual_scale)
            if stride != 1 or in_c != out_c:
                sd[f"{p}.downsample.0.weight"] = _conv(rng, out_c, in_c, 1)
                _bn(rng, f"{p}.downsample.1", out_c, sd)
            in_c = out_c
    _linear(rng, "fc", num_classes, in_c, sd)
    return sd


def _dinov2_state_dict(rng, dim=384, depth=12, patch=14, grid=37, mlp_ratio=4):
    sd: dict[str, np.ndarray] = {}
    # Unit-scale position embedding (the real one is O(0.1-1)) so resampling errors would show.
    sd["cls_token"] = (0.5 * rng.standard_normal((1, 1, dim))).astype(np.float32)
    sd["pos_embed"] = (0.5 * rng.standard_normal((1, 1 + grid * grid, dim))).astype(np.float32)
    sd["mask_token"] = np.zeros((1, dim), np.float32)
    sd["patch_embed.proj.weight"] = _conv(rng, dim, 3, patch, gain=1.0)
    sd["patch_embed.proj.bias"] = (0.02 * rng.standard_normal(dim)).astype(np.float32)

    def ln(prefix):
        sd[f"{prefix}.weight"] = (1.0 + 0.1 * rng.standard_normal(dim)).astype(np.float32)
        sd[f"{prefix}.bias"] = (0.1 * rng.standard_normal(dim)).astype(np.float32)

    for i in range(depth):
        p = f"blocks.{i}"
        ln(f"{p}.norm1")
        _linear(rng, f"{p}.attn.qkv", 3 * dim, dim, sd)
        _linear(rng, f"{p}.attn.proj", dim, dim, sd)
        sd[f"{p}.ls1.gamma"] = rng.uniform(0.1, 0.5, dim).astype(np.float32)
        ln(f"{p}.norm2")
        _linear(rng, f"{p}.mlp.fc1", mlp_ratio * dim, dim, sd)
        _linear(rng, f"{p}.mlp.fc2", dim, mlp_ratio * dim, sd)
        sd[f"{p}.ls2.gamma"] = rng.uniform(0.1, 0.5, dim).astype(np.float32)
    ln("norm")
    return sd


def random_torch_state_dict(arch: str, seed: int) -> dict[str, np.ndarray]:
    """Torch-layout random weights for ``arch`` (keys as torchvision / the DINOv2 hub name them).

    Raises:
      ValueError: an arch without a generator.
    """
    rng = np.random.default_rng(seed)
    if arch == "resnet18":
        return _resnet_state_dict(rng, "basic", (2, 2, 2, 2), 64, (64, 128, 256, 512), 64, 1000)
    if arch == "wide_resnet50_2":
        return _resnet_state_dict(rng, "bottleneck", (3, 4, 6, 3), 64, (64, 128, 256, 512), 128, 1000)
    if arch == "tiny_resnet":
        return _resnet_state_dict(rng, "basic", (1, 1, 1, 1), 8, (8, 16, 32, 64), 64, 10)
    if arch == "dinov2_vits14":
        return _dinov2_state_dict(rng)
    raise ValueError(f"no random torch weights for {arch!r}; accepted: resnet18, wide_resnet50_2, tiny_resnet, dinov2_vits14")


# ----------------------------------------------------------------------------- photos


def classification_photos() -> list[pathlib.Path] | None:
    """The 100 JPEGs of ``ai_benchmark/data/classification`` sorted by number, or None when absent.

    The package is located without importing it (its ``__init__`` pulls in
    unrelated dependencies).
    """
    spec = importlib.util.find_spec("ai_benchmark")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = pathlib.Path(list(spec.submodule_search_locations)[0]) / "data" / "classification"
    photos = sorted(folder.glob("*.jpg"), key=lambda p: int(p.stem) if p.stem.isdigit() else 10**9)
    return photos or None


def lite0_photo_pixels(paths, size: int = 224) -> np.ndarray:
    """u8[N, size, size, 3] RGB crops: shorter side to ``size*256/224`` (bilinear), centre crop."""
    resize_to = round(size * 256 / 224)
    batch = []
    for path in paths:
        with Image.open(path) as img:
            img = img.convert("RGB")
            w, h = img.size
            scale = resize_to / min(w, h)
            img = img.resize((max(resize_to, round(w * scale)), max(resize_to, round(h * scale))), Image.BILINEAR)
            w, h = img.size
            left, top = (w - size) // 2, (h - size) // 2
            batch.append(np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.uint8))
    return np.stack(batch)


def lite0_normalize(pixels: np.ndarray) -> np.ndarray:
    """u8 RGB -> Lite0's input scaling ``(u8 - 127) / 128`` as f32."""
    return (np.asarray(pixels, np.float32) - 127.0) / 128.0


def lite0_photo_batch(paths, size: int = 224) -> np.ndarray:
    """Lite0 inputs f32[N, size, size, 3] of the photos at ``paths`` (:func:`lite0_photo_pixels`, normalised)."""
    return lite0_normalize(lite0_photo_pixels(paths, size))


def lite0_sample_indices(margins: np.ndarray, count: int = LITE0_STORED_PHOTOS) -> np.ndarray:
    """Which photos the top-1 golden stores as pixels: the two with the smallest torch top-1
    margin (where a small numeric difference could flip the class) plus evenly spaced others."""
    margins = np.asarray(margins)
    hardest = list(np.argsort(margins, kind="stable")[:2])
    spaced = [i for i in np.linspace(0, len(margins) - 1, count + 2).round().astype(int) if i not in hardest]
    return np.asarray(sorted(hardest + spaced[: count - len(hardest)]), dtype=np.int64)
