"""Pieces shared by the feature-based detectors: predictions, tap choice, map shaping.

Everything here is either host-side Python run before tracing (tap selection,
validation) or a pure ``jnp`` function meant to be called inside a detector's jit.
"""

from __future__ import annotations

from typing import ClassVar, Iterable, Iterator, Sequence

import attrs
import jax
import jax.numpy as jnp
import numpy as np

from models_jax.backbones import BackboneSpec, backbone_variable_shapes, get_backbone_spec
from models_jax.ops import gaussian_blur

__all__ = [
    "Prediction",
    "CountedBatches",
    "taps_at_strides",
    "resolve_layers",
    "shape_anomaly_maps",
    "pad_batch",
    "positive",
    "non_negative",
    "odd",
    "tuple_or_none",
    "as_image_size",
    "BackboneFeatureConfig",
    "backbone_variable_specs",
    "layers_for",
    "aspect_image_size",
    "resolve_image_size",
]


@attrs.frozen
class Prediction:
    """Output of a detector's ``predict``: higher = more anomalous."""

    scores: jax.Array  # f32[B]
    maps: jax.Array  # f32[B, H, W]


jax.tree_util.register_dataclass(Prediction, data_fields=["scores", "maps"], meta_fields=[])


@attrs.frozen
class CountedBatches:
    """Batches of prepared images that also say how many images they hold in all.

    A detector's ``fit`` takes any iterable of batches; this one lets it allocate its
    per-image results once (:func:`~models_jax.detectors.memory_bank.collect_embeddings`).
    Iterating yields the wrapped batches, once.
    """

    batches: Iterable[np.ndarray]
    count: int

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter(self.batches)


def taps_at_strides(spec: BackboneSpec, strides: Sequence[int]) -> tuple[str, ...]:
    """The deepest grid tap of ``spec`` at each requested stride.

    ``layer2``/``layer3`` of a ResNet are the deepest taps at strides 8 and 16,
    which is what PatchCore uses; the same rule picks the matching EfficientNet
    stages.  Raises ``ValueError`` naming the strides the backbone offers.
    """
    stride_of = dict(spec.tap_strides)
    chosen = []
    for stride in strides:
        candidates = [tap for tap in spec.taps if stride_of.get(tap) == stride]
        if not candidates:
            offered = sorted(set(stride_of.values()))
            raise ValueError(
                f"backbone {spec.name!r} has no feature tap at stride {stride}; strides offered: {offered}"
            )
        chosen.append(candidates[-1])
    return tuple(chosen)


def resolve_layers(backbone: str, layers: tuple[str, ...] | None, default_strides: Sequence[int]) -> tuple[str, ...]:
    """Validate explicit ``layers`` against the backbone, or pick defaults by stride."""
    spec = get_backbone_spec(backbone)
    if layers is None:
        return taps_at_strides(spec, default_strides)
    stride_of = dict(spec.tap_strides)
    bad = [tap for tap in layers if tap not in stride_of]
    if bad or not layers:
        raise ValueError(
            f"layers {list(layers)!r} are not grid taps of backbone {backbone!r}; accepted: {list(stride_of)}"
        )
    return tuple(layers)


