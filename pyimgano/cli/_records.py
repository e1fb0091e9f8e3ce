"""JSONL record output: one line per input, keys sorted, flushed as soon as it is written.

A line is serialised completely before anything is written, then handed to the
stream in one ``write`` and flushed (and, for files, ``fsync``-ed), so a crash
or a later error never leaves a half-written record: every line in the file
is a complete JSON object.
"""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path
from typing import Any, Mapping, TextIO


from pyimgano.fileio import json_plain

__all__ = ["RecordWriter", "error_record", "dumps_record"]


def dumps_record(record: Mapping[str, Any]) -> str:
    """One JSONL line (with its newline): plain types, keys sorted, no NaN."""
    return json.dumps(json_plain(record), sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


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
    the whole line at once and flushes it. With ``keep_bytes`` (``--resume``) the
    file is cut after its first ``keep_bytes`` bytes (the complete records kept)
    and appended to, instead of created fresh.
    """

    def __init__(self, path: str | os.PathLike | None, *, stream: TextIO | None = None,
                 keep_bytes: int | None = None):
        self.path = None if path is None else Path(path)
        self._stream = stream
        self._owned: TextIO | None = None
        self._keep = keep_bytes
        self.count = 0

    def __enter__(self) -> "RecordWriter":
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self._keep is not None and self.path.exists():
                os.truncate(self.path, self._keep)
                self._owned = open(self.path, "a", encoding="utf-8", newline="\n")
            else:
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
