"""``pyimgano-benchmark``: list detectors by capability (SPEC section 9).

    pyimgano-benchmark --list-models [--tags numpy,pixel_map] [--json]
    pyimgano-benchmark --model-info NAME [--json]

Exit codes: 0 ok; 2 bad flags, an unknown tag or detector (the message lists the
accepted ones). Accuracy and speed runs live in ``benchmarks/`` and, for datasets,
in the workbench recipes.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence, TextIO

from pyimgano.cli._discovery import DiscoveryError, list_models, model_info, parse_tags

__all__ = ["main", "build_parser"]

PROG = "pyimgano-benchmark"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="List pyimgano detectors and their capabilities.")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--list-models", action="store_true", help="print registered detector names and exit")
    what.add_argument("--model-info", metavar="NAME", help="describe one detector (tags, config fields)")
    p.add_argument("--tags", type=parse_tags, default=None,
                   help="with --list-models: only detectors having all these comma-separated tags")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run ``pyimgano-benchmark``; returns the exit code."""
    stdout = stdout if stdout is not None else sys.stdout
    stderr = stderr if stderr is not None else sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(None if argv is None else list(argv))
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    try:
        if args.tags is not None and not args.list_models:
            raise DiscoveryError("--tags filters --list-models; add --list-models")
        if args.list_models:
            return list_models(args.tags, args.json, stdout)
        return model_info(args.model_info, args.json, stdout)
    except DiscoveryError as exc:
        print(f"{PROG}: error: {exc}", file=stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
