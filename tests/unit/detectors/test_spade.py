"""SPADE: image-level kNN over pooled descriptors, pixel-level kNN against the K nearest images' pyramids."""

import attrs
import numpy as np
import pytest

import pyimgano
from models_jax.detectors import spade
from models_jax.detectors.memory_bank import collect_embeddings


def test_the_image_score_is_the_mean_distance_to_the_k_nearest_training_descriptors(
    fitted, probed, probe_frames, prepared
):
    model = fitted("vision_spade").model
    images = prepared(fitted("vision_spade"), probe_frames("vision_spade")[0])
    # The pooled descriptors, computed the way fit computed the training ones (jitted batches of 4).
    describe = lambda x: spade.describe_images(model.config, model.backbone_variables, x)  # noqa: E731
    pooled, _ = collect_embeddings(describe, [images[:4], images[4:]], batch_size=4)
    train = np.asarray(model.image_features, np.float64)
    dists = np.sqrt(((pooled.astype(np.float64)[:, None, :] - train[None]) ** 2).sum(-1))
    expected = np.sort(dists, axis=1)[:, : model.config.k_images].mean(axis=1)
    np.testing.assert_allclose(np.asarray(probed("vision_spade")[0]), expected, rtol=1e-4)


def test_a_training_frame_matches_itself_at_image_and_pixel_level_with_one_neighbour(
    fitted, detector_train_frames, frames_factory
):
    state = fitted("vision_spade")
    one = attrs.evolve(state, model=attrs.evolve(state.model, config=attrs.evolve(state.config, k_images=1)))
    train_scores, train_maps = pyimgano.predict(one, detector_train_frames[:2], "rgb_u8_hwc")
    new_scores, _ = pyimgano.predict(one, frames_factory(2, seed=77), "rgb_u8_hwc")
    # Its own descriptor and pyramid are in the state: only float rounding is left.
    assert np.all(np.asarray(train_scores) <= 1e-3 * np.asarray(new_scores).min())
    assert np.asarray(train_maps).max() <= 1e-3 * np.asarray(new_scores).min()


def test_the_image_descriptor_tap_defaults_to_the_deepest_and_is_validated():
    assert spade.SPADEConfig(backbone="tiny_resnet").image_layer == "layer4"
    assert spade.SPADEConfig().image_layer == "features"  # Lite0's 1280-channel head
    assert spade.SPADEConfig(backbone="tiny_resnet").layers == ("layer1", "layer2", "layer3")
    with pytest.raises(ValueError, match="image_layer"):
        spade.SPADEConfig(backbone="tiny_resnet", image_layer="logits")
    with pytest.raises(ValueError, match="k_images"):
        spade.SPADEConfig(backbone="tiny_resnet", k_images=0)
