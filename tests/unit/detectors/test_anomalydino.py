"""AnomalyDINO: cosine patch kNN on DINOv2 tokens, mean of the top 1 %, zero-shot background mask.

The backbone is a seeded random DINOv2 ViT-S/14 (no DINOv2 weights are available
offline); these tests check the detector's arithmetic, not the paper's accuracy."""

import jax.numpy as jnp
import numpy as np
import pytest

from models_jax.detectors import anomalydino
from models_jax.detectors.memory_bank import collect_embeddings


def test_patch_distances_are_one_minus_cosine_and_the_score_is_the_top_1_percent_mean(
    fitted, probed, probe_frames, prepared
):
    model = fitted("vision_anomalydino").model
    images = prepared(fitted("vision_anomalydino"), probe_frames("vision_anomalydino")[0])
    embed = lambda x: anomalydino.bank_tokens(model.config, model.backbone_variables, x)  # noqa: E731
    unit = collect_embeddings(embed, [images[:4], images[4:]], batch_size=4).astype(np.float64)  # f64[5, 16, D]
    bank = np.asarray(model.memory_bank, np.float64)
    np.testing.assert_allclose(np.linalg.norm(bank, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=-1), 1.0, rtol=1e-5)
    cosine_distance = 1.0 - (unit @ bank.T).max(axis=-1)  # f64[5, 16]
    # 16 patches: int(16 * 0.01) = 0, so the "top 1 %" is the largest patch distance.
    np.testing.assert_allclose(np.asarray(probed("vision_anomalydino")[0]), cosine_distance.max(axis=1), rtol=2e-3)


def test_a_reference_image_has_zero_patch_distance(fitted, detector_train_frames, prepared):
    state = fitted("vision_anomalydino")
    pred = anomalydino.predict(state.model, prepared(state, detector_train_frames[:1]), (32, 32))
    assert np.abs(np.asarray(pred.scores)).max() < 1e-5
    assert np.abs(np.asarray(pred.maps)).max() < 1e-5


def _tokens_with_foreground(sign: float) -> np.ndarray:
    """f32[14, 14, 16] tokens: a centred 8x8 'object' offset along one direction by ``sign * 40``.

    Centred first-component values: object ``+26.9 * sign``, background ``-13.1 * sign``.
    For ``sign = -1`` thresholding at 10 keeps the background, which covers too little of
    the central crop (17 of 81 tokens <= 35 %), so the mask must be flipped."""
    rng = np.random.default_rng(0)
    tokens = rng.normal(0, 0.5, (14, 14, 16)).astype(np.float32)
    tokens[3:11, 3:11, 0] += sign * 40.0
    return tokens


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_the_background_mask_keeps_the_centred_object_whatever_the_component_sign(sign):
    config = anomalydino.AnomalyDINOConfig(pretrained=False, masking=True, mask_threshold=10.0)
    mask = np.asarray(anomalydino.background_mask(config, jnp.asarray(_tokens_with_foreground(sign))))
    # The object grown by one 3x3 dilation; the closing adds nothing to a square.
    expected = np.zeros((14, 14), bool)
    expected[2:12, 2:12] = True
    np.testing.assert_array_equal(mask, expected)


def test_config_defaults_follow_the_paper_and_sizes_must_be_multiples_of_the_patch():
    config = anomalydino.AnomalyDINOConfig()
    assert config.backbone == "dinov2_vits14" and config.layers == ("patch_tokens",)
    assert config.image_size == (448, 448) and config.distance == "cosine" and config.top_fraction == 0.01
    assert config.masking is False and config.pretrained is True
    with pytest.raises(ValueError, match="multiple of the patch size 14"):
        anomalydino.AnomalyDINOConfig(image_size=224 + 7)
    with pytest.raises(ValueError, match="distance"):
        anomalydino.AnomalyDINOConfig(distance="manhattan")
