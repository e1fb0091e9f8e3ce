"""``DefectsConfig``: every knob of the defects pipeline, validated and hashable.

Field names are the ``pyimgano-infer`` flag names without their ``--defect-`` /
``--`` prefix, in snake_case (SPEC section 7).  The same names appear flat in the
``defects`` block of ``infer_config.json``; :meth:`DefectsConfig.from_mapping` also
accepts the nested groups that the original pyimgano wrote there::

    "map_smoothing": {"method": "median", "ksize": 3, "sigma": 0.0}
    "hysteresis":    {"enabled": true, "low": null, "high": null}
    "shape_filters": {"min_fill_ratio": 0.15, "max_aspect_ratio": 6.0, "min_solidity": 0.8}
    "merge_nearby":  {"enabled": true, "max_gap_px": 1}

See ``docs/defects.md`` for what every knob does and the order of the stages.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Mapping

import attrs

__all__ = [
    "DefectsConfig",
    "MAP_SMOOTHING_METHODS",
    "PIXEL_THRESHOLD_STRATEGIES",
    "SORT_KEYS",
    "MASK_FORMATS",
    "config_from_infer_config",
    "cli_flag",
]

MAP_SMOOTHING_METHODS: tuple[str, ...] = ("none", "median", "gaussian", "box")
#: Calibration methods first (the first is the automatic default), then the two that never calibrate.
PIXEL_THRESHOLD_STRATEGIES: tuple[str, ...] = (
    "normal_map_max_quantile",
    "normal_pixel_quantile",
    "fixed",
    "infer_config",
)
SORT_KEYS: tuple[str, ...] = ("score_max", "score_mean", "area")
MASK_FORMATS: tuple[str, ...] = ("png", "npy")

# Nested groups accepted by from_mapping: group -> {sub key -> flat field name}.
_NESTED_GROUPS: dict[str, dict[str, str]] = {
    "map_smoothing": {
        "method": "map_smoothing",
        "ksize": "map_smoothing_ksize",
        "sigma": "map_smoothing_sigma",
    },
    "hysteresis": {"enabled": "hysteresis", "low": "hysteresis_low", "high": "hysteresis_high"},
    "shape_filters": {
        "min_fill_ratio": "min_fill_ratio",
        "max_aspect_ratio": "max_aspect_ratio",
        "min_solidity": "min_solidity",
    },
    "merge_nearby": {"enabled": "merge_nearby", "max_gap_px": "merge_nearby_max_gap_px"},
}


def cli_flag(field: attrs.Attribute) -> str:
    """The ``pyimgano-infer`` flag of a :class:`DefectsConfig` field (SPEC sections 7 and 8):
    ``--defect-<name>`` unless the field's metadata names another (``--pixel-threshold``, ...)."""
    return field.metadata.get("flag") or "--defect-" + field.name.replace("_", "-")


# --------------------------------------------------------------------------- converters
def _is_int(value: Any) -> bool:
    # bool is an int subclass; True as a kernel size is a config bug, not 1.
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _enum(accepted: tuple[str, ...], *, optional: bool = False):
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


def _to_float(value: Any) -> Any:
    # Normalise ints/numpy scalars to float so equal configs hash equally; leave bad values to validators.
    return float(value) if _is_real(value) else value


def _to_opt_float(value: Any) -> Any:
    return None if value is None else _to_float(value)


def _to_int(value: Any) -> Any:
    return int(value) if _is_int(value) else value


def _to_opt_int(value: Any) -> Any:
    return None if value is None else _to_int(value)


def _to_bool(value: Any) -> Any:
    # numpy bools come from arrays of flags; anything else (strings, ints) is rejected by the validator.
    try:
        import numpy as np

        if isinstance(value, np.bool_):
            return bool(value)
    except ImportError:  # pragma: no cover - numpy is a hard dependency
        pass
    return value


def _to_roi(value: Any) -> Any:
    if value is None or isinstance(value, (str, bytes)):
        return value
    try:
        items = tuple(value)
    except TypeError:
        return value
    return tuple(float(v) if _is_real(v) else v for v in items)


