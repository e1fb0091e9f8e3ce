"""The run directory of ``pyimgano-train`` (SPEC section 9) and how it is written safely::

    <run>/report.json                      the run: status, recipe, categories, aggregate
    <run>/config.json                      the effective config (recipe defaults applied)
    <run>/environment.json                 versions, JAX backend and devices, command line
    <run>/report.html                      one self-contained page (pictures embedded)
    <run>/categories/<cat>/report.json     metrics, thresholds with provenance, split, timings
    <run>/categories/<cat>/per_image.jsonl one record per test image
    <run>/categories/<cat>/plots/{roc,pro,score_histogram}.png
    <run>/categories/<cat>/review/*.png    worst-scored normal / hardest anomalous overlays
    <run>/checkpoints/<cat>/<checkpoint_name>   the calibrated DetectorState (safetensors)
    <run>/artifacts/maps/<cat>/<type>/<stem>.npy   anomaly maps (adaptation.save_maps)
    <run>/artifacts/infer_config.json      with --export-infer-config

Every file is written atomically (:mod:`pyimgano.fileio`), every JSON with sorted keys, every
report with ``schema_version``, ``timestamp_utc`` and ``pyimgano_version``. The run's
``report.json`` is written first with ``"status": "running"`` and replaced by ``"complete"``
only after everything else exists; a failure or an interrupt rewrites it as ``"failed"`` /
``"interrupted"``. So an interrupted run never leaves a report.json that looks complete.

A run folder must be new, empty, or an earlier run (its report.json says so): the earlier run's
report.json is first marked ``running``, then only the layout entries above are removed, except
that an unfinished earlier run (not ``complete``) keeps its ``checkpoints/<cat>/training``
folders, so a trained detector resumes where it stopped. Any other non-empty folder is refused,
so no file a run did not write is ever deleted.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import shutil
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Mapping, Sequence

import jax

from pyimgano._version import __version__
from pyimgano.fileio import atomic_write_bytes, atomic_write_json
from pyimgano.workbench.schema import ConfigError

__all__ = [
    "REPORT_FORMAT",
    "REPORT_SCHEMA_VERSION",
    "RUN_LAYOUT",
    "TRAINING_DIR",
    "RunDir",
    "report_header",
    "utc_timestamp",
    "environment_info",
    "category_dirname",
    "display_name",
]

REPORT_FORMAT = "pyimgano-workbench-report"
REPORT_SCHEMA_VERSION = 1
#: The entries of a run folder that a new run into the same folder replaces.
RUN_LAYOUT = ("report.json", "config.json", "environment.json", "report.html", "categories", "checkpoints", "artifacts")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: ``checkpoints/<cat>/<TRAINING_DIR>``: a trained detector's resumable checkpoint.
TRAINING_DIR = "training"


def utc_timestamp() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def report_header(kind: str) -> dict[str, Any]:
    """The keys every report carries."""
    return {
        "format": REPORT_FORMAT,
        "kind": kind,
        "schema_version": REPORT_SCHEMA_VERSION,
        "timestamp_utc": utc_timestamp(),
        "pyimgano_version": __version__,
    }


def display_name(category: str) -> str:
    """How reports name a category: itself, or ``default`` for ``""`` (a dataset root without categories)."""
    return category or "default"


def category_dirname(category: str) -> str:
    """The folder name of a category: file-name safe; ``""`` (a root without categories) is ``default``.

    Raises:
        ConfigError: a name that is not file-name safe (the manifest or folder name must change).
    """
    if category == "":
        return "default"
    safe = _UNSAFE.sub("_", category).lstrip(".")
    if safe != category or category in (".", ".."):
        raise ConfigError(f"dataset.category: {category!r} cannot name a folder; use letters, digits, '.', '-', '_'")
    return safe


def _version(distribution: str) -> str | None:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def environment_info(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Versions, platform, the JAX backend and devices, and the command line (environment.json)."""
    packages = ("jax", "jaxlib", "flax", "optax", "numpy", "opencv-python-headless", "safetensors", "matplotlib", "PyYAML")
    return {
        **report_header("environment"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "packages": {name: _version(name) for name in packages},
        "jax_backend": jax.default_backend(),
        "jax_devices": [str(d) for d in jax.local_devices()],
        "argv": list(sys.argv if argv is None else argv),
    }


def _previous_status(folder: Path) -> str | None:
    """The status of the earlier run in ``folder`` (``complete``, ``failed``, ...), or None when
    its report.json is not a workbench report."""
    try:
        report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(report, dict) or report.get("format") != REPORT_FORMAT:
        return None
    return str(report.get("status", "unknown"))


def _remove(target: Path) -> None:
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    elif target.exists() or target.is_symlink():
        target.unlink()


def _clear_checkpoints(folder: Path, keep_training: bool) -> None:
    """Remove ``checkpoints/``; with ``keep_training``, every ``checkpoints/<cat>/training`` stays."""
    if not keep_training or not folder.is_dir() or folder.is_symlink():
        _remove(folder)
        return
    for category in folder.iterdir():
        if category.is_dir() and not category.is_symlink():
            for entry in category.iterdir():
                if entry.name != TRAINING_DIR:
                    _remove(entry)
        else:
            _remove(category)


class RunDir:
    """An open run folder. Create one with :meth:`RunDir.create`."""

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def create(cls, path: str | os.PathLike, config_mapping: Mapping[str, Any], environment: Mapping[str, Any]) -> "RunDir":
        """Claim ``path`` (module docstring), then write report.json (running), config.json, environment.json.

        Raises:
            ConfigError: ``path`` is a file, or a non-empty folder that is not an earlier run.
        """
        folder = Path(path)
        if folder.exists() and not folder.is_dir():
            raise ConfigError(f"output.output_dir: {str(folder)!r} exists and is not a folder")
        run = cls(folder)
        if folder.is_dir() and any(folder.iterdir()):
            status = _previous_status(folder)
            if status is None:
                raise ConfigError(
                    f"output.output_dir: {str(folder)!r} is not empty and holds no earlier pyimgano-train run; "
                    "pick a new or empty folder (a run never deletes files it did not write)"
                )
            run.write_report({"status": "running", "note": f"replacing an earlier run ({status})"})
            for name in RUN_LAYOUT[1:]:
                if name == "checkpoints":
                    # An unfinished run's training checkpoints stay, so its training resumes.
                    _clear_checkpoints(folder / name, keep_training=status != "complete")
                else:
                    _remove(folder / name)
        run.write_report({"status": "running"})
        atomic_write_json(folder / "config.json", {**report_header("config"), "config": dict(config_mapping)})
        atomic_write_json(folder / "environment.json", dict(environment))
        return run

    # -- paths ---------------------------------------------------------------------------
    def category_dir(self, category: str) -> Path:
        return self.path / "categories" / category_dirname(category)

    def checkpoint_path(self, category: str, name: str) -> Path:
        return self.path / "checkpoints" / category_dirname(category) / name

    def training_dir(self, category: str) -> Path:
        """Where a trained detector keeps its resumable training checkpoint."""
        return self.path / "checkpoints" / category_dirname(category) / TRAINING_DIR

    def maps_dir(self, category: str) -> Path:
        return self.path / "artifacts" / "maps" / category_dirname(category)

    @property
    def infer_config_path(self) -> Path:
        return self.path / "artifacts" / "infer_config.json"

    def relative(self, path: str | os.PathLike) -> str:
        """``path`` relative to the run folder (``/``-separated)."""
        return Path(os.path.relpath(path, self.path)).as_posix()

    # -- writing -------------------------------------------------------------------------
    def write_report(self, body: Mapping[str, Any]) -> Path:
        """The run's report.json (header + ``body``), atomically."""
        return atomic_write_json(self.path / "report.json", {**report_header("run"), **body})

    def write_category(self, category: str, report: Mapping[str, Any], records: Sequence[Mapping[str, Any]] | None,
                       pictures: Mapping[str, bytes]) -> dict[str, str]:
        """A category's pictures (``{relative name: PNG}``), per_image.jsonl and report.json; returns
        the written files relative to the run folder (report.json last)."""
        folder = self.category_dir(category)
        files: dict[str, str] = {}
        for name, data in sorted(pictures.items()):
            files[name] = self.relative(atomic_write_bytes(folder / name, data))
        if records is not None:
            lines = "".join(json.dumps(r, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n" for r in records)
            files["per_image_jsonl"] = self.relative(atomic_write_bytes(folder / "per_image.jsonl", lines.encode("utf-8")))
        payload = {**report_header("category"), **report, "files": dict(files)}
        files["report"] = self.relative(atomic_write_json(folder / "report.json", payload))
        return files

    def write_html(self, html: str) -> str:
        return self.relative(atomic_write_bytes(self.path / "report.html", html.encode("utf-8")))
