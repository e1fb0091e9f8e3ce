"""Output paths of a ``pyimgano-infer`` run, checked before any work and cleaned of a killed run's debris.

Every file the run will write (``--save-jsonl``, ``--profile-json``, the run record
beside the JSONL, ``--save-run``'s files) is checked at start: its folder exists or
can be created, a file can be created in it (a real probe, so a read-only mount or
an ACL is found too), the path is not a folder, an existing file is writable, and
no two outputs name the same file. A bad path is one ``UsageError`` (exit 2) naming
the flag and the path, before a model is fitted or an image scored. Temporary files
of those targets' own pattern (``.tmp-<name>.<random>.part``), left by a process
that was killed while writing, are removed at the same time.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable

from pyimgano.cli.common import UsageError
from pyimgano.fileio import TEMP_PREFIX, TEMP_SUFFIX, remove_stale_temp_files

__all__ = ["check_writable_folder", "check_output_file", "check_distinct", "remove_stale_temp_files"]


def check_writable_folder(folder: str | os.PathLike, flag: str) -> Path:
    """Create ``folder`` if needed and prove a file can be created in it.

    Raises:
      UsageError: it is a file, cannot be created, or is not writable (the message names ``flag``).
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{flag} {str(folder)!r}: not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}probe.", suffix=TEMP_SUFFIX, dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(f"{flag} {str(folder)!r} is not writable: {exc.strerror or exc}") from None
    return folder


def check_output_file(path: str | os.PathLike, flag: str) -> Path:
    """Check that ``path`` can be written (module docstring) without changing an existing file.

    Raises:
      UsageError: the path is a folder, its folder is not writable, or the file
        exists and cannot be opened for writing.
    """
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{flag} {str(path)!r} is a folder; give a file path")
    check_writable_folder(path.parent if str(path.parent) else Path("."), f"{flag}'s folder")
    if path.exists():
        try:
            with open(path, "ab"):
                pass
        except OSError as exc:
            raise UsageError(f"{flag} {str(path)!r} is not writable: {exc.strerror or exc}") from None
    return path


def check_distinct(outputs: Iterable[tuple[str, str | os.PathLike | None]]) -> None:
    """Raise UsageError when two flags name the same output file."""
    seen: dict[str, str] = {}
    for flag, path in outputs:
        if path is None:
            continue
        key = os.path.normcase(os.path.abspath(os.fspath(path)))
        if key in seen:
            raise UsageError(f"{seen[key]} and {flag} name the same file {str(path)!r}; give each its own")
        seen[key] = flag
