"""Run by test_bank_sharding.py in a fresh process with 8 host CPU devices (XLA_FLAGS set by the caller).

Prints one JSON line of measured differences; exits non-zero on an unexpected setup.
"""

import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

import pyimgano
from models_jax.ops import nearest_neighbors, nearest_neighbors_across, take_rows_across
from pyimgano.devices import AXIS, device_count, local_mesh, sharded_fields, shard_rows


def brute_force(queries, bank, k):
    d = np.sqrt(((queries[:, None, :].astype(np.float64) - bank[None].astype(np.float64)) ** 2).sum(-1))
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(d, idx, axis=1), idx


def search_report() -> dict:
    rng = np.random.default_rng(0)
    bank = rng.normal(size=(1003, 24)).astype(np.float32)  # not a multiple of 8: padded rows
    queries = rng.normal(size=(64, 24)).astype(np.float32)
    sharded = shard_rows(bank)
    out = {}
    for k in (1, 5):
        search = jax.jit(jax.shard_map(
            lambda q, b, k=k: nearest_neighbors_across(q, b, AXIS, k=k, bank_chunk=40),
            mesh=local_mesh(), in_specs=(P(AXIS), P(AXIS)), out_specs=(P(AXIS), P(AXIS)), check_vma=False))
        d, i = search(jnp.asarray(queries), sharded)
        bd, bi = brute_force(queries, bank, k)
        sd, si = nearest_neighbors(jnp.asarray(queries), jnp.asarray(bank), k=k, bank_chunk=40)
        out[f"k{k}_index_equal_brute"] = bool((np.asarray(i) == bi).all())
        out[f"k{k}_dist_vs_brute"] = float(np.abs(np.asarray(d) - bd).max())
        out[f"k{k}_index_equal_single"] = bool((np.asarray(i) == np.asarray(si)).all())
    take = jax.jit(jax.shard_map(lambda b, i: take_rows_across(b, i, AXIS), mesh=local_mesh(),
                                 in_specs=(P(AXIS), P(AXIS)), out_specs=P(AXIS), check_vma=False))
    idx = rng.integers(0, 1003, size=(16, 3)).astype(np.int32)
    out["take_rows_equal"] = bool((np.asarray(take(sharded, jnp.asarray(idx))) == bank[idx]).all())
    return out


if __name__ == "__main__":
    if device_count() != 8:
        print(f"expected 8 host devices, got {device_count()}", file=sys.stderr)
        sys.exit(3)
    report = search_report()
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:64, 0:64] / 64.0
    base = 0.5 + 0.25 * np.sin(2 * np.pi * 3 * xx) * np.cos(2 * np.pi * 2 * yy)
    frames = np.clip((base[None, ..., None] + rng.normal(0, 0.03, (14, 64, 64, 3))) * 255, 0, 255).astype(np.uint8)
    frames[10:, 20:30, 20:30] = (255, 0, 255)
    state = pyimgano.fit("vision_patchcore", frames[:8], "rgb_u8_hwc", backbone="tiny_resnet", pretrained=False,
                         image_size=64, pretrain_embed_dim=16, target_embed_dim=16, coreset_ratio=0.49, batch_size=4,
                         knn_chunk=48)
    single = pyimgano.place_state(state, bank_sharding="off")
    sharded = pyimgano.place_state(state, bank_sharding="on")
    report["bank_rows"] = int(state.model.memory_bank.shape[0])
    report["sharded_fields"] = sorted(sharded_fields(sharded.model))
    report["rows_per_device"] = [int(s.data.shape[0]) for s in sharded.model.memory_bank.addressable_shards]
    s1, m1 = pyimgano.predict(single, frames[6:], "rgb_u8_hwc")
    s2, m2 = pyimgano.predict(sharded, frames[6:], "rgb_u8_hwc")
    report["score_diff"] = float(jnp.abs(s1 - s2).max())
    report["map_diff"] = float(jnp.abs(m1 - m2).max())
    report["score_scale"] = float(jnp.abs(s1).max())
    report["defects_score_higher"] = bool(float(s2[4:].min()) > float(s2[:2].max()))
    tiled = pyimgano.TileConfig(tile_size=32, stride=32)
    t1 = pyimgano.score(pyimgano.with_tiling(single, tiled), frames[6:], "rgb_u8_hwc")
    t2 = pyimgano.score(pyimgano.with_tiling(sharded, tiled), frames[6:], "rgb_u8_hwc")
    report["tiled_score_diff"] = float(jnp.abs(t1 - t2).max())
    print(json.dumps(report, sort_keys=True))
