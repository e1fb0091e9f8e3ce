"""The workbench layer: recipes over datasets, run directories, reports, and ``infer_config.json``.

    from pyimgano import workbench as wb

    config = wb.build_config(wb.read_config_file("cfg.json"))     # recipe defaults applied, checked
    outcome = wb.run_workbench(config, export_infer_config=True)  # pyimgano-train
    wb.register_recipe("my-recipe", fn, description="...")        # a new recipe (examples/custom_recipe.py)

Recipes are compositions of the step functions (:func:`load_category`,
:func:`fit_and_calibrate`, :func:`score_split`, :func:`evaluate`); the runner writes the run
folder (:mod:`pyimgano.workbench.run_dir`). :func:`save_run` / :func:`load_infer_config` /
:func:`find_run_infer_config` are the deployable side (``pyimgano-infer --from-run``).
See docs/workbench.md.

Names other than the infer-config ones load lazily, so ``pyimgano-infer`` does not import
the plotting and report modules.
"""

from __future__ import annotations

import importlib

from pyimgano.workbench.infer_config import (
    INFER_CONFIG_SCHEMA_VERSION,
    RUN_INFER_CONFIG_PATH,
    RUN_STATE_PATH,
    InferConfig,
    InferConfigError,
    find_run_infer_config,
    infer_config_payload,
    load_infer_config,
    multi_category_payload,
    save_run,
)

_LAZY = {
    "ConfigError": "pyimgano.workbench.schema",
    "WorkbenchConfig": "pyimgano.workbench.config",
    "parse_config": "pyimgano.workbench.config",
    "config_to_mapping": "pyimgano.workbench.config",
    "read_config_file": "pyimgano.workbench.config_io",
    "merge_mappings": "pyimgano.workbench.config_io",
    "make_detector_config": "pyimgano.workbench.detector",
    "RecipeSpec": "pyimgano.workbench.recipes",
    "RecipeUnavailableError": "pyimgano.workbench.recipes",
    "register_recipe": "pyimgano.workbench.recipes",
    "get_recipe": "pyimgano.workbench.recipes",
    "list_recipes": "pyimgano.workbench.recipes",
    "recipe_info": "pyimgano.workbench.recipes",
    "build_config": "pyimgano.workbench.recipes",
    "industrial_adapt": "pyimgano.workbench.builtin_recipes",
    "RunContext": "pyimgano.workbench.context",
    "CategoryResult": "pyimgano.workbench.steps",
    "load_category": "pyimgano.workbench.steps",
    "fit_and_calibrate": "pyimgano.workbench.steps",
    "score_split": "pyimgano.workbench.steps",
    "evaluate": "pyimgano.workbench.evaluation",
    "aggregate": "pyimgano.workbench.evaluation",
    "run_workbench": "pyimgano.workbench.runner",
    "RunOutcome": "pyimgano.workbench.runner",
    "benchmark_models": "pyimgano.workbench.benchmark",
    "SuiteDataset": "pyimgano.workbench.suite",
    "load_suite": "pyimgano.workbench.suite",
    "parse_dataset_spec": "pyimgano.workbench.suite",
    "benchmark_suite": "pyimgano.workbench.suite",
}

__all__ = [
    "InferConfig",
    "InferConfigError",
    "load_infer_config",
    "find_run_infer_config",
    "infer_config_payload",
    "multi_category_payload",
    "save_run",
    "RUN_STATE_PATH",
    "RUN_INFER_CONFIG_PATH",
    "INFER_CONFIG_SCHEMA_VERSION",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pyimgano.workbench' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
