"""``pyimgano-export``: write a fitted state as deployable StableHLO and ONNX artifacts.

    pyimgano-export --checkpoint-path STATE -o DIR [--format stablehlo,onnx] [--batch-size B]
                    [--frame-size H W] [--platforms cpu,cuda,tpu] [--drop-postprocess] [--parity-tolerance X]
    pyimgano-export --from-run RUN [--from-run-category CAT] -o DIR ...

Writes ``DIR/model.stablehlo`` (``jax.export``), ``DIR/model.onnx`` and ``DIR/export.json``
(shapes, thresholds, parity) through :func:`pyimgano.export.export_state`, then checks each
artifact, loaded as a service loads it, against :func:`pyimgano.predict`. Exit codes: 0 ok;
1 an artifact was written but differs from the library by more than the tolerance; 2 bad
flags, state or missing extra. Reference: ``docs/export.md``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence, TextIO

from pyimgano.cli.common import CliParser, UsageError, add_standard_flags, float_type, int_type, run_command
from pyimgano.export import DEFAULT_PLATFORMS, EXPORT_FORMATS, export_state, parity_tolerance
from pyimgano.state import load_state
from pyimgano.workbench import InferConfigError, find_run_infer_config, load_infer_config

__all__ = ["main", "build_parser", "PROG"]

PROG = "pyimgano-export"
log = logging.getLogger("pyimgano.cli")


def _names(what: str, accepted: Sequence[str] | None):
    def parse(text: str) -> tuple[str, ...]:
        names = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
        bad = [n for n in names if accepted is not None and n not in accepted]
        if bad or not names:
            raise argparse.ArgumentTypeError(f"invalid {what} {text!r}; accepted: a comma-separated list of "
                                             f"{', '.join(accepted or ())}")
        return names

    parse.__name__ = what
    return parse


def build_parser() -> CliParser:
    p = CliParser(prog=PROG, description="Export a fitted pyimgano state as a jax.export (StableHLO) artifact and as ONNX, "
                  "each taking canonical u8 RGB frames and returning scores and anomaly maps.",
                  epilog="Exit codes: 0 ok; 1 parity above the tolerance; 2 bad flags, state or missing extra. "
                  "See docs/export.md.")
    add_standard_flags(p)
    g = p.add_argument_group("state")
    g.add_argument("--checkpoint-path", metavar="FILE", default=None, help="a saved detector state (pyimgano.save_state)")
    g.add_argument("--from-run", metavar="DIR", default=None,
                   help="a run directory: exports the state its artifacts/infer_config.json names")
    g.add_argument("--from-run-category", metavar="CAT", default=None, help="category of a multi-category run")
    g = p.add_argument_group("artifacts")
    g.add_argument("-o", "--output-dir", metavar="DIR", required=True, help="folder for model.stablehlo, model.onnx, export.json")
    g.add_argument("--format", type=_names("format", EXPORT_FORMATS), default=EXPORT_FORMATS,
                   help=f"comma-separated formats (default: {','.join(EXPORT_FORMATS)}; onnx needs pip install 'pyimgano[onnx]')")
    g.add_argument("--batch-size", type=int_type(1), default=1, help="frames per call, fixed in the artifact (default: 1)")
    g.add_argument("--frame-size", type=int_type(1), nargs=2, metavar=("H", "W"), default=None,
                   help="frame size the artifact takes; resized to the model size inside it "
                   "(default: the model's image_size)")
    g.add_argument("--platforms", type=_names("platforms", ("cpu", "cuda", "rocm", "tpu")), default=DEFAULT_PLATFORMS,
                   help=f"StableHLO lowering platforms, one artifact for all (default: {','.join(DEFAULT_PLATFORMS)})")
    g.add_argument("--drop-postprocess", action="store_true",
                   help="export raw maps of a state that carries map post-processing (host-side, not exportable)")
    g.add_argument("--parity-tolerance", type=float_type, default=None, metavar="X",
                   help="largest accepted difference from pyimgano.predict, relative to max(1, |value|) "
                   "(default: 1e-4; 1e-2 when the artifact resizes frames, see docs/export.md)")
    return p


def _state_path(args) -> str:
    if (args.checkpoint_path is None) == (args.from_run is None):
        raise UsageError("name the state with one of --checkpoint-path FILE or --from-run DIR")
    if args.from_run_category and not args.from_run:
        raise UsageError("--from-run-category needs --from-run DIR")
    if args.checkpoint_path is not None:
        return args.checkpoint_path
    try:
        config = load_infer_config(find_run_infer_config(args.from_run, args.from_run_category),
                                   category=args.from_run_category)
    except InferConfigError as exc:
        raise UsageError(str(exc)) from None
    if config.checkpoint_path is None:
        raise UsageError(f"{config.path} names no model.checkpoint_path to export")
    return config.checkpoint_path


def _body(args, stdout: TextIO, stderr: TextIO) -> int:
    path = _state_path(args)
    try:
        state = load_state(path)
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(f"state {path!r}: {exc}") from None
    frame_hw = tuple(args.frame_size) if args.frame_size else None
    log.info("exporting %s (%s) as %s, batch %d", path, state.detector, ",".join(args.format), args.batch_size)
    try:
        manifest = export_state(state, args.output_dir, formats=args.format, batch_size=args.batch_size,
                                frame_hw=frame_hw, platforms=args.platforms, drop_postprocess=args.drop_postprocess)
    except (ValueError, ImportError) as exc:
        raise UsageError(str(exc)) from None
    tolerance = args.parity_tolerance if args.parity_tolerance is not None else parity_tolerance(state, frame_hw)
    failed = False
    for fmt, name in manifest["files"].items():
        diff = manifest["parity"][fmt]
        ok = diff["relative"] <= tolerance
        failed |= not ok
        size = (Path(args.output_dir) / name).stat().st_size
        stdout.write(f"{fmt}\t{Path(args.output_dir) / name}\t{size} bytes\tmax |score diff| {diff['max_abs_score']:.3g}"
                     f"\tmax |map diff| {diff['max_abs_map']:.3g}\t{'ok' if ok else 'ABOVE TOLERANCE'}\n")
    if failed:
        log.error("an artifact differs from pyimgano.predict by more than %g (relative); see %s",
                  tolerance, Path(args.output_dir) / "export.json")
        return 1
    log.info("done: %s", Path(args.output_dir) / "export.json")
    return 0


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run ``pyimgano-export``; returns the exit code."""
    return run_command(PROG, build_parser(), _body, argv, stdout, stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
