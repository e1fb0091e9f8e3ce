"""The public pieces of PatchCore's feature path behave as documented on their own."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models_jax.backbones import init_backbone_variables
from models_jax.detectors.common import CountedBatches
from models_jax.detectors.memory_bank import (
    collect_embeddings,
    coreset_memory_bank,
    coreset_size,
    nearest_patch_distances,
    reweighted_max_score,
    top_fraction_mean,
)
from models_jax.detectors.patch_embedding import (
    align_to_grid,
    backbone_micro_batch,
    locally_aware_patches,
    neighbourhood_patches,
    tap_features,
)


def _unfold_reference(grid: np.ndarray, k: int) -> np.ndarray:
    """torch.nn.Unfold(k, padding=k//2) per position, channel-major (c, ky, kx), NHWC in and out."""
    b, h, w, c = grid.shape
    pad = k // 2
    padded = np.pad(grid, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    out = np.zeros((b, h, w, c * k * k), grid.dtype)
    for y in range(h):
        for x in range(w):
            window = padded[:, y : y + k, x : x + k, :]  # [B, k, k, C]
            out[:, y, x] = window.transpose(0, 3, 1, 2).reshape(b, -1)
    return out


def test_neighbourhood_patches_flatten_like_torch_unfold_with_zero_padding():
    grid = np.random.default_rng(0).normal(size=(2, 4, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(neighbourhood_patches(grid, 3)), _unfold_reference(grid, 3), atol=1e-6)
    assert neighbourhood_patches(grid, 1) is grid


def test_locally_aware_patches_live_on_the_finest_grid_with_the_target_size():
    rng = np.random.default_rng(1)
    fine, coarse = rng.normal(size=(2, 8, 8, 4)), rng.normal(size=(2, 4, 4, 6))
    embed = jax.jit(lambda f, c: locally_aware_patches([f, c], patch_size=3, pretrain_embed_dim=12, target_embed_dim=10))
    assert embed(fine, coarse).shape == (2, 8, 8, 10)
    # One map, 1x1 patches and no pooling change nothing.
    same = locally_aware_patches([fine], patch_size=1, pretrain_embed_dim=4, target_embed_dim=4)
    np.testing.assert_allclose(np.asarray(same), fine, atol=1e-6)
    assert align_to_grid(coarse, (4, 4)) is coarse
    with pytest.raises(ValueError, match="at least one"):
        locally_aware_patches([])


def test_collect_embeddings_pads_short_batches_to_one_shape_and_drops_the_padding():
    shapes, done = [], []

    def embed(images):
        shapes.append(images.shape)
        return {"sum": jnp.sum(images, axis=(1, 2, 3)), "first": images[:, 0, 0, 0]}

    batches = [np.full((3, 2, 2, 3), i, np.float32) for i in range(2)] + [np.full((1, 2, 2, 3), 7, np.float32)]
    out = collect_embeddings(embed, batches, batch_size=3, progress=done.append)
    assert shapes == [(3, 2, 2, 3)] * 3 and done == [3, 6, 7]
    np.testing.assert_array_equal(out["first"], [0, 0, 0, 1, 1, 1, 7])
    assert out["sum"].shape == (7,)
    with pytest.raises(ValueError, match="at least one training image"):
        collect_embeddings(embed, [], batch_size=3)


def test_counted_batches_fill_one_preallocated_result_equal_to_the_joined_one():
    def embed(images):
        return {"sum": jnp.sum(images, axis=(1, 2, 3)), "grid": images[..., 0]}

    def batches():
        return [np.full((3, 2, 2, 3), i, np.float32) for i in range(2)] + [np.full((1, 2, 2, 3), 7, np.float32)]

    joined = collect_embeddings(embed, batches(), batch_size=3)
    counted = collect_embeddings(embed, CountedBatches(iter(batches()), count=7), batch_size=3)
    for key in ("sum", "grid"):
        np.testing.assert_array_equal(counted[key], joined[key])
        assert counted[key].dtype == joined[key].dtype
    with pytest.raises(ValueError, match="yielded 7 images but count 8"):
        collect_embeddings(embed, CountedBatches(iter(batches()), count=8), batch_size=3)
    with pytest.raises(ValueError, match="more than the 6 images they count"):
        collect_embeddings(embed, CountedBatches(iter(batches()), count=6), batch_size=3)


@pytest.mark.parametrize("micro_batch", ["auto", 1, 2, None])
def test_the_backbone_run_in_micro_batches_gives_the_whole_batch_features(micro_batch):
    variables = init_backbone_variables("tiny_resnet", key=jax.random.key(0))
    images = jax.random.normal(jax.random.key(1), (5, 32, 32, 3))
    taps = ("layer1", "layer2")
    whole = jax.jit(lambda v, x: tap_features("tiny_resnet", v, x, taps, micro_batch=None))(variables, images)
    parts = jax.jit(lambda v, x: tap_features("tiny_resnet", v, x, taps, micro_batch=micro_batch))(variables, images)
    for tap in taps:
        assert parts[tap].shape == whole[tap].shape
        np.testing.assert_allclose(np.asarray(parts[tap]), np.asarray(whole[tap]), rtol=1e-5, atol=1e-5)


def test_backbone_micro_batch_is_one_image_on_the_cpu_and_refuses_bad_values():
    assert jax.default_backend() == "cpu"
    assert backbone_micro_batch(16) == 1
    assert backbone_micro_batch(16, None) == 16
    assert backbone_micro_batch(16, 4) == 4
    assert backbone_micro_batch(3, 8) == 3
    for bad in (0, -1, 2.5, True, "fast"):
        with pytest.raises(ValueError, match="micro_batch must be a positive int, 'auto' or None"):
            backbone_micro_batch(16, bad)


def test_the_coreset_bank_keeps_unique_rows_or_everything_when_asked_for_all():
    patches = np.random.default_rng(2).normal(size=(50, 6)).astype(np.float32)
    bank, idx = coreset_memory_bank(patches, 10, key=jax.random.PRNGKey(0))
    assert bank.shape == (10, 6) and len(set(idx.tolist())) == 10
    np.testing.assert_array_equal(bank, patches[idx])
    full, all_idx = coreset_memory_bank(patches, 50, key=jax.random.PRNGKey(0))
    np.testing.assert_array_equal(full, patches)
    np.testing.assert_array_equal(all_idx, np.arange(50))
    assert coreset_size(1000, 0.1) == 100 and coreset_size(5, 0.01) == 1


def test_nearest_patch_distances_and_the_eq7_score_on_a_hand_made_bank():
    bank = jnp.asarray([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    emb = jnp.asarray([[[[0.0, 1.0], [3.0, 0.5]]]])  # f32[1, 1, 2, 2]
    dists, idx = jax.jit(lambda e, b: nearest_patch_distances(e, b, k=2))(emb, bank)
    np.testing.assert_allclose(np.asarray(dists[0, 0]), [[1.0, 3.0], [0.5, np.hypot(3.0, 0.5)]], rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(idx[0, 0, :, 0]), [0, 1])
    patch_scores = dists[..., 0]
    # One support row: no re-weighting, the image score is the largest patch score.
    score = jax.jit(reweighted_max_score, static_argnames="num_neighbors")
    plain = score(bank, emb, patch_scores, idx[..., 0], num_neighbors=1)
    np.testing.assert_allclose(np.asarray(plain), [1.0])
    # Two support rows around m* = bank[0]: itself and bank[1] (distance 3 < 4).
    weighted = score(bank, emb, patch_scores, idx[..., 0], num_neighbors=2)
    d = np.array([1.0, np.hypot(3.0, 1.0)])
    expected = (1 - np.exp(d[0]) / np.exp(d).sum()) * 1.0
    np.testing.assert_allclose(np.asarray(weighted), [expected], rtol=1e-5)


def test_top_fraction_mean_averages_the_largest_scores_or_takes_the_maximum():
    scores = jnp.arange(200, dtype=jnp.float32).reshape(1, 10, 20)
    np.testing.assert_allclose(np.asarray(top_fraction_mean(scores, 0.01)), [(199 + 198) / 2])
    np.testing.assert_allclose(np.asarray(top_fraction_mean(scores[:, :2, :], 0.01)), [39.0])  # int(40 * 0.01) = 0
