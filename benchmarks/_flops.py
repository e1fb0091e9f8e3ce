"""FLOPs per image of a detector's predict, counted so that every loop iteration counts.

XLA's cost analysis counts the body of a ``while`` loop (``lax.scan``, ``lax.map``,
``fori_loop``) once, whatever its trip count.  PatchCore's exact search is such a loop
over bank chunks, so the cost analysis of its whole predict under-counts by about the
number of chunks (the README's former "7.20 GFLOP per image" was 4.5x too low).
Here the loop-free parts are taken from the cost analysis (each checked to contain no
``while``), and the search is counted from its shapes, every chunk included.
"""

from __future__ import annotations

import jax
import numpy as np


def loop_free_gflop(fn, *args) -> float:
    """GFLOP of ``jax.jit(fn)(*args)`` from XLA's cost analysis; refuses programs with loops."""
    compiled = jax.jit(fn).lower(*args).compile()
    if " while(" in compiled.as_text():
        raise ValueError("program has a while loop; XLA's cost analysis would count its body once")
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost.get("flops", 0.0)) / 1e9


def whole_program_gflop(fn, *args) -> float:
    """GFLOP from XLA's cost analysis of the whole program (loop bodies counted once: for comparison only)."""
    cost = jax.jit(fn).lower(*args).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost.get("flops", 0.0)) / 1e9


def predict_gflop_per_image(state) -> dict[str, float]:
    """``{"features", "search", "search_executed", "maps", "total"}`` GFLOP for one 224x224 image.

    ``search`` counts the useful arithmetic of the exact nearest-neighbour search
    (``2 x patches x bank rows x width`` plus the refinement and the re-weighting);
    ``search_executed`` adds the padding rows that the chunked search also multiplies;
    ``total`` uses the executed count.
    """
    from models_jax.detectors.common import shape_anomaly_maps
    from models_jax.ops.knn import GROUP, chunk_layout, step_rows
    from pyimgano.registry import get_detector

    model = state.model
    config = model.config
    h, w = config.image_size
    x = jax.ShapeDtypeStruct((1, h, w, 3), np.float32)
    if state.detector != "vision_patchcore":
        predict = get_detector(state.detector).predict
        total = loop_free_gflop(lambda m, x: predict(m, x, (h, w)), model, x)
        return dict(features=float("nan"), search=0.0, search_executed=0.0, maps=float("nan"), total=total)

    from models_jax.detectors.patchcore import embed_patches

    features = loop_free_gflop(lambda v, x: embed_patches(config, v, x), model.backbone_variables, x)
    grid = jax.eval_shape(lambda v, x: embed_patches(config, v, x), model.backbone_variables, x).shape
    patches, dim = grid[1] * grid[2], grid[3]
    rows = int(model.memory_bank.shape[0])
    group = min(GROUP, rows)
    # The padding depends on the queries of one call (a batch of batch_size images).
    n_chunks, chunk_rows = chunk_layout(rows, step_rows(config.batch_size * patches, config.knn_chunk, group), group)
    refine = 3 * patches * group * dim  # difference, square, sum over the winning group
    support = min(config.num_neighbors, rows)
    reweight = 2 * rows * dim + 3 * support * dim if support > 1 else 0  # one k-NN query per image
    search = (2 * patches * rows * dim + refine + reweight) / 1e9
    executed = (2 * patches * n_chunks * chunk_rows * dim + refine + reweight) / 1e9
    maps = loop_free_gflop(
        lambda s: shape_anomaly_maps(s, (h, w), (h, w), config.blur_sigma),
        jax.ShapeDtypeStruct((1, grid[1], grid[2]), np.float32),
    )
    return dict(features=features, search=search, search_executed=executed, maps=maps, total=features + executed + maps)
