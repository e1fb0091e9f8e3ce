"""Exported StableHLO and ONNX artifacts match pyimgano.predict within 1e-4 on tiny models (32x32, tiny_resnet),
and a service loads them without importing pyimgano (examples/serve_exported.py)."""

import json
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import pyimgano
from pyimgano.cli.export import main as export_main
from pyimgano.export import export_stablehlo, export_state, parity_frames, parity_tolerance
from pyimgano.postprocess import AnomalyMapPostprocess

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "serve_exported.py"
TOL = 1e-4


@pytest.fixture(scope="module")
def states(frames_factory, tiny_patchcore_kwargs, tiny_padim_kwargs):
    train = frames_factory(8, seed=1)
    patchcore = pyimgano.fit("vision_patchcore", train, "rgb_u8_hwc", **tiny_patchcore_kwargs)
    patchcore = pyimgano.calibrate(patchcore, frames_factory(6, seed=2), "rgb_u8_hwc")
    padim = pyimgano.fit("vision_padim", train, "rgb_u8_hwc", **tiny_padim_kwargs)
    return {"patchcore": patchcore, "padim": padim}


@pytest.fixture(scope="module")
def exported(states, tmp_path_factory):
    """pyimgano-export with both formats on the calibrated tiny PatchCore (one ONNX conversion for the module)."""
    folder = tmp_path_factory.mktemp("exported")
    path = pyimgano.save_state(states["patchcore"], folder / "state.safetensors")
    out = folder / "artifacts"
    code = export_main(["--checkpoint-path", str(path), "-o", str(out), "--batch-size", "2", "-q"])
    assert code == 0
    return out


def _check_frames(frames_factory, defect, n=2):
    frames = frames_factory(n, seed=11)
    frames[-1] = defect(frames[-1])
    return frames


@pytest.mark.parametrize("which", ["patchcore", "padim"])
def test_stablehlo_matches_predict_within_1e4(which, states, frames_factory, defect):
    state = states[which]
    frames = _check_frames(frames_factory, defect, 3)
    want_scores, want_maps = pyimgano.predict(state, frames, "rgb_u8_hwc")
    blob = export_stablehlo(state, batch_size=3).serialize()
    scores, maps = jax.export.deserialize(bytearray(blob)).call(frames)
    assert maps.shape == (3, 32, 32) and scores.dtype == np.float32
    np.testing.assert_allclose(np.asarray(scores), np.asarray(want_scores), rtol=0, atol=TOL)
    np.testing.assert_allclose(np.asarray(maps), np.asarray(want_maps), rtol=0, atol=TOL)


def test_the_cli_writes_both_artifacts_with_a_manifest_and_their_parity(exported, states):
    manifest = json.loads((exported / "export.json").read_text())
    assert manifest["files"] == {"stablehlo": "model.stablehlo", "onnx": "model.onnx"}
    assert manifest["input"]["shape"] == [2, 32, 32, 3] and manifest["input"]["dtype"] == "uint8"
    assert manifest["threshold"] == states["patchcore"].threshold
    assert manifest["platforms"] == ["cpu", "cuda", "tpu"]
    for fmt in ("stablehlo", "onnx"):
        assert manifest["parity"][fmt]["max_abs_score"] < TOL, manifest["parity"]
        assert manifest["parity"][fmt]["max_abs_map"] < TOL, manifest["parity"]


