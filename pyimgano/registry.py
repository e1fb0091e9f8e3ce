"""The explicit table of detectors: name -> how to configure, fit and predict, plus capability tags.

Registration is a literal table (no subclass scanning); a duplicate name or
alias is refused when the table is built.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import attrs

from models_jax.detectors import autoencoder, draem, padim, patchcore, reverse_distillation, stfpm

__all__ = ["DetectorSpec", "KNOWN_TAGS", "DETECTORS", "get_detector", "list_detectors", "detector_specs"]

KNOWN_TAGS = frozenset(
    {"numpy", "pixel_map", "requires_training", "requires_checkpoint", "pretrained_backbone", "ensemble"}
)


@attrs.frozen
class DetectorSpec:
    """How one detector is configured, fitted and run."""

    name: str
    config_cls: type
    state_cls: type
    fit: Callable[..., Any]  # (config, batches, *, key, backbone_variables, progress[, checkpoints]) -> state
    predict: Callable[..., Any]  # (state, images f32[B,H,W,3], out_hw) -> Prediction
    tags: frozenset[str]
    description: str
    paper: str
    aliases: tuple[str, ...] = ()

    def __attrs_post_init__(self) -> None:
        unknown = sorted(set(self.tags) - KNOWN_TAGS)
        if unknown:
            raise ValueError(f"detector {self.name!r} has unknown tags {unknown}; known: {sorted(KNOWN_TAGS)}")


def _build_table(specs: Iterable[DetectorSpec]) -> dict[str, DetectorSpec]:
    table: dict[str, DetectorSpec] = {}
    for spec in specs:
        for name in (spec.name, *spec.aliases):
            if name in table:
                raise ValueError(f"detector name {name!r} registered twice")
            table[name] = spec
    return table


DETECTORS: dict[str, DetectorSpec] = _build_table(
    [
        DetectorSpec(
            name="vision_patchcore",
            config_cls=patchcore.PatchCoreConfig,
            state_cls=patchcore.PatchCoreState,
            fit=patchcore.fit,
            predict=patchcore.predict,
            tags=frozenset({"numpy", "pixel_map", "pretrained_backbone"}),
            description="PatchCore: coreset memory bank of locally aware patch features, nearest-neighbour scores",
            paper="Roth et al., Towards Total Recall in Industrial Anomaly Detection, CVPR 2022",
        ),
        DetectorSpec(
            name="vision_padim",
            config_cls=padim.PaDiMConfig,
            state_cls=padim.PaDiMState,
            fit=padim.fit,
            predict=padim.predict,
            tags=frozenset({"numpy", "pixel_map", "pretrained_backbone"}),
            description="PaDiM: per-position Gaussian of backbone features, Mahalanobis distance",
            paper="Defard et al., PaDiM: a Patch Distribution Modeling Framework, ICPR 2021",
        ),
        DetectorSpec(
            name="vision_stfpm",
            config_cls=stfpm.STFPMConfig,
            state_cls=stfpm.STFPMState,
            fit=stfpm.fit,
            predict=stfpm.predict,
            tags=frozenset({"numpy", "pixel_map", "pretrained_backbone", "requires_training"}),
            description="STFPM: a student trained to match a frozen teacher's normalised feature pyramid",
            paper="Wang et al., Student-Teacher Feature Pyramid Matching for Anomaly Detection, BMVC 2021",
        ),
        DetectorSpec(
            name="vision_reverse_distillation",
            config_cls=reverse_distillation.ReverseDistillationConfig,
            state_cls=reverse_distillation.ReverseDistillationState,
            fit=reverse_distillation.fit,
            predict=reverse_distillation.predict,
            tags=frozenset({"numpy", "pixel_map", "pretrained_backbone", "requires_training"}),
            description="Reverse Distillation: a decoder trained to reconstruct a frozen encoder from a one-class bottleneck",
            paper="Deng & Li, Anomaly Detection via Reverse Distillation from One-Class Embedding, CVPR 2022",
            aliases=("vision_reverse_dist",),
        ),
        DetectorSpec(
            name="vision_draem",
            config_cls=draem.DraemConfig,
            state_cls=draem.DraemState,
            fit=draem.fit,
            predict=draem.predict,
            tags=frozenset({"numpy", "pixel_map", "requires_training"}),
            description="DRAEM: reconstructive + discriminative networks trained on simulated (Perlin-noise) anomalies",
            paper="Zavrtanik et al., DRAEM: a discriminatively trained reconstruction embedding, ICCV 2021",
        ),
        DetectorSpec(
            name="vision_ae",
            config_cls=autoencoder.AutoencoderConfig,
            state_cls=autoencoder.AutoencoderState,
            fit=autoencoder.fit,
            predict=autoencoder.predict,
            tags=frozenset({"numpy", "pixel_map", "requires_training"}),
            description="Convolutional autoencoder with a reconstruction-error map (the micro-finetune model)",
            paper="Bergmann et al., MVTec AD (autoencoder baseline), CVPR 2019",
        ),
    ]
)


def get_detector(name: str) -> DetectorSpec:
    """The spec registered under ``name`` (or an alias); ``ValueError`` lists accepted names."""
    try:
        return DETECTORS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown detector {name!r}; accepted: {sorted(DETECTORS)}") from None


def list_detectors(tags: Iterable[str] | None = None) -> list[str]:
    """Canonical detector names having every tag in ``tags`` (sorted)."""
    wanted = set(tags or ())
    unknown = sorted(wanted - KNOWN_TAGS)
    if unknown:
        raise ValueError(f"unknown tags {unknown}; accepted: {sorted(KNOWN_TAGS)}")
    names = {spec.name for spec in DETECTORS.values() if wanted <= spec.tags}
    return sorted(names)


def detector_specs() -> list[DetectorSpec]:
    """Every registered spec once (aliases folded), in registration order."""
    return list({id(spec): spec for spec in DETECTORS.values()}.values())
