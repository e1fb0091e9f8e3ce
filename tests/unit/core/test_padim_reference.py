"""PaDiM's fitted Gaussians and Mahalanobis maps against a NumPy float64 reference."""

import jax
import jax.numpy as jnp
import numpy as np

import pyimgano
from models_jax.detectors import padim
from pyimgano.scoring import prepare_frames


def test_padim_gaussians_and_map_match_a_float64_numpy_reference(frames_factory):
    train = frames_factory(10, seed=31)
    test = frames_factory(2, seed=32)
    eps = 0.05
    state = pyimgano.fit(
        "vision_padim", train, "rgb_u8_hwc", backbone="tiny_resnet", pretrained=False,
        image_size=32, d_reduced=6, covariance_eps=eps, blur_sigma=0.0, batch_size=4,
    )
    model = state.model
    cfg = model.config

    def embed(frames):
        x = jnp.asarray(prepare_frames(cfg, list(frames)))
        emb = padim.embed_positions(cfg, model.backbone_variables, x, model.channel_index)
        return np.asarray(emb, dtype=np.float64)

    train_emb = embed(train)  # [N, h, w, d]
    n, h, w, d = train_emb.shape
    flat = train_emb.reshape(n, h * w, d)
    mean = flat.mean(axis=0)
    cov = np.stack([np.cov(flat[:, p, :], rowvar=False) + eps * np.eye(d) for p in range(h * w)])
    np.testing.assert_allclose(np.asarray(model.mean), mean, rtol=1e-4, atol=1e-4)
    inv_chol = np.asarray(model.inv_cholesky, dtype=np.float64)
    assert np.all(np.triu(inv_chol, 1) == 0)  # lower triangular
    # L^{-1} of cov: (L^{-1})^T L^{-1} is the precision matrix.
    np.testing.assert_allclose(np.swapaxes(inv_chol, -1, -2) @ inv_chol, np.linalg.inv(cov), rtol=2e-3, atol=2e-3)

    test_emb = embed(test).reshape(len(test), h * w, d)
    diff = test_emb - mean
    inv = np.linalg.inv(cov)
    ref = np.sqrt(np.einsum("bpi,pij,bpj->bp", diff, inv, diff)).reshape(len(test), h, w)
    ref_map = np.asarray(jax.image.resize(jnp.asarray(ref, jnp.float32), (len(test), 32, 32), "bilinear"))
    maps = np.asarray(pyimgano.anomaly_maps(state, test, "rgb_u8_hwc"))
    np.testing.assert_allclose(maps, ref_map, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(np.asarray(pyimgano.score(state, test, "rgb_u8_hwc")), ref_map.max(axis=(1, 2)), rtol=1e-3)
