"""Torch-free conversion of PyTorch checkpoints into pyimgano's Flax backbones.

- :func:`read_state_dict` parses ``torch.save`` files (zip and legacy) with an
  allow-list unpickler: any global outside the tensor-rebuilding names raises
  :class:`UnsafeCheckpointError` and is never executed.
- :func:`convert_checkpoint` maps a ``state_dict`` onto a backbone's Flax
  variables (:func:`get_mapping`), validates every key and shape
  (:class:`ConversionError` lists all problems) and optionally writes a
  safetensors file (:func:`save_variables` / :func:`load_variables`).
- :func:`pretrained_variables` converts the packaged EfficientNet-Lite0
  weights once into :func:`cache_dir` and reads them from there afterwards.

See ``docs/weights.md``.
"""

from weights_convert.convert import cache_dir, convert_checkpoint, pretrained_variables
from weights_convert.io import load_variables, save_variables
from weights_convert.mapping import ConversionError
from weights_convert.mappings import get_mapping
from weights_convert.reader import CheckpointFormatError, UnsafeCheckpointError, read_state_dict

__all__ = [
    "read_state_dict",
    "UnsafeCheckpointError",
    "CheckpointFormatError",
    "ConversionError",
    "convert_checkpoint",
    "save_variables",
    "load_variables",
    "pretrained_variables",
    "cache_dir",
    "get_mapping",
]
