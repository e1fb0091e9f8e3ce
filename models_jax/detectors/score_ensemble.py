"""A score ensemble of fitted detectors that scores every image on its own.

The earlier PyTorch pyimgano combined member scores by ranking them within the
current batch, so an image scored differently alone than in a batch. Here each
member is standardised against statistics of *its own calibration scores on
normal images*, stored in the state, never against the batch:

- ``combine="mean" | "max" | "median"``: member ``k``'s score ``s_k`` becomes
  ``z_k = (s_k - mean_k) / std_k`` (mean and sample standard deviation of its
  calibration scores; ``std_k`` floored at ``1e-6 * max(1, |mean_k|)`` so a
  constant member cannot divide by zero), and the ``z_k`` are averaged, maxed or
  medianed over the members.
- ``combine="rank_mean"``: ``s_k`` becomes its mid-rank among member ``k``'s
  sorted calibration scores, ``r_k = (#{c < s_k} + #{c <= s_k}) / (2 N)`` in
  [0, 1], and the ``r_k`` are averaged. Ranks saturate: every score above all
  calibration scores ranks 1, so anomalies beyond the calibration range tie.

Maps combine likewise, pixel by pixel, after the same per-member
standardisation with pixel statistics of the member's calibration maps (mean
and standard deviation of all pixels; for ``rank_mean``, ``map_levels``
quantiles of the pixels as the reference set).

Every operation is per image, so a score depends only on that image and the
state; the only batch dependence left is the float rounding of the members'
backbones (XLA may pick other kernels for other batch shapes).

Members share one input preparation (input size, interpolation, backbone
normalisation): the ensemble's ``predict`` hands the same prepared batch to
every member's ``predict``. Member post-processing and tiling are not applied
(the ensemble combines raw member outputs; give the ensemble state its own).

Build one with :func:`pyimgano.make_score_ensemble` (it measures the calibration
statistics); ``fit`` cannot, because the members are already fitted states.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, Mapping, Sequence

import attrs
import jax
import jax.numpy as jnp
import numpy as np

from models_jax.detectors.common import Prediction, as_image_size, positive

__all__ = [
    "COMBINE_MODES",
    "ScoreEnsembleConfig",
    "ScoreEnsembleState",
    "MemberStatistics",
    "member_statistics",
    "build_state",
    "fit",
    "predict",
    "combine_scores",
    "encode_state",
    "decode_state",
]

#: How standardised member outputs are combined.
COMBINE_MODES = ("mean", "max", "median", "rank_mean")


def _as_names(value) -> tuple[str, ...]:
    return tuple(str(v) for v in value)


@attrs.frozen
class ScoreEnsembleConfig:
    """What the ensemble combines and how (hashable: passed to ``jit`` as static).

    Attributes:
      members: registered detector names of the members, in order.
      combine: one of :data:`COMBINE_MODES`.
      backbone, image_size, interpolation: the members' shared input preparation
        (``backbone`` names the normalisation of the prepared frames).
      batch_size: frames per scoring step.
      member_predicts: each member's registered ``predict`` (not compared or
        hashed: the names determine them; set by the builder and the state loader).
    """

    members: tuple[str, ...] = attrs.field(default=(), converter=_as_names)
    combine: str = attrs.field(default="mean", validator=attrs.validators.in_(COMBINE_MODES))
    backbone: str = "efficientnet_lite0"
    image_size: tuple[int, int] = attrs.field(default=(224, 224), converter=as_image_size)
    interpolation: str = "bilinear"
    batch_size: int = attrs.field(default=16, validator=positive)
    member_predicts: tuple[Callable[..., Any], ...] = attrs.field(default=(), converter=tuple, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if not self.members:
            raise ValueError(
                "vision_score_ensemble needs fitted member detectors; build it with "
                "pyimgano.make_score_ensemble([state_a, state_b, ...], normal_frames, fmt)"
            )
        if len(self.member_predicts) != len(self.members) or not all(map(callable, self.member_predicts)):
            raise ValueError(
                f"member_predicts must hold one predict function per member ({len(self.members)}), "
                f"got {len(self.member_predicts)}; build the ensemble with pyimgano.make_score_ensemble"
            )


@attrs.frozen
class ScoreEnsembleState:
    """A score ensemble (a pytree; ``config`` is static). K members, N calibration scores, Q map levels."""

    config: ScoreEnsembleConfig
    members: tuple  # K member model states (pytrees)
    score_mean: jax.Array  # f32[K]
    score_std: jax.Array  # f32[K], floored
    score_reference: jax.Array  # f32[K, N], each member's calibration scores, sorted
    map_mean: jax.Array  # f32[K]
    map_std: jax.Array  # f32[K], floored
    map_reference: jax.Array  # f32[K, Q], quantiles of each member's calibration map pixels


jax.tree_util.register_dataclass(
    ScoreEnsembleState,
    data_fields=["members", "score_mean", "score_std", "score_reference", "map_mean", "map_std", "map_reference"],
    meta_fields=["config"],
)

_STAT_FIELDS = ("score_mean", "score_std", "score_reference", "map_mean", "map_std", "map_reference")


@attrs.frozen
class MemberStatistics:
    """One member's calibration statistics (host numpy, float32)."""

    score_mean: float
    score_std: float
    score_reference: np.ndarray  # f32[N] sorted
    map_mean: float
    map_std: float
    map_reference: np.ndarray  # f32[Q] ascending quantiles


