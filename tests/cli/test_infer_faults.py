"""Each fault of issue 17's "Why" list, through ``pyimgano-infer``: bombs, damaged states, debris, leaks."""

import json
import os
import shutil
import stat

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

from pyimgano.state_integrity import HASH_FIELD, content_sha256


@pytest.fixture()
def inputs_with(image_dirs, tmp_path):
    """``inputs_with(name, data)`` -> a copy of the three test images plus one file ``name``."""

    def make(name, data):
        folder = tmp_path / "inputs"
        if not folder.exists():
            shutil.copytree(image_dirs["test"], folder)
        (folder / name).write_bytes(data)
        return folder

    return make


def test_a_bomb_png_is_one_error_record_naming_the_limit_and_the_good_images_keep_theirs(
    run_cli, checkpoint, inputs_with, bomb_bytes, tmp_path
):
    folder = inputs_with("b_bomb.png", bomb_bytes("PNG"))
    out = tmp_path / "r.jsonl"
    run = run_cli("--checkpoint-path", checkpoint, "--input", folder, "--continue-on-error", "--save-jsonl", out,
                  "--save-maps", tmp_path / "maps", "--defects", "--pixel-threshold", "1e9")
    assert run.code == 1
    records = run.records(out)
    assert [r.get("status") for r in records] == [None, "error", None, None]
    error = records[1]["error"]
    assert error["type"] == "ImageTooLargeError" and error["stage"] == "load"
    assert "900,000,000 pixels" in error["message"] and "67,108,864" in error["message"]
    assert sorted(p.name for p in (tmp_path / "maps").iterdir()) == [
        ".pyimgano-artifacts.json", "a_good.npy", "b_good.npy", "c_bad.npy"]


def test_max_image_pixels_sets_the_limit_for_the_run(run_cli, checkpoint, image_dirs):
    run = run_cli("--checkpoint-path", checkpoint, "--input", image_dirs["test"], "--continue-on-error",
                  "--max-image-pixels", "1000")  # the test images are 32 x 32 = 1024 pixels
    assert run.code == 1
    assert all("limit of 1,000 pixels" in r["error"]["message"] for r in run.records())


def _rewrite_state(src, dst, change):
    with safe_open(src, framework="numpy") as handle:
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
        metadata = dict(handle.metadata())
    change(tensors)
    metadata[HASH_FIELD] = content_sha256(tensors, metadata)
    save_file(tensors, str(dst), metadata=metadata)
    return dst


