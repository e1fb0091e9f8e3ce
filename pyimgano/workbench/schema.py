"""Checking plain config values: each check names the key path, the bad value and what is accepted.

A small vocabulary used by :mod:`pyimgano.workbench.config`: :class:`ConfigError`,
:func:`suggest` (the nearest valid key, by :mod:`difflib`), :func:`check_keys`, and value
checks ``(value, path) -> converted value`` built by the functions below.
"""

from __future__ import annotations

import difflib
import math
from typing import Any, Callable, Iterable, Mapping

__all__ = [
    "ConfigError",
    "Check",
    "suggest",
    "check_keys",
    "describe",
    "a_string",
    "a_bool",
    "an_int",
    "a_number",
    "one_of",
    "optional",
    "a_mapping",
]

Check = Callable[[Any, str], Any]


class ConfigError(ValueError):
    """A workbench config with an unknown key or a bad value; the message starts with the key path."""


def suggest(key: str, accepted: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the nearest accepted name, or ``""`` when none is close."""
    close = difflib.get_close_matches(str(key), [str(a) for a in accepted], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def describe(value: Any) -> str:
    """``'abc' (a string)`` style text for error messages."""
    kinds = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
             dict: "an object", type(None): "null"}
    return f"{value!r} ({kinds.get(type(value), type(value).__name__)})"


def check_keys(block: Any, accepted: Iterable[str], path: str) -> Mapping[str, Any]:
    """``block`` as a mapping whose keys are all ``accepted``.

    Raises:
        ConfigError: not a mapping, or an unknown key (named with its full path, the nearest
            accepted key and the accepted list).
    """
    accepted = list(accepted)
    if not isinstance(block, Mapping):
        raise ConfigError(f"{path or 'config'}: expected an object with keys {sorted(accepted)}, got {describe(block)}")
    for key in block:
        if key not in accepted:
            where = f"{path}.{key}" if path else str(key)
            raise ConfigError(f"{where}: unknown key{suggest(key, accepted)}; accepted: {sorted(accepted)}")
    return block


def a_string(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{path}: expected a non-empty string, got {describe(value)}")
    return value


def a_bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{path}: expected true or false, got {describe(value)}")
    return value


def an_int(minimum: int | None = None) -> Check:
    """An integer (not a boolean), ``>= minimum`` when given."""

    def check(value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {describe(value)}")
        if minimum is not None and value < minimum:
            raise ConfigError(f"{path}: expected an integer >= {minimum}, got {value!r}")
        return value

    return check


def a_number(low: float | None = None, high: float | None = None, *, open_low: bool = False, open_high: bool = False) -> Check:
    """A finite number in the given range (open or closed ends); integers become floats."""

    def check(value: Any, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{path}: expected a finite number, got {describe(value)}")
        value = float(value)
        bad_low = low is not None and (value <= low if open_low else value < low)
        bad_high = high is not None and (value >= high if open_high else value > high)
        if bad_low or bad_high:
            left = "(" if open_low else "["
            right = ")" if open_high else "]"
            raise ConfigError(f"{path}: expected a number in {left}{low}, {high}{right}, got {value!r}")
        return value

    return check


def one_of(choices: Iterable[str]) -> Check:
    """One of ``choices`` (the error suggests the nearest)."""
    choices = tuple(choices)

    def check(value: Any, path: str) -> str:
        if value not in choices:
            hint = suggest(value, choices) if isinstance(value, str) else ""
            raise ConfigError(f"{path}: {describe(value)} is not accepted{hint}; accepted: {list(choices)}")
        return value

    return check


def optional(check: Check) -> Check:
    """``None`` (JSON null) or what ``check`` accepts."""

    def checked(value: Any, path: str):
        return None if value is None else check(value, path)

    return checked


def a_mapping(value: Any, path: str) -> dict:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}: expected an object, got {describe(value)}")
    return dict(value)
