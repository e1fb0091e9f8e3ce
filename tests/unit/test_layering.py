"""The package layering of DESIGN.md, checked on the source: dependencies point down only.

- ``models_jax`` (the functional core) imports neither ``pyimgano`` nor ``weights_convert``;
- ``weights_convert`` imports ``models_jax`` (backbone shapes) and, of ``pyimgano``, only the
  neutral file helpers and the version;
- nothing outside ``pyimgano/models/`` imports the compatibility shell ``pyimgano.models``, except
  the seed guide's import-path alias ``pyimgano/inference/tiling.py`` (a shell module itself);
- no module reaches a private name (``_x``) of another package's modules.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGES = ("pyimgano", "models_jax", "weights_convert")


def _modules():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path, ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _imports(path):
    """(imported module, [names]) of every import statement in the file, function-level ones included."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module, [a.name for a in node.names]


def _top(module: str) -> str:
    return module.split(".")[0]


MODULES = list(_modules())


@pytest.mark.parametrize("path, name", MODULES, ids=[m for _, m in MODULES])
def test_dependencies_point_down(path, name):
    for module, names in _imports(path):
        if name.startswith("models_jax"):
            assert _top(module) not in ("pyimgano", "weights_convert"), f"{name} imports {module}"
        if name.startswith("weights_convert") and _top(module) == "pyimgano":
            assert module == "pyimgano.fileio" or (module == "pyimgano" and names == ["__version__"]), (
                f"{name} imports {module} {names}"
            )
        shell = module == "pyimgano.models" or module.startswith("pyimgano.models.")
        if shell and not name.startswith("pyimgano.models"):
            assert name == "pyimgano.inference.tiling", f"{name} imports the compatibility shell {module}"


@pytest.mark.parametrize("path, name", MODULES, ids=[m for _, m in MODULES])
def test_no_module_reaches_another_packages_private_names(path, name):
    package = name.rsplit(".", 1)[0] if not path.name == "__init__.py" else name
    for module, names in _imports(path):
        if _top(module) not in PACKAGES:
            continue
        private_module = any(part.startswith("_") and not part.startswith("__") for part in module.split("."))
        private_names = [n for n in names if n.startswith("_") and not n.startswith("__")]
        if private_module or private_names:
            owner = module if private_names and not private_module else module.rsplit(".", 1)[0]
            assert owner == package or owner.startswith(package + ".") or package.startswith(owner), (
                f"{name} reaches private {module} {private_names}"
            )
