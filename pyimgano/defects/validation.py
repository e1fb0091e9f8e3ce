"""Converters and validators of :class:`~pyimgano.defects.DefectsConfig` fields.

Every error names the field (``DefectsConfig.<name>``), the bad value and what is accepted.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

__all__ = [
    "is_int",
    "is_real",
    "enum",
    "to_float",
    "to_opt_float",
    "to_int",
    "to_opt_int",
    "to_bool",
    "to_roi",
    "check_bool",
    "check_int_ge",
    "check_float",
    "check_roi",
]


# --------------------------------------------------------------------------- converters
def is_int(value: Any) -> bool:
    # bool is an int subclass; True as a kernel size is a config bug, not 1.
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def enum(accepted: tuple[str, ...], *, optional: bool = False):
    def convert(value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    def validate(inst, attribute, value) -> None:
        if optional and value is None:
            return
        if value not in accepted:
            null = " (or null)" if optional else ""
            raise ValueError(
                f"DefectsConfig.{attribute.name}={value!r} is not accepted; accepted: {list(accepted)}{null}"
            )

    return convert, validate


def to_float(value: Any) -> Any:
    # Normalise ints/numpy scalars to float so equal configs hash equally; leave bad values to validators.
    return float(value) if is_real(value) else value


def to_opt_float(value: Any) -> Any:
    return None if value is None else to_float(value)


def to_int(value: Any) -> Any:
    return int(value) if is_int(value) else value


def to_opt_int(value: Any) -> Any:
    return None if value is None else to_int(value)


def to_bool(value: Any) -> Any:
    # numpy bools come from arrays of flags; anything else (strings, ints) is rejected by the validator.
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def to_roi(value: Any) -> Any:
    if value is None or isinstance(value, (str, bytes)):
        return value
    try:
        items = tuple(value)
    except TypeError:
        return value
    return tuple(float(v) if is_real(v) else v for v in items)


# --------------------------------------------------------------------------- validators
def check_bool(inst, attribute, value) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"DefectsConfig.{attribute.name} must be true or false, got {value!r}")


def check_int_ge(minimum: int, *, optional: bool = False):
    def check(inst, attribute, value) -> None:
        if optional and value is None:
            return
        if not is_int(value) or value < minimum:
            null = " or null" if optional else ""
            raise ValueError(f"DefectsConfig.{attribute.name} must be an integer >= {minimum}{null}, got {value!r}")

    return check


def check_float(
    *,
    optional: bool = False,
    ge: float | None = None,
    le: float | None = None,
    gt: float | None = None,
    lt: float | None = None,
):
    def check(inst, attribute, value) -> None:
        if optional and value is None:
            return
        ok = is_real(value) and math.isfinite(value)
        if ok and ge is not None and not value >= ge:
            ok = False
        if ok and le is not None and not value <= le:
            ok = False
        if ok and gt is not None and not value > gt:
            ok = False
        if ok and lt is not None and not value < lt:
            ok = False
        if not ok:
            bounds = []
            if gt is not None or ge is not None:
                bounds.append(f"{'>' if gt is not None else '>='} {gt if gt is not None else ge}")
            if lt is not None or le is not None:
                bounds.append(f"{'<' if lt is not None else '<='} {lt if lt is not None else le}")
            rng = (" " + " and ".join(bounds)) if bounds else ""
            null = " or null" if optional else ""
            raise ValueError(f"DefectsConfig.{attribute.name} must be a finite number{rng}{null}, got {value!r}")

    return check


def check_roi(inst, attribute, value) -> None:
    if value is None:
        return
    ok = isinstance(value, tuple) and len(value) == 4 and all(is_real(v) and math.isfinite(v) for v in value)
    if ok:
        x1, y1, x2, y2 = value
        ok = 0.0 <= x1 < x2 <= 1.0 and 0.0 <= y1 < y2 <= 1.0
    if not ok:
        raise ValueError(
            "DefectsConfig.roi_xyxy_norm must be null or [x1, y1, x2, y2] with "
            f"0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1 (fractions of the map width/height), got {value!r}"
        )
