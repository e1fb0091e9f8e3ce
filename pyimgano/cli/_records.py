"""JSONL record output: one line per input, keys sorted, flushed as soon as it is written.

A line is serialised completely before anything is written, then handed to the
stream in one ``write`` and flushed (and, for files, ``fsync``-ed), so a crash
or a later error never leaves a half-written record: every line in the file
is a complete JSON object.
"""

from __future__ import annotations

import io
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Mapping, TextIO

import numpy as np

from weights_convert.io import atomic_write_bytes

__all__ = ["RecordWriter", "to_plain", "error_record", "dumps_record", "atomic_write_json"]


def to_plain(value: Any) -> Any:
    """Plain JSON types: numpy scalars/arrays to Python, tuples to lists, NaN/inf to None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, np.ndarray):
        return to_plain(value.tolist())
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def dumps_record(record: Mapping[str, Any]) -> str:
    """One JSONL line (with its newline): plain types, keys sorted, no NaN."""
    return json.dumps(to_plain(record), sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def error_record(index: int, input_name: str, exc: BaseException, stage: str) -> dict[str, Any]:
    """``{index, input, status: "error", error: {type, message, stage}}`` for a failed input."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return {
        "index": int(index),
        "input": str(input_name),
        "status": "error",
        "error": {"type": type(exc).__name__, "message": message, "stage": stage},
    }


class RecordWriter:
    """Writes records to a JSONL file (created fresh) or to stdout.

    Use as a context manager. ``write(record)`` serialises first, then writes
    the whole line at once and flushes it.
    """

    def __init__(self, path: str | os.PathLike | None, *, stream: TextIO | None = None):
        self.path = None if path is None else Path(path)
        self._stream = stream
        self._owned: TextIO | None = None
        self.count = 0

    def __enter__(self) -> "RecordWriter":
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._owned = open(self.path, "w", encoding="utf-8", newline="\n")
        return self

    def __exit__(self, *exc_info) -> None:
        if self._owned is not None:
            self._owned.close()
            self._owned = None

    @property
    def stream(self) -> TextIO:
        if self._owned is not None:
            return self._owned
        return self._stream if self._stream is not None else sys.stdout

    def write(self, record: Mapping[str, Any]) -> None:
        line = dumps_record(record)
        stream = self.stream
        stream.write(line)
        stream.flush()
        if self._owned is not None:
            try:
                os.fsync(self._owned.fileno())
            except (OSError, io.UnsupportedOperation):  # pragma: no cover - e.g. pipes
                pass
        self.count += 1


def atomic_write_json(path: str | os.PathLike, payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` as pretty JSON via a temporary sibling and ``os.replace``."""
    text = json.dumps(to_plain(payload), sort_keys=True, indent=2, allow_nan=False) + "\n"
    return Path(atomic_write_bytes(path, text.encode("utf-8")))
