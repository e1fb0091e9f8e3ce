"""Fuzz the workbench config loader (pyimgano-train --config): random JSON and YAML -> a config or a ConfigError."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from pyimgano.workbench import ConfigError, build_config, read_config_file

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**30), 10**30), st.sampled_from([10**400, -1, 0, 1, 2, 3.5]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=10),
    st.sampled_from(["mvtec", "custom", "manifest", "all", "bottle", "industrial-adapt", "vision_patchcore",
                     "auto", "cpu", "paths", "numpy", "../../etc", "/", "x.safetensors", "a/b.safetensors"]),
)
JSON = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                     st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                    max_leaves=10)
SECTIONS = {
    "recipe": None, "seed": None,
    "dataset": ["name", "root", "category", "resize", "input_mode", "limit_train", "limit_test", "holdout_fraction"],
    "model": ["name", "device", "preset", "pretrained", "contamination", "backbone", "model_kwargs"],
    "adaptation": ["tiling", "postprocess", "save_maps"],
    "defects": ["enabled", "pixel_threshold", "min_area", "roi_xyxy_norm", "mask_format"],
    "training": ["enabled", "epochs", "lr", "batch_size", "checkpoint_name"],
    "output": ["output_dir", "save_run", "per_image_jsonl"],
}


@st.composite
def documents(draw):
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON)
    doc = {"dataset": {"name": "custom", "root": "data"}} if draw(st.booleans()) else {}
    for key in draw(st.lists(st.sampled_from(sorted(SECTIONS)), max_size=6, unique=True)):
        keys = SECTIONS[key]
        if keys and draw(st.booleans()):
            doc[key] = draw(st.dictionaries(st.sampled_from(keys), JSON, max_size=4))
        else:
            doc[key] = draw(JSON)
    if draw(st.booleans()):
        doc[draw(st.text(max_size=6))] = draw(JSON)
    return doc


YAML_ATTACKS = [
    "!!python/object/apply:os.system ['echo pwned > pwned.txt']",
    "dataset: !!python/object/new:subprocess.Popen [['touch', 'pwned.txt']]",
    "a: &a [*a]",
    "dataset: {name: custom, root: data}\nseed: .nan\n",
    "dataset: {name: custom, root: data}\nmodel: {contamination: .inf}\n",
    "- [" * 2000 + "]" * 2000,
    "a: b: c",
]


def _check(path):
    try:
        config = build_config(read_config_file(path))
    except ConfigError as exc:
        assert str(exc).strip()
        return
    assert config.dataset.name and config.dataset.root


def test_random_json_configs_parse_or_raise_config_error(tmp_path, fuzz_budget, fuzz_case):
    path = tmp_path / "cfg.json"

    @settings(max_examples=fuzz_budget["workbench read_config_file + build_config (JSON)"])
    @given(doc=documents(), raw=st.sampled_from([None, '{"seed": NaN, "dataset": {"name": "custom", "root": "d"}}',
                                                 '{"dataset": {}, "dataset": {}}', "[" * 5000, "{"]))
    def check(doc, raw):
        path.write_text(raw if raw is not None and doc == {} else json.dumps(doc), encoding="utf-8")
        with fuzz_case():
            _check(path)

    check()
    assert fuzz_case.count >= 0.8 * fuzz_budget["workbench read_config_file + build_config (JSON)"]


def test_yaml_configs_never_build_python_objects(tmp_path, fuzz_budget, fuzz_case):
    path = tmp_path / "cfg.yaml"
    for text in YAML_ATTACKS:
        path.write_text(text, encoding="utf-8")
        with fuzz_case():  # also asserts that nothing (pwned.txt) appeared in the working folder
            _check(path)
    assert fuzz_case.count == len(YAML_ATTACKS) == fuzz_budget["workbench read_config_file (YAML attacks)"]
