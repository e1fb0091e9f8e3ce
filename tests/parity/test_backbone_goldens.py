"""Backbone parity against committed torch goldens (no torch needed).

The goldens were written by ``make_goldens.py`` with torchvision 0.29 (ResNets),
the DINOv2 hub forward (cross-checked with timm) and ``efficientnet_lite_pytorch``
(Lite0, real weights).  Random weights are regenerated from their seed here, in
torch layout by numpy, and converted with the same key-mapping tables a user's
checkpoint goes through; the real Lite0 weights are read from the installed
package's ``.pth`` by the torch-free ``weights_convert`` reader.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from models_jax.backbones import build_backbone, get_backbone_spec


def _load_golden(support, name):
    path = support.golden_path(name)
    assert path.exists(), f"missing golden {path}; run tests/parity/make_goldens.py"
    with np.load(path) as data:
        taps = {str(t): data[f"tap/{t}"] for t in data["tap_order"]}
        return data["input"], taps


@pytest.mark.parametrize("arch", ["resnet18", "wide_resnet50_2", "dinov2_vits14"])
def test_random_weight_backbone_matches_torch_golden_at_every_tap(arch, support, to_flax, run_backbone, assert_taps_close):
    x, reference = _load_golden(support, arch)
    _, _, seed = support.GOLDEN_CASES[arch]
    variables = to_flax(arch, support.random_torch_state_dict(arch, seed))
    ours = run_backbone(arch, variables, x)
    assert tuple(reference) == get_backbone_spec(arch).taps
    assert_taps_close(ours, reference, tol=1e-4)


def test_lite0_with_packaged_weights_matches_torch_golden_at_every_tap(
    support, lite0_packaged_variables, run_backbone, assert_taps_close
):
    x, reference = _load_golden(support, "efficientnet_lite0")
    ours = run_backbone("efficientnet_lite0", lite0_packaged_variables, x)
    assert tuple(reference) == get_backbone_spec("efficientnet_lite0").taps
    assert_taps_close(ours, reference, tol=1e-4)


@pytest.fixture(scope="module")
def lite0_logits(lite0_packaged_variables):
    module = build_backbone("efficientnet_lite0")
    apply = jax.jit(lambda v, x: module.apply(v, x, taps=("logits",))["logits"])

    def run(x: np.ndarray) -> np.ndarray:
        return np.concatenate([np.asarray(apply(lite0_packaged_variables, x[i : i + 25])) for i in range(0, len(x), 25)])

    return run


@pytest.fixture(scope="module")
def top1_golden(support):
    with np.load(support.golden_path("efficientnet_lite0_top1")) as golden:
        return {k: golden[k] for k in golden.files}


def test_lite0_logits_match_torch_on_the_stored_benchmark_photo_crops(support, lite0_logits, top1_golden, assert_taps_close):
    ours = lite0_logits(support.lite0_normalize(top1_golden["stored_pixels"]))
    assert_taps_close({"logits": ours}, {"logits": top1_golden["stored_logits"]}, tol=1e-4)
    np.testing.assert_array_equal(np.argmax(ours, axis=1), top1_golden["top1"][top1_golden["stored_index"]])


def test_lite0_top1_class_matches_torch_on_the_benchmark_photos(support, lite0_logits, top1_golden):
    names = [str(n) for n in top1_golden["photos"]]
    photos = support.classification_photos()
    if photos is not None:  # all 100 photos of the installed ai-benchmark package
        assert [p.name for p in photos] == names
        x, torch_top1 = support.lite0_photo_batch(photos), top1_golden["top1"]
    else:  # without ai-benchmark: the crops the golden stores
        index = top1_golden["stored_index"]
        names = [names[i] for i in index]
        x, torch_top1 = support.lite0_normalize(top1_golden["stored_pixels"]), top1_golden["top1"][index]
    top1 = np.argmax(lite0_logits(x), axis=1)
    differing = [(names[i], int(top1[i]), int(torch_top1[i])) for i in np.flatnonzero(top1 != torch_top1)]
    assert not differing, f"(photo, ours, torch) top-1 disagreements out of {len(names)}: {differing}"


# ----------------------------------------------------------------------------- Lite1 / Lite2

SCALED_LITES = ("efficientnet_lite1", "efficientnet_lite2")


def _file_sha256(path) -> str:
    import hashlib

    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.mark.parametrize("arch", SCALED_LITES)
def test_scaled_lite_with_packaged_weights_matches_torch_golden_at_the_detector_taps(
    arch, support, lite_checkpoint_path, lite_packaged_variables, assert_taps_close
):
    path = support.golden_path(arch)
    assert path.exists(), f"missing golden {path}; run tests/parity/make_goldens.py --only {arch}"
    with np.load(path) as golden:
        data = {k: golden[k] for k in golden.files}
    assert str(data["source_sha256"]) == _file_sha256(lite_checkpoint_path(arch)), (
        f"{path.name} was written from another {arch} .pth than the installed package's"
    )
    taps = tuple(str(t) for t in data["tap_order"])
    assert taps == support.LITE_GOLDEN_TAPS
    module = build_backbone(arch)
    apply = jax.jit(lambda v, x: module.apply(v, x, taps=taps))
    for i in range(int(data["cases"])):
        pixels = data[f"case{i}/pixels"]
        reference = {t: data[f"case{i}/tap/{t}"] for t in taps}
        ours = {k: np.asarray(v) for k, v in apply(lite_packaged_variables(arch), support.lite0_normalize(pixels)).items()}
        errors = assert_taps_close(ours, reference, tol=1e-4)
        print(f"{arch} {pixels.shape[1]}x{pixels.shape[2]} max abs error per tap: "
              + ", ".join(f"{t} {e:.2e}" for t, e in errors.items()))


@pytest.mark.parametrize("arch", SCALED_LITES)
def test_scaled_lite_logits_and_top1_class_match_torch_on_the_benchmark_photos(
    arch, support, lite_packaged_variables, top1_golden, assert_taps_close
):
    with np.load(support.golden_path(f"{arch}_top1")) as golden:
        data = {k: golden[k] for k in golden.files}
    module = build_backbone(arch)
    apply = jax.jit(lambda v, x: module.apply(v, x, taps=("logits",))["logits"])

    def logits(x):
        return np.concatenate([np.asarray(apply(lite_packaged_variables(arch), x[i : i + 20])) for i in range(0, len(x), 20)])

    # Always: the 224x224 crops stored with the Lite0 golden.
    ours = logits(support.lite0_normalize(top1_golden["stored_pixels"]))
    errors = assert_taps_close({"logits": ours}, {"logits": data["stored_logits"]}, tol=1e-4)
    print(f"{arch} logits on the stored 224x224 crops: max abs error {errors['logits']:.2e}")
    np.testing.assert_array_equal(np.argmax(ours, axis=1), np.argmax(data["stored_logits"], axis=1))
    # With ai-benchmark installed: all 100 photos at the arch's own input size.
    photos = support.classification_photos()
    if photos is not None:
        assert [p.name for p in photos] == [str(n) for n in data["photos"]]
        top1 = np.argmax(logits(support.lite0_photo_batch(photos, int(data["input_size"]))), axis=1)
        differing = [(photos[i].name, int(top1[i]), int(data["top1"][i])) for i in np.flatnonzero(top1 != data["top1"])]
        assert not differing, f"(photo, ours, torch) top-1 disagreements out of {len(photos)}: {differing}"
