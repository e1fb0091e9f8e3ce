"""Device-side building blocks shared by the detectors (pure JAX).

- :mod:`~models_jax.ops.knn` -- chunked exact k-nearest neighbours, single device or bank sharded
  (``nearest_neighbors_across`` / ``take_rows_across`` inside ``shard_map``).
- :mod:`~models_jax.ops.coreset` -- greedy k-center coreset on a random projection.
- :mod:`~models_jax.ops.gaussian` -- Gaussian blur with scipy's ``reflect`` boundary.
- :mod:`~models_jax.ops.pooling` -- ``adaptive_avg_pool1d`` over the channel axis.
- :mod:`~models_jax.ops.gaussian_stats` -- streamed per-position Gaussians and Mahalanobis distances.
- :mod:`~models_jax.ops.outliers` -- local outlier factor and nearest-other distance within a set.
- :mod:`~models_jax.ops.perlin` -- Perlin noise with traced resolution and rotation.
- :mod:`~models_jax.ops.ssim` -- structural similarity with a Gaussian window.
- :mod:`~models_jax.ops.anomaly_synthesis` -- DRAEM's simulated anomalies (Perlin masks, procedural textures).
"""

from models_jax.ops.coreset import coreset_coverage, greedy_coreset, random_projection
from models_jax.ops.gaussian import blur_matrix, gaussian_blur, gaussian_kernel_1d
from models_jax.ops.gaussian_stats import (
    GaussianMoments,
    accumulate_moments,
    inverse_cholesky_factor,
    finalize_gaussian,
    init_moments,
    mahalanobis,
)
from models_jax.ops.knn import (
    nearest_neighbors,
    nearest_neighbors_across,
    nearest_neighbors_sharded,
    pairwise_sq_distances,
    take_rows_across,
)
from models_jax.ops.outliers import local_outlier_factor, nearest_other_distance
from models_jax.ops.pooling import adaptive_avg_pool_last, adaptive_avg_pool_matrix

__all__ = [
    "nearest_neighbors",
    "nearest_neighbors_sharded",
    "nearest_neighbors_across",
    "take_rows_across",
    "pairwise_sq_distances",
    "greedy_coreset",
    "random_projection",
    "coreset_coverage",
    "gaussian_blur",
    "gaussian_kernel_1d",
    "blur_matrix",
    "adaptive_avg_pool_last",
    "adaptive_avg_pool_matrix",
    "GaussianMoments",
    "init_moments",
    "accumulate_moments",
    "finalize_gaussian",
    "inverse_cholesky_factor",
    "mahalanobis",
    "local_outlier_factor",
    "nearest_other_distance",
]
