"""Declarative key mapping from a PyTorch ``state_dict`` to Flax variables.

An architecture is described by an :class:`ArchMapping`: an ordered tuple of
:class:`Rule` s, each a regular expression that must *fully* match a torch key,
a target Flax path (``"collection/a/b/leaf"``, with ``\\1``-style back
references into the pattern) and a named layout transform.  Keys that match
an ``ignore`` pattern (``num_batches_tracked``, an unused classifier head) are
dropped.  :func:`apply_mapping` checks the result against the expected Flax
shapes and reports *every* problem at once: torch keys no rule matched, Flax
leaves nothing produced, and shape mismatches.
"""

from __future__ import annotations

import re
from typing import Callable, Mapping

import attrs
import numpy as np

from pyimgano.fileio import unflatten_tree

__all__ = [
    "ConversionError",
    "Rule",
    "ArchMapping",
    "TRANSFORMS",
    "apply_mapping",
]


class ConversionError(ValueError):
    """A checkpoint does not fit the target architecture; the message lists every key at fault."""


def _conv2d(w: np.ndarray) -> np.ndarray:
    # torch OIHW -> flax HWIO; depthwise weights (O, 1, H, W) become (H, W, 1, O), which is
    # exactly what flax.linen.Conv with feature_group_count=O expects.
    if w.ndim != 4:
        raise ValueError(f"conv2d transform expects a 4-D OIHW tensor, got shape {w.shape}")
    return np.transpose(w, (2, 3, 1, 0))


def _linear(w: np.ndarray) -> np.ndarray:
    # torch (out, in) -> flax Dense kernel (in, out)
    if w.ndim != 2:
        raise ValueError(f"linear transform expects a 2-D (out, in) tensor, got shape {w.shape}")
    return np.transpose(w)


def _identity(w: np.ndarray) -> np.ndarray:
    return w


TRANSFORMS: Mapping[str, Callable[[np.ndarray], np.ndarray]] = {
    "conv2d": _conv2d,
    "linear": _linear,
    "identity": _identity,
}


def _check_transform(_inst, _attr, value: str) -> None:
    if value not in TRANSFORMS:
        raise ValueError(f"unknown transform {value!r}; accepted: {sorted(TRANSFORMS)}")


@attrs.frozen
class Rule:
    """One mapping rule: torch key regex -> Flax path template -> layout transform."""

    pattern: str
    target: str
    transform: str = attrs.field(default="identity", validator=_check_transform)


@attrs.frozen
class ArchMapping:
    """The full torch -> Flax key table of one architecture."""

    arch: str
    rules: tuple[Rule, ...]
    ignore: tuple[str, ...] = ()


def apply_mapping(
    state_dict: Mapping[str, np.ndarray],
    mapping: ArchMapping,
    expected_shapes: Mapping[str, tuple[int, ...]],
) -> dict:
    """Map a torch ``state_dict`` onto nested Flax variables.

    Args:
      state_dict: torch key -> numpy array (torch layout).
      mapping: the architecture's rule table.
      expected_shapes: flat Flax path (``"params/..."``) -> shape, e.g. from
        ``jax.eval_shape`` of the module's ``init``.

    Returns:
      Nested ``{"params": ..., "batch_stats": ...}`` of float32 numpy arrays.

    Raises:
      ConversionError: listing all unmatched torch keys, missing Flax paths,
        duplicate targets and shape mismatches.
    """
    compiled = [(re.compile(rule.pattern), rule) for rule in mapping.rules]
    ignored = [re.compile(p) for p in mapping.ignore]
    produced: dict[str, np.ndarray] = {}
    sources: dict[str, str] = {}
    unmatched: list[str] = []
    duplicates: list[str] = []
    mismatched: list[str] = []
    for key in sorted(state_dict):
        if any(p.fullmatch(key) for p in ignored):
            continue
        for regex, rule in compiled:
            match = regex.fullmatch(key)
            if match is None:
                continue
            target = match.expand(rule.target)
            value = TRANSFORMS[rule.transform](np.asarray(state_dict[key]))
            if target in produced:
                duplicates.append(f"{key} -> {target} (also from {sources[target]})")
            produced[target] = np.array(value, dtype=np.float32, order="C")  # keeps 0-d leaves 0-d
            sources[target] = key
            break
        else:
            unmatched.append(key)
    for target, value in produced.items():
        want = expected_shapes.get(target)
        if want is not None and tuple(value.shape) != tuple(want):
            mismatched.append(
                f"{sources[target]} -> {target}: checkpoint {tuple(value.shape)} vs model {tuple(want)}"
            )
    unexpected = sorted(t for t in produced if t not in expected_shapes)
    missing = sorted(p for p in expected_shapes if p not in produced)
    problems = []
    if unmatched:
        problems.append(f"{len(unmatched)} torch key(s) matched no rule: {unmatched}")
    if unexpected:
        problems.append(
            f"{len(unexpected)} mapped path(s) not in the {mapping.arch} model: "
            f"{[f'{sources[t]} -> {t}' for t in unexpected]}"
        )
    if missing:
        problems.append(f"{len(missing)} {mapping.arch} model path(s) missing from the checkpoint: {missing}")
    if duplicates:
        problems.append(f"{len(duplicates)} duplicate target(s): {duplicates}")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatch(es): {mismatched}")
    if problems:
        raise ConversionError(f"checkpoint does not fit arch {mapping.arch!r}:\n  " + "\n  ".join(problems))
    return unflatten_tree(produced)
