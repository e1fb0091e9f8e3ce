"""The built-in recipes (``pyimgano-train --list-recipes``), each a composition of library steps.

``industrial-adapt`` is the whole loop for one category::

    split = load_category(config, category)                        # load split (+ limits)
    fitted = fit_and_calibrate(config, split, ...)                 # fit, tiling/postprocess, calibrate on the hold-out
    checkpoint = context.save_state(config, category, fitted.state)  # checkpoints/<cat>/...
    scored = score_split(fitted.state, split, config, ...)         # predict (+ postprocess), maps saved
    metrics = evaluate(scored)                                     # image + pixel metrics

The variants only change config defaults (:data:`BUILTIN_RECIPES`), so ``--dry-run`` shows
what they set. ``micro-finetune-autoencoder`` runs the same loop with a trained detector;
``anomalib-train`` is a placeholder that says what to use instead.
"""

from __future__ import annotations

from pyimgano.defects import DefectsConfig, get_defects_preset
from pyimgano.registry import list_detectors
from pyimgano.workbench.config import WorkbenchConfig
from pyimgano.workbench.context import RunContext
from pyimgano.workbench.evaluation import evaluate
from pyimgano.workbench.schema import ConfigError
from pyimgano.workbench.steps import CategoryResult, fit_and_calibrate, load_category, score_split

__all__ = [
    "industrial_adapt",
    "micro_finetune_autoencoder",
    "anomalib_train",
    "autoencoder_missing",
    "anomalib_missing",
    "FP40_PRESET",
    "AUTOENCODER",
    "BUILTIN_RECIPES",
]

FP40_PRESET = "industrial-defects-fp40"
AUTOENCODER = "vision_ae"


def industrial_adapt(config: WorkbenchConfig, category: str, context: RunContext) -> CategoryResult:
    """Load -> fit -> calibrate on the hold-out -> save the state -> score -> evaluate, for one category."""
    split = load_category(config, category)
    fitted = fit_and_calibrate(config, split, checkpoint_dir=context.training_dir(category), progress=context.progress)
    checkpoint = context.save_state(config, category, fitted.state)
    scored = score_split(fitted.state, split, config, maps_dir=context.maps_dir(config, category),
                         progress=context.progress)
    return CategoryResult(category=category, state=fitted.state, scored=scored, metrics=evaluate(scored),
                          fitted=fitted, checkpoint=checkpoint)


def autoencoder_missing() -> str | None:
    """None when the ``vision_ae`` detector is registered, else what is missing."""
    if AUTOENCODER in list_detectors():
        return None
    return (f"it trains the {AUTOENCODER} detector (a small autoencoder trained with optax), "
            f"which is not registered (registered: {list_detectors()}; it was unregistered?); "
            "use recipe 'industrial-adapt' (PatchCore / PaDiM, no training), "
            f"or register a {AUTOENCODER} detector with a plugin (pyimgano-train --plugin MODULE)")


def micro_finetune_autoencoder(config: WorkbenchConfig, category: str, context: RunContext) -> CategoryResult:
    """``industrial-adapt`` with a trained detector: training settings go to its config and its
    resumable training checkpoint lives in ``checkpoints/<cat>/training``.

    Raises:
        ConfigError: the detector is missing or does not train.
    """
    reason = autoencoder_missing() if config.model.name == AUTOENCODER else None
    if reason:
        raise ConfigError(f"recipe 'micro-finetune-autoencoder' cannot run: {reason}")
    return industrial_adapt(config, category, context)


def anomalib_missing() -> str:
    return ("pyimgano does not bundle anomalib training (it needs PyTorch and anomalib's own trainer); "
            "train in anomalib itself, or use recipe 'industrial-adapt' (PatchCore / PaDiM on a pretrained "
            "backbone, no training) or 'micro-finetune-autoencoder' (a small autoencoder trained with optax)")


def anomalib_train(config: WorkbenchConfig, category: str, context: RunContext) -> CategoryResult:
    """A placeholder: always raises :class:`ConfigError` naming the alternatives."""
    raise ConfigError(f"recipe 'anomalib-train' is not available: {anomalib_missing()}")


