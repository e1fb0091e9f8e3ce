"""The promises of docs/SECURITY.md that a source scan can keep: no code from data, fuzz counts as documented."""

import ast
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGES = ("pyimgano", "models_jax", "weights_convert")
ALLOWED_PICKLE = {os.path.join("weights_convert", "reader.py")}  # the allow-list unpickler


def _sources():
    for package in PACKAGES:
        for base, _, files in os.walk(os.path.join(ROOT, package)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(base, name)
                    yield os.path.relpath(path, ROOT), ast.parse(open(path, encoding="utf-8").read())


def _call_name(node: ast.Call) -> str:
    func = node.func
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return ".".join(reversed(parts))


def test_no_eval_exec_unsafe_yaml_or_pickle_loading_in_the_packages():
    found = []
    for path, tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = _call_name(node)
                if name in ("eval", "exec", "compile", "yaml.load", "yaml.unsafe_load", "marshal.loads",
                            "torch.load") or (name in ("pickle.load", "pickle.loads", "pickle.Unpickler")
                                              and path not in ALLOWED_PICKLE):
                    found.append(f"{path}:{node.lineno} {name}")
                for kw in node.keywords:
                    if kw.arg == "allow_pickle" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                        found.append(f"{path}:{node.lineno} allow_pickle={ast.unparse(kw.value)}")
    assert found == []


def test_the_fuzz_table_in_security_md_matches_the_budgets(fuzz_budget):
    text = open(os.path.join(ROOT, "docs", "SECURITY.md"), encoding="utf-8").read()
    rows = dict(re.findall(r"^\| `([^`]+)` \| (\d+) \|", text, flags=re.M))
    assert {k: int(v) for k, v in rows.items()} == fuzz_budget
    total = re.search(r"Total: ([\d,]+) cases", text).group(1)
    assert int(total.replace(",", "")) == sum(fuzz_budget.values())
