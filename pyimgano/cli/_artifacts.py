"""Artifact names and folders: each input's relative path, never colliding, never escaping.

Names: an input's path relative to the folder (or glob prefix, or file parent) its
``--input`` named, without its extension: ``--input test`` gives ``test/good/000.png``
the name ``good/000``, so its map is ``MAPS/good/000.npy``. Each path component is
reduced to ASCII letters, digits, ``-``, ``_`` and ``.`` (anything else becomes
``_``), without leading dots, at most 80 characters; names that still coincide
(case-insensitively, e.g. two ``--input`` folders holding ``a.png``) all get their
input index appended (``a__000003``). Every final path is checked to lie inside its
output folder.

Folders: a run owns what it writes. It records the files it is about to write in
``<folder>/.pyimgano-artifacts.json``; the next run into the same folder first
removes the files that manifest lists (so no stale map of an earlier run remains
beside the new ones) and refuses to start when one of its targets exists but is
not listed there (a file it does not own is never overwritten). Other files in the
folder are left alone. ``--resume`` keeps the files of the inputs already recorded.
Temporary files a killed writer left for any of the targets are removed first.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Iterable, Sequence

from pyimgano.cli._outputs import check_writable_folder
from pyimgano.cli.common import UsageError
from pyimgano.fileio import atomic_write_json, remove_stale_temp_files

__all__ = ["MANIFEST_NAME", "safe_component", "artifact_names", "ArtifactFolder"]

MANIFEST_NAME = ".pyimgano-artifacts.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_COMPONENT = 80


def safe_component(part: str) -> str:
    """One file-name-safe path component (see the module docstring); never empty, never ``.``/``..``."""
    cleaned = _UNSAFE.sub("_", str(part)).lstrip(".")
    cleaned = re.sub(r"_+", "_", cleaned)[:_MAX_COMPONENT].strip("_")
    return cleaned or "input"


def artifact_names(relative_stems: Sequence[str]) -> list[str]:
    """Unique, safe relative names (``/``-separated, no extension) for the inputs, in input order."""
    names = ["/".join(safe_component(p) for p in re.split(r"[\\/]+", stem) if p not in ("", ".", ".."))
             or "input" for stem in relative_stems]
    counts: dict[str, int] = {}
    for name in names:
        counts[name.lower()] = counts.get(name.lower(), 0) + 1
    return [f"{name}__{i:06d}" if counts[name.lower()] > 1 else name for i, name in enumerate(names)]


class ArtifactFolder:
    """An output folder of one artifact kind (maps, masks or overlays) with one extension."""

    def __init__(self, folder: str | os.PathLike, ext: str):
        self.folder = Path(folder)
        self.ext = str(ext).lstrip(".")

    def path_for(self, name: str) -> Path:
        """``folder/name.ext``, verified to stay inside the folder."""
        path = self.folder / f"{name}.{self.ext}"
        root = self.folder.resolve()
        if root not in path.resolve().parents:
            raise ValueError(f"artifact {path} would escape the output folder {self.folder}")
        return path

    def _owned(self) -> set[str]:
        manifest = self.folder / MANIFEST_NAME
        if not manifest.is_file():
            return set()
        try:
            files = json.loads(manifest.read_text(encoding="utf-8")).get("files", [])
        except (OSError, ValueError, AttributeError):
            raise UsageError(f"{manifest} is not a readable pyimgano artifact manifest; remove it or pick another folder")
        return {str(f) for f in files if isinstance(f, str)}

    def prepare(self, names: Iterable[str], keep: Iterable[str] = ()) -> None:
        """Claim the folder for these names: remove the previous run's files, refuse foreign ones.

        ``keep`` names artifacts of the previous run that stay (``--resume``: inputs
        already recorded). Temporary files a killed writer left for any target are removed.

        Raises:
          UsageError: the folder cannot be created or written (a file is created and
            removed to prove it), or a target exists that no pyimgano run wrote.
        """
        targets = {self.path_for(name).relative_to(self.folder).as_posix() for name in names}
        kept = {self.path_for(name).relative_to(self.folder).as_posix() for name in keep}
        check_writable_folder(self.folder, "output folder")
        owned = self._owned()
        foreign = sorted(t for t in targets if t not in owned and (self.folder / t).exists())
        if foreign:
            shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
            raise UsageError(
                f"{self.folder} already holds {shown}, not written by a pyimgano run; "
                "pick an empty folder or remove those files (pyimgano never overwrites files it does not own)"
            )
        remove_stale_temp_files([self.folder / MANIFEST_NAME, *(self.folder / t for t in targets | owned)])
        for rel in sorted(owned - kept):
            stale = self.folder / rel
            if stale.is_file() and self.folder.resolve() in stale.resolve().parents:
                stale.unlink()
        atomic_write_json(self.folder / MANIFEST_NAME, {"files": sorted(targets)})