def _fp40_defects() -> dict:
    """The fields the FP40 preset changes from the DefectsConfig defaults."""
    preset = get_defects_preset(FP40_PRESET).to_mapping()
    defaults = DefectsConfig().to_mapping()
    return {k: v for k, v in preset.items() if v != defaults[k]}


_HIGHRES_TILING = {"tile_size": 512, "stride": 384, "score_reduce": "topk_mean", "score_topk": 0.1, "map_reduce": "hann"}
_HIGHRES_POSTPROCESS = {"normalize": "percentile", "percentile_range": [1.0, 99.0], "gaussian_sigma": 1.0}

#: Keyword arguments of :func:`pyimgano.workbench.register_recipe` for each built-in.
BUILTIN_RECIPES = (
    dict(
        name="industrial-adapt",
        fn=industrial_adapt,
        description="fit on normal images, calibrate on a seeded hold-out, score the test split, evaluate",
        details=(
            "load the split (dataset.*, limits, resize)",
            "fit the detector on the fit part of train (model.*, preset, backbone)",
            "apply adaptation.tiling / adaptation.postprocess to the state",
            "calibrate the image threshold (quantile 1 - contamination, else 0.995) on the held-out normal images",
            "score the test images (maps when masks exist or adaptation.save_maps)",
            "evaluate: image AUROC, AP, precision/recall/F1 + confusion at the threshold, pixel AUROC, AUPRO@0.3",
            "write the state, reports, per-image records, plots and report.html",
        ),
    ),
    dict(
        name="industrial-adapt-highres",
        fn=industrial_adapt,
        description="industrial-adapt with tiled inference for 2K/4K images (512 tiles, 384 stride, hann blending)",
        defaults={"adaptation": {"tiling": _HIGHRES_TILING, "postprocess": _HIGHRES_POSTPROCESS, "save_maps": True}},
        details=(
            "defaults when the config gives no adaptation.tiling: tile 512, stride 384, score topk_mean 0.1, map hann",
            "default adaptation.postprocess: percentile 1-99 normalisation + gaussian sigma 1.0",
            "adaptation.save_maps defaults to true (maps can be audited)",
        ),
    ),
    dict(
        name="industrial-adapt-fp40",
        fn=industrial_adapt,
        description="industrial-adapt with defects enabled and the FP40 false-positive reduction preset",
        defaults={"defects": _fp40_defects(), "adaptation": {"save_maps": True, "postprocess": {"normalize": "normal_stats"}}},
        forced={"defects": {"enabled": True}},
        details=(
            f"defects.enabled is forced to true; defects defaults from the {FP40_PRESET} preset "
            "(ROI, border ignore, median smoothing, hysteresis, shape filters, merge, min area, max regions)",
            "default adaptation.postprocess: normal_stats normalisation (maps of normal parts in about [0, 1])",
            "the pixel threshold is calibrated on the hold-out (normal_map_max_quantile 0.999) unless fixed",
            "adaptation.save_maps defaults to true; export with --export-infer-config, then pyimgano-infer --defects",
        ),
    ),
    dict(
        name="micro-finetune-autoencoder",
        fn=micro_finetune_autoencoder,
        description="train a small autoencoder (vision_ae, optax) for a few epochs, then evaluate as industrial-adapt",
        defaults={"model": {"name": AUTOENCODER}, "training": {"epochs": 5, "lr": 0.001}},
        forced={"training": {"enabled": True}},
        details=(
            "training.enabled is forced to true; training.epochs / lr / batch_size go to the detector config",
            "the resumable training checkpoint lives in checkpoints/<cat>/training, the state in "
            "checkpoints/<cat>/<training.checkpoint_name>",
        ),
        requires=autoencoder_missing,
    ),
    dict(
        name="anomalib-train",
        fn=anomalib_train,
        description="placeholder for anomalib training: not available (names the alternatives)",
        requires=anomalib_missing,
    ),
)