@pytest.mark.parametrize(
    "damage, said",
    [
        ("nan_bank", "memory_bank holds"),
        ("narrow_bank", "memory_bank has shape"),
        ("flipped_byte", "content hash mismatch"),
    ],
)
def test_a_damaged_state_is_one_error_at_load_exit_2_never_blamed_on_an_input(
    run_cli, checkpoint, image_dirs, tmp_path, damage, said
):
    bad = tmp_path / "bad.safetensors"
    if damage == "nan_bank":
        _rewrite_state(checkpoint, bad, lambda t: t.update(memory_bank=np.full_like(t["memory_bank"], np.nan)))
    elif damage == "narrow_bank":
        _rewrite_state(checkpoint, bad, lambda t: t.update(memory_bank=t["memory_bank"][:, :5].copy()))
    else:
        data = bytearray(open(checkpoint, "rb").read())
        data[-3] ^= 0x10
        bad.write_bytes(bytes(data))
    out = tmp_path / "r.jsonl"
    run = run_cli("--checkpoint-path", bad, "--input", image_dirs["test"], "--continue-on-error", "--save-jsonl", out)
    assert run.code == 2
    errors = [line for line in run.err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "--checkpoint-path" in errors[0] and said in errors[0]
    assert "a_good.png" not in run.err and "input" not in errors[0].split(":", 2)[-1][:20]
    assert not out.exists()


def _nan_for_dark_frames(monkeypatch, *, maps_only=False):
    """Scores (or maps) of frames whose mean is below 40 become NaN, as a broken detector might give."""
    import pyimgano.inference.api as api

    real = api.predict_frames

    def predict_frames(state, frames, **kwargs):
        scores, maps = real(state, frames, **kwargs)
        for i, frame in enumerate(frames):
            if frame.mean() < 40:
                if maps_only and maps is not None:
                    maps[i] = np.full_like(maps[i], np.nan)
                elif not maps_only:
                    scores[i] = np.nan
        return scores, maps

    monkeypatch.setattr(api, "predict_frames", predict_frames)


def test_a_nan_score_is_an_error_record_never_label_0(run_cli, checkpoint, inputs_with, write_png_fn, monkeypatch,
                                                      tmp_path):
    folder = inputs_with("placeholder.txt", b"")
    write_png_fn(folder / "b_dark.png", np.full((32, 32, 3), 10, np.uint8))
    _nan_for_dark_frames(monkeypatch)
    run = run_cli("--checkpoint-path", checkpoint, "--input", folder, "--continue-on-error")
    assert run.code == 1
    records = run.records()
    dark = [r for r in records if r["input"].endswith("b_dark.png")][0]
    assert dark["status"] == "error" and "label" not in dark and "score" not in dark
    assert dark["error"]["type"] == "NonFiniteScoreError" and dark["error"]["stage"] == "infer"
    assert all(isinstance(r["label"], int) for r in records if r is not dark)
    without = run_cli("--checkpoint-path", checkpoint, "--input", folder)
    assert without.code == 2 and "b_dark.png" in without.err


def test_a_nan_map_with_defects_on_is_an_error_record(run_cli, checkpoint, inputs_with, write_png_fn, monkeypatch):
    folder = inputs_with("placeholder.txt", b"")
    write_png_fn(folder / "b_dark.png", np.full((32, 32, 3), 10, np.uint8))
    _nan_for_dark_frames(monkeypatch, maps_only=True)
    run = run_cli("--checkpoint-path", checkpoint, "--input", folder, "--continue-on-error", "--defects",
                  "--pixel-threshold", "0.5")
    assert run.code == 1
    dark = [r for r in run.records() if r["input"].endswith("b_dark.png")][0]
    assert dark["status"] == "error" and dark["error"]["stage"] == "defects"
    assert "non-finite" in dark["error"]["message"]


def test_a_read_only_output_folder_fails_before_any_scoring(run_cli, checkpoint, image_dirs, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    if os.access(locked, os.W_OK):  # root ignores permission bits: use a folder nobody can write
        locked = "/proc/pyimgano-maps"
    try:
        run = run_cli("--checkpoint-path", checkpoint, "--input", image_dirs["test"], "--save-maps", locked,
                      "--save-jsonl", tmp_path / "r.jsonl")
    finally:
        (tmp_path / "locked").chmod(stat.S_IRWXU)
    assert run.code == 2 and "not writable" in run.err and str(locked) in run.err
    assert not (tmp_path / "r.jsonl").exists()  # nothing was scored


@pytest.mark.parametrize("flag", ["--save-jsonl", "--profile-json", "--save-maps"])
def test_an_output_path_under_a_file_fails_at_start_naming_the_flag(run_cli, checkpoint, image_dirs, tmp_path, flag):
    blocker = tmp_path / "plain_file"
    blocker.write_text("x")
    run = run_cli("--checkpoint-path", checkpoint, "--input", image_dirs["test"], flag, blocker / "sub" / "out")
    assert run.code == 2 and (flag in run.err or "output folder" in run.err)
    assert run.out == ""  # nothing was scored


def test_a_profile_path_that_is_a_folder_fails_at_start(run_cli, checkpoint, image_dirs, tmp_path):
    run = run_cli("--checkpoint-path", checkpoint, "--input", image_dirs["test"], "--profile-json", tmp_path)
    assert run.code == 2 and "--profile-json" in run.err and "is a folder" in run.err
    assert run.out == ""


def test_temporary_files_of_a_killed_run_are_removed_at_start_and_others_kept(run_cli, checkpoint, image_dirs,
                                                                              tmp_path):
    maps = tmp_path / "maps"
    first = run_cli("--checkpoint-path", checkpoint, "--input", image_dirs["test"], "--save-maps", maps,
                    "--save-jsonl", tmp_path / "r.jsonl")
    assert first.code == 0
    ours = [maps / ".tmp-a_good.npy.x1y2z3.part", maps / ".tmp-.pyimgano-artifacts.json.abc.part",
            tmp_path / ".tmp-r.jsonl.pyimgano-run.json.q.part"]
    theirs = [maps / ".tmp-someone_elses.part", maps / "notes.txt"]
    for path in ours + theirs:
        path.write_bytes(b"debris")
    again = run_cli("--checkpoint-path", checkpoint, "--input", image_dirs["test"], "--save-maps", maps,
                    "--save-jsonl", tmp_path / "r.jsonl")
    assert again.code == 0
    assert not any(p.exists() for p in ours)
    assert all(p.exists() for p in theirs)


def test_an_error_record_for_a_symlink_to_a_secret_quotes_nothing_of_it(run_cli, checkpoint, inputs_with, tmp_path):
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0:TOPSECRET:/root:/bin/bash\n")
    folder = inputs_with("placeholder.txt", b"")
    (folder / "b_link.png").symlink_to(secret)
    run = run_cli("--checkpoint-path", checkpoint, "--input", folder, "--continue-on-error")
    assert run.code == 1
    text = run.out + run.err
    assert "b_link.png" in text and "TOPSECRET" not in text and "x:0:0" not in text


def test_an_object_npy_is_one_error_record_and_the_run_goes_on(run_cli, checkpoint, make_frame_fn, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    np.save(folder / "a.npy", make_frame_fn(100)[..., ::-1].copy())
    np.save(folder / "b.npy", np.array([{"evil": 1}, None], dtype=object), allow_pickle=True)
    np.save(folder / "c.npy", np.zeros((0, 10, 3), np.uint8))  # empty: an error, never silently dropped
    run = run_cli("--checkpoint-path", checkpoint, "--input", folder, "--input-format", "bgr_u8_hwc",
                  "--continue-on-error")
    assert run.code == 1
    records = run.records()
    assert [os.path.basename(r["input"]) for r in records] == ["a.npy", "b.npy", "c.npy"]
    assert "score" in records[0]
    assert records[1]["status"] == "error" and "pickled" in records[1]["error"]["message"]
    assert records[2]["status"] == "error" and "empty" in records[2]["error"]["message"]


def test_decoder_noise_stays_off_stderr(run_cli, checkpoint, inputs_with, tmp_path, capfd):
    good = open(os.path.join(inputs_with("placeholder.txt", b""), "a_good.png"), "rb").read()
    at = good.index(b"IDAT")
    broken = bytearray(good)
    broken[at + 4 + int.from_bytes(good[at - 4 : at], "big")] ^= 0xFF  # IDAT CRC
    folder = inputs_with("b_crc.png", bytes(broken))
    run = run_cli("--checkpoint-path", checkpoint, "--input", folder, "--continue-on-error", "-q")
    assert run.code == 1
    assert "libpng" not in capfd.readouterr().err
    assert json.loads(run.out.splitlines()[1])["error"]["stage"] == "load"


def test_a_resize_beyond_the_decode_limit_is_refused_before_any_work(run_cli, checkpoint, image_dirs):
    run = run_cli("--checkpoint-path", checkpoint, "--input", image_dirs["test"], "--resize", "100000", "100000")
    assert run.code == 2 and "10,000,000,000 pixels" in run.err and "67,108,864" in run.err
    assert run.out == ""
