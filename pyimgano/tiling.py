"""Tiling as a pure transform: overlapping windows for high-resolution frames (2K/4K).

Composable pure functions — :func:`plan_tiles` (Python, before tracing),
:func:`tile`, :func:`stitch`, :func:`reduce_tile_scores` (traceable) — and
:func:`tiled_forward`, which composes them around any batched tile scorer:

    tile -> predict_tiles(all B*T tiles as one batch) -> reduce tile scores
                                                      -> stitch tile maps

:class:`TileConfig` is the settings value a :class:`~pyimgano.DetectorState`
carries (``state.tiling``); :mod:`pyimgano.scoring` runs ``tiled_forward`` with
the state's detector inside one ``jit``. The tile grid is a static argument
(computed in Python from the frame size), so a new frame size compiles once.

Grid rule (per axis, size ``n``, tile ``t``, stride ``s``): origins
``range(0, n - t + 1, s)`` plus a final ``n - t`` when that is not already the
last, so the last tile touches the edge; when ``n <= t`` there is one tile at 0
and the frame is padded to ``t`` by reflection (the padded part is cropped away
after stitching). With ``s <= t`` every pixel is covered by at least one tile.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Mapping, Sequence

import attrs
import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "TilePlan",
    "TileConfig",
    "plan_tiles",
    "tiled_forward",
    "tile",
    "stitch",
    "blend_tiles",
    "window_weights",
    "reduce_tile_scores",
    "SCORE_REDUCES",
    "MAP_REDUCES",
]

SCORE_REDUCES = ("max", "mean", "topk_mean")
MAP_REDUCES = ("max", "mean", "hann", "gaussian")


def _positive_int(name: str, value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return int(value)


def _axis_origins(n: int, t: int, s: int) -> tuple[int, ...]:
    if n <= t:
        return (0,)
    origins = list(range(0, n - t + 1, s))
    if origins[-1] != n - t:
        origins.append(n - t)
    return tuple(origins)


def _reflect_index(n: int, length: int) -> np.ndarray:
    """Source index for positions ``0..length-1`` of an axis of size ``n`` padded at the end by reflection.

    Reflection without repeating the edge (numpy's ``"reflect"``): ``[a b c] -> [a b c b a b c ...]``;
    a size-1 axis repeats its only value.
    """
    pos = np.arange(length)
    if n == 1:
        return np.zeros(length, np.int32)
    period = 2 * (n - 1)
    pos = pos % period
    return np.where(pos < n, pos, period - pos).astype(np.int32)


@attrs.frozen
class TilePlan:
    """The tile grid for one frame size (hashable: a static argument of the jitted tiler).

    Attributes:
      height, width: the frame size.
      tile_size, stride: square tile side and step, ``1 <= stride <= tile_size``.
      ys, xs: tile origins along each axis; tiles are ordered row-major (``ys`` outer).
    """

    height: int
    width: int
    tile_size: int
    stride: int
    ys: tuple[int, ...]
    xs: tuple[int, ...]

    @property
    def num_tiles(self) -> int:
        return len(self.ys) * len(self.xs)

    @property
    def origins(self) -> tuple[tuple[int, int], ...]:
        """``(y, x)`` of every tile, row-major."""
        return tuple((y, x) for y in self.ys for x in self.xs)

    @property
    def padded_shape(self) -> tuple[int, int]:
        """Canvas size the tiles live on: ``max(H, t) x max(W, t)`` (reflect padding past the frame)."""
        return (max(self.height, self.tile_size), max(self.width, self.tile_size))

    def rows_cols(self) -> tuple[np.ndarray, np.ndarray]:
        """Canvas coordinates i32[T, t] of each tile's rows and columns."""
        return _rows_cols(self.origins, self.tile_size)


def _rows_cols(origins, tile_size: int) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.arange(tile_size, dtype=np.int32)
    ys = np.asarray([y for y, _ in origins], np.int32).reshape(-1)
    xs = np.asarray([x for _, x in origins], np.int32).reshape(-1)
    return ys[:, None] + offsets, xs[:, None] + offsets


def plan_tiles(height: int, width: int, tile_size: int, stride: int | None = None) -> TilePlan:
    """The tile grid for a ``height x width`` frame.

    Args:
      height, width: frame size in pixels (>= 1).
      tile_size: square tile side (>= 1).
      stride: step between tile origins, ``1 <= stride <= tile_size``; default ``tile_size``
        (no overlap).

    Returns:
      A :class:`TilePlan`. Example: 6x6, tile 4, stride 3 -> ``ys == xs == (0, 2)``;
      3x10, tile 4 -> ``ys == (0,)`` (reflect-padded), ``xs == (0, 4, 6)``.

    Raises:
      ValueError: a non-positive or non-integer size, or ``stride > tile_size`` (pixels
        would be skipped).
    """
    height = _positive_int("height", height)
    width = _positive_int("width", width)
    tile_size = _positive_int("tile_size", tile_size)
    stride = tile_size if stride is None else _positive_int("stride", stride)
    if stride > tile_size:
        raise ValueError(
            f"stride must be <= tile_size so every pixel is covered, got stride={stride} tile_size={tile_size}"
        )
    return TilePlan(
        height=height,
        width=width,
        tile_size=tile_size,
        stride=stride,
        ys=_axis_origins(height, tile_size, stride),
        xs=_axis_origins(width, tile_size, stride),
    )


def _check_frame_size(shape: Sequence[int], plan: TilePlan, what: str) -> None:
    if tuple(shape) != (plan.height, plan.width):
        raise ValueError(
            f"{what} have spatial size {tuple(shape)} but the tile plan is for {(plan.height, plan.width)}"
        )


def tile(frames, plan: TilePlan) -> jax.Array:
    """Cut frames into the plan's tiles (traceable; one gather, reflect padding folded in).

    Args:
      frames: ``[B, H, W, ...]`` (any dtype, any trailing channel axes), ``(H, W)`` as in ``plan``.
      plan: from :func:`plan_tiles`.

    Returns:
      ``[B, T, t, t, ...]`` with ``T = plan.num_tiles`` in row-major order, same dtype.

    Raises:
      ValueError: ``frames`` has fewer than 3 axes or a size other than the plan's.
    """
    x = jnp.asarray(frames)
    if x.ndim < 3:
        raise ValueError(f"tile expects frames [B, H, W, ...], got shape {x.shape}")
    _check_frame_size(x.shape[1:3], plan, "frames")
    return _tile_impl(x, plan)


@functools.partial(jax.jit, static_argnums=1)
def _tile_impl(x: jax.Array, plan: TilePlan) -> jax.Array:
    rows, cols = plan.rows_cols()
    ph, pw = plan.padded_shape
    # Canvas coordinates -> frame coordinates (identity inside the frame, reflection past it).
    rows = _reflect_index(plan.height, ph)[rows]
    cols = _reflect_index(plan.width, pw)[cols]
    return x[:, rows[:, :, None], cols[:, None, :]]


def window_weights(tile_size: int, map_reduce: str) -> np.ndarray:
    """Per-pixel blending weights ``f32[t, t]`` of one tile, all strictly positive.

    ``max`` / ``mean``: ones. ``hann``: outer product of ``sin^2(pi (i + 0.5) / t)`` — the
    Hann window sampled at pixel centres, so even edge pixels keep a small non-zero
    weight (a pixel covered only by a tile edge is still defined). ``gaussian``: outer
    product of ``exp(-(i - (t-1)/2)^2 / (2 sigma^2))`` with ``sigma = t / 4``.

    Raises:
      ValueError: unknown ``map_reduce`` (lists the accepted ones) or a bad ``tile_size``.
    """
    t = _positive_int("tile_size", tile_size)
    if map_reduce not in MAP_REDUCES:
        raise ValueError(f"map_reduce must be one of {list(MAP_REDUCES)}, got {map_reduce!r}")
    i = np.arange(t, dtype=np.float64)
    if map_reduce == "hann":
        w = np.sin(np.pi * (i + 0.5) / t) ** 2
    elif map_reduce == "gaussian":
        sigma = t / 4.0
        w = np.exp(-((i - (t - 1) / 2.0) ** 2) / (2.0 * sigma**2))
    else:
        w = np.ones(t)
    return np.outer(w, w).astype(np.float32)


def stitch(tile_maps, plan: TilePlan, map_reduce: str = "max") -> jax.Array:
    """Blend per-tile maps back into full-size maps (traceable).

    Args:
      tile_maps: ``f32[B, T, t, t]`` (or ``f32[T, t, t]`` for one frame), tiles in the
        order of :func:`tile`.
      plan: the plan the tiles were cut with.
      map_reduce: ``"max"`` (per-pixel max over covering tiles: keeps peaks, may show
        seams), ``"mean"`` (plain average: smooth, can dilute peaks), ``"hann"`` /
        ``"gaussian"`` (weighted average with :func:`window_weights`: down-weights tile
        borders where context is poorest, no seams).

    Returns:
      ``f32[B, H, W]`` (or ``f32[H, W]``) at the plan's frame size.

    Raises:
      ValueError: unknown ``map_reduce``; tile count or size not matching ``plan``.
    """
    if map_reduce not in MAP_REDUCES:
        raise ValueError(f"map_reduce must be one of {list(MAP_REDUCES)}, got {map_reduce!r}")
    maps = jnp.asarray(tile_maps, dtype=jnp.float32)
    single = maps.ndim == 3
    if single:
        maps = maps[None]
    t = plan.tile_size
    if maps.ndim != 4 or maps.shape[1:] != (plan.num_tiles, t, t):
        raise ValueError(
            f"tile_maps must be f32[B, {plan.num_tiles}, {t}, {t}] (or without B) for this plan, "
            f"got shape {tuple(jnp.shape(tile_maps))}"
        )
    out = _stitch_impl(maps, plan, map_reduce)
    return out[0] if single else out


@functools.partial(jax.jit, static_argnums=(1, 2))
def _stitch_impl(maps: jax.Array, plan: TilePlan, map_reduce: str) -> jax.Array:
    out = blend_tiles(maps, plan.origins, plan.padded_shape, map_reduce)
    return out[:, : plan.height, : plan.width]


def blend_tiles(tile_maps, origins, canvas_hw: tuple[int, int], map_reduce: str = "max") -> jax.Array:
    """Blend square tile maps placed at ``origins`` onto a canvas (traceable; :func:`stitch` uses it).

    Each canvas pixel gets the max (``"max"``) or the window-weighted mean (``"mean"``,
    ``"hann"``, ``"gaussian"``, see :func:`window_weights`) of the tiles covering it, so the
    result does not depend on the order of the tiles (up to float rounding of the sums).

    Args:
      tile_maps: ``f32[B, T, t, t]``.
      origins: ``T`` pairs ``(y, x)`` of canvas coordinates (Python ints: static).
      canvas_hw: the canvas size; every canvas pixel must be covered by a tile.
      map_reduce: one of ``MAP_REDUCES``.

    Returns:
      ``f32[B, *canvas_hw]``.
    """
    maps = jnp.asarray(tile_maps, jnp.float32)
    t = maps.shape[-1]
    rows, cols = _rows_cols(tuple(origins), t)
    index = (slice(None), rows[:, :, None], cols[:, None, :])
    canvas_shape = (maps.shape[0], *canvas_hw)
    if map_reduce == "max":
        # Every canvas pixel is covered, so no -inf survives.
        return jnp.full(canvas_shape, -jnp.inf, jnp.float32).at[index].max(maps)
    weights = jnp.asarray(window_weights(t, map_reduce))
    total = jnp.zeros(canvas_shape, jnp.float32).at[index].add(maps * weights)
    norm = jnp.zeros(canvas_hw, jnp.float32).at[rows[:, :, None], cols[:, None, :]].add(
        jnp.broadcast_to(weights, (len(rows), t, t))
    )
    return total / norm


def _topk_count(num_tiles: int, topk) -> int:
    """Tiles averaged by ``topk_mean``: an int is a count, a float in (0, 1] a fraction (at least 1)."""
    if isinstance(topk, (int, np.integer)) and not isinstance(topk, bool):
        return max(1, min(int(topk), num_tiles))
    return max(1, min(num_tiles, math.ceil(float(topk) * num_tiles)))


def _check_topk(value) -> None:
    if isinstance(value, bool):
        raise ValueError(f"score_topk must be an int >= 1 (count) or a float in (0, 1] (fraction), got {value!r}")
    if isinstance(value, (int, np.integer)):
        if value < 1:
            raise ValueError(f"score_topk as a tile count must be >= 1, got {value!r}")
        return
    if isinstance(value, (float, np.floating)) and 0.0 < float(value) <= 1.0:
        return
    raise ValueError(f"score_topk must be an int >= 1 (count) or a float in (0, 1] (fraction), got {value!r}")


def reduce_tile_scores(tile_scores, score_reduce: str = "max", topk: int | float = 0.1) -> jax.Array:
    """Image scores from per-tile scores (traceable).

    Args:
      tile_scores: ``f32[B, T]`` (or ``f32[T]``).
      score_reduce: ``"max"`` (the most anomalous tile decides; the usual choice since a
        defect is local), ``"mean"``, or ``"topk_mean"`` (mean of the ``k`` highest tiles:
        ``topk`` int = count, float in (0, 1] = fraction of ``T``, rounded up, at least 1).

    Returns:
      ``f32[B]`` (or a scalar).

    Raises:
      ValueError: unknown ``score_reduce`` or a bad ``topk``.
    """
    if score_reduce not in SCORE_REDUCES:
        raise ValueError(f"score_reduce must be one of {list(SCORE_REDUCES)}, got {score_reduce!r}")
    scores = jnp.asarray(tile_scores, dtype=jnp.float32)
    if score_reduce == "max":
        return scores.max(axis=-1)
    if score_reduce == "mean":
        return scores.mean(axis=-1)
    _check_topk(topk)
    k = _topk_count(scores.shape[-1], topk)
    return jax.lax.top_k(scores, k)[0].mean(axis=-1)


def _validate_choice(choices):
    def check(instance, attribute, value):
        if value not in choices:
            raise ValueError(f"{attribute.name} must be one of {list(choices)}, got {value!r}")

    return check


def _validate_topk(instance, attribute, value):
    _check_topk(value)


def _stride_of(value, config) -> int:
    """attrs converter (takes self): None -> ``tile_size`` (no overlap), else a positive int."""
    return config.tile_size if value is None else _positive_int("stride", value)


def _validate_stride(instance, attribute, value) -> None:
    if value > instance.tile_size:
        raise ValueError(
            f"stride must be <= tile_size so every pixel is covered, got stride={value} tile_size={instance.tile_size}"
        )


@attrs.frozen
class TileConfig:
    """Tiling settings (hashable; a static argument of the jitted tiler).

    Attributes:
      tile_size: square tile side in frame pixels (>= 1).
      stride: step between tiles, ``1 <= stride <= tile_size``; None -> ``tile_size``.
        Overlap (``stride < tile_size``) improves seams and defects on tile borders.
      score_reduce: ``max | mean | topk_mean``.
      score_topk: for ``topk_mean``: int = number of tiles, float in (0, 1] = fraction.
      map_reduce: ``max | mean | hann | gaussian`` (see :func:`stitch`).

    Raises:
      ValueError: naming the bad value and the accepted ones.
    """

    tile_size: int = attrs.field(converter=lambda v: _positive_int("tile_size", v))
    stride: int = attrs.field(
        default=None, converter=attrs.Converter(_stride_of, takes_self=True), validator=_validate_stride
    )
    score_reduce: str = attrs.field(default="max", validator=_validate_choice(SCORE_REDUCES))
    score_topk: int | float = attrs.field(default=0.1, validator=_validate_topk)
    map_reduce: str = attrs.field(default="max", validator=_validate_choice(MAP_REDUCES))

    def plan(self, height: int, width: int) -> TilePlan:
        """The tile grid for a ``height x width`` frame."""
        return plan_tiles(height, width, self.tile_size, self.stride)

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python fields; ``TileConfig(**d)`` reads it back."""
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TileConfig":
        """Build from :meth:`to_dict` output; unknown keys raise ``ValueError`` listing the accepted ones."""
        accepted = [f.name for f in attrs.fields(cls)]
        unknown = sorted(set(data) - set(accepted))
        if unknown:
            raise ValueError(f"unknown tiling key(s) {unknown}; accepted: {accepted}")
        return cls(**dict(data))


def tiled_forward(
    predict_tiles: Callable[[jax.Array], Any],
    frames,
    plan: TilePlan,
    config: TileConfig,
    *,
    want_maps: bool,
):
    """Score frames tile by tile (traceable; call it inside ``jit``).

    Args:
      predict_tiles: ``tiles [N, t, t, C] -> (scores f32[N], maps f32[N, t, t])`` (or scores
        only when ``want_maps`` is False); it sees all ``B * T`` tiles of the batch as one
        batch, which is what ``jax.vmap`` of a per-tile scorer over the tile axis lowers to.
      frames: ``[B, H, W, C]`` at the plan's frame size.
      plan, config: the tile grid and the reductions.
      want_maps: False skips stitching (XLA then prunes the map computation).

    Returns:
      ``(scores f32[B], maps f32[B, H, W] or None)``.
    """
    batch = frames.shape[0]
    t, count = plan.tile_size, plan.num_tiles
    tiles = tile(frames, plan).reshape(batch * count, t, t, frames.shape[-1])
    out = predict_tiles(tiles)
    tile_scores, tile_maps = out if want_maps else (out, None)
    scores = reduce_tile_scores(tile_scores.reshape(batch, count), config.score_reduce, config.score_topk)
    if not want_maps:
        return scores, None
    return scores, stitch(tile_maps.reshape(batch, count, t, t), plan, config.map_reduce)
