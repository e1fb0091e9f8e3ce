"""The workbench layer: run directories and the deployable ``infer_config.json``.

:func:`save_run` writes a calibrated state and its infer-config; :func:`load_infer_config`
and :func:`find_run_infer_config` read them back (``pyimgano-infer --from-run``).
"""

from pyimgano.workbench.infer_config import (
    INFER_CONFIG_SCHEMA_VERSION,
    RUN_INFER_CONFIG_PATH,
    RUN_STATE_PATH,
    InferConfig,
    InferConfigError,
    find_run_infer_config,
    infer_config_payload,
    load_infer_config,
    save_run,
)

__all__ = [
    "InferConfig",
    "InferConfigError",
    "load_infer_config",
    "find_run_infer_config",
    "infer_config_payload",
    "save_run",
    "RUN_STATE_PATH",
    "RUN_INFER_CONFIG_PATH",
    "INFER_CONFIG_SCHEMA_VERSION",
]