def as_image_size(value) -> tuple[int, int]:
    """``224`` or ``(224, 224)`` -> ``(224, 224)``; anything else raises ``ValueError``."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        size = (int(value), int(value))
    elif (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)
    ):
        size = (int(value[0]), int(value[1]))
    else:
        raise ValueError(f"image_size must be an int or a pair of ints (height, width), got {value!r}")
    if min(size) < 16:
        raise ValueError(f"image_size must be at least 16 pixels per side, got {size}")
    return size


def aspect_image_size(short_side: int, frame_hw: tuple[int, int], multiple: int = 16) -> tuple[int, int]:
    """``(h, w)`` with the aspect ratio of ``frame_hw``, the shorter side ``short_side`` and the
    longer side rounded to the nearest multiple of ``multiple`` (at least ``short_side``).

    torchvision's ``Resize(int)`` convention (the smaller edge is matched, the aspect kept),
    with the longer side snapped to the backbone's grid so every feature cell covers whole
    pixels: ``aspect_image_size(224, (768, 576)) == (304, 224)``; square frames give
    ``(short_side, short_side)``.

    Raises:
      ValueError: non-positive sizes.
    """
    fh, fw = int(frame_hw[0]), int(frame_hw[1])
    if min(fh, fw) < 1 or short_side < 1 or multiple < 1:
        raise ValueError(
            f"sizes must be positive, got short_side={short_side}, frame_hw={frame_hw}, multiple={multiple}"
        )
    long_side = max(short_side, int(round(short_side * max(fh, fw) / min(fh, fw) / multiple)) * multiple)
    return (short_side, long_side) if fh <= fw else (long_side, short_side)


def resolve_image_size(config, frame_hw: tuple[int, int]):
    """The config a detector is fitted with for training frames of size ``frame_hw``.

    With ``config.keep_aspect`` (a :class:`BackboneFeatureConfig` field) the
    model input keeps the frames' aspect ratio: the shorter side is ``min(config.image_size)``
    and the longer one follows (:func:`aspect_image_size`, multiples of the config's
    ``SIZE_MULTIPLE``), so a 768x576 frame is not squashed into a square. Without it (or for
    a config without the field) the config is returned unchanged. Host-side, before ``fit``:
    the fitted state keeps the resolved ``image_size``, which every later call (scoring,
    tiling, exports, saved states) uses as is.
    """
    if not getattr(config, "keep_aspect", False):
        return config
    size = aspect_image_size(min(config.image_size), frame_hw, getattr(config, "SIZE_MULTIPLE", 16))
    return config if size == tuple(config.image_size) else attrs.evolve(config, image_size=size)


def positive(_inst, attribute, value) -> None:
    """attrs validator: ``value > 0`` (None allowed, for optional fields)."""
    if value is not None and value <= 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def non_negative(_inst, attribute, value) -> None:
    """attrs validator: ``value >= 0`` (e.g. ``blur_sigma``; 0 switches the blur off)."""
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value}")


def odd(_inst, attribute, value) -> None:
    """attrs validator: an odd size (a neighbourhood centred on its patch)."""
    if value % 2 != 1:
        raise ValueError(f"{attribute.name} must be odd (a centred neighbourhood), got {value}")


def tuple_or_none(value):
    """attrs converter: any sequence -> tuple (hashable for ``jit``), None stays None."""
    return None if value is None else tuple(value)


def pad_batch(batch: np.ndarray, size: int) -> np.ndarray:
    """Repeat the last row so a short final batch has the fixed ``size`` (one compile per shape).

    Batches longer than ``size`` are returned unchanged.
    """
    batch = np.asarray(batch)
    if len(batch) >= size:
        return batch
    return np.concatenate([batch, np.repeat(batch[-1:], size - len(batch), axis=0)], axis=0)


def shape_anomaly_maps(
    patch_scores: jax.Array,  # f32[B, h, w]
    model_hw: tuple[int, int],
    out_hw: tuple[int, int],
    blur_sigma: float,
) -> jax.Array:  # f32[B, H, W]
    """Patch-score grid -> anomaly map at the caller's frame size.

    Bilinear upsampling (half-pixel centres, as ``F.interpolate(...,
    align_corners=False)``) to the model input size, Gaussian blur with
    ``blur_sigma`` in model-input pixels (the papers' sigma=4 is defined at
    that scale), then a bilinear resize to the frame size the caller passed.
    """
    b = patch_scores.shape[0]
    maps = jax.image.resize(patch_scores, (b, *model_hw), method="bilinear", antialias=False)
    if blur_sigma > 0:
        maps = gaussian_blur(maps, blur_sigma)
    if tuple(out_hw) != tuple(model_hw):
        maps = jax.image.resize(maps, (b, *out_hw), method="bilinear", antialias=True)
    return maps.astype(jnp.float32)


def layers_for(value, config) -> tuple[str, ...]:
    """attrs converter (takes self): explicit taps validated, None -> the taps at ``config.LAYER_STRIDES``.

    Reads ``config.backbone``, so a config class that redefines ``layers`` must
    declare it after ``backbone``:
    ``layers = attrs.field(default=None, converter=attrs.Converter(layers_for, takes_self=True))``.
    """
    return resolve_layers(config.backbone, tuple_or_none(value), config.LAYER_STRIDES)


@attrs.frozen
class BackboneFeatureConfig:
    """The fields every feature-based detector config starts with: the backbone, its taps
    (None = the taps at the detector's ``LAYER_STRIDES``), where its weights come from and
    the model input size. Detector configs subclass it, set ``LAYER_STRIDES`` and add their
    own hyper-parameters after these. The backbone name and taps are validated at
    construction, so a bad config never reaches ``fit``.

    ``pretrained`` / ``weights_path`` / ``seed`` are read by the shell
    (:mod:`pyimgano.weights`), which hands the variables to the detector's ``fit``.

    ``image_size`` is the model input ``(h, w)``. With ``keep_aspect``
    :func:`pyimgano.fit` replaces it, before fitting, by the size with the training frames'
    aspect ratio and the shorter side ``min(image_size)`` (:func:`resolve_image_size`); with
    ``keep_aspect=False`` frames are resized to exactly ``image_size``."""

    LAYER_STRIDES: ClassVar[tuple[int, ...]] = (8, 16)
    #: The longer side of an aspect-kept input is rounded to a multiple of this.
    SIZE_MULTIPLE: ClassVar[int] = 16

    backbone: str = "efficientnet_lite0"
    layers: tuple[str, ...] = attrs.field(default=None, converter=attrs.Converter(layers_for, takes_self=True))
    pretrained: bool = True
    weights_path: str | None = None
    image_size: tuple[int, int] = attrs.field(default=(224, 224), converter=as_image_size)
    interpolation: str = "bilinear"
    keep_aspect: bool = False


def backbone_variable_specs(backbone: str, prefix: str = "backbone_variables") -> dict[str, tuple[tuple, str]]:
    """``{"<prefix>/params/...": (shape, "float32")}`` of every variable of ``backbone``
    (for a detector's ``state_shapes``; computed with ``jax.eval_shape``, no weights made)."""
    return {f"{prefix}/{path}": (shape, "float32") for path, shape in backbone_variable_shapes(backbone).items()}
