"""Detectors without a backbone declare their input scaling; host and device preprocessing agree."""

import attrs
import numpy as np
import pytest

from models_jax.detectors.autoencoder import AutoencoderConfig
from models_jax.detectors.draem import DraemConfig
from models_jax.detectors.patchcore import PatchCoreConfig
from pyimgano.scoring import input_normalization, prepare_frames, preprocess_on_device


def test_backbone_configs_use_their_backbones_normalisation_and_the_others_declare_theirs():
    assert input_normalization(PatchCoreConfig(backbone="tiny_resnet", pretrained=False)) == "imagenet"
    assert input_normalization(PatchCoreConfig()) == "efficientnet_lite"
    assert input_normalization(AutoencoderConfig()) == "none"
    assert input_normalization(DraemConfig(image_size=32, epochs=1)) == "none"

    @attrs.frozen
    class Bare:
        image_size: tuple = (32, 32)

    with pytest.raises(ValueError, match="neither a backbone nor an INPUT_NORMALIZATION"):
        input_normalization(Bare())


def test_unit_range_inputs_match_on_host_and_device(frames_factory):
    config = AutoencoderConfig(image_size=32, widths=(8, 16))
    frames = frames_factory(2, size=32)
    host = prepare_frames(config, list(frames))
    device = np.asarray(preprocess_on_device(config, frames))
    np.testing.assert_allclose(host, frames.astype(np.float32) / 255, rtol=1e-6)
    np.testing.assert_allclose(device, host, rtol=1e-6)
