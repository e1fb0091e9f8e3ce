"""Train a small model, resume it, and score: the trained-detector flow, offline, on a CPU.

Writes a small synthetic inspection set (textured parts; scratches, spots and dents in
the test split) to a temporary folder, trains ``vision_stfpm`` (a student network
learning to match the packaged ImageNet EfficientNet-Lite0 teacher) on the normal
images at 64x64 with a checkpoint after every epoch, runs the same call again (it finds
the finished checkpoint and returns the same weights without training), then scores the
test images and prints image / pixel AUROC.

The same call works for ``vision_reverse_distillation``, ``vision_draem`` and
``vision_ae`` (see docs/training.md for their settings). On 2 CPU cores most of the
one to four minutes it takes is compiling the training step.

    python examples/train_and_resume.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import jax
import numpy as np

import pyimgano
from pyimgano.datasets import load_masks, make_synthetic_inspection_set
from pyimgano.inputs import load_image
from pyimgano.metrics import image_auroc, pixel_auroc

DETECTOR = "vision_stfpm"
SETTINGS = dict(image_size=64, epochs=10, batch_size=8)  # paper optimiser: SGD lr 0.4, momentum 0.9


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="pyimgano_train_"))
    split = make_synthetic_inspection_set(work / "part", n_train=32, n_test_good=8, n_test_defect=16, size=64)
    train = np.stack([load_image(p) for p in split.train_paths])
    test = np.stack([load_image(p) for p in split.test_paths])
    masks = load_masks(split.test_mask_paths, (64, 64))
    checkpoints = work / "checkpoints" / "part"

    t0 = time.perf_counter()
    state = pyimgano.fit(DETECTOR, train, "rgb_u8_hwc", checkpoint_dir=checkpoints, **SETTINGS)
    print(f"trained {SETTINGS['epochs']} epochs on {len(train)} images in {time.perf_counter() - t0:.1f} s; "
          f"checkpoint: {sorted(p.name for p in checkpoints.iterdir())}")

    t0 = time.perf_counter()
    again = pyimgano.fit(DETECTOR, train, "rgb_u8_hwc", checkpoint_dir=checkpoints, **SETTINGS)
    same = all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(state.model), jax.tree.leaves(again.model)))
    print(f"the same call again resumed from the finished checkpoint in {time.perf_counter() - t0:.1f} s; "
          f"identical weights: {same}")

    scores, maps = pyimgano.predict(state, test, "rgb_u8_hwc")
    labels = np.asarray(split.test_labels)
    print(f"image AUROC {image_auroc(labels, np.asarray(scores)):.3f}, "
          f"pixel AUROC {pixel_auroc(masks, np.asarray(maps)):.3f} "
          f"({int(labels.sum())} defective and {int((labels == 0).sum())} good test images)")


if __name__ == "__main__":
    main()
