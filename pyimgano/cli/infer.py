"""``pyimgano-infer``: score a folder of images into JSONL records, maps, defect masks and overlays.

Layering (DESIGN.md): argparse (:mod:`._infer_parser`) -> :class:`InferOptions`
(:mod:`._infer_options`: flags over an infer-config) -> library calls
(:func:`pyimgano.load_state` or :func:`pyimgano.fit_calibrated`,
:func:`pyimgano.calibrate`, :func:`pyimgano.inference.infer_frames`,
:func:`pyimgano.defects.extract_defects`) -> records and files. No maths here.

Exit codes: 0 success; 1 some inputs failed under ``--continue-on-error`` (or
``--max-errors`` was exceeded); 2 bad flags, configs, output paths, a damaged state, or
inputs (or an input failed without ``--continue-on-error``); 141 stdout closed early.
Reference: ``docs/cli.md``.

Faults: every output path is checked (and a killed run's temporary files removed)
before any work (:mod:`._outputs`); a non-finite score or map is that input's error,
never a label; ``--resume`` continues a killed run (:mod:`._resume`).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Sequence, TextIO

from pyimgano import api, calibration
from pyimgano.devices import active_devices, compilation_cache_stats
from pyimgano.state import (
    load_state,
    place_state,
    state_sha256,
    with_pixel_threshold,
    with_postprocess,
    with_threshold,
    with_tiling,
)
from pyimgano.cli._artifacts import artifact_names
from pyimgano.cli._batches import (
    BatchScorer,
    Clock,
    NullStream,
    artifact_folders,
    load_frame,
    ray_batch_results,
    select_devices,
)
from pyimgano.cli._discovery import DiscoveryError, list_models, model_info
from pyimgano.cli._infer_options import InferOptions, model_overrides, resolve_options
from pyimgano.cli._infer_parser import DEFAULT_MODEL, PROG, build_parser
from pyimgano.cli._inputs import InputError, InputItem, discover_inputs
from pyimgano.cli._outputs import check_distinct, check_output_file, check_writable_folder, remove_stale_temp_files
from pyimgano.cli._progress import Progress, StageProgress
from pyimgano.cli._records import RecordWriter
from pyimgano.cli._resume import (
    ResumePoint,
    check_state_hash,
    inputs_sha256,
    plan_resume,
    run_record_path,
    write_run_record,
)
from pyimgano.cli.common import UsageError, run_command
from pyimgano.defects import decide_pixel_threshold
from pyimgano.fileio import atomic_write_json, json_plain
from pyimgano.inputs import image_pixel_limit, resolve_max_pixels
from pyimgano.multihost import LOCAL, join, leave
from pyimgano.plugins import load_plugins
from pyimgano.registry import get_detector
from pyimgano.workbench import RUN_INFER_CONFIG_PATH, RUN_STATE_PATH, save_run

__all__ = ["main", "build_parser", "InferOptions", "UsageError"]

log = logging.getLogger("pyimgano.cli")


def _describe_threshold(value, provenance) -> str:
    if value is None:
        return "none"
    prov = dict(provenance or {})
    where = prov.get("source", "?")
    if prov.get("method") in ("quantile", "normal_map_max_quantile", "normal_pixel_quantile"):
        q = prov.get("quantile", prov.get("q"))
        n = prov.get("count", prov.get("n_maps"))
        return f"{value:.6g} ({prov['method']} {q} of {n} {where} images)"
    return f"{value:.6g} ({prov.get('method', 'fixed')}, {where})"


class _Run:
    """One ``pyimgano-infer`` run: the deployable state, then a record (and artifacts) per input."""

    def __init__(self, opts: InferOptions, *, stdout: TextIO, stderr: TextIO):
        self.opts = opts
        self.stdout, self.stderr = stdout, stderr
        self.clock = Clock()
        self.counts = {"inputs": 0, "processed": 0, "errors": 0, "label_0": 0, "label_1": 0}
        self.cluster = LOCAL

    # -- the deployable state ------------------------------------------------------------
    def _items(self, spec: str, what: str) -> list[InputItem]:
        try:
            return discover_inputs([spec] if isinstance(spec, str) else spec, input_format=self.opts.input_format, what=what)
        except (InputError, ValueError) as exc:
            raise UsageError(str(exc)) from None

    def _frames(self, items: Sequence[InputItem]):
        """Paths when every item is an image file to use as it is (decoded by the library), else frames."""
        if self.opts.resize is None and not any(item.is_npy for item in items):
            return [item.path for item in items], None
        return [load_frame(self.opts, item) for item in items], "rgb_u8_hwc"

    def _pixel_decision(self, state, can_calibrate: bool):
        if not self.opts.defects:
            return None
        existing = None if state is None or state.pixel_threshold is None else (
            state.pixel_threshold, state.pixel_provenance)
        try:
            return decide_pixel_threshold(self.opts.defects_config, existing=existing,
                                          infer_config_value=self.opts.infer_config_pixel_threshold,
                                          can_calibrate=can_calibrate)
        except ValueError as exc:
            raise UsageError(str(exc)) from None

    def _quantile(self) -> float:
        opts = self.opts
        if opts.calibration_quantile is not None:
            return opts.calibration_quantile
        return 1.0 - opts.contamination if opts.contamination is not None else calibration.DEFAULT_QUANTILE

    def _loaded_state(self):
        opts = self.opts
        try:
            state = load_state(opts.checkpoint_path)
        except (FileNotFoundError, ValueError) as exc:
            raise UsageError(f"--checkpoint-path: {exc}") from None
        ignored = [flag for flag, value in (("--preset", opts.preset), ("--backbone", opts.backbone),
                                            ("--seed", opts.seed)) if value is not None]
        if ignored or opts.model_kwargs:
            log.warning("%s ignored: the checkpoint's config is used",
                        ", ".join(ignored + (["model kwargs"] if opts.model_kwargs else [])))
        if opts.model is not None and get_detector(opts.model).name != state.detector:
            raise UsageError(f"--model {opts.model!r} disagrees with the checkpoint's detector "
                             f"{state.detector!r}; drop --model or match it")
        if opts.tiling is not None:
            if state.threshold is not None and opts.tiling != state.tiling and opts.train_dir is None:
                log.warning("the checkpoint's threshold is dropped with the new tiling (tiled scores are on "
                            "another scale); pass --train-dir to calibrate the tiled scores")
            state = with_tiling(state, opts.tiling)
        if opts.postprocess_given:
            state = with_postprocess(state, opts.postprocess)
        if opts.threshold is not None and opts.threshold != state.threshold and opts.tiling == state.tiling:
            # The infer-config layers over the state it names: an edited threshold wins.
            state = with_threshold(state, opts.threshold,
                                   opts.threshold_provenance or {"method": "fixed", "source": "infer_config"})
        return state

    def build_state(self):
        """Load or fit, then calibrate what is missing (library calls only)."""
        opts = self.opts
        t0 = time.perf_counter()
        train = self._items(opts.train_dir, "--train-dir") if opts.train_dir is not None else None
        if opts.checkpoint_path is not None:
            state = self._loaded_state()
            name = state.detector
            decision = self._pixel_decision(state, can_calibrate=train is not None)
            want_image = train is not None and (opts.calibration_quantile is not None or state.threshold is None)
        else:
            name = opts.model or DEFAULT_MODEL
            try:
                name, config = api.make_config(name, **model_overrides(opts, get_detector(name).name))
            except (TypeError, ValueError) as exc:
                raise UsageError(f"--model {name!r}: {exc}") from None
            if train is None:
                raise UsageError(f"{name} must be fitted first: pass --train-dir DIR (normal images), "
                                 "--checkpoint-path FILE, or an infer-config with model.checkpoint_path")
            decision = self._pixel_decision(None, can_calibrate=True)
            state, want_image = None, True
        if opts.defects and "pixel_map" not in get_detector(name).tags:
            raise UsageError("--defects needs a detector with anomaly maps (tag pixel_map)")
        self.clock.add("load_model", t0)
        t1 = time.perf_counter()
        calibrate_pixels = decision is not None and decision.calibrates
        pixel = dict(pixel_quantile=decision.q, pixel_method=decision.calibrate_method,
                     roi_xyxy_norm=opts.defects_config.roi_xyxy_norm) if calibrate_pixels else {}
        with StageProgress(self.stderr) as progress:
            try:
                if state is None:
                    frames, fmt = self._frames(train)
                    state = calibration.fit_calibrated(
                        config, frames, fmt, holdout=opts.holdout_fraction or calibration.DEFAULT_HOLDOUT,
                        quantile=self._quantile(), tiling=opts.tiling, postprocess=opts.postprocess,
                        progress=progress, **pixel)
                elif want_image or calibrate_pixels:
                    frames, fmt = self._frames(train)
                    state = calibration.calibrate(
                        state, frames, fmt, quantile=self._quantile() if want_image else None, source="train_dir",
                        batch_size=opts.batch_size, progress=progress, **pixel)
            except (FileNotFoundError, ValueError, TypeError) as exc:
                raise UsageError(f"fitting / calibrating on --train-dir {opts.train_dir!r} failed: {exc}") from None
        if decision is not None and not decision.calibrates:
            state = with_pixel_threshold(state, decision.value, decision.provenance)
        if state.threshold is None:
            log.warning("no image threshold: records carry no label (pass --train-dir to calibrate one)")
        self.clock.add("fit_calibrate", t1)
        return state

    # -- per input -----------------------------------------------------------------------
    def _prepare_folders(self, names: list[str], keep: Sequence[str] = ()) -> None:
        """Claim the artifact folders (on rank 0 only under ``--distributed``: they are shared)."""
        self.scorer = BatchScorer(self.opts, artifact_folders(self.opts), self.clock)
        failure = None
        if self.cluster.is_leader:
            try:
                for folder in self.scorer.folders.values():
                    folder.prepare(names, keep=keep)
            except UsageError as exc:
                failure = exc
        if not self.cluster.all_ok(failure is None):  # collective: every process stops together
            raise failure or UsageError("process 0 could not prepare the artifact folders (see its log)")

    def _join(self) -> None:
        """``--distributed``: join the jax.distributed cluster before any other JAX use."""
        opts = self.opts
        self.cluster = LOCAL
        if not opts.distributed:
            return
        process_stdout = self.stdout is sys.stdout
        try:
            self.cluster = join(opts.coordinator, opts.num_processes, opts.process_id)
        except (RuntimeError, ValueError) as exc:
            raise UsageError(f"--distributed: cannot join the cluster: {exc}") from None
        if process_stdout:  # join keeps file descriptor 1 for native prints (gloo) and rebinds sys.stdout
            self.stdout = sys.stdout
        log.info("process %d of %d", self.cluster.rank, self.cluster.size)

    def _check_outputs(self) -> None:
        """Every output file writable before any work; a killed run's temporary files removed."""
        opts = self.opts
        files = [("--save-jsonl", opts.save_jsonl), ("--profile-json", opts.profile_json)]
        if opts.save_jsonl:
            files.append(("--save-jsonl's run record", run_record_path(opts.save_jsonl)))
        if opts.save_run:
            files += [("--save-run", Path(opts.save_run) / RUN_STATE_PATH),
                      ("--save-run", Path(opts.save_run) / RUN_INFER_CONFIG_PATH)]
        check_distinct(files)
        for flag, path in files:
            if path is not None:
                check_output_file(path, flag)
        if opts.save_run:
            check_writable_folder(opts.save_run, "--save-run")
        removed = remove_stale_temp_files(path for flag, path in files if path is not None and flag != "--save-jsonl")
        for path in removed:
            log.info("removed %s, left by an interrupted write", path)

    def _settings(self) -> dict:
        """What shapes the records, for ``--resume`` (JSON types, so a reloaded copy compares equal)."""
        opts = self.opts
        settings = {
            "input_format": opts.input_format, "resize": opts.resize, "include_maps": opts.include_maps,
            "save_maps": opts.save_maps,
            "save_masks": opts.save_masks, "save_overlays": opts.save_overlays,
            "defects": opts.defects_config.to_mapping() if opts.defects else None,
            "defects_image_space": opts.defects_image_space, "batch_size": opts.batch_size,
            "max_image_pixels": resolve_max_pixels(),
        }
        return json.loads(json.dumps(json_plain(settings)))

    def _resume_point(self, items) -> tuple[ResumePoint, dict | None]:
        if not self.opts.resume:
            return ResumePoint(), None
        point, previous = plan_resume(self.opts.save_jsonl, [item.name for item in items], self._settings(),
                                      self.opts.batch_size)
        if previous is None:
            log.info("--resume: %s does not exist yet; starting afresh", self.opts.save_jsonl)
        else:
            log.info("--resume: keeping %d of %d record(s) of %s", point.done, len(items), self.opts.save_jsonl)
        return point, previous

    def run(self) -> int:
        opts = self.opts
        load_plugins_or_fail(opts.plugins)
        items = self._items(list(opts.inputs), "--input")
        self.counts["inputs"] = len(items)
        names = artifact_names([item.relative_stem for item in items])
        self._join()
        # Before any work: a bad output path fails in a second, not after a fit.
        if self.cluster.is_leader:
            self._check_outputs()
        point, previous = self._resume_point(items)
        self._prepare_folders(names, keep=names[: point.done])
        self.devices_text = select_devices(opts)
        state = self.build_state()
        if opts.bank_sharding is not None:
            state = place_state(state, bank_sharding=opts.bank_sharding)
        self.state_hash = state_sha256(state) if opts.save_jsonl else None
        if previous is not None:
            check_state_hash(previous, self.state_hash, opts.save_jsonl)
        if opts.save_run and self.cluster.is_leader:
            path = save_run(opts.save_run, state, include_maps=opts.include_maps or None,
                            defects=opts.defects_config.to_mapping() if opts.defects else None,
                            input_format=opts.input_format)
            log.info("saved the calibrated state and %s", path)
        log.info("scoring %d input(s) with %s on %s; image threshold %s%s", len(items), state.detector,
                 self.devices_text,
                 _describe_threshold(state.threshold, state.provenance),
                 "" if not opts.defects else f"; pixel threshold {_describe_threshold(state.pixel_threshold, state.pixel_provenance)}")
        stop_code = self._write_records(state, items, names, point, resumed=previous is not None)
        elapsed = time.perf_counter() - self.clock.start
        c = self.counts
        log.info("done: %d of %d input(s) scored (%d label 1, %d label 0), %d error(s), %.1f s; records in %s",
                 c["processed"], c["inputs"], c["label_1"], c["label_0"], c["errors"], elapsed,
                 opts.save_jsonl or "stdout")
        if stop_code is not None:
            return stop_code
        if c["errors"]:
            log.error("%d of %d inputs failed (see their error records)", c["errors"], len(items))
            return 1
        return 0

    def _count(self, record: dict) -> None:
        if record.get("status") == "error":
            self.counts["errors"] += 1
            return
        self.counts["processed"] += 1
        if record.get("label") in (0, 1):
            self.counts[f"label_{record['label']}"] += 1

    def _batch_results(self, state, items, names, first_index: int = 0):
        """Each batch's ``[(record, failed)]``, batches in input order.

        Under ``--distributed`` this process scores every ``size``-th batch (round-robin) and
        receives the other processes' records (:meth:`pyimgano.multihost.Cluster.exchange`), so
        every process sees the same sequence and stops at the same record.
        """
        size = self.opts.batch_size
        starts = range(first_index, len(items), size)
        if self.opts.ray_workers:
            yield from ray_batch_results(self.opts, state, [list(enumerate(items[s : s + size], start=s)) for s in starts],
                                         names, show_progress=self.stderr.isatty())
            return
        cluster = self.cluster
        for first in range(0, len(starts), cluster.size):
            own = []
            if first + cluster.rank < len(starts):
                start = starts[first + cluster.rank]
                batch = list(enumerate(items[start : start + size], start=start))
                own = [(record if cluster is LOCAL else json_plain(record), failed)
                       for record, failed in self.scorer.records(state, batch, names)]
            for results in cluster.exchange(own):
                if results:
                    yield results

    def _write_records(self, state, items, names, point: ResumePoint, resumed: bool) -> int | None:
        opts = self.opts
        leader = self.cluster.is_leader  # the other processes only score and count
        for record in point.records:
            self._count(record)
        if opts.max_errors is not None and self.counts["errors"] > opts.max_errors:
            log.error("the resumed run had already stopped after %d failed inputs (more than --max-errors %d)",
                      self.counts["errors"], opts.max_errors)
            return 1
        with RecordWriter(opts.save_jsonl if leader else None, stream=self.stdout if leader else NullStream(),
                          keep_bytes=point.offset if resumed else None) as writer, \
                Progress("infer", len(items), stream=self.stderr) as bar:
            if opts.save_jsonl and leader:
                # After the JSONL is opened (created fresh or cut), before its first new record.
                write_run_record(opts.save_jsonl, inputs=inputs_sha256([item.name for item in items]),
                                 count=len(items), settings=self._settings(), state_sha256=self.state_hash)
            bar.set(point.done)
            done = point.done
            for results in self._batch_results(state, items, names, point.done):
                for record, failed in results:
                    self._count(record)
                    if failed and not opts.continue_on_error:
                        error = record["error"]
                        log.error("input %r failed at %s: %s: %s", record["input"], error["stage"], error["type"],
                                  error["message"])
                        return 2
                    writer.write(record)
                    if self.clock.first_record is None:
                        self.clock.first_record = time.perf_counter() - self.clock.start
                    if opts.max_errors is not None and self.counts["errors"] > opts.max_errors:
                        log.error("stopping after %d failed inputs (more than --max-errors %d)",
                                  self.counts["errors"], opts.max_errors)
                        return 1
                done += len(results)
                bar.set(done)
        return None

    def profile(self) -> dict[str, Any]:
        seconds = dict(self.clock.seconds)
        seconds["total"] = time.perf_counter() - self.clock.start
        if self.clock.first_record is not None:
            seconds["first_record"] = self.clock.first_record
        counts = {k: self.counts[k] for k in ("inputs", "processed", "errors")}
        profile = {"counts": counts, "seconds": {k: round(v, 6) for k, v in seconds.items()},
                   "devices": [str(d) for d in active_devices()]}
        cache = compilation_cache_stats()
        if cache is not None:
            profile["compilation_cache"] = cache
        return profile


