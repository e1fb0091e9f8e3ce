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

from typing import Any, Mapping

import attrs

from pyimgano.defects.validation import (
    check_bool,
    check_float,
    check_int_ge,
    check_roi,
    enum,
    to_bool,
    to_float,
    to_int,
    to_opt_float,
    to_opt_int,
    to_roi,
)

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


def _field(default, converter, validator, help: str, *, flag: str | None = None, choices=None):
    """An attrs field whose metadata carries its CLI help text, flag name and choices (one source)."""
    metadata = {"help": help}
    if flag is not None:
        metadata["flag"] = flag
    if choices is not None:
        metadata["choices"] = choices
    return attrs.field(default=default, converter=converter, validator=validator, metadata=metadata)


def cli_flag(field: attrs.Attribute) -> str:
    """The ``pyimgano-infer`` flag of a :class:`DefectsConfig` field (SPEC sections 7 and 8):
    ``--defect-<name>`` unless the field's metadata names another (``--pixel-threshold``, ...)."""
    return field.metadata.get("flag") or "--defect-" + field.name.replace("_", "-")


_SMOOTH_CONVERT, _SMOOTH_CHECK = enum(MAP_SMOOTHING_METHODS)
_STRATEGY_CONVERT, _STRATEGY_CHECK = enum(PIXEL_THRESHOLD_STRATEGIES, optional=True)
_SORT_CONVERT, _SORT_CHECK = enum(SORT_KEYS)
_FORMAT_CONVERT, _FORMAT_CHECK = enum(MASK_FORMATS)


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

    pixel_threshold: float | None = _field(
        None,
        to_opt_float,
        check_float(optional=True),
        "map value at or above which a pixel is defective (fixed; provenance source explicit; default: calibrated)",
        flag="--pixel-threshold",
    )
    pixel_threshold_strategy: str | None = _field(
        None,
        _STRATEGY_CONVERT,
        _STRATEGY_CHECK,
        "source of the pixel threshold when none is fixed: normal_map_max_quantile (the automatic choice) calibrates on the normal maps' maxima, normal_pixel_quantile on all normal pixels; fixed / infer_config never calibrate (default: automatic)",
        flag="--pixel-threshold-strategy",
        choices=PIXEL_THRESHOLD_STRATEGIES,
    )
    pixel_normal_quantile: float = _field(
        0.999,
        to_float,
        check_float(gt=0.0, lt=1.0),
        "quantile q of the calibration method, in (0, 1)",
        flag="--pixel-normal-quantile",
    )
    roi_xyxy_norm: tuple[float, float, float, float] | None = _field(
        None,
        to_roi,
        check_roi,
        "region of interest X1 Y1 X2 Y2 as fractions of the map; gates defects only, never score or label",
        flag="--roi-xyxy-norm",
    )
    border_ignore_px: int = _field(
        0,
        to_int,
        check_int_ge(0),
        "pixels at each map edge that never become defects",
    )
    map_smoothing: str = _field(
        "none",
        _SMOOTH_CONVERT,
        _SMOOTH_CHECK,
        "smoothing of the map before thresholding",
        choices=MAP_SMOOTHING_METHODS,
    )
    map_smoothing_ksize: int = _field(
        3,
        to_int,
        check_int_ge(0),
        "smoothing kernel size (median/box: odd >= 3; gaussian: odd, or 0 from sigma)",
    )
    map_smoothing_sigma: float = _field(
        0.0,
        to_float,
        check_float(ge=0.0),
        "gaussian smoothing sigma (0: from the kernel size)",
    )
    hysteresis: bool = _field(
        False,
        to_bool,
        check_bool,
        "keep low-threshold components that contain a pixel above the high threshold",
    )
    hysteresis_low: float | None = _field(
        None,
        to_opt_float,
        check_float(optional=True),
        "hysteresis low threshold (default 0.5 x high)",
    )
    hysteresis_high: float | None = _field(
        None,
        to_opt_float,
        check_float(optional=True),
        "hysteresis high threshold (default the pixel threshold)",
    )
    open_ksize: int = _field(
        0,
        to_int,
        check_int_ge(0),
        "binary opening kernel size (0 or 1: off)",
    )
    close_ksize: int = _field(
        0,
        to_int,
        check_int_ge(0),
        "binary closing kernel size (0 or 1: off)",
    )
    fill_holes: bool = _field(
        False,
        to_bool,
        check_bool,
        "fill background enclosed by a defect",
    )
    min_area: int = _field(
        0,
        to_int,
        check_int_ge(0),
        "drop regions with fewer pixels",
    )
    min_score_max: float | None = _field(
        None,
        to_opt_float,
        check_float(optional=True),
        "drop regions whose largest map value is below this",
    )
    min_score_mean: float | None = _field(
        None,
        to_opt_float,
        check_float(optional=True),
        "drop regions whose mean map value is below this",
    )
    min_fill_ratio: float | None = _field(
        None,
        to_opt_float,
        check_float(optional=True, ge=0.0, le=1.0),
        "drop regions filling less than this share of their bounding box, in [0, 1]",
    )
    max_aspect_ratio: float | None = _field(
        None,
        to_opt_float,
        check_float(optional=True, ge=1.0),
        "drop regions whose bounding box is more elongated than this (>= 1)",
    )
    min_solidity: float | None = _field(
        None,
        to_opt_float,
        check_float(optional=True, ge=0.0, le=1.0),
        "drop regions with area / convex hull area below this, in [0, 1]",
    )
    merge_nearby: bool = _field(
        False,
        to_bool,
        check_bool,
        "merge regions separated by at most --defect-merge-nearby-max-gap-px empty pixels (regions list only)",
    )
    merge_nearby_max_gap_px: int = _field(
        0,
        to_int,
        check_int_ge(0),
        "largest gap in pixels that merge-nearby bridges",
    )
    max_regions: int | None = _field(
        None,
        to_opt_int,
        check_int_ge(1, optional=True),
        "keep at most this many regions after sorting",
    )
    max_regions_sort_by: str = _field(
        "score_max",
        _SORT_CONVERT,
        _SORT_CHECK,
        "sort key of the regions (descending; ties by position)",
        choices=SORT_KEYS,
    )
    mask_format: str = _field(
        "png",
        _FORMAT_CONVERT,
        _FORMAT_CHECK,
        "file format of saved masks",
        flag="--mask-format",
        choices=MASK_FORMATS,
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
