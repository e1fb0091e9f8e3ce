"""Deployable exports of a fitted state: ``jax.export`` (StableHLO) and ONNX.

Both take a fixed batch of canonical frames, ``u8[B, H, W, 3]`` RGB (what
:func:`pyimgano.inputs.normalize_numpy_image` gives), and return ``scores f32[B]`` and
``maps f32[B, H, W]``; preprocessing (resize to the model size, normalisation) and,
for a tiled state, the tiling are inside the exported program. A service calls them
without pyimgano:

- StableHLO: ``jax.export.deserialize(blob).call(frames)`` with only ``jax`` installed
  (``examples/serve_exported.py``); serialised for several platforms at once
  (default CPU, CUDA and TPU), so one file serves on any of them.
- ONNX: ``onnxruntime.InferenceSession(path).run(None, {"frames": frames})``; converted
  with ``jax2onnx`` (``pip install 'pyimgano[onnx]'``).

:func:`export_state` writes the artifacts with a manifest (``export.json``: shapes,
thresholds with provenance, versions, the measured parity with :func:`pyimgano.predict`).

Departures from :func:`pyimgano.predict`:

- Resizing runs on the device in f32 (:func:`pyimgano.scoring.preprocess_on_device`);
  the library's host path resizes in uint8 with OpenCV, so frames whose size differs
  from the model's ``image_size`` give slightly different numbers (the manifest's
  parity says how much for the frames checked). At the model size there is no resize
  and the two agree to float rounding.
- Map post-processing (``state.postprocess``) runs on the host with OpenCV in the
  library and is not part of an export: a state that carries it is refused unless
  ``drop_postprocess=True`` (raw maps; the manifest records what was dropped).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Sequence

import attrs
import jax
import jax.numpy as jnp
import numpy as np

from pyimgano._version import __version__
from pyimgano.api import predict
from pyimgano.fileio import atomic_write_bytes, atomic_write_json
from pyimgano.registry import get_detector
from pyimgano.scoring import predict_preprocessed, preprocess_on_device, supports_maps
from pyimgano.state import DetectorState
from pyimgano.tiling import tiled_forward

__all__ = [
    "EXPORT_FORMATS",
    "DEFAULT_PLATFORMS",
    "EXPORT_MANIFEST",
    "STABLEHLO_FILE",
    "ONNX_FILE",
    "frames_to_scores_and_maps",
    "export_stablehlo",
    "export_onnx",
    "export_state",
    "parity_frames",
    "parity_tolerance",
]

EXPORT_FORMATS = ("stablehlo", "onnx")
#: Platforms a StableHLO export is lowered for (one artifact; ``jax.export`` picks the caller's).
DEFAULT_PLATFORMS = ("cpu", "cuda", "tpu")
EXPORT_MANIFEST = "export.json"
STABLEHLO_FILE = "model.stablehlo"
ONNX_FILE = "model.onnx"
MANIFEST_FORMAT = "pyimgano-export"
MANIFEST_SCHEMA_VERSION = 1


def _check(state: DetectorState, drop_postprocess: bool) -> None:
    if not isinstance(state, DetectorState):
        raise TypeError(f"expected a DetectorState (pyimgano.fit / load_state), got {type(state).__name__}")
    if not supports_maps(state):
        raise ValueError(f"{state.detector} produces no anomaly maps; exports output scores and maps")
    if state.postprocess is not None and not drop_postprocess:
        raise ValueError(
            f"the state carries map post-processing {state.postprocess.to_dict()}, which runs on the host "
            "(OpenCV) and cannot be exported; export raw maps with drop_postprocess=True "
            "(pyimgano-export --drop-postprocess) and post-process in the service, or remove it with "
            "pyimgano.with_postprocess(state, None)"
        )


def _frame_hw(state: DetectorState, frame_hw) -> tuple[int, int]:
    hw = tuple(state.config.image_size) if frame_hw is None else tuple(int(v) for v in frame_hw)
    if len(hw) != 2 or min(hw) < 1:
        raise ValueError(f"frame size must be two positive integers (height, width), got {frame_hw!r}")
    return hw


def frames_to_scores_and_maps(state: DetectorState, frame_hw: tuple[int, int]) -> Callable:
    """The exported computation: ``frames u8[B, H, W, 3] -> (scores f32[B], maps f32[B, H, W])``.

    The state's arrays are host copies closed over as constants (one device, no
    sharding), so the traced program carries the whole fitted model. Honours the
    state's tiling; ignores its post-processing (see the module docstring).
    """
    model = jax.tree.map(np.asarray, state.model)
    spec = get_detector(state.detector)
    height, width = frame_hw

    def per_tile_or_frame(images_u8, out_hw):
        pred = spec.predict(model, preprocess_on_device(model.config, images_u8), out_hw)
        return pred.scores.astype(jnp.float32), pred.maps.astype(jnp.float32)

    if state.tiling is None:
        return lambda frames: per_tile_or_frame(frames, (height, width))
    plan = state.tiling.plan(height, width)
    tile_hw = (plan.tile_size, plan.tile_size)
    return lambda frames: tiled_forward(lambda tiles: per_tile_or_frame(tiles, tile_hw), frames, plan,
                                        state.tiling, want_maps=True)


def _input_spec(batch_size: int, frame_hw) -> jax.ShapeDtypeStruct:
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    return jax.ShapeDtypeStruct((int(batch_size), *frame_hw, 3), jnp.uint8)


def export_stablehlo(
    state: DetectorState,
    *,
    batch_size: int = 1,
    frame_hw: tuple[int, int] | None = None,
    platforms: Sequence[str] = DEFAULT_PLATFORMS,
    drop_postprocess: bool = False,
) -> jax.export.Exported:
    """``state`` as a ``jax.export.Exported`` (serialise with ``.serialize()``).

    Args:
      batch_size: frames per call (fixed; a service pads a short batch).
      frame_hw: frame size the program takes (default: the model's ``image_size``).
      platforms: lowering platforms (``cpu``, ``cuda``, ``rocm``, ``tpu``); the artifact runs on any of them.
      drop_postprocess: export raw maps of a state that carries map post-processing.

    Raises:
      ValueError: a detector without maps, post-processing without ``drop_postprocess``, bad sizes.
    """
    _check(state, drop_postprocess)
    hw = _frame_hw(state, frame_hw)
    fn = frames_to_scores_and_maps(state, hw)
    return jax.export.export(jax.jit(fn), platforms=tuple(platforms))(_input_spec(batch_size, hw))


def export_onnx(
    state: DetectorState,
    *,
    batch_size: int = 1,
    frame_hw: tuple[int, int] | None = None,
    drop_postprocess: bool = False,
    opset: int = 21,
):
    """``state`` as an ONNX ``ModelProto`` (input ``frames``, outputs ``scores`` and ``maps``), via jax2onnx.

    Raises:
      ImportError: jax2onnx is not installed (``pip install 'pyimgano[onnx]'``).
      ValueError: as :func:`export_stablehlo`.
    """
    _check(state, drop_postprocess)
    try:
        import jax2onnx
    except ImportError:
        raise ImportError("ONNX export needs jax2onnx and onnxruntime: pip install 'pyimgano[onnx]'") from None
    hw = _frame_hw(state, frame_hw)
    fn = frames_to_scores_and_maps(state, hw)
    return jax2onnx.to_onnx(fn, inputs=[_input_spec(batch_size, hw)], model_name="pyimgano_" + state.detector,
                            opset=opset, input_names=["frames"], output_names=["scores", "maps"])


def parity_frames(batch_size: int, frame_hw: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Seeded check frames ``u8[B, H, W, 3]``: smooth texture plus noise, one with a bright square."""
    h, w = frame_hw
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = 0.5 + 0.25 * np.sin(2 * np.pi * 3 * xx) * np.cos(2 * np.pi * 2 * yy)
    frames = base[None, ..., None] + rng.normal(0, 0.05, (batch_size, h, w, 3))
    frames = np.clip(frames * 255, 0, 255).astype(np.uint8)
    frames[-1, h // 3 : h // 3 + max(1, h // 6), w // 2 : w // 2 + max(1, w // 6)] = (255, 0, 255)
    return frames


def _run_onnx(path: Path, frames: np.ndarray):
    try:
        import onnxruntime
    except ImportError:
        raise ImportError("checking the ONNX export needs onnxruntime: pip install 'pyimgano[onnx]'") from None
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # the converter leaves unused initialisers; ORT warns about each
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(["scores", "maps"], {"frames": frames})


def _difference(got, want_scores: np.ndarray, want_maps: np.ndarray) -> dict:
    scores, maps = (np.asarray(a, np.float32) for a in got)
    score_diff = float(np.max(np.abs(scores - want_scores)))
    map_diff = float(np.max(np.abs(maps - want_maps)))
    relative = max(score_diff / max(1.0, float(np.max(np.abs(want_scores)))),
                   map_diff / max(1.0, float(np.max(np.abs(want_maps)))))
    return {"max_abs_score": score_diff, "max_abs_map": map_diff, "relative": relative}


def parity_tolerance(state: DetectorState, frame_hw: tuple[int, int] | None = None) -> float:
    """The accepted relative difference from :func:`pyimgano.predict` (``pyimgano-export``'s default).

    1e-4 when the artifact feeds the model frames at its own size (float rounding only);
    1e-2 when it resizes them, because the library resizes uint8 frames on the host with
    OpenCV and rounds to uint8, while the artifact resizes in f32 (measured on the tiny test
    model: 6e-4 on scores, 2e-3 on maps; docs/export.md).
    """
    hw = _frame_hw(state, frame_hw)
    size = (state.tiling.tile_size,) * 2 if state.tiling is not None else hw
    return 1e-4 if tuple(size) == tuple(state.config.image_size) else 1e-2


def export_state(
    state: DetectorState,
    out_dir: str | os.PathLike,
    *,
    formats: Sequence[str] = EXPORT_FORMATS,
    batch_size: int = 1,
    frame_hw: tuple[int, int] | None = None,
    platforms: Sequence[str] = DEFAULT_PLATFORMS,
    drop_postprocess: bool = False,
    check_frames: np.ndarray | None = None,
) -> dict:
    """Write ``state``'s exports to ``out_dir`` and check them against :func:`pyimgano.predict`.

    Writes ``model.stablehlo`` (``jax.export`` serialisation) and/or ``model.onnx``, then
    ``export.json`` (the manifest, returned as a dict). The parity check scores
    ``check_frames`` (``u8[B, H, W, 3]``; default :func:`parity_frames`) with the library
    and with each artifact as a service would load it, and records the largest absolute
    differences of scores and maps under ``parity``.

    Raises:
      ValueError: an unknown format, or as :func:`export_stablehlo`.
      ImportError: ONNX requested without ``pyimgano[onnx]``.
    """
    formats = tuple(dict.fromkeys(formats))
    unknown = sorted(set(formats) - set(EXPORT_FORMATS))
    if unknown or not formats:
        raise ValueError(f"unknown export format(s) {unknown or formats}; accepted: {list(EXPORT_FORMATS)}")
    _check(state, drop_postprocess)
    hw = _frame_hw(state, frame_hw)
    frames = parity_frames(batch_size, hw) if check_frames is None else np.asarray(check_frames, np.uint8)
    if frames.shape != (batch_size, *hw, 3):
        raise ValueError(f"check_frames must be u8{[batch_size, *hw, 3]}, got shape {frames.shape}")
    reference = state if state.postprocess is None else attrs.evolve(state, postprocess=None)
    want_scores, want_maps = (np.asarray(a) for a in predict(reference, frames, "rgb_u8_hwc"))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files, parity = {}, {}
    if "stablehlo" in formats:
        exported = export_stablehlo(state, batch_size=batch_size, frame_hw=hw, platforms=platforms,
                                    drop_postprocess=drop_postprocess)
        path = Path(atomic_write_bytes(out / STABLEHLO_FILE, bytes(exported.serialize())))
        files["stablehlo"] = path.name
        loaded = jax.export.deserialize(bytearray(path.read_bytes()))
        parity["stablehlo"] = _difference(loaded.call(frames), want_scores, want_maps)
    if "onnx" in formats:
        proto = export_onnx(state, batch_size=batch_size, frame_hw=hw, drop_postprocess=drop_postprocess)
        path = Path(atomic_write_bytes(out / ONNX_FILE, proto.SerializeToString()))
        files["onnx"] = path.name
        parity["onnx"] = _difference(_run_onnx(path, frames), want_scores, want_maps)
    manifest = {
        "format": MANIFEST_FORMAT,
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "pyimgano_version": __version__,
        "jax_version": jax.__version__,
        "detector": state.detector,
        "config": json.loads(json.dumps(attrs.asdict(state.config))),
        "files": files,
        "platforms": list(platforms) if "stablehlo" in formats else None,
        "input": {"name": "frames", "shape": [batch_size, *hw, 3], "dtype": "uint8",
                  "layout": "NHWC, RGB, canonical (pyimgano.inputs.normalize_numpy_image)"},
        "outputs": [{"name": "scores", "shape": [batch_size], "dtype": "float32"},
                    {"name": "maps", "shape": [batch_size, *hw], "dtype": "float32"}],
        "threshold": state.threshold,
        "threshold_provenance": state.provenance,
        "pixel_threshold": state.pixel_threshold,
        "pixel_threshold_provenance": state.pixel_provenance,
        "tiling": None if state.tiling is None else state.tiling.to_dict(),
        "postprocess_dropped": None if state.postprocess is None else state.postprocess.to_dict(),
        "label_rule": "label = 1 if score > threshold else 0 (no label without a threshold)",
        "parity": {"reference": "pyimgano.predict", "frames": int(frames.shape[0]), **parity},
    }
    atomic_write_json(out / EXPORT_MANIFEST, manifest)
    return manifest