def load_plugins_or_fail(plugins) -> None:
    try:
        load_plugins(plugins)
    except ValueError as exc:
        raise UsageError(f"--plugin: {exc}") from None


def _body(args, stdout: TextIO, stderr: TextIO) -> int:
    load_plugins_or_fail(args.plugin or ())
    try:
        if args.list_models:
            return list_models(args.tags, args.json, stdout)
        if args.model_info is not None:
            return model_info(args.model_info, args.json, stdout)
    except DiscoveryError as exc:
        raise UsageError(str(exc)) from None
    if args.tags is not None:
        raise UsageError("--tags filters --list-models; add --list-models")
    run = _Run(resolve_options(args), stdout=stdout, stderr=stderr)
    try:
        with image_pixel_limit(run.opts.max_image_pixels):
            return run.run()
    finally:
        leave(run.cluster)
        if run.opts.profile_json and run.cluster.is_leader:
            try:
                atomic_write_json(run.opts.profile_json, run.profile())
            except OSError as exc:
                log.error("cannot write --profile-json %r: %s", run.opts.profile_json, exc)


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run ``pyimgano-infer``; returns the exit code (0 ok, 1 inputs failed, 2 usage error, 141 closed pipe)."""
    return run_command(PROG, build_parser(), _body, argv, stdout, stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
