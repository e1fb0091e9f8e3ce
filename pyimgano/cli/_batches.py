"""``pyimgano-infer``'s batch step: inputs -> JSONL records and artifacts, here or on Ray workers.

:class:`BatchScorer` turns one batch of inputs into records: it decodes each input,
scores the batch with :func:`pyimgano.inference.infer_frames`, extracts defects and
writes the artifacts; a failure becomes that input's error, never the batch's.
:class:`RayBatchWorker` runs the same step in a Ray actor (``--ray-workers``), and
:func:`ray_batch_results` feeds it, so a Ray run writes the records of a one-process run.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import attrs

from pyimgano.cli._artifacts import ArtifactFolder
from pyimgano.cli._infer_options import InferOptions
from pyimgano.cli._inputs import InputItem, load_item
from pyimgano.cli._records import error_record
from pyimgano.cli.common import UsageError
from pyimgano.datasets import resize_to
from pyimgano.defects import extract_defects, save_mask, save_overlay
from pyimgano.devices import DeviceError, enable_compilation_cache, use_devices
from pyimgano.fileio import atomic_write_npy, json_plain
from pyimgano.inference import NonFiniteScoreError, infer_frames, result_to_jsonable
from pyimgano.raybatch import map_in_order
from pyimgano.state import load_state, place_state, save_state

__all__ = ["Clock", "NullStream", "BatchScorer", "RayBatchWorker", "artifact_folders", "load_frame",
           "ray_batch_results", "select_devices"]

log = logging.getLogger("pyimgano.cli")


class Clock:
    """Per-stage seconds for --profile-json."""

    def __init__(self):
        self.start = time.perf_counter()
        self.seconds = {stage: 0.0 for stage in ("load_model", "fit_calibrate", "infer", "artifacts")}
        self.first_record: float | None = None

    def add(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        self.seconds[stage] += now - since
        return now


class NullStream:
    """Where records go that nobody reads (processes other than rank 0, Ray actors)."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def select_devices(opts: InferOptions) -> str:
    """Use ``--device`` (and ``--compilation-cache``) before anything is placed or compiled.

    Returns the devices in words (``"1 x cpu"``).
    """
    try:
        chosen = use_devices(opts.device)
    except DeviceError as exc:
        raise UsageError(f"--device: {exc}") from None
    text = f"{len(chosen)} x {chosen[0].platform}"
    log.debug("devices: %s (--device %s)", text, opts.device)
    if opts.compilation_cache:
        try:
            folder = enable_compilation_cache(opts.compilation_cache)
        except OSError as exc:
            raise UsageError(f"--compilation-cache {opts.compilation_cache!r}: {exc}") from None
        log.info("persistent compilation cache: %s", folder)
    return text


def artifact_folders(opts: InferOptions) -> dict[str, ArtifactFolder]:
    """The artifact folders the flags ask for (``maps``, ``masks``, ``overlays``), not yet prepared."""
    ext = opts.defects_config.mask_format if opts.defects else "png"
    kinds = {"maps": (opts.save_maps, "npy"), "masks": (opts.save_masks, ext), "overlays": (opts.save_overlays, "png")}
    return {kind: ArtifactFolder(folder, e) for kind, (folder, e) in kinds.items() if folder}


def load_frame(opts: InferOptions, item: InputItem):
    """One input as a canonical frame, resized when ``--resize`` / the infer-config asks."""
    frame = load_item(item, input_format=opts.input_format)
    return frame if opts.resize is None else resize_to(frame, opts.resize)


