"""What every pyimgano command shares: the parser, ``--version``, ``-q/-v`` logging, exit codes.

- :class:`CliParser`: ``allow_abbrev=False`` (a prefix of a flag is an error, so a
  future flag can never change what a deployed command line means), errors as one
  ``prog: error: ...`` line with a pointer to ``--help`` and exit code 2.
- :func:`add_standard_flags`: ``--version``, ``-q/--quiet``, ``-v/--verbose``.
- :func:`run_command`: parse, set up logging on stderr (a start and a summary line
  appear even when stderr is not a terminal), run, and map failures to exit codes:
  :class:`UsageError` -> 2, ``KeyboardInterrupt`` -> 130, a closed stdout pipe
  (``| head``) -> a quiet exit with 141 (128 + SIGPIPE, as other Unix tools),
  anything else -> one line and 2 (``PYIMGANO_DEBUG=1`` re-raises for a traceback).
- argparse types that name the bad value and the accepted ones.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import sys
from pathlib import Path
from typing import Callable, Sequence, TextIO

from pyimgano._version import __version__

__all__ = [
    "UsageError",
    "CliParser",
    "add_standard_flags",
    "configure_logging",
    "run_command",
    "int_type",
    "float_type",
    "quantile_type",
    "json_object",
    "EXIT_PIPE_CLOSED",
]

EXIT_PIPE_CLOSED = 141

log = logging.getLogger("pyimgano")


class UsageError(ValueError):
    """A bad flag, config or input: reported on one line, exit code 2."""


class CliParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` with ``allow_abbrev=False`` and one-line errors (exit code 2)."""

    out_stream: TextIO | None = None
    err_stream: TextIO | None = None

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def print_help(self, file=None):
        super().print_help(file if file is not None else (self.out_stream or sys.stdout))

    def _print_message(self, message, file=None):  # argparse hook used by --version
        if message:
            (file if file not in (None, sys.stdout) else (self.out_stream or sys.stdout)).write(message)

    def error(self, message: str):  # noqa: D401 - argparse API
        (self.err_stream or sys.stderr).write(
            f"usage: {self.prog} [options] (see --help)\n{self.prog}: error: {message}\n"
        )
        raise SystemExit(2)


def add_standard_flags(parser: argparse.ArgumentParser) -> None:
    """``--version``, ``-q/--quiet`` and ``-v/--verbose`` (logging levels WARNING / INFO / DEBUG)."""
    parser.add_argument("--version", action="version", version=f"{parser.prog} (pyimgano) {__version__}")
    parser.add_argument("-q", "--quiet", action="count", default=0, help="less on stderr: warnings and errors only")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more on stderr (debug details)")


class _Formatter(logging.Formatter):
    def __init__(self, prog: str):
        super().__init__()
        self.prog = prog

    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        return f"{self.prog}: {level}{record.getMessage()}"


@contextlib.contextmanager
def configure_logging(prog: str, stream: TextIO, verbosity: int):
    """While the block runs, the ``pyimgano`` loggers write to ``stream`` at INFO (``verbosity`` 0),
    WARNING (< 0) or DEBUG (> 0), as ``prog: message`` / ``prog: warning: message``.

    The logger's previous level, handlers' routing and propagation come back afterwards, so
    in-process callers (tests, services) can run several commands.
    """
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_Formatter(prog))
    level = logging.INFO if verbosity == 0 else (logging.WARNING if verbosity < 0 else logging.DEBUG)
    saved = (log.level, log.propagate)
    log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False
    try:
        yield handler
    finally:
        log.removeHandler(handler)
        log.setLevel(saved[0])
        log.propagate = saved[1]


def _silence_stdout() -> None:
    """After a closed pipe: point stdout at /dev/null so the interpreter's final flush stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # pragma: no cover - stdout without a file descriptor
        pass


def run_command(
    prog: str,
    parser: CliParser,
    body: Callable[[argparse.Namespace, TextIO, TextIO], int],
    argv: Sequence[str] | None,
    stdout: TextIO | None,
    stderr: TextIO | None,
) -> int:
    """Parse ``argv`` and run ``body(args, stdout, stderr)``, mapping failures to exit codes (module docstring)."""
    stdout = stdout if stdout is not None else sys.stdout
    stderr = stderr if stderr is not None else sys.stderr
    parser.out_stream, parser.err_stream = stdout, stderr
    try:
        args = parser.parse_args(None if argv is None else list(argv))
    except SystemExit as exc:  # --help / --version (0) or a bad flag (2, message already printed)
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    verbosity = getattr(args, "verbose", 0) - getattr(args, "quiet", 0)
    with configure_logging(prog, stderr, verbosity):
        return _run_body(body, args, stdout, stderr)


def _run_body(body, args, stdout: TextIO, stderr: TextIO) -> int:
    try:
        return body(args, stdout, stderr)
    except UsageError as exc:
        log.error("%s", exc)
        return 2
    except BrokenPipeError:
        if stdout is sys.stdout:
            _silence_stdout()
        return EXIT_PIPE_CLOSED
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - one line for operators; the traceback on request
        if os.environ.get("PYIMGANO_DEBUG"):
            raise
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        log.error("%s: %s (set PYIMGANO_DEBUG=1 for a traceback)", type(exc).__name__, detail)
        return 2


# -- argparse types ---------------------------------------------------------------------------


def int_type(minimum: int | None = None) -> Callable[[str], int]:
    """An integer (``>= minimum``); the error names the value and what is accepted."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid value {text!r}; accepted: an integer") from None
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"invalid value {text!r}; accepted: an integer >= {minimum}")
        return value

    parse.__name__ = "int"
    return parse


def float_type(text: str) -> float:
    """A finite number."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}; accepted: a finite number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"invalid value {text!r}; accepted: a finite number")
    return value


def quantile_type(text: str) -> float:
    """A number in [0, 1]."""
    value = float_type(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}; accepted: a number in [0, 1]")
    return value


def json_object(what: str) -> Callable[[str], dict]:
    """A JSON object given inline, as ``@file``, or as a path ending in ``.json``."""

    def parse(text: str) -> dict:
        source = text
        if text.startswith("@") or (text.lower().endswith(".json") and Path(text).is_file()):
            path = Path(text[1:] if text.startswith("@") else text)
            try:
                source = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise argparse.ArgumentTypeError(f"cannot read {what} file {str(path)!r}: {exc.strerror or exc}") from None
        try:
            value = json.loads(source)
        except json.JSONDecodeError as exc:
            raise argparse.ArgumentTypeError(
                f"invalid {what} {text!r}: not JSON ({exc.msg}); accepted: a JSON object"
            ) from None
        if not isinstance(value, dict):
            raise argparse.ArgumentTypeError(f"invalid {what} {text!r}; accepted: a JSON object such as '{{\"key\": 1}}'")
        return value

    parse.__name__ = "json"
    return parse
