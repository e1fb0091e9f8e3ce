"""``pyimgano-benchmark``: list detectors by capability (SPEC section 9).

    pyimgano-benchmark --list-models [--tags numpy,pixel_map] [--json]
    pyimgano-benchmark --model-info NAME [--json]

Exit codes: 0 ok; 2 bad flags, an unknown tag or detector (the message lists the
accepted ones). Accuracy and speed runs live in ``benchmarks/``.
"""

from __future__ import annotations

import sys
from typing import Sequence, TextIO

from pyimgano.cli._discovery import DiscoveryError, list_models, model_info, parse_tags
from pyimgano.cli.common import CliParser, UsageError, add_standard_flags, run_command

__all__ = ["main", "build_parser"]

PROG = "pyimgano-benchmark"


def build_parser() -> CliParser:
    p = CliParser(prog=PROG, description="List pyimgano detectors and their capabilities.")
    add_standard_flags(p)
    what = p.add_mutually_exclusive_group()
    what.add_argument("--list-models", action="store_true", help="print registered detector names and exit")
    what.add_argument("--model-info", metavar="NAME", help="describe one detector (tags, config fields)")
    p.add_argument("--tags", type=parse_tags, default=None,
                   help="with --list-models: only detectors having all these comma-separated tags")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def _body(args, stdout: TextIO, stderr: TextIO) -> int:
    try:
        if args.tags is not None and not args.list_models:
            raise DiscoveryError("--tags filters --list-models; add --list-models")
        if args.list_models:
            return list_models(args.tags, args.json, stdout)
        if args.model_info is not None:
            return model_info(args.model_info, args.json, stdout)
    except DiscoveryError as exc:
        raise UsageError(str(exc)) from None
    raise UsageError("pass --list-models or --model-info NAME (see --help)")


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run ``pyimgano-benchmark``; returns the exit code."""
    return run_command(PROG, build_parser(), _body, argv, stdout, stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
