"""Fuzz the infer-config loader and the CLI's option layering with random JSON."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from pyimgano.cli._infer_options import resolve_options
from pyimgano.cli._infer_parser import build_parser
from pyimgano.cli.common import UsageError
from pyimgano.workbench import InferConfig, InferConfigError, load_infer_config

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**30), 10**30), st.sampled_from([10**400, -(10**400), 0, 1, 2]),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
    st.sampled_from(["vision_patchcore", "vision_padim", "rgb_u8_hwc", "bgr_u8_hwc", "auto", "max", "hann",
                     "percentile", "../../etc/passwd", "png", "npy"]),
)
JSON = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                     st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                    max_leaves=12)
KEYS = {
    None: ["schema_version", "pyimgano_version", "timestamp_utc", "category", "categories", "model", "threshold",
           "threshold_provenance", "tiling", "postprocess", "defects", "include_maps", "input_format", "resize"],
    "model": ["name", "model_kwargs", "backbone", "preset", "checkpoint_path", "contamination", "pretrained", "device"],
    "tiling": ["tile_size", "stride", "score_reduce", "score_topk", "map_reduce"],
    "postprocess": ["normalize", "percentile_range", "gaussian_sigma", "morph_open_ksize", "morph_close_ksize"],
    "defects": ["pixel_threshold", "roi_xyxy_norm", "min_area", "open_ksize", "map_smoothing", "hysteresis",
                "max_regions", "mask_format", "enabled"],
}


@st.composite
def configs(draw):
    """A JSON document built mostly from real keys (so deep parsing is reached), with wrong types,
    missing and extra keys, huge numbers and, sometimes, any JSON value at the top."""
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON)
    doc = {}
    for key in draw(st.lists(st.sampled_from(KEYS[None]), max_size=8, unique=True)):
        if key in KEYS and draw(st.booleans()):
            sub = st.dictionaries(st.sampled_from(KEYS[key]), JSON, max_size=5)
            doc[key] = draw(sub)
        else:
            doc[key] = draw(JSON)
    if draw(st.booleans()):
        doc[draw(st.text(max_size=6))] = draw(JSON)
    if draw(st.booleans()):
        doc["schema_version"] = draw(st.sampled_from([1, 0, 2, "1", True, None]))
    return doc


TEXT = st.one_of(configs().map(lambda d: json.dumps(d)), st.sampled_from([
    '{"threshold": NaN}', '{"threshold": Infinity}', '{"threshold": 1e999}', "[" * 5000 + "]" * 5000,
    '{"model": {"checkpoint_path": 7}}', "", "\ufeff{}", '{"a": 1', "null"]))


def test_load_infer_config_parses_or_raises_infer_config_error(tmp_path, fuzz_budget, fuzz_case):
    path = tmp_path / "infer_config.json"

    @settings(max_examples=fuzz_budget["load_infer_config"])
    @given(text=TEXT, category=st.one_of(st.none(), st.text(max_size=4)))
    def check(text, category):
        path.write_text(text, encoding="utf-8")
        with fuzz_case():
            try:
                config = load_infer_config(path, category=category)
            except InferConfigError as exc:
                assert str(path) in str(exc) or "infer-config" in str(exc) or "category" in str(exc)
                return
            assert isinstance(config, InferConfig)
            for value in (config.threshold, config.contamination):
                assert value is None or (isinstance(value, float) and abs(value) < float("inf"))
            for value in (config.model_name, config.backbone, config.preset, config.input_format):
                assert value is None or isinstance(value, str)

    check()
    assert fuzz_case.count >= 0.8 * fuzz_budget["load_infer_config"]


def test_flags_over_a_random_infer_config_resolve_or_raise_usage_error(tmp_path, fuzz_budget, fuzz_case):
    path = tmp_path / "infer_config.json"
    parser = build_parser()

    @settings(max_examples=fuzz_budget["resolve_options (infer-config + flags)"])
    @given(doc=configs(), flags=st.lists(st.sampled_from([
        ["--defects"], ["--defects", "--pixel-threshold", "0.5"], ["--tile-size", "8"], ["--tile-stride", "4"],
        ["--postprocess", "none"], ["--model", "vision_padim"], ["--include-maps"], ["--resume"],
        ["--save-jsonl", "r.jsonl"], ["--continue-on-error"], ["--max-errors", "2"], ["--resize", "100000", "100000"],
        ["--max-image-pixels", "64"]]), max_size=3))
    def check(doc, flags):
        path.write_text(json.dumps(doc), encoding="utf-8")
        argv = ["--infer-config", str(path), "--input", "x.png", *[a for f in flags for a in f]]
        with fuzz_case():
            try:
                resolve_options(parser.parse_args(argv))
            except UsageError as exc:
                assert str(exc).strip()

    check()
    assert fuzz_case.count >= 0.8 * fuzz_budget["resolve_options (infer-config + flags)"]
