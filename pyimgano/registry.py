"""The open table of detectors: name -> how to configure, fit, predict and save, plus capability tags.

Built-in and third-party detectors are registered the same way, with
:func:`register_detector` (a duplicate name or alias is refused; nothing is found
by scanning subclasses). A detector written outside the package registers
itself when its module is imported; :func:`pyimgano.plugins.load_plugins` imports
such modules by name, by file path, or through the ``pyimgano.detectors``
entry-point group of installed distributions::

    from pyimgano.plugins import load_plugins
    load_plugins(["examples/plugin_patch_knn.py"])       # or "my_pkg.my_detector"
    state = pyimgano.fit("example_patch_knn", frames, "rgb_u8_hwc")

The contract a detector meets (see ``docs/detectors.md``):

- ``config_cls``: a frozen, hashable ``attrs`` class (it is a static ``jit``
  argument) with defaults for every field, validated at construction;
- ``fit(config, batches, *, key, backbone_variables, progress=None) -> state``:
  ``batches`` are f32[B, H, W, 3] prepared images at ``config.image_size``
  (normalised for ``config.backbone``), consumed once;
- ``predict(state, images, out_hw) -> Prediction(scores f32[B], maps f32[B, *out_hw])``,
  traceable (it is called inside the library's ``jit``);
- ``state``: an ``attrs`` pytree with a static ``config`` field; by default its other
  fields are arrays or nested mappings of arrays, which is how :mod:`pyimgano.state`
  saves it. A state of another shape supplies ``encode_state`` / ``decode_state``
  (see :class:`pyimgano.state.StateCodec`).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping, Sequence

import attrs

from models_jax.detectors import (
    anomalydino,
    autoencoder,
    draem,
    padim,
    patchcore,
    reverse_distillation,
    score_ensemble,
    softpatch,
    spade,
    stfpm,
)

__all__ = [
    "DetectorSpec",
    "KNOWN_TAGS",
    "DETECTORS",
    "register_detector",
    "unregister_detector",
    "get_detector",
    "spec_for_config",
    "list_detectors",
    "detector_specs",
]

KNOWN_TAGS = frozenset(
    {"numpy", "pixel_map", "requires_training", "requires_checkpoint", "pretrained_backbone", "ensemble"}
)

def _check_name(_inst, attribute, value) -> None:
    if not isinstance(value, str) or not value or value != value.strip() or any(c.isspace() for c in value):
        raise ValueError(f"detector {attribute.name} must be a non-empty string without spaces, got {value!r}")


def _check_aliases(inst, attribute, value) -> None:
    for alias in value:
        _check_name(inst, attribute, alias)


def _check_config_cls(_inst, _attribute, value) -> None:
    if not (isinstance(value, type) and attrs.has(value)):
        raise TypeError(f"config_cls must be an attrs class, got {value!r}")
    if value.__hash__ is None:
        raise TypeError(
            f"config_cls {value.__name__} is not hashable; declare it with @attrs.frozen "
            "(configs are static jit arguments)"
        )


def _check_state_cls(_inst, _attribute, value) -> None:
    if value is None:
        return
    if not (isinstance(value, type) and attrs.has(value)):
        raise TypeError(f"state_cls must be an attrs class, got {value!r}")
    if "config" not in attrs.fields_dict(value):
        raise TypeError(f"state_cls {value.__name__} must have a static `config` field")


def _check_callable(_inst, attribute, value) -> None:
    if not callable(value):
        raise TypeError(f"{attribute.name} must be callable, got {value!r}")


def _check_optional_callable(inst, attribute, value) -> None:
    if value is not None:
        _check_callable(inst, attribute, value)


def _check_tags(inst, _attribute, value) -> None:
    unknown = sorted(set(value) - KNOWN_TAGS)
    if unknown:
        raise ValueError(f"detector {inst.name!r} has unknown tags {unknown}; known: {sorted(KNOWN_TAGS)}")


@attrs.frozen
class DetectorSpec:
    """How one detector is configured, fitted, run and saved.

    Attributes:
      name: the canonical registered name.
      config_cls: the frozen attrs config class.
      state_cls: the model state class (None: states can be used but not saved,
        unless ``decode_state`` rebuilds them).
      fit: ``(config, batches, *, key, backbone_variables, progress) -> state``; a
        detector tagged ``requires_training`` also takes ``checkpoints`` (a
        :class:`pyimgano.checkpoints.CheckpointDir` or None) to make training resumable.
      predict: ``(state, images f32[B,H,W,3], out_hw) -> Prediction``.
      tags: capability tags, a subset of :data:`KNOWN_TAGS`.
      description, paper: one line each, shown by ``--model-info``.
      aliases: further names resolving to this spec.
      encode_state: optional ``(model, codec) -> (tensors, config_json)`` for state files.
      decode_state: optional ``(config_json, tensors, codec) -> model``, its inverse.
      state_shapes: optional ``config -> {array path: (shape, dtype name)}`` of a fitted
        state's arrays, paths as in the state file (``memory_bank``,
        ``backbone_variables/params/...``), a dimension given as a string being free but
        equal wherever the same string appears. :func:`pyimgano.load_state` checks a
        loaded state against it (:mod:`pyimgano.state_integrity`); without it, loading
        checks finiteness and a ``jax.eval_shape`` trace of ``predict``.
      bank_field: optional name of a memory-bank field ``f32[M, D]`` of the model whose rows
        may be sharded over the devices (:func:`pyimgano.devices.place_model`).
      predict_bank_sharded: with ``bank_field``, ``(model, images, out_hw, axis) -> Prediction``
        run inside ``shard_map`` on one device, which holds only its rows of the bank.
    """

    name: str = attrs.field(validator=_check_name)
    config_cls: type = attrs.field(validator=_check_config_cls)
    state_cls: type | None = attrs.field(validator=_check_state_cls)
    fit: Callable[..., Any] = attrs.field(validator=_check_callable)
    predict: Callable[..., Any] = attrs.field(validator=_check_callable)
    tags: frozenset[str] = attrs.field(converter=frozenset, validator=_check_tags)
    description: str = ""
    paper: str = ""
    aliases: tuple[str, ...] = attrs.field(default=(), converter=tuple, validator=_check_aliases)
    encode_state: Callable[..., Any] | None = attrs.field(default=None, validator=_check_optional_callable)
    decode_state: Callable[..., Any] | None = attrs.field(default=None, validator=_check_optional_callable)
    state_shapes: Callable[[Any], Any] | None = attrs.field(default=None, validator=_check_optional_callable)
    bank_field: str | None = None
    predict_bank_sharded: Callable[..., Any] | None = attrs.field(default=None, validator=_check_optional_callable)


_TABLE: dict[str, DetectorSpec] = {}

#: Read-only view of the table: every name and alias -> its spec.
DETECTORS: Mapping[str, DetectorSpec] = MappingProxyType(_TABLE)


def register_detector(
    name: str,
    config_cls: type,
    fit: Callable[..., Any],
    predict: Callable[..., Any],
    *,
    tags: Iterable[str] = (),
    state_cls: type | None = None,
    description: str = "",
    paper: str = "",
    aliases: Sequence[str] = (),
    encode_state: Callable[..., Any] | None = None,
    decode_state: Callable[..., Any] | None = None,
    state_shapes: Callable[[Any], Any] | None = None,
    bank_field: str | None = None,
    predict_bank_sharded: Callable[..., Any] | None = None,
) -> DetectorSpec:
    """Add a detector to the table and return its :class:`DetectorSpec`.

    The arguments are the spec's attributes (see :class:`DetectorSpec` and the module
    docstring for the contract). Registration is all or nothing: on any error the
    table is unchanged.

    Raises:
      ValueError: the name or an alias is already registered, a name is empty or has
        spaces, or a tag is unknown (the message lists the known tags).
      TypeError: ``config_cls`` is not a frozen (hashable) attrs class, ``state_cls``
        is not an attrs class with a ``config`` field, or a function is not callable.
    """
    spec = DetectorSpec(
        name=name,
        config_cls=config_cls,
        state_cls=state_cls,
        fit=fit,
        predict=predict,
        tags=tags,
        description=description,
        paper=paper,
        aliases=aliases,
        encode_state=encode_state,
        decode_state=decode_state,
        state_shapes=state_shapes,
        bank_field=bank_field,
        predict_bank_sharded=predict_bank_sharded,
    )
    names = (spec.name, *spec.aliases)
    repeated = sorted({n for n in names if names.count(n) > 1})
    taken = [n for n in names if n in _TABLE]
    if repeated or taken:
        owners = {n: _TABLE[n].name for n in taken}
        raise ValueError(
            f"detector name(s) {sorted(set(taken) | set(repeated))} already registered"
            + (f" (by {owners})" if owners else "")
            + "; pick another name or unregister_detector() the old one first"
        )
    for n in names:
        _TABLE[n] = spec
    return spec


def unregister_detector(name: str) -> DetectorSpec:
    """Remove the detector registered under ``name`` (or an alias), with all its names; returns its spec.

    Meant for interactive work and tests that re-register a changed detector.

    Raises:
      ValueError: ``name`` is not registered.
    """
    spec = get_detector(name)
    for n in (spec.name, *spec.aliases):
        del _TABLE[n]
    return spec


def get_detector(name: str) -> DetectorSpec:
    """The spec registered under ``name`` (or an alias); ``ValueError`` lists accepted names."""
    try:
        return _TABLE[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown detector {name!r}; accepted: {sorted(_TABLE)}") from None


def spec_for_config(config) -> DetectorSpec:
    """The spec whose ``config_cls`` is ``type(config)`` (else the first whose class ``config`` is an instance of).

    Raises:
      TypeError: no registered detector uses that config class (the message lists the names).
    """
    specs = detector_specs()
    for spec in specs:
        if type(config) is spec.config_cls:
            return spec
    for spec in specs:
        if isinstance(config, spec.config_cls):
            return spec
    raise TypeError(
        f"expected a detector name or config object, got {type(config).__name__}; "
        f"names: {sorted(s.name for s in detector_specs())}"
    )


def list_detectors(tags: Iterable[str] | None = None) -> list[str]:
    """Canonical detector names having every tag in ``tags`` (sorted)."""
    wanted = set(tags or ())
    unknown = sorted(wanted - KNOWN_TAGS)
    if unknown:
        raise ValueError(f"unknown tags {unknown}; accepted: {sorted(KNOWN_TAGS)}")
    names = {spec.name for spec in _TABLE.values() if wanted <= spec.tags}
    return sorted(names)


def detector_specs() -> list[DetectorSpec]:
    """Every registered spec once (aliases folded), in registration order."""
    return list({id(spec): spec for spec in _TABLE.values()}.values())


# -- the built-in detectors --------------------------------------------------------------------

register_detector(
    "vision_patchcore",
    patchcore.PatchCoreConfig,
    patchcore.fit,
    patchcore.predict,
    state_cls=patchcore.PatchCoreState,
    state_shapes=patchcore.state_shapes,
    bank_field="memory_bank",
    predict_bank_sharded=patchcore.predict_bank_sharded,
    tags={"numpy", "pixel_map", "pretrained_backbone"},
    description="PatchCore: coreset memory bank of locally aware patch features, nearest-neighbour scores",
    paper="Roth et al., Towards Total Recall in Industrial Anomaly Detection, CVPR 2022",
)
register_detector(
    "vision_padim",
    padim.PaDiMConfig,
    padim.fit,
    padim.predict,
    state_cls=padim.PaDiMState,
    state_shapes=padim.state_shapes,
    tags={"numpy", "pixel_map", "pretrained_backbone"},
    description="PaDiM: per-position Gaussian of backbone features, Mahalanobis distance",
    paper="Defard et al., PaDiM: a Patch Distribution Modeling Framework, ICPR 2021",
)
register_detector(
    "vision_spade",
    spade.SPADEConfig,
    spade.fit,
    spade.predict,
    state_cls=spade.SPADEState,
    tags={"numpy", "pixel_map", "pretrained_backbone"},
    description="SPADE: kNN normal images by pooled features, then pixel kNN against their feature pyramids",
    paper="Cohen & Hoshen, Sub-Image Anomaly Detection with Deep Pyramid Correspondences, arXiv 2005.02357, 2020",
)
register_detector(
    "vision_softpatch",
    softpatch.SoftPatchConfig,
    softpatch.fit,
    softpatch.predict,
    state_cls=softpatch.SoftPatchState,
    tags={"numpy", "pixel_map", "pretrained_backbone"},
    description="SoftPatch: PatchCore with patch-level LOF denoising of a contaminated training set, soft re-weighting",
    paper="Jiang et al., SoftPatch: Unsupervised Anomaly Detection with Noisy Data, NeurIPS 2022",
)
register_detector(
    "vision_anomalydino",
    anomalydino.AnomalyDINOConfig,
    anomalydino.fit,
    anomalydino.predict,
    state_cls=anomalydino.AnomalyDINOState,
    tags={"numpy", "pixel_map", "pretrained_backbone", "requires_checkpoint"},
    description="AnomalyDINO: DINOv2 patch kNN (cosine) against a few-shot normal bank, mean of the top 1 % patches",
    paper="Damm et al., AnomalyDINO: Boosting Patch-based Few-shot Anomaly Detection with DINOv2, WACV 2025",
)
register_detector(
    "vision_score_ensemble",
    score_ensemble.ScoreEnsembleConfig,
    score_ensemble.fit,
    score_ensemble.predict,
    state_cls=score_ensemble.ScoreEnsembleState,
    tags={"numpy", "pixel_map", "ensemble"},
    description="Score ensemble of fitted detectors, standardised by each member's stored calibration statistics",
    paper="(this library) batch-independent score ensemble; build with pyimgano.make_score_ensemble",
    encode_state=score_ensemble.encode_state,
    decode_state=score_ensemble.decode_state,
)
register_detector(
    "vision_stfpm",
    stfpm.STFPMConfig,
    stfpm.fit,
    stfpm.predict,
    state_cls=stfpm.STFPMState,
    state_shapes=stfpm.state_shapes,
    tags={"numpy", "pixel_map", "pretrained_backbone", "requires_training"},
    description="STFPM: a student trained to match a frozen teacher's normalised feature pyramid",
    paper="Wang et al., Student-Teacher Feature Pyramid Matching for Anomaly Detection, BMVC 2021",
)
register_detector(
    "vision_reverse_distillation",
    reverse_distillation.ReverseDistillationConfig,
    reverse_distillation.fit,
    reverse_distillation.predict,
    state_cls=reverse_distillation.ReverseDistillationState,
    state_shapes=reverse_distillation.state_shapes,
    tags={"numpy", "pixel_map", "pretrained_backbone", "requires_training"},
    description="Reverse Distillation: a decoder trained to reconstruct a frozen encoder from a one-class bottleneck",
    paper="Deng & Li, Anomaly Detection via Reverse Distillation from One-Class Embedding, CVPR 2022",
    aliases=("vision_reverse_dist",),
)
register_detector(
    "vision_draem",
    draem.DraemConfig,
    draem.fit,
    draem.predict,
    state_cls=draem.DraemState,
    state_shapes=draem.state_shapes,
    tags={"numpy", "pixel_map", "requires_training"},
    description="DRAEM: reconstructive + discriminative networks trained on simulated (Perlin-noise) anomalies",
    paper="Zavrtanik et al., DRAEM: a discriminatively trained reconstruction embedding, ICCV 2021",
)
register_detector(
    "vision_ae",
    autoencoder.AutoencoderConfig,
    autoencoder.fit,
    autoencoder.predict,
    state_cls=autoencoder.AutoencoderState,
    state_shapes=autoencoder.state_shapes,
    tags={"numpy", "pixel_map", "requires_training"},
    description="Convolutional autoencoder with a reconstruction-error map (the micro-finetune model)",
    paper="Bergmann et al., MVTec AD (autoencoder baseline), CVPR 2019",
)
