"""Detector discovery shared by the command lines: ``--list-models [--tags a,b] [--json]`` and
``--model-info NAME [--json]`` (``pyimgano-infer`` and ``pyimgano-benchmark``)."""

from __future__ import annotations

import json
from typing import Any, TextIO

import attrs

from pyimgano.presets import MODEL_PRESETS
from pyimgano.fileio import json_plain

__all__ = ["DiscoveryError", "parse_tags", "spec_info", "list_models", "model_info"]


class DiscoveryError(ValueError):
    """An unknown tag or detector name; the message lists the accepted ones (exit code 2)."""


def parse_tags(text: str) -> tuple[str, ...]:
    """``"numpy, pixel_map"`` -> ``("numpy", "pixel_map")`` (argparse type of ``--tags``)."""
    return tuple(t.strip() for t in text.split(",") if t.strip())


def spec_info(spec) -> dict[str, Any]:
    fields = []
    for f in attrs.fields(spec.config_cls):
        default = f.default
        if isinstance(default, attrs.Factory):  # pragma: no cover - configs use plain defaults
            default = None
        fields.append({"name": f.name, "default": json_plain(default)})
    return {
        "name": spec.name,
        "aliases": list(spec.aliases),
        "tags": sorted(spec.tags),
        "description": spec.description,
        "paper": spec.paper,
        "config": fields,
        "presets": sorted(MODEL_PRESETS.get(spec.name, {})),
    }


def list_models(tags, as_json: bool, out: TextIO) -> int:
    from pyimgano.registry import list_detectors

    try:
        names = list_detectors(tags)
    except ValueError as exc:
        raise DiscoveryError(f"--tags: {exc}") from None
    if as_json:
        out.write(json.dumps(names) + "\n")
    else:
        for name in names:
            out.write(name + "\n")
    return 0


def model_info(name: str, as_json: bool, out: TextIO) -> int:
    from pyimgano.registry import get_detector

    try:
        spec = get_detector(name)
    except ValueError as exc:
        raise DiscoveryError(f"--model-info: {exc}") from None
    info = spec_info(spec)
    if as_json:
        out.write(json.dumps(info, sort_keys=True) + "\n")
        return 0
    out.write(f"{info['name']}: {info['description']}\n")
    out.write(f"  paper: {info['paper']}\n")
    out.write(f"  tags: {', '.join(info['tags'])}\n")
    if info["aliases"]:
        out.write(f"  aliases: {', '.join(info['aliases'])}\n")
    if info["presets"]:
        out.write(f"  presets: {', '.join(info['presets'])}\n")
    out.write("  config (--model-kwargs):\n")
    for field in info["config"]:
        out.write(f"    {field['name']} = {json.dumps(field['default'])}\n")
    return 0