class BatchScorer:
    """Records (and artifacts) of batches of inputs, with the run's options, folders and clock."""

    def __init__(self, opts: InferOptions, folders: dict[str, ArtifactFolder], clock: Clock):
        self.opts, self.folders, self.clock = opts, folders, clock

    def _record(self, index: int, item: InputItem, name: str, frame, result, state, stage: list[str]) -> dict[str, Any]:
        """The JSONL record of one scored input; writes its artifacts. ``stage[0]`` tracks the step for errors."""
        opts = self.opts
        stage[0] = "artifacts"
        record: dict[str, Any] = {"index": index, "input": item.name}
        amap = result.anomaly_map
        map_path = atomic_write_npy(self.folders["maps"].path_for(name), amap) if amap is not None and opts.save_maps else None
        shown = result if (opts.include_maps and amap is not None) else attrs.evolve(result, anomaly_map=None)
        record.update(result_to_jsonable(shown, map_path=map_path))
        if opts.defects:
            if amap is None:
                raise RuntimeError("the detector returned no anomaly map, which --defects needs")
            stage[0] = "defects"
            found = extract_defects(amap, opts.defects_config, pixel_threshold=state.pixel_threshold,
                                    pixel_threshold_provenance=state.pixel_provenance,
                                    image_hw=tuple(frame.shape[:2]) if opts.defects_image_space else None)
            stage[0] = "artifacts"
            mask_info = None
            if opts.save_masks:
                mask_info = save_mask(self.folders["masks"].path_for(name), found.mask, fmt=opts.defects_config.mask_format)
            record["defects"] = found.to_jsonable(mask=mask_info)
            if opts.save_overlays:
                path = save_overlay(self.folders["overlays"].path_for(name), frame, amap, found.mask)
                record["defects"]["overlay"] = {"path": str(path)}
        return record

    def _score(self, state, frames: list):
        return infer_frames(state, frames, include_maps=self.opts.include_maps or self.opts.defects,
                            batch_size=self.opts.batch_size)

    def process(self, state, batch: Sequence[tuple[int, InputItem]], names) -> list:
        """``[(index, item, record | None, (exc, stage) | None)]`` in input order."""
        t0 = time.perf_counter()
        frames: dict[int, Any] = {}
        failures: dict[int, tuple[BaseException, str]] = {}
        for index, item in batch:
            try:
                frames[index] = load_frame(self.opts, item)
            except Exception as exc:  # noqa: BLE001 - any decoding failure becomes that input's error
                failures[index] = (exc, "load")
        ok = [index for index, _ in batch if index in frames]
        results: dict[int, Any] = {}
        try:
            results.update(zip(ok, self._score(state, [frames[i] for i in ok])))
        except NonFiniteScoreError as exc:  # the batch was scored; only those inputs fail
            for index, result in zip(ok, exc.results):
                if result is None:
                    failures[index] = (NonFiniteScoreError(
                        "the score is NaN or infinite: no label is given to it (failing closed)"), "infer")
                else:
                    results[index] = result
        except Exception:  # noqa: BLE001 - isolate the failing input(s) by scoring one at a time
            for index in ok:
                try:
                    results[index] = self._score(state, [frames[index]])[0]
                except Exception as exc:  # noqa: BLE001
                    failures[index] = (exc, "infer")
        t1 = self.clock.add("infer", t0)
        out = []
        for index, item in batch:
            stage = ["artifacts"]
            try:
                if index in failures:
                    raise failures[index][0]
                out.append((index, item, self._record(index, item, names[index], frames[index], results[index],
                                                      state, stage), None))
            except Exception as exc:  # noqa: BLE001 - any failure becomes that input's error
                out.append((index, item, None, (exc, failures[index][1] if index in failures else stage[0])))
        self.clock.add("artifacts", t1)
        return out

    def records(self, state, batch: Sequence[tuple[int, InputItem]], names) -> list[tuple[dict, bool]]:
        """``[(record, failed)]`` of a batch: :meth:`process` with failures as error records."""
        out = []
        for index, item, record, failure in self.process(state, batch, names):
            if failure is not None:
                record = error_record(index, item.name, *failure)
            out.append((record, failure is not None))
        return out


def ray_batch_results(opts: InferOptions, state, batches, names, *, show_progress: bool):
    """``--ray-workers``: each batch's ``[(record, failed)]``, scored by a :class:`RayBatchWorker`, in order."""
    with tempfile.TemporaryDirectory() as tmp:
        state_bytes = save_state(state, Path(tmp) / "state.safetensors").read_bytes()
    payloads = [json.dumps([[index, attrs.asdict(item), names[index]] for index, item in batch]) for batch in batches]
    log.info("scoring %d batch(es) on %d Ray worker(s) (%s)", len(batches), opts.ray_workers,
             opts.ray_address or "a local Ray instance")
    try:
        for result in map_in_order(payloads, RayBatchWorker, (opts, state_bytes), num_workers=opts.ray_workers,
                                   address=opts.ray_address, show_progress=show_progress):
            yield [tuple(pair) for pair in json.loads(result)]
    except ImportError as exc:
        raise UsageError(f"--ray-workers: {exc}") from None


class RayBatchWorker:
    """One Ray actor's scorer for ``--ray-workers``: the run's own batch step on a state sent as bytes.

    ``worker(payload)`` takes a JSON batch ``[[index, input item, artifact name], ...]`` and
    returns the JSON ``[[record, failed], ...]`` that :meth:`BatchScorer.records` gives,
    so records (and artifacts, written by the actor) are those of a one-process run.
    """

    def __init__(self, opts: InferOptions, state_bytes: bytes):
        opts = attrs.evolve(opts, ray_workers=None)
        select_devices(opts)
        self.scorer = BatchScorer(opts, artifact_folders(opts), Clock())  # folders prepared by the driver
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "state.safetensors"
            path.write_bytes(state_bytes)
            self.state = load_state(path)
        if opts.bank_sharding is not None:  # as the driver places its own state
            self.state = place_state(self.state, bank_sharding=opts.bank_sharding)

    def __call__(self, payload: str) -> str:
        rows = json.loads(payload)
        batch = [(index, InputItem(**item)) for index, item, _ in rows]
        names = {index: name for index, _, name in rows}
        return json.dumps([(json_plain(record), failed) for record, failed in self.scorer.records(self.state, batch, names)])