def _floored_std(std: float, mean: float) -> float:
    return float(max(std, 1e-6 * max(1.0, abs(mean))))


def member_statistics(
    scores: np.ndarray, pixel_sum: float, pixel_sq_sum: float, pixel_count: int, pixel_sample: np.ndarray, map_levels: int
) -> MemberStatistics:
    """Calibration statistics of one member from its normal scores and map pixels.

    Args:
      scores: f32[N] image scores of N >= 2 normal frames.
      pixel_sum, pixel_sq_sum, pixel_count: sums over *all* map pixels (float64), for
        the mean and sample standard deviation.
      pixel_sample: map pixels the quantile reference is taken from (all or a subsample).
      map_levels: number of quantiles ``Q`` (levels ``linspace(0, 1, Q)``, linear interpolation).

    Raises:
      ValueError: fewer than 2 scores or pixels, non-finite values, ``map_levels < 2``.
    """
    scores = np.asarray(scores, np.float64).reshape(-1)
    sample = np.asarray(pixel_sample, np.float64).reshape(-1)
    if scores.size < 2 or pixel_count < 2 or sample.size == 0:
        raise ValueError(f"calibration statistics need at least 2 normal frames, got {scores.size}")
    if not (np.all(np.isfinite(scores)) and np.all(np.isfinite(sample))):
        raise ValueError("calibration scores and maps must be finite")
    if map_levels < 2:
        raise ValueError(f"map_levels must be >= 2, got {map_levels}")
    map_mean = pixel_sum / pixel_count
    map_var = max(0.0, (pixel_sq_sum - pixel_count * map_mean * map_mean) / (pixel_count - 1))
    mean = float(np.mean(scores))
    return MemberStatistics(
        score_mean=mean,
        score_std=_floored_std(float(np.std(scores, ddof=1)), mean),
        score_reference=np.sort(scores).astype(np.float32),
        map_mean=float(map_mean),
        map_std=_floored_std(float(np.sqrt(map_var)), float(map_mean)),
        map_reference=np.quantile(sample, np.linspace(0.0, 1.0, int(map_levels))).astype(np.float32),
    )


def build_state(config: ScoreEnsembleConfig, members: Sequence[Any], statistics: Sequence[MemberStatistics]):
    """The ensemble state from fitted member model states and their statistics (same order as ``config.members``).

    Raises:
      ValueError: counts differ, or members have different numbers of calibration scores.
    """
    if not (len(members) == len(statistics) == len(config.members)):
        raise ValueError(
            f"{len(config.members)} member names, {len(members)} member states and {len(statistics)} statistics"
        )
    score_sizes = sorted({s.score_reference.shape for s in statistics})
    map_sizes = sorted({s.map_reference.shape for s in statistics})
    if len(score_sizes) != 1 or len(map_sizes) != 1:
        raise ValueError(
            f"every member must be calibrated on the same frames, got reference sizes {score_sizes} and {map_sizes}"
        )

    def column(name):
        return jnp.asarray(np.stack([np.asarray(getattr(s, name), np.float32) for s in statistics]))

    return ScoreEnsembleState(config=config, members=tuple(members), **{f: column(f) for f in _STAT_FIELDS})


def fit(config: ScoreEnsembleConfig, batches, *, key, backbone_variables, progress=None):
    """Not a training entry point: an ensemble combines already fitted detectors.

    Raises:
      ValueError: always, pointing at :func:`pyimgano.make_score_ensemble`.
    """
    raise ValueError(
        "vision_score_ensemble combines detectors that are already fitted and calibrated; build it with "
        "pyimgano.make_score_ensemble([state_a, state_b, ...], normal_frames, fmt, combine=...)"
    )


def _mid_rank(reference: jax.Array, values: jax.Array) -> jax.Array:
    """Mid-rank of ``values`` (any shape) among the sorted ``reference: f32[N]``, in [0, 1]."""
    flat = values.reshape(-1)
    below = jnp.searchsorted(reference, flat, side="left")
    at_most = jnp.searchsorted(reference, flat, side="right")
    return ((below + at_most).astype(jnp.float32) / (2.0 * reference.shape[0])).reshape(values.shape)


