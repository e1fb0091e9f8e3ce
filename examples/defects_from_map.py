"""Defects export from an anomaly map, end to end, offline, in about a second.

Builds synthetic anomaly maps (no model, no data set): a few "normal" maps of
low noise to calibrate the pixel threshold, and one test map with a compact
defect, a speckle and a thin bright strip along the border.  Then:

1. resolve the pixel threshold from the normal maps (the quantile of their maxima,
   ``normal_map_max_quantile``),
2. run the ``industrial-defects-fp40`` preset,
3. print the JSONL ``defects`` block,
4. with ``--out DIR``: write the mask (PNG) and the FP-review overlay.

Usage::

    python examples/defects_from_map.py [--out /tmp/defects_demo] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

from pyimgano.defects import (
    extract_defects,
    get_defects_preset,
    resolve_pixel_threshold,
    save_mask,
    save_overlay,
)

MAP_HW = (64, 64)
IMAGE_HW = (256, 256)  # the "original image" the map was computed from


def normal_map(rng: np.random.Generator) -> np.ndarray:
    """f32[64, 64] background of a normalised map: mostly near 0, a sparse tail up to 0.3."""
    return (0.3 * rng.random(MAP_HW, dtype=np.float32) ** 4).astype(np.float32)


def test_map(rng: np.random.Generator) -> np.ndarray:
    m = normal_map(rng)
    yy, xx = np.mgrid[0 : MAP_HW[0], 0 : MAP_HW[1]]
    m += 0.9 * np.exp(-((xx - 40) ** 2 + (yy - 24) ** 2) / (2 * 3.0**2))  # compact defect
    m[50, 12] = 0.99  # single-pixel speckle: removed by the median
    m[8:56, 56] = 0.85  # thin strip: removed by the aspect-ratio filter
    return m.astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="folder for mask and overlay PNGs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)

    config = get_defects_preset("industrial-defects-fp40")
    # A generator: maps are consumed one at a time, as a --train-dir scan would.
    normal_maps = (normal_map(rng) for _ in range(8))
    threshold, provenance = resolve_pixel_threshold(config, normal_maps=normal_maps)

    amap = test_map(rng)
    result = extract_defects(
        amap, config, pixel_threshold=threshold, pixel_threshold_provenance=provenance, image_hw=IMAGE_HW
    )

    mask_info = None
    if args.out:
        mask_info = save_mask(os.path.join(args.out, "000000_synthetic.png"), result.mask, fmt="png")
        # A flat gray "image" stands in for the original photo.
        image = np.full((*IMAGE_HW, 3), 128, np.uint8)
        overlay = save_overlay(os.path.join(args.out, "000000_synthetic_overlay.png"), image, amap, result.mask)
        print(f"wrote {mask_info['path']} and {overlay}")
    print(json.dumps(result.to_jsonable(mask=mask_info), indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
