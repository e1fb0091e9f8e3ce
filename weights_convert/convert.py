"""Checkpoint -> validated Flax variables (the backbone shapes come from :mod:`models_jax.backbones`)."""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

from models_jax.backbones import backbone_variable_shapes
from weights_convert.io import WEIGHTS_FORMAT, save_variables
from weights_convert.mapping import apply_mapping
from weights_convert.mappings import get_mapping
from weights_convert.reader import read_state_dict

__all__ = ["CONVERTER_VERSION", "convert_checkpoint", "file_sha256", "variable_shapes"]

# Bump when the mapping tables or the output layout change: cached conversions are keyed on it.
CONVERTER_VERSION = "1"


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
    variables = apply_mapping(state_dict, mapping, dict(variable_shapes(arch)))
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
def variable_shapes(arch: str) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """``(("params/...", shape), ...)`` of backbone ``arch`` (cached: tracing its init costs seconds)."""
    return tuple(backbone_variable_shapes(arch).items())
