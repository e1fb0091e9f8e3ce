"""Keep what native decoders print on the process's stderr out of a command's output.

libpng (``libpng error: IDAT: CRC error``), libjpeg (``Corrupt JPEG data: ...``)
and libtiff write straight to file descriptor 2, under any Python logging
setup. :func:`native_stderr_to_log` points descriptor 2 at a temporary file
while a decoder runs and hands what it caught to a logger at DEBUG level, so an
operator sees one clear error per bad file (and the decoder's words with ``-v``).

While the block runs, anything another thread writes to descriptor 2 lands in
the same log record; blocks are serialised by a lock. Where descriptor 2 cannot
be duplicated (closed, or not a file descriptor), the block runs unchanged.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import threading
from typing import Iterator

__all__ = ["native_stderr_to_log"]

_LOCK = threading.Lock()
_FD = 2
_MAX_LOGGED = 2000  # characters of decoder output kept in one log record


@contextlib.contextmanager
def native_stderr_to_log(logger: logging.Logger, what: str) -> Iterator[None]:
    """Run the block with descriptor 2 captured; log the capture (if any) as ``what: text``."""
    with _LOCK:
        try:
            sys.stderr.flush()
        except (AttributeError, OSError, ValueError):
            pass
        try:
            saved = os.dup(_FD)
        except OSError:
            yield
            return
        capture = tempfile.TemporaryFile()
        try:
            os.dup2(capture.fileno(), _FD)
            try:
                yield
            finally:
                os.dup2(saved, _FD)
            capture.seek(0)
            text = capture.read(_MAX_LOGGED).decode("utf-8", "replace").strip()
            if text:
                logger.debug("%s: decoder said: %s", what, " | ".join(text.splitlines()))
        finally:
            os.close(saved)
            capture.close()
