"""Loading user modules that register detectors (``pyimgano-infer --plugin MODULE``).

A plugin is a module that calls the registry's registration function when
imported. It is named by a dotted module name (importable from ``sys.path``) or
by the path of a ``.py`` file. Importing a plugin runs its code: only name
modules you trust, as with any Python import.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Iterable

__all__ = ["load_plugins"]


def _load_file(path: Path) -> ModuleType:
    name = f"pyimgano_plugin_{path.stem}_{abs(hash(str(path.resolve()))) % 10**8}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"plugin {str(path)!r} is not a loadable Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def load_plugins(specs: Iterable[str]) -> list[ModuleType]:
    """Import each plugin (a dotted module name or a ``.py`` path) once; returns the modules.

    Raises:
      ValueError: a plugin that cannot be found or fails while importing (the message names it).
    """
    modules = []
    for spec in specs:
        spec = os.fspath(spec)
        try:
            if spec.endswith(".py") or os.sep in spec or (os.altsep and os.altsep in spec):
                path = Path(spec)
                if not path.is_file():
                    raise ValueError(f"plugin file {spec!r} does not exist")
                modules.append(_load_file(path))
            else:
                modules.append(importlib.import_module(spec))
        except ValueError:
            raise
        except Exception as exc:  # noqa: BLE001 - any import failure is the plugin's, named here
            raise ValueError(f"plugin {spec!r} failed to load: {type(exc).__name__}: {exc}") from exc
    return modules
