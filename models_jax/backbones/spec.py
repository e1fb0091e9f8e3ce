"""The static description every backbone shares, and tap selection.

A backbone is a Flax module whose ``__call__(x, taps=...)`` returns a dict of
the requested named feature maps.  ``taps`` is a Python tuple, so it is static
under ``jit``: the forward pass is cut after the deepest requested tap and the
unrequested ones are never computed.
"""

from __future__ import annotations

from typing import Sequence

import attrs

__all__ = ["BackboneSpec", "TapCollector", "resolve_taps", "check_image_batch"]


def _tuple_of_str(_inst, attribute, value) -> None:
    if not isinstance(value, tuple) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"{attribute.name} must be a tuple of str, got {value!r}")


@attrs.frozen
class BackboneSpec:
    """What a detector needs to know about a backbone before building it.

    Attributes:
      name: registered name (``"resnet18"``).
      normalization: input normalisation name understood by
        ``pyimgano.inputs.prepare_backbone_input``: ``"imagenet"`` (mean/std of
        ImageNet on [0, 1] RGB) or ``"efficientnet_lite"`` (``(x*255 - 127)/128``).
      taps: every tap name, in forward order.
      tap_channels: ``(tap, channels)`` for every tap.
      tap_strides: ``(tap, stride)`` for every *grid* tap (returned as
        ``f32[B, h, w, C]``); taps absent here (``logits``, ``cls_token``) are
        returned as ``f32[B, C]``.  For a ViT the stride is the patch size.
      default_input_size: the square input side the backbone was trained at.
      has_pretrained: whether ImageNet weights ship with an installed package
        (offline), so ``pretrained=True`` works without a ``weights_path``.
    """

    name: str
    normalization: str = attrs.field(validator=attrs.validators.in_(("imagenet", "efficientnet_lite")))
    taps: tuple[str, ...] = attrs.field(validator=_tuple_of_str)
    tap_channels: tuple[tuple[str, int], ...]
    tap_strides: tuple[tuple[str, int], ...]
    default_input_size: int
    has_pretrained: bool

    def __attrs_post_init__(self) -> None:
        channel_taps = tuple(t for t, _ in self.tap_channels)
        if channel_taps != self.taps:
            raise ValueError(f"{self.name}: tap_channels {channel_taps} must list the taps {self.taps} in order")
        stray = [t for t, _ in self.tap_strides if t not in self.taps]
        if stray:
            raise ValueError(f"{self.name}: tap_strides names unknown taps {stray}; taps: {self.taps}")

    @property
    def grid_taps(self) -> tuple[str, ...]:
        """Taps returned as ``f32[B, h, w, C]``, in forward order."""
        strided = dict(self.tap_strides)
        return tuple(t for t in self.taps if t in strided)

    def channels(self, tap: str) -> int:
        """Channel count of ``tap``; ``ValueError`` naming the taps for an unknown one."""
        table = dict(self.tap_channels)
        if tap not in table:
            raise ValueError(f"backbone {self.name!r} has no tap {tap!r}; accepted: {list(self.taps)}")
        return table[tap]

    def stride(self, tap: str) -> int:
        """Spatial stride of grid tap ``tap`` relative to the input.

        Raises:
          ValueError: ``tap`` is unknown, or is not a grid tap (``logits``).
        """
        table = dict(self.tap_strides)
        if tap not in table:
            raise ValueError(
                f"backbone {self.name!r} has no grid tap {tap!r}; grid taps: {list(self.grid_taps)}"
            )
        return table[tap]


def resolve_taps(requested: Sequence[str] | str | None, available: tuple[str, ...], arch: str) -> tuple[str, ...]:
    """Validate a tap request; ``None`` means every tap.

    Returns the requested names (duplicates removed, request order kept).

    Raises:
      ValueError: empty request, or a name not in ``available`` (the message lists them).
      TypeError: ``requested`` is not a str or a sequence of str.
    """
    if requested is None:
        return available
    if isinstance(requested, str):
        requested = (requested,)
    try:
        wanted = tuple(dict.fromkeys(requested))
    except TypeError as err:
        raise TypeError(f"taps must be a tuple of tap names, got {requested!r}") from err
    if not wanted:
        raise ValueError(f"{arch}: at least one tap must be requested; accepted: {list(available)}")
    unknown = [t for t in wanted if t not in available]
    if unknown:
        raise ValueError(f"{arch}: unknown tap(s) {unknown}; accepted: {list(available)}")
    return wanted


def check_image_batch(x, arch: str) -> None:
    """Refuse anything but a float NHWC batch with 3 channels (at trace time)."""
    shape = getattr(x, "shape", None)
    if shape is None or len(shape) != 4 or shape[-1] != 3:
        raise ValueError(f"{arch} expects images f32[B, H, W, 3] (NHWC), got shape {shape}")


class TapCollector:
    """Collects requested taps during a forward pass and says when to stop.

    ``add(name, value)`` returns True once every requested tap is in hand, so
    a module can ``return collector.features`` right there and never trace the
    deeper layers.
    """

    def __init__(self, wanted: tuple[str, ...]):
        self._wanted = wanted
        self.features: dict = {}

    def add(self, name: str, value) -> bool:
        if name in self._wanted:
            self.features[name] = value
        return len(self.features) == len(self._wanted)
