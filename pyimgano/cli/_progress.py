"""A minimal progress bar on stderr, drawn only when stderr is a terminal.

stdout carries JSONL records and must stay machine-readable, so the bar never
touches it; when stderr is a file or a pipe (CI logs) nothing is drawn.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress", "StageProgress"]


class Progress:
    """``with Progress("scoring", total) as bar: bar.update(k)``; ``bar.set(n)`` sets the count."""

    def __init__(self, label: str, total: int | None, *, stream: TextIO | None = None, enabled: bool | None = None):
        self.label = label
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self.count = 0
        self._start = time.perf_counter()
        self._last_draw = 0.0

    def __enter__(self) -> "Progress":
        self._draw(force=True)
        return self

    def __exit__(self, *exc_info) -> None:
        self._draw(force=True)
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()

    def update(self, n: int = 1) -> None:
        self.set(self.count + n)

    def set(self, count: int) -> None:
        self.count = int(count)
        self._draw()

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        elapsed = now - self._start
        rate = self.count / elapsed if elapsed > 0 else 0.0
        if self.total:
            frac = min(1.0, self.count / self.total)
            filled = int(round(30 * frac))
            bar = "#" * filled + "-" * (30 - filled)
            text = f"\r{self.label} [{bar}] {self.count}/{self.total} {rate:.1f} img/s"
        else:
            text = f"\r{self.label} {self.count} {rate:.1f} img/s"
        self.stream.write(text)
        self.stream.flush()


class StageProgress:
    """A ``progress(stage, done, total)`` callable (as the library's fit / calibrate take) drawing
    one :class:`Progress` bar per stage on ``stream`` (only when it is a terminal)."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream
        self._stage: str | None = None
        self._bar: Progress | None = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self._stage:
            self.close()
            self._stage, self._bar = stage, Progress(stage, total, stream=self.stream).__enter__()
        self._bar.set(done)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._stage, self._bar = None, None

    def __enter__(self) -> "StageProgress":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
