"""``pyimgano-infer --resume``: carry on after a kill and end with what an uninterrupted run writes.

Records are written in input order, one complete line at a time (flushed and
fsync-ed), each after its artifacts. So after a kill at any point the JSONL holds a
prefix of the records, maybe followed by part of one line, and the artifact folders
hold the files of those records, maybe of a few inputs past them, maybe a temporary
file. ``--resume`` (with ``--save-jsonl FILE``):

1. reads the *run record* ``FILE.pyimgano-run.json`` that every run with
   ``--save-jsonl`` writes before its first record: a hash of the input list, the
   settings that shape records (input format, maps, defects, artifact folders,
   batch size, decode limit) and the detector state's content hash. Resuming with
   other inputs or settings is refused (exit 2) and says what differs;
2. keeps the complete records that form the prefix ``0..k-1`` and whose artifacts
   all exist, drops a partial last line, and rounds ``k`` down to a whole batch so
   every input is scored in the same batch as in an uninterrupted run;
3. keeps those records' artifacts (the ownership manifest's other files are removed
   as usual, with any temporary file a killed writer left), builds the state, checks
   that its hash is the recorded one, cuts the JSONL after record ``k-1`` and goes on
   from input ``k``.

A JSONL without its run record cannot be resumed (exit 2): nothing says which run
wrote it. Without a JSONL there is nothing to resume, and the run starts afresh.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import attrs

from pyimgano.cli.common import UsageError
from pyimgano.fileio import atomic_write_json

__all__ = ["RUN_RECORD_SUFFIX", "RUN_RECORD_FORMAT", "ResumePoint", "run_record_path", "inputs_sha256",
           "write_run_record", "plan_resume", "check_state_hash"]

RUN_RECORD_SUFFIX = ".pyimgano-run.json"
RUN_RECORD_FORMAT = "pyimgano-infer-run"
_VERSION = 1


def run_record_path(jsonl: str | os.PathLike) -> Path:
    """``FILE.pyimgano-run.json`` beside ``FILE``."""
    jsonl = Path(jsonl)
    return jsonl.with_name(jsonl.name + RUN_RECORD_SUFFIX)


def inputs_sha256(names: Sequence[str]) -> str:
    """Hash of the ordered input names (what records call the inputs)."""
    digest = hashlib.sha256()
    for name in names:
        data = str(name).encode("utf-8", "surrogateescape")
        digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


@attrs.frozen
class ResumePoint:
    """Where a run starts: ``done`` inputs are recorded in the first ``offset`` bytes of the JSONL."""

    done: int = 0
    offset: int = 0
    records: tuple = ()  # the kept records (dicts), for the run's counts


def write_run_record(jsonl: str | os.PathLike, *, inputs: str, count: int, settings: Mapping[str, Any],
                     state_sha256: str) -> Path:
    """Write the run record of ``jsonl`` atomically (module docstring)."""
    payload = {"format": RUN_RECORD_FORMAT, "version": _VERSION, "inputs_sha256": inputs, "inputs": count,
               "settings": dict(settings), "state_sha256": state_sha256}
    return atomic_write_json(run_record_path(jsonl), payload)


def _read_run_record(jsonl: Path) -> dict:
    path = run_record_path(jsonl)
    if not path.is_file():
        raise UsageError(
            f"cannot --resume {str(jsonl)!r}: its run record {path.name} is missing, so nothing says which run "
            "wrote it; run without --resume to start afresh"
        )
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"cannot --resume: run record {str(path)!r} is unreadable ({exc}); run without --resume") from None
    if not isinstance(record, dict) or record.get("format") != RUN_RECORD_FORMAT or record.get("version") != _VERSION:
        raise UsageError(f"cannot --resume: {str(path)!r} is not a pyimgano-infer run record of version {_VERSION}")
    return record


def _complete_lines(jsonl: Path) -> tuple[list[dict], list[int]]:
    """Parsed complete records and the byte offset after each; a partial last line is left out.

    Raises:
      UsageError: a line other than the last is not a JSON object (not this run's file).
    """
    data = jsonl.read_bytes()
    records, ends, start = [], [], 0
    while start < len(data):
        newline = data.find(b"\n", start)
        if newline < 0:
            break  # the last line was cut short by the kill
        line = data[start:newline]
        try:
            record = json.loads(line)
        except (UnicodeDecodeError, ValueError):
            record = None
        if not isinstance(record, dict):
            if newline + 1 >= len(data):
                break  # a damaged last line: rewritten
            raise UsageError(f"cannot --resume: line {len(records) + 1} of {str(jsonl)!r} is not a record; "
                             "run without --resume")
        records.append(record)
        ends.append(newline + 1)
        start = newline + 1
    return records, ends


def _artifact_paths(record: Mapping[str, Any]) -> list[str]:
    paths = []
    amap = record.get("anomaly_map")
    if isinstance(amap, dict) and amap.get("path"):
        paths.append(amap["path"])
    defects = record.get("defects")
    if isinstance(defects, dict):
        for key in ("mask", "overlay"):
            entry = defects.get(key)
            if isinstance(entry, dict) and entry.get("path"):
                paths.append(entry["path"])
    return paths


def _settings_difference(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return "; ".join(f"{k}: was {old.get(k)!r}, now {new.get(k)!r}" for k in keys[:4])


def plan_resume(jsonl: str | os.PathLike, names: Sequence[str], settings: Mapping[str, Any],
                batch_size: int) -> tuple[ResumePoint, dict | None]:
    """Where to resume writing ``jsonl`` for inputs ``names`` (module docstring, steps 1 and 2).

    Returns:
      ``(point, run_record)``; ``(ResumePoint(), None)`` when there is no JSONL yet.

    Raises:
      UsageError: no or another run record, other inputs or settings, a damaged JSONL.
    """
    jsonl = Path(jsonl)
    if not jsonl.exists():
        return ResumePoint(), None
    previous = _read_run_record(jsonl)
    if previous.get("inputs_sha256") != inputs_sha256(names):
        raise UsageError(
            f"cannot --resume {str(jsonl)!r}: the inputs differ from the interrupted run's ({previous.get('inputs')} "
            f"then, {len(names)} now, or in another order); run without --resume"
        )
    if previous.get("settings") != dict(settings):
        raise UsageError(
            f"cannot --resume {str(jsonl)!r}: settings differ from the interrupted run's "
            f"({_settings_difference(previous.get('settings') or {}, settings)}); run without --resume"
        )
    records, ends = _complete_lines(jsonl)
    done = 0
    for index, record in enumerate(records):
        if index >= len(names) or record.get("index") != index or record.get("input") != names[index]:
            break
        if not all(os.path.isfile(p) for p in _artifact_paths(record)):
            break
        done = index + 1
    done = done // batch_size * batch_size if done < len(names) else done
    offset = ends[done - 1] if done else 0
    return ResumePoint(done=done, offset=offset, records=tuple(records[:done])), previous


def check_state_hash(previous: Mapping[str, Any] | None, state_sha256: str, jsonl: str | os.PathLike) -> None:
    """Step 3: the state must be the interrupted run's.

    Raises:
      UsageError: the hashes differ.
    """
    if previous is not None and previous.get("state_sha256") != state_sha256:
        raise UsageError(
            f"cannot --resume {str(jsonl)!r}: the detector state differs from the interrupted run's (another "
            "checkpoint, or a fit that came out differently); save the state once (--save-run) and score with "
            "--checkpoint-path, or run without --resume"
        )
