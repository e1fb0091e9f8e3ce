"""Torch-free conversion of PyTorch checkpoints into pyimgano's Flax backbones.

- :func:`read_state_dict` parses ``torch.save`` files (zip and legacy) with an
  allow-list unpickler: any global outside the tensor-rebuilding names raises
  :class:`UnsafeCheckpointError` and is never executed.
- :func:`convert_checkpoint` maps a ``state_dict`` onto a backbone's Flax
  variables (:func:`get_mapping`), validates every key and shape
  (:class:`ConversionError` lists all problems) and optionally writes a
  safetensors file (:func:`save_variables` / :func:`load_variables`).

Loading weights for a detector (the packaged EfficientNet-Lite0 weights, their
cache, converted files) is the shell's job: :mod:`pyimgano.weights`. This
package imports :mod:`models_jax` (for the backbones' variable shapes), never
the reverse.

See ``docs/weights.md``.
"""

from weights_convert.convert import convert_checkpoint
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
    "get_mapping",
]
