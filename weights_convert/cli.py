"""``pyimgano-convert-weights SRC --arch NAME -o DST``: PyTorch checkpoint -> pyimgano safetensors."""

from __future__ import annotations

import argparse
import sys

from pyimgano import __version__
from weights_convert.convert import convert_checkpoint
from weights_convert.mapping import ConversionError
from weights_convert.mappings import MAPPING_ARCHS
from weights_convert.reader import CheckpointFormatError, UnsafeCheckpointError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pyimgano-convert-weights",
        allow_abbrev=False,
        description="Convert a PyTorch checkpoint (.pth/.pt, zip or legacy format) into Flax variables for a "
        "pyimgano backbone. The checkpoint is parsed without torch by an allow-list unpickler: a file that "
        "references any other Python global is refused, never executed.",
    )
    parser.add_argument("src", nargs="?", help="PyTorch checkpoint (a state_dict, possibly under 'state_dict'/'model')")
    parser.add_argument("--arch", choices=MAPPING_ARCHS, metavar="NAME", help=f"backbone: one of {list(MAPPING_ARCHS)}")
    parser.add_argument("-o", "--output", metavar="DST", help="output .safetensors file")
    parser.add_argument("--list-archs", action="store_true", help="print the supported archs and exit")
    parser.add_argument("--version", action="version", version=f"pyimgano-convert-weights (pyimgano) {__version__}")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the converter; returns the exit status (0 ok, 2 usage or conversion error, one line on stderr)."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse already printed its message
        return int(exit_.code or 0)
    if args.list_archs:
        print("\n".join(MAPPING_ARCHS))
        return 0
    missing = [name for name, value in (("SRC", args.src), ("--arch", args.arch), ("-o/--output", args.output)) if not value]
    if missing:
        print(f"pyimgano-convert-weights: error: missing {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        variables, metadata = convert_checkpoint(args.src, arch=args.arch, dst=args.output)
    except (FileNotFoundError, UnsafeCheckpointError, CheckpointFormatError, ConversionError, ValueError, OSError) as err:
        message = " ".join(str(err).split())  # one line, even for multi-line ConversionError reports
        print(f"pyimgano-convert-weights: error: {type(err).__name__}: {message}", file=sys.stderr)
        return 2
    n_tensors = sum(len(_leaves(tree)) for tree in variables.values())
    n_values = sum(int(leaf.size) for tree in variables.values() for leaf in _leaves(tree))
    print(
        f"converted {args.src} -> {args.output}: arch {metadata['arch']}, {n_tensors} tensors, "
        f"{n_values} values, source sha256 {metadata['source_sha256'][:16]}"
    )
    return 0


def _leaves(tree) -> list:
    if isinstance(tree, dict):
        return [leaf for value in tree.values() for leaf in _leaves(value)]
    return [tree]


if __name__ == "__main__":
    sys.exit(main())
