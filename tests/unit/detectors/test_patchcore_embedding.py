"""PatchCore's convolutional embeddings equal their references: unfold -> upsample -> pool -> concat -> pool
(``adaptive_pool``) and per-channel mean -> upsample -> concat (``channel_mean``, the default)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models_jax.backbones import build_backbone, init_backbone_variables
from models_jax.detectors.patchcore import PatchCoreConfig, embed_patches
from models_jax.ops import adaptive_avg_pool_last


def _reference_embedding(config, variables, images):
    """The pipeline as written in the paper's reference implementation (patchcore-inspection)."""
    feats = build_backbone(config.backbone).apply(variables, images, taps=config.layers)
    ref_h, ref_w = feats[config.layers[0]].shape[1:3]
    k = config.patch_size
    per_layer = []
    for tap in config.layers:
        patches = jax.lax.conv_general_dilated_patches(
            feats[tap], (k, k), (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )  # (c, ky, kx) channel-major, like torch.nn.Unfold
        if patches.shape[1:3] != (ref_h, ref_w):
            patches = jax.image.resize(
                patches, (patches.shape[0], ref_h, ref_w, patches.shape[-1]), method="bilinear", antialias=False
            )
        per_layer.append(adaptive_avg_pool_last(patches, config.pretrain_embed_dim))
    return adaptive_avg_pool_last(jnp.concatenate(per_layer, axis=-1), config.target_embed_dim)


@pytest.mark.parametrize(
    "pretrain, target, patch",
    [(16, 16, 3), (24, 10, 3), (7, 33, 5), (200, 64, 1)],
)
def test_convolutional_embedding_equals_unfold_and_pool(pretrain, target, patch):
    config = PatchCoreConfig(
        backbone="tiny_resnet", pretrained=False, image_size=32,
        pretrain_embed_dim=pretrain, target_embed_dim=target, patch_size=patch, aggregation="adaptive_pool",
    )
    variables = init_backbone_variables(config.backbone, key=jax.random.key(0))
    images = jax.random.normal(jax.random.key(1), (2, 32, 32, 3), jnp.float32)
    got = np.asarray(embed_patches(config, variables, images))
    want = np.asarray(_reference_embedding(config, variables, images))
    assert got.shape == want.shape == (2, 4, 4, target)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())


def _reference_channel_mean(config, variables, images):
    """anomalib's PatchCore embedding: 3x3 average per channel (zero padded, padding counted),
    coarser maps upsampled bilinearly to the finest grid, channels concatenated."""
    feats = build_backbone(config.backbone).apply(variables, images, taps=config.layers)
    ref_h, ref_w = feats[config.layers[0]].shape[1:3]
    k = config.patch_size
    per_layer = []
    for tap in config.layers:
        grid = feats[tap]
        summed = jax.lax.reduce_window(grid, 0.0, jax.lax.add, (1, k, k, 1), (1, 1, 1, 1), "SAME")
        mean = summed / (k * k)
        if mean.shape[1:3] != (ref_h, ref_w):
            mean = jax.image.resize(mean, (mean.shape[0], ref_h, ref_w, mean.shape[-1]), method="bilinear",
                                    antialias=False)
        per_layer.append(mean)
    out = jnp.concatenate(per_layer, axis=-1)
    if config.target_embed_dim is not None and config.target_embed_dim != out.shape[-1]:
        out = adaptive_avg_pool_last(out, config.target_embed_dim)
    return out


@pytest.mark.parametrize("target, patch, size", [(None, 3, (32, 32)), (None, 3, (32, 48)), (20, 5, (48, 32))])
def test_channel_mean_embedding_equals_per_channel_average_and_concatenation(target, patch, size):
    config = PatchCoreConfig(
        backbone="tiny_resnet", pretrained=False, image_size=size, aggregation="channel_mean",
        target_embed_dim=target, patch_size=patch,
    )
    variables = init_backbone_variables(config.backbone, key=jax.random.key(0))
    images = jax.random.normal(jax.random.key(2), (2, *size, 3), jnp.float32)
    got = np.asarray(embed_patches(config, variables, images))
    want = np.asarray(_reference_channel_mean(config, variables, images))
    width = 16 + 32 if target is None else target  # tiny_resnet's layer2 + layer3 channels
    assert got.shape == want.shape == (2, size[0] // 8, size[1] // 8, width)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())


def test_adaptive_pool_needs_a_target_width_and_unknown_aggregations_are_refused():
    with pytest.raises(ValueError, match="aggregation"):
        PatchCoreConfig(backbone="tiny_resnet", pretrained=False, aggregation="sum")
    config = PatchCoreConfig(backbone="tiny_resnet", pretrained=False, image_size=32, target_embed_dim=None,
                             aggregation="adaptive_pool")
    variables = init_backbone_variables(config.backbone, key=jax.random.key(0))
    with pytest.raises(ValueError, match="needs a target_embed_dim"):
        embed_patches(config, variables, jnp.zeros((1, 32, 32, 3), jnp.float32))


def test_the_defaults_are_the_channel_mean_at_lite0s_full_width_on_a_224_pixel_input():
    config = PatchCoreConfig(pretrained=False)
    assert config.aggregation == "channel_mean" and config.target_embed_dim == 40 + 112
    assert config.image_size == (224, 224) and not config.keep_aspect
