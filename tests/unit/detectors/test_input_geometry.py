"""Aspect-kept model input: the size rule and what pyimgano.fit does with it."""

import numpy as np
import pytest

import pyimgano
from models_jax.detectors.common import aspect_image_size, resolve_image_size
from models_jax.detectors.patchcore import PatchCoreConfig


@pytest.mark.parametrize("short, frame, multiple, want", [
    (224, (768, 576), 16, (304, 224)),   # portrait 3:4 (LfV cookie)
    (224, (576, 768), 16, (224, 304)),   # the same, landscape
    (224, (900, 900), 16, (224, 224)),   # square frames stay square
    (224, (400, 800), 16, (224, 448)),
    (224, (500, 510), 16, (224, 224)),   # nearly square: the longer side never drops below the shorter
    (224, (768, 576), 14, (294, 224)),   # ViT grid
])
def test_the_shorter_side_is_kept_and_the_longer_follows_the_frame_on_the_grid(short, frame, multiple, want):
    assert aspect_image_size(short, frame, multiple) == want


def test_non_positive_sizes_are_refused():
    with pytest.raises(ValueError, match="positive"):
        aspect_image_size(0, (10, 10))
    with pytest.raises(ValueError, match="positive"):
        aspect_image_size(224, (0, 10))


def test_resolve_uses_the_shorter_configured_side_and_leaves_squashing_configs_alone():
    config = PatchCoreConfig(backbone="tiny_resnet", pretrained=False, image_size=32, keep_aspect=True)
    assert resolve_image_size(config, (48, 32)).image_size == (48, 32)
    assert resolve_image_size(config, (32, 32)) is config
    squash = PatchCoreConfig(backbone="tiny_resnet", pretrained=False, image_size=32, keep_aspect=False)
    assert resolve_image_size(squash, (48, 32)) is squash


def test_fit_keeps_the_training_frames_aspect_and_scores_maps_at_frame_size():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (4, 48, 32, 3), dtype=np.uint8)
    kwargs = dict(backbone="tiny_resnet", pretrained=False, image_size=32, batch_size=2,
                  pretrain_embed_dim=16, target_embed_dim=16)
    state = pyimgano.fit("vision_patchcore", frames, "rgb_u8_hwc", keep_aspect=True, **kwargs)
    assert tuple(state.config.image_size) == (48, 32)
    scores, maps = pyimgano.predict(state, frames[:2], "rgb_u8_hwc")
    assert np.asarray(scores).shape == (2,) and np.asarray(maps).shape == (2, 48, 32)
    squashed = pyimgano.fit("vision_patchcore", frames, "rgb_u8_hwc", keep_aspect=False, **kwargs)
    assert tuple(squashed.config.image_size) == (32, 32)