# --------------------------------------------------------------------------- validators
def _check_bool(inst, attribute, value) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"DefectsConfig.{attribute.name} must be true or false, got {value!r}")


def _check_int_ge(minimum: int, *, optional: bool = False):
    def check(inst, attribute, value) -> None:
        if optional and value is None:
            return
        if not _is_int(value) or value < minimum:
            null = " or null" if optional else ""
            raise ValueError(f"DefectsConfig.{attribute.name} must be an integer >= {minimum}{null}, got {value!r}")

    return check


def _check_float(
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
        ok = _is_real(value) and math.isfinite(value)
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


def _check_roi(inst, attribute, value) -> None:
    if value is None:
        return
    ok = isinstance(value, tuple) and len(value) == 4 and all(_is_real(v) and math.isfinite(v) for v in value)
    if ok:
        x1, y1, x2, y2 = value
        ok = 0.0 <= x1 < x2 <= 1.0 and 0.0 <= y1 < y2 <= 1.0
    if not ok:
        raise ValueError(
            "DefectsConfig.roi_xyxy_norm must be null or [x1, y1, x2, y2] with "
            f"0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1 (fractions of the map width/height), got {value!r}"
        )


_SMOOTH_CONVERT, _SMOOTH_CHECK = _enum(MAP_SMOOTHING_METHODS)
_STRATEGY_CONVERT, _STRATEGY_CHECK = _enum(PIXEL_THRESHOLD_STRATEGIES, optional=True)
_SORT_CONVERT, _SORT_CHECK = _enum(SORT_KEYS)
_FORMAT_CONVERT, _FORMAT_CHECK = _enum(MASK_FORMATS)


@attrs.frozen
class DefectsConfig:
    """Settings of :func:`pyimgano.defects.extract_defects` (frozen, hashable, validated).

    Stages run in this order (SPEC section 7): border ignore -> smoothing ->
    threshold -> open/close -> component filters -> fill holes -> ROI gate ->
    regions -> merge nearby -> sort -> ``max_regions``.  Defaults switch every
    optional stage off, so ``DefectsConfig(pixel_threshold=t)`` is "pixels
    ``>= t``, 8-connected regions".

    Attributes:
      pixel_threshold: fixed map threshold, or None to resolve one (see
        :func:`pyimgano.defects.resolve_pixel_threshold`).
      pixel_threshold_strategy: None (default, "auto": explicit value ->
        the state's / infer-config value -> ``normal_map_max_quantile`` when
        normal maps are given), ``normal_map_max_quantile`` (the quantile of
        each normal map's maximum: a normal image shows a region with
        probability about ``1 - q``), ``normal_pixel_quantile`` (the quantile
        of all normal pixels pooled: about ``1 - q`` of every normal image's
        pixels end above it) -- a calibration request overrides an existing
        value --, ``fixed`` or ``infer_config`` (never calibrate; the value
        must come from ``pixel_threshold`` or the state / infer-config).  See
        :func:`pyimgano.defects.decide_pixel_threshold`.
      pixel_normal_quantile: the quantile ``q`` in (0, 1) of either
        calibration method (default 0.999).
      roi_xyxy_norm: None or ``(x1, y1, x2, y2)`` with ``0 <= x1 < x2 <= 1``
        and ``0 <= y1 < y2 <= 1``, fractions of the map width/height.  Gates
        the mask and regions only, never scores.
      border_ignore_px: pixels at each map edge that never become foreground
        (and are flattened to the map minimum before smoothing).  >= 0.
      map_smoothing: ``none | median | gaussian | box`` applied before
        thresholding.
      map_smoothing_ksize: kernel size; median/box need an odd size >= 3;
        gaussian takes an odd size >= 1, or 0 to derive it from the sigma.
      map_smoothing_sigma: gaussian sigma >= 0 (0 derives it from the ksize).
      hysteresis: keep low-threshold components that contain a high pixel.
      hysteresis_low: low threshold; None means ``0.5 * high``.
      hysteresis_high: high threshold; None means the pixel threshold.
      open_ksize, close_ksize: square structuring element sizes for binary
        opening then closing; 0 or 1 switches the operation off.
      fill_holes: fill background enclosed by foreground.
      min_area: drop components with fewer pixels (0 keeps all).
      min_score_max, min_score_mean: drop components whose max / mean raw map
        value is below this (None keeps all).
      min_fill_ratio: drop components with ``area / bbox_area`` below this, in [0, 1].
      max_aspect_ratio: drop components with ``max(w, h) / min(w, h)`` of the
        bbox above this, >= 1.
      min_solidity: drop components with ``area / convex hull area`` below
        this, in [0, 1].
      merge_nearby: merge regions separated by at most
        ``merge_nearby_max_gap_px`` empty pixels in the regions list (the mask
        is unchanged).
      merge_nearby_max_gap_px: >= 0.
      max_regions: keep at most this many regions (> 0) after sorting; None
        keeps all.
      max_regions_sort_by: ``score_max`` (default), ``score_mean`` or
        ``area``, descending; ties by position.
      mask_format: ``png`` (0/255 8-bit) or ``npy`` for exported masks.

    Raises:
      ValueError: a field has the wrong type or is out of range; the message
        names the field, the bad value and the accepted values.
    """

    pixel_threshold: float | None = attrs.field(
        default=None,
        converter=_to_opt_float,
        validator=_check_float(optional=True),
        metadata={
            "help": "map value at or above which a pixel is defective (fixed; provenance source explicit)",
            "flag": "--pixel-threshold",
        },
    )
    pixel_threshold_strategy: str | None = attrs.field(
        default=None,
        converter=_STRATEGY_CONVERT,
        validator=_STRATEGY_CHECK,
        metadata={
            "choices": PIXEL_THRESHOLD_STRATEGIES,
            "help": "source of the pixel threshold when none is fixed: normal_map_max_quantile (the automatic choice) calibrates on the normal maps' maxima, normal_pixel_quantile on all normal pixels; fixed / infer_config never calibrate",
            "flag": "--pixel-threshold-strategy",
        },
    )
    pixel_normal_quantile: float = attrs.field(
        default=0.999,
        converter=_to_float,
        validator=_check_float(gt=0.0, lt=1.0),
        metadata={"help": "quantile q of the calibration method, in (0, 1)", "flag": "--pixel-normal-quantile"},
    )
    roi_xyxy_norm: tuple[float, float, float, float] | None = attrs.field(
        default=None,
        converter=_to_roi,
        validator=_check_roi,
        metadata={
            "help": "region of interest X1 Y1 X2 Y2 as fractions of the map; gates defects only, never score or label",
            "flag": "--roi-xyxy-norm",
        },
    )
    border_ignore_px: int = attrs.field(
        default=0,
        converter=_to_int,
        validator=_check_int_ge(0),
        metadata={"help": "pixels at each map edge that never become defects"},
    )
    map_smoothing: str = attrs.field(
        default="none",
        converter=_SMOOTH_CONVERT,
        validator=_SMOOTH_CHECK,
        metadata={"choices": MAP_SMOOTHING_METHODS, "help": "smoothing of the map before thresholding"},
    )
    map_smoothing_ksize: int = attrs.field(
        default=3,
        converter=_to_int,
        validator=_check_int_ge(0),
        metadata={"help": "smoothing kernel size (median/box: odd >= 3; gaussian: odd, or 0 from sigma)"},
    )
    map_smoothing_sigma: float = attrs.field(
        default=0.0,
        converter=_to_float,
        validator=_check_float(ge=0.0),
        metadata={"help": "gaussian smoothing sigma (0: from the kernel size)"},
    )
    hysteresis: bool = attrs.field(
        default=False,
        converter=_to_bool,
        validator=_check_bool,
        metadata={"help": "keep low-threshold components that contain a pixel above the high threshold"},
    )
    hysteresis_low: float | None = attrs.field(
        default=None,
        converter=_to_opt_float,
        validator=_check_float(optional=True),
        metadata={"help": "hysteresis low threshold (default 0.5 x high)"},
    )
    hysteresis_high: float | None = attrs.field(
        default=None,
        converter=_to_opt_float,
        validator=_check_float(optional=True),
        metadata={"help": "hysteresis high threshold (default the pixel threshold)"},
    )
    open_ksize: int = attrs.field(
        default=0,
        converter=_to_int,
        validator=_check_int_ge(0),
        metadata={"help": "binary opening kernel size (0 or 1: off)"},
    )
    close_ksize: int = attrs.field(
        default=0,
        converter=_to_int,
        validator=_check_int_ge(0),
        metadata={"help": "binary closing kernel size (0 or 1: off)"},
    )
    fill_holes: bool = attrs.field(
        default=False,
        converter=_to_bool,
        validator=_check_bool,
        metadata={"help": "fill background enclosed by a defect"},
    )
    min_area: int = attrs.field(
        default=0, converter=_to_int, validator=_check_int_ge(0), metadata={"help": "drop regions with fewer pixels"}
    )
    min_score_max: float | None = attrs.field(
        default=None,
        converter=_to_opt_float,
        validator=_check_float(optional=True),
        metadata={"help": "drop regions whose largest map value is below this"},
    )
    min_score_mean: float | None = attrs.field(
        default=None,
        converter=_to_opt_float,
        validator=_check_float(optional=True),
        metadata={"help": "drop regions whose mean map value is below this"},
    )
    min_fill_ratio: float | None = attrs.field(
        default=None,
        converter=_to_opt_float,
        validator=_check_float(optional=True, ge=0.0, le=1.0),
        metadata={"help": "drop regions filling less than this share of their bounding box, in [0, 1]"},
    )
    max_aspect_ratio: float | None = attrs.field(
        default=None,
        converter=_to_opt_float,
        validator=_check_float(optional=True, ge=1.0),
        metadata={"help": "drop regions whose bounding box is more elongated than this (>= 1)"},
    )
    min_solidity: float | None = attrs.field(
        default=None,
        converter=_to_opt_float,
        validator=_check_float(optional=True, ge=0.0, le=1.0),
        metadata={"help": "drop regions with area / convex hull area below this, in [0, 1]"},
    )
    merge_nearby: bool = attrs.field(
        default=False,
        converter=_to_bool,
        validator=_check_bool,
        metadata={
            "help": "merge regions separated by at most --defect-merge-nearby-max-gap-px empty pixels (regions list only)"
        },
    )
    merge_nearby_max_gap_px: int = attrs.field(
        default=0,
        converter=_to_int,
        validator=_check_int_ge(0),
        metadata={"help": "largest gap in pixels that merge-nearby bridges"},
    )
    max_regions: int | None = attrs.field(
        default=None,
        converter=_to_opt_int,
        validator=_check_int_ge(1, optional=True),
        metadata={"help": "keep at most this many regions after sorting"},
    )
    max_regions_sort_by: str = attrs.field(
        default="score_max",
        converter=_SORT_CONVERT,
        validator=_SORT_CHECK,
        metadata={"choices": SORT_KEYS, "help": "sort key of the regions (descending; ties by position)"},
    )
    mask_format: str = attrs.field(
        default="png",
        converter=_FORMAT_CONVERT,
        validator=_FORMAT_CHECK,
        metadata={"choices": MASK_FORMATS, "help": "file format of saved masks", "flag": "--mask-format"},
    )

    def __attrs_post_init__(self) -> None:
        # Kernel rules depend on the method, so they are checked once all fields exist.
        k = self.map_smoothing_ksize
        if self.map_smoothing in ("median", "box") and (k < 3 or k % 2 == 0):
            raise ValueError(
                f"DefectsConfig.map_smoothing_ksize={k} is not accepted for map_smoothing="
                f"{self.map_smoothing!r}; accepted: an odd size >= 3"
            )
        if self.map_smoothing == "gaussian":
            if k != 0 and k % 2 == 0:
                raise ValueError(
                    f"DefectsConfig.map_smoothing_ksize={k} is not accepted for gaussian smoothing; "
                    "accepted: 0 (derived from map_smoothing_sigma) or an odd size >= 1"
                )
            if k == 0 and self.map_smoothing_sigma <= 0.0:
                raise ValueError(
                    "gaussian smoothing needs map_smoothing_ksize > 0 or map_smoothing_sigma > 0, "
                    f"got ksize={k} and sigma={self.map_smoothing_sigma}"
                )
        lo, hi = self.hysteresis_low, self.hysteresis_high
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"DefectsConfig.hysteresis_low={lo} must be <= hysteresis_high={hi}")

    # ------------------------------------------------------------------ dict round trip
    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The flat field names, in declaration order."""
        return tuple(a.name for a in attrs.fields(cls))

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any]) -> DefectsConfig:
        """Build a config from an ``infer_config.json`` ``defects`` block.

        Args:
          d: flat field names, and/or the nested groups ``map_smoothing``
            (``method, ksize, sigma``), ``hysteresis`` (``enabled, low,
            high``), ``shape_filters`` (``min_fill_ratio, max_aspect_ratio,
            min_solidity``), ``merge_nearby`` (``enabled, max_gap_px``).  A
            nested group given as null counts as absent.  ``enabled`` is
            accepted and ignored (whether to run the pipeline is the caller's
            decision).  Missing keys take the defaults.

        Returns:
          The validated config.

        Raises:
          TypeError: ``d`` (or a nested group) is not a mapping.
          ValueError: an unknown key (the message lists the accepted ones), a
            field given twice with different values (flat and nested), or an
            invalid value.
        """
        if not isinstance(d, Mapping):
            raise TypeError(f"defects config must be a mapping, got {type(d).__name__}")
        names = set(cls.field_names())
        flat: dict[str, Any] = {}

        def put(name: str, value: Any, where: str) -> None:
            if name in flat and flat[name] != value:
                raise ValueError(
                    f"defects.{name} is given twice with different values ({flat[name]!r} and {value!r} at {where})"
                )
            flat[name] = value

        for key, value in d.items():
            if key == "enabled":
                continue
            if key in _NESTED_GROUPS and (value is None or isinstance(value, Mapping) or key not in names):
                if value is None:
                    continue
                if not isinstance(value, Mapping):
                    raise TypeError(f"defects.{key} must be a mapping or null, got {value!r}")
                subkeys = _NESTED_GROUPS[key]
                for sub, sub_value in value.items():
                    if sub not in subkeys:
                        raise ValueError(f"unknown key defects.{key}.{sub!s}; accepted: {sorted(subkeys)}")
                    put(subkeys[sub], sub_value, f"defects.{key}.{sub}")
                continue
            if key in names:
                put(key, value, f"defects.{key}")
                continue
            accepted = sorted(names | set(_NESTED_GROUPS) | {"enabled"})
            raise ValueError(f"unknown key defects.{key!s}; accepted: {accepted}")
        return cls(**flat)

    def to_mapping(self) -> dict[str, Any]:
        """The flat field dict with JSON types (tuples become lists); ``from_mapping`` inverts it.

        This is the ``defects`` block written to ``infer_config.json``.
        """
        out = attrs.asdict(self, recurse=False)
        if out["roi_xyxy_norm"] is not None:
            out["roi_xyxy_norm"] = list(out["roi_xyxy_norm"])
        return out


def config_from_infer_config(block: Mapping[str, Any]) -> tuple[DefectsConfig, float | None]:
    """Split an ``infer_config.json`` ``defects`` block for threshold resolution.

    A threshold stored in the infer-config must be reported with ``source
    "infer_config"``, not ``"explicit"``, so it is taken out of the config and
    returned separately, to be passed as
    ``resolve_pixel_threshold(config, infer_config_value=...)``.  CLI flags are
    then layered on the returned config with ``attrs.evolve`` (an explicit
    ``--pixel-threshold`` goes into ``pixel_threshold``).

    Returns:
      ``(config with pixel_threshold=None, the block's pixel_threshold or None)``.

    Raises:
      TypeError / ValueError: as :meth:`DefectsConfig.from_mapping`.
    """
    config = DefectsConfig.from_mapping(block)
    value = config.pixel_threshold
    return attrs.evolve(config, pixel_threshold=None), value
