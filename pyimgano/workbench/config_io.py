"""Reading workbench config files and layering values over them.

- :func:`read_config_file`: ``.json`` (duplicate keys are errors) or ``.yml``/``.yaml``
  (``yaml.safe_load``; needs PyYAML, the ``yaml`` extra). The result is a plain mapping.
- :func:`merge_mappings`: nested mappings merged key by key (the later wins), except the
  blocks in :data:`ATOMIC_BLOCKS`, which are replaced whole: a config that gives its own
  ``adaptation.tiling`` does not inherit a recipe's stride.
- :func:`set_key`: one dotted key (``dataset.root``), for command-line overrides.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

from pyimgano.workbench.schema import ConfigError

__all__ = ["ATOMIC_BLOCKS", "YAML_SUFFIXES", "read_config_file", "merge_mappings", "set_key"]

#: Blocks a later layer replaces whole instead of merging into.
ATOMIC_BLOCKS = frozenset({"adaptation.tiling", "adaptation.postprocess"})
YAML_SUFFIXES = (".yml", ".yaml")


def _no_duplicates(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise ConfigError(f"{key}: given twice in one JSON object (the second would silently win)")
        out[key] = value
    return out


def _load_yaml(text: str, path: Path) -> Any:
    try:
        import yaml
    except ImportError:
        raise ConfigError(
            f"{path}: reading YAML configs needs PyYAML, which is not installed; "
            "pip install 'pyimgano[yaml]' (or write the config as JSON)"
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid YAML: nested too deeply") from None


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """The mapping in a ``.json`` / ``.yml`` / ``.yaml`` config file.

    Raises:
        ConfigError: a missing or unreadable file, another suffix, invalid JSON/YAML (nested too
            deeply included), a duplicate JSON key, PyYAML absent for YAML, or a top level that is
            not a mapping.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", *YAML_SUFFIXES):
        raise ConfigError(f"{path}: config files are .json, .yml or .yaml, got {suffix or 'no suffix'!r}")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc}") from None
    if suffix == ".json":
        try:
            data = json.loads(text, object_pairs_hook=_no_duplicates)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
        except RecursionError:
            raise ConfigError(f"{path}: not valid JSON: nested too deeply") from None
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    else:
        data = _load_yaml(text, path)
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: the top level must be an object of sections, got {type(data).__name__}")
    return dict(data)


def merge_mappings(base: Mapping[str, Any], over: Mapping[str, Any], _prefix: str = "") -> dict[str, Any]:
    """``over`` layered on ``base`` (neither is modified); see the module docstring."""
    out = dict(base)
    for key, value in over.items():
        path = f"{_prefix}{key}"
        old = out.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping) and path not in ATOMIC_BLOCKS:
            out[key] = merge_mappings(old, value, path + ".")
        else:
            out[key] = value
    return out


def set_key(data: Mapping[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A copy of ``data`` with ``dotted`` (e.g. ``"dataset.root"``) set to ``value``.

    Raises:
        ConfigError: a parent of the key holds something other than an object.
    """
    head, _, rest = dotted.partition(".")
    out = dict(data)
    if not rest:
        out[head] = value
        return out
    child = out.get(head)
    if child is None:
        child = {}
    if not isinstance(child, Mapping):
        raise ConfigError(f"{head}: expected an object to set {dotted}, got {child!r}")
    out[head] = set_key(child, rest, value)
    return out
