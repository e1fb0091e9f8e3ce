"""The explicit table of detectors: name -> how to configure, fit and predict, plus capability tags.

Registration is a literal table (no subclass scanning); a duplicate name or
alias is refused when the table is built.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import attrs

from models_jax.detectors import padim, patchcore

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
    fit: Callable[..., Any]  # (config, batches, *, key, backbone_variables, progress) -> state
    predict: Callable[..., Any]  # (state, images f32[B,H,W,3], out_hw) -> Prediction
    tags: frozenset[str]
    description: str
    paper: str
    aliases: tuple[str, ...] = ()
    # A memory bank whose rows may be sharded over the devices (pyimgano.devices.place_model) and the
    # predict that runs on one device of such a mesh: (state, images, out_hw, axis) -> Prediction.
    bank_field: str | None = None
    predict_bank_sharded: Callable[..., Any] | None = None

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
            bank_field="memory_bank",
            predict_bank_sharded=patchcore.predict_bank_sharded,
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