def combine_scores(mode: str, standardised: jax.Array, axis: int) -> jax.Array:
    """Combine standardised member outputs along ``axis`` (the member axis) with ``mode``.

    ``rank_mean`` expects ranks and averages them, like ``mean``.

    Raises:
      ValueError: unknown ``mode``.
    """
    if mode in ("mean", "rank_mean"):
        return jnp.mean(standardised, axis=axis)
    if mode == "max":
        return jnp.max(standardised, axis=axis)
    if mode == "median":
        return jnp.median(standardised, axis=axis)
    raise ValueError(f"unknown combine mode {mode!r}; accepted: {list(COMBINE_MODES)}")


def _standardise(state: ScoreEnsembleState, k: int, scores: jax.Array, maps: jax.Array):
    if state.config.combine == "rank_mean":
        return _mid_rank(state.score_reference[k], scores), _mid_rank(state.map_reference[k], maps)
    z_scores = (scores - state.score_mean[k]) / state.score_std[k]
    z_maps = (maps - state.map_mean[k]) / state.map_std[k]
    return z_scores, z_maps


@partial(jax.jit, static_argnums=(2,))
def _predict(state: ScoreEnsembleState, images: jax.Array, out_hw: tuple[int, int]) -> Prediction:
    config = state.config
    scores, maps = [], []
    for k, (member, member_predict) in enumerate(zip(state.members, config.member_predicts)):
        pred = member_predict(member, images, out_hw)
        z_scores, z_maps = _standardise(state, k, pred.scores.astype(jnp.float32), pred.maps.astype(jnp.float32))
        scores.append(z_scores)
        maps.append(z_maps)
    return Prediction(
        scores=combine_scores(config.combine, jnp.stack(scores), axis=0).astype(jnp.float32),
        maps=combine_scores(config.combine, jnp.stack(maps), axis=0).astype(jnp.float32),
    )


def predict(state: ScoreEnsembleState, images: jax.Array, out_hw: tuple[int, int] | None = None) -> Prediction:
    """Combined scores f32[B] and maps f32[B, *out_hw] for prepared images f32[B, H, W, 3].

    Each image's outputs depend on that image and the state only (see the module docstring).
    """
    out_hw = tuple(state.config.image_size) if out_hw is None else (int(out_hw[0]), int(out_hw[1]))
    return _predict(state, images, out_hw)


# -- the state file (hooks for pyimgano.state.StateCodec) ---------------------------------------


def encode_state(model: ScoreEnsembleState, codec) -> tuple[dict[str, Any], dict]:
    """``(tensors, config_json)``: statistics at top level, member ``i``'s tensors under ``members/i/``,
    member configs (encoded by ``codec``) in the JSON config."""
    config = model.config
    tensors: dict[str, Any] = {name: getattr(model, name) for name in _STAT_FIELDS}
    members_json = []
    for i, (name, member) in enumerate(zip(config.members, model.members)):
        member_tensors, member_config = codec.encode(name, member)
        tensors.update({f"members/{i}/{key}": value for key, value in member_tensors.items()})
        members_json.append({"detector": name, "config": member_config})
    config_json = {
        "members": members_json,
        "combine": config.combine,
        "backbone": config.backbone,
        "image_size": list(config.image_size),
        "interpolation": config.interpolation,
        "batch_size": config.batch_size,
    }
    return tensors, config_json


def decode_state(config_json: Mapping, tensors: Mapping[str, np.ndarray], codec) -> ScoreEnsembleState:
    """Inverse of :func:`encode_state`; member predicts are looked up with ``codec.spec``.

    Raises:
      ValueError: a malformed config or missing tensors.
    """
    try:
        entries = list(config_json["members"])
        names = [str(entry["detector"]) for entry in entries]
        options = {k: config_json[k] for k in ("combine", "backbone", "image_size", "interpolation", "batch_size")}
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed score-ensemble config: missing {exc}") from None
    members = []
    for i, (name, entry) in enumerate(zip(names, entries)):
        prefix = f"members/{i}/"
        member_tensors = {key[len(prefix) :]: value for key, value in tensors.items() if key.startswith(prefix)}
        members.append(codec.decode(name, entry["config"], member_tensors))
    missing = [f for f in _STAT_FIELDS if f not in tensors]
    if missing:
        raise ValueError(f"score-ensemble state file lacks tensors {missing}")
    config = ScoreEnsembleConfig(
        members=names,
        member_predicts=[codec.spec(name).predict for name in names],
        **{**options, "image_size": tuple(options["image_size"])},
    )
    stats = {f: jnp.asarray(tensors[f]) for f in _STAT_FIELDS}
    return ScoreEnsembleState(config=config, members=tuple(members), **stats)