def test_onnx_matches_predict_within_1e4_in_onnxruntime(exported, states, frames_factory, defect):
    import onnxruntime

    frames = _check_frames(frames_factory, defect)
    want_scores, want_maps = pyimgano.predict(states["patchcore"], frames, "rgb_u8_hwc")
    session = onnxruntime.InferenceSession(str(exported / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["frames"]
    scores, maps = session.run(["scores", "maps"], {"frames": frames})
    np.testing.assert_allclose(scores, np.asarray(want_scores), rtol=0, atol=TOL)
    np.testing.assert_allclose(maps, np.asarray(want_maps), rtol=0, atol=TOL)


@pytest.mark.parametrize("runtime", ["stablehlo", "onnx"])
def test_a_service_scores_with_the_artifact_without_importing_pyimgano(runtime, exported, states, frames_factory,
                                                                         defect, tmp_path):
    frames = _check_frames(frames_factory, defect, 3)  # 3 frames, batch 2: the example pads the last batch
    np.save(tmp_path / "frames.npy", frames)
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['serve_exported.py', {str(exported)!r}, {str(tmp_path / 'frames.npy')!r}, '--runtime', {runtime!r}]\n"
        f"try:\n    runpy.run_path({str(EXAMPLE)!r}, run_name='__main__')\nexcept SystemExit as e:\n    assert not e.code\n"
        "loaded = sorted(m for m in sys.modules if m == 'pyimgano' or m.startswith(('pyimgano.', 'models_jax')))\n"
        "print('PYIMGANO_MODULES', loaded)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[-1] == "PYIMGANO_MODULES []"
    records = [json.loads(line) for line in lines[:-1]]
    state = states["patchcore"]
    want = np.asarray(pyimgano.score(state, frames, "rgb_u8_hwc"))
    np.testing.assert_allclose([r["score"] for r in records], want, rtol=0, atol=TOL)
    assert [r["label"] for r in records] == [int(s > state.threshold) for s in want]
    assert records[-1]["label"] == 1


def test_a_tiled_state_exports_its_tiling(states, tmp_path):
    tiled = pyimgano.with_tiling(states["patchcore"], pyimgano.TileConfig(tile_size=32, stride=24, map_reduce="hann"))
    manifest = export_state(tiled, tmp_path, formats=("stablehlo",), batch_size=2, frame_hw=(56, 48))
    assert manifest["tiling"]["tile_size"] == 32 and manifest["outputs"][1]["shape"] == [2, 56, 48]
    assert manifest["parity"]["stablehlo"]["relative"] < TOL
    assert parity_tolerance(tiled, (56, 48)) == TOL


def test_a_resizing_export_differs_only_by_the_hosts_uint8_rounding(states, tmp_path):
    manifest = export_state(states["padim"], tmp_path, formats=("stablehlo",), batch_size=2, frame_hw=(48, 40))
    assert manifest["parity"]["stablehlo"]["relative"] < parity_tolerance(states["padim"], (48, 40)) == 1e-2


def test_map_postprocessing_is_refused_unless_dropped(states, tmp_path):
    state = pyimgano.with_postprocess(states["padim"], AnomalyMapPostprocess(normalize="minmax"))
    with pytest.raises(ValueError, match="drop_postprocess=True"):
        export_stablehlo(state)
    manifest = export_state(state, tmp_path, formats=("stablehlo",), drop_postprocess=True)
    assert manifest["postprocess_dropped"]["normalize"] == "minmax"
    assert manifest["parity"]["stablehlo"]["relative"] < TOL  # against the raw maps


def test_export_cli_usage_errors(tmp_path, states, capsys):
    import io

    path = pyimgano.save_state(states["padim"], tmp_path / "s.safetensors")
    for argv, message in (
        (["--checkpoint-path", str(path), "-o", str(tmp_path / "o"), "--format", "tflite"], "invalid format 'tflite'"),
        (["-o", str(tmp_path / "o")], "one of --checkpoint-path FILE or --from-run DIR"),
        (["--checkpoint-path", str(tmp_path / "missing"), "-o", str(tmp_path / "o")], "state file not found"),
    ):
        err = io.StringIO()
        assert export_main(argv, stdout=io.StringIO(), stderr=err) == 2
        assert message in err.getvalue(), err.getvalue()


def test_parity_frames_are_seeded(states):
    a = parity_frames(2, (32, 32))
    assert a.dtype == np.uint8 and (a == parity_frames(2, (32, 32))).all()
