"""Loading user modules that register detectors (``pyimgano-infer --plugin MODULE``).

A plugin is a module that calls :func:`pyimgano.registry.register_detector` when
imported. It is named by a dotted module name (importable from ``sys.path``), by
the path of a ``.py`` file, or installed as an entry point of the group
``pyimgano.detectors``::

    # pyproject.toml of a plugin distribution
    [project.entry-points."pyimgano.detectors"]
    my_detector = "my_pkg.detectors"

Importing a plugin runs its code: only name modules you trust, as with any
Python import.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Iterable

from pyimgano.registry import DETECTORS

__all__ = ["ENTRY_POINT_GROUP", "PluginError", "load_plugins"]

#: Entry-point group scanned by :func:`load_plugins`.
ENTRY_POINT_GROUP = "pyimgano.detectors"


class PluginError(ValueError):
    """A plugin could not be found, imported or registered (the message names it)."""


def _is_file_spec(spec: str) -> bool:
    return spec.endswith(".py") or os.sep in spec or (os.altsep is not None and os.altsep in spec)


def _import_file(spec: str) -> None:
    path = Path(spec).expanduser().resolve()
    if not path.is_file():
        raise PluginError(f"plugin file {spec!r} does not exist")
    # One module per file (named after its resolved path), so loading a file again is a no-op.
    digest = hashlib.sha256(str(path).encode("utf-8", "surrogateescape")).hexdigest()[:12]
    module_name = f"pyimgano_plugin_{path.stem.replace('-', '_')}_{digest}"
    if module_name in sys.modules:
        return
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:
        raise PluginError(f"plugin {spec!r} is not a loadable Python file")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise


def _entry_points() -> list:
    return sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def load_plugins(specs: Iterable[str] = (), *, entry_points: bool = True) -> list[str]:
    """Import detector plugins; they register themselves with :func:`~pyimgano.registry.register_detector`.

    Args:
      specs: module names (``"my_pkg.detectors"``, imported with ``importlib``) or paths of
        Python files (anything ending in ``.py`` or containing a path separator). Loading
        the same module or file again is a no-op.
      entry_points: also load every entry point of the ``pyimgano.detectors`` group of the
        installed distributions, sorted by name. An entry point naming a module is
        imported; one naming a callable is called with no arguments.

    Returns:
      The canonical names of the detectors registered during this call, sorted.

    Raises:
      PluginError (a ``ValueError``): a spec or entry point could not be found or failed
        to import or register; the message names it and the cause. Plugins loaded before
        the failing one stay registered.
    """
    before = set(DETECTORS)
    for spec in specs:
        spec = os.fspath(spec)
        try:
            if _is_file_spec(spec):
                _import_file(spec)
            else:
                importlib.import_module(spec)
        except PluginError:
            raise
        except Exception as exc:  # any import failure is the plugin's; name it
            raise PluginError(f"plugin {spec!r} failed to load: {type(exc).__name__}: {exc}") from exc
    if entry_points:
        for ep in _entry_points():
            try:
                loaded = ep.load()
                if callable(loaded) and not isinstance(loaded, ModuleType):
                    loaded()
            except Exception as exc:
                raise PluginError(
                    f"plugin entry point {ep.name!r} ({ep.value}) of group {ENTRY_POINT_GROUP!r} failed to "
                    f"load: {type(exc).__name__}: {exc}"
                ) from exc
    return sorted({DETECTORS[n].name for n in set(DETECTORS) - before})
