"""The recipe registry: name -> a function composing library steps, with config defaults.

A recipe is ``fn(config, category, context) -> CategoryResult`` (see
:mod:`pyimgano.workbench.builtin_recipes` for the built-ins and ``examples/custom_recipe.py``
for a new one). The runner calls it once per category and writes the reports, so a recipe is
only the science: which steps, in which order, with which settings.

Registration is explicit and refuses duplicates (as :mod:`pyimgano.registry` does for
detectors)::

    register_recipe("my-recipe", my_recipe, description="...", defaults={"model": {"name": "vision_padim"}})

``defaults`` are layered under the user's config and ``forced`` over it (nested mappings,
merged key by key; ``adaptation.tiling`` / ``adaptation.postprocess`` are replaced whole), so
``--dry-run`` shows exactly what will run. ``requires`` returns None when the recipe can run,
else the sentence saying what is missing.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Callable, Mapping

import attrs

from pyimgano.workbench import builtin_recipes as builtin
from pyimgano.workbench.config import DEFAULT_RECIPE, WorkbenchConfig, parse_config
from pyimgano.workbench.config_io import merge_mappings, set_key
from pyimgano.workbench.schema import ConfigError, a_string, suggest

__all__ = [
    "RecipeSpec",
    "RecipeUnavailableError",
    "RECIPES",
    "register_recipe",
    "get_recipe",
    "list_recipes",
    "recipe_info",
    "check_available",
    "build_config",
    "effective_mapping",
]


class RecipeUnavailableError(ConfigError):
    """The recipe exists but cannot run here (a detector or package is missing); says what to use instead."""


def _frozen_mapping(value) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@attrs.frozen(eq=False)
class RecipeSpec:
    """One registered recipe."""

    name: str
    fn: Callable[..., Any]
    description: str
    defaults: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)
    forced: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)
    details: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    requires: Callable[[], str | None] | None = None


RECIPES: dict[str, RecipeSpec] = {}


def register_recipe(
    name: str,
    fn: Callable[..., Any],
    *,
    description: str,
    defaults: Mapping[str, Any] | None = None,
    forced: Mapping[str, Any] | None = None,
    details: tuple[str, ...] | list[str] = (),
    requires: Callable[[], str | None] | None = None,
) -> RecipeSpec:
    """Register ``fn`` as recipe ``name``; returns its spec.

    Raises:
        ValueError: an empty name or description, a name already registered, ``fn`` not callable.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"recipe name must be a non-empty string, got {name!r}")
    if name in RECIPES:
        raise ValueError(f"recipe {name!r} is already registered (by {RECIPES[name].fn.__module__})")
    if not callable(fn):
        raise ValueError(f"recipe {name!r}: fn must be callable, got {type(fn).__name__}")
    if not isinstance(description, str) or not description.strip():
        raise ValueError(f"recipe {name!r} needs a one-line description")
    spec = RecipeSpec(name=name, fn=fn, description=description, defaults=defaults, forced=forced,
                      details=details, requires=requires)
    RECIPES[name] = spec
    return spec


def get_recipe(name: str) -> RecipeSpec:
    """The spec registered as ``name``.

    Raises:
        ConfigError: unknown name (the nearest and the accepted names are listed).
    """
    try:
        return RECIPES[name]
    except (KeyError, TypeError):
        names = list_recipes()
        raise ConfigError(f"recipe: unknown recipe {name!r}{suggest(str(name), names)}; accepted: {names}") from None


def list_recipes() -> list[str]:
    """Registered recipe names, sorted."""
    return sorted(RECIPES)


def check_available(spec: RecipeSpec) -> None:
    """Raises :class:`RecipeUnavailableError` when ``spec.requires()`` names something missing."""
    reason = None if spec.requires is None else spec.requires()
    if reason:
        raise RecipeUnavailableError(f"recipe {spec.name!r} cannot run: {reason}")


def recipe_info(name: str) -> dict[str, Any]:
    """``{name, description, details, defaults, forced, available, unavailable_reason}`` (JSON types).

    Raises:
        ConfigError: unknown name.
    """
    spec = get_recipe(name)
    reason = None if spec.requires is None else spec.requires()
    return {
        "name": spec.name,
        "description": spec.description,
        "details": list(spec.details),
        "defaults": merge_mappings({}, spec.defaults),
        "forced": merge_mappings({}, spec.forced),
        "available": reason is None,
        "unavailable_reason": reason,
    }


def effective_mapping(raw: Mapping[str, Any]) -> tuple[RecipeSpec, dict[str, Any]]:
    """The recipe named by ``raw["recipe"]`` (default ``industrial-adapt``) and ``raw`` with its
    defaults under and its forced values over it.

    Raises:
        ConfigError: a bad or unknown recipe name.
    """
    name = a_string(raw.get("recipe", DEFAULT_RECIPE), "recipe")
    spec = get_recipe(name)
    merged = merge_mappings(merge_mappings(spec.defaults, raw), spec.forced)
    merged["recipe"] = spec.name
    return spec, merged


def build_config(raw: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> WorkbenchConfig:
    """The :class:`WorkbenchConfig` of a raw config mapping, ``overrides`` (``{"dataset.root": v}``)
    set first, recipe defaults and forced values applied.

    Raises:
        ConfigError: as :func:`pyimgano.workbench.config.parse_config` and :func:`get_recipe`.
    """
    data = dict(raw)
    for key, value in (overrides or {}).items():
        if value is not None:
            data = set_key(data, key, value)
    _, merged = effective_mapping(data)
    return parse_config(merged)


for _spec in builtin.BUILTIN_RECIPES:
    register_recipe(**_spec)
