"""examples/normalize_frames.py runs offline and shows the three sources agreeing."""

import pathlib
import runpy

EXAMPLE = pathlib.Path(__file__).resolve().parents[3] / "examples" / "normalize_frames.py"


def test_the_normalize_frames_example_runs_and_reports_agreement(capsys):
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    output = capsys.readouterr().out
    assert "all three equal the original RGB scene" in output
    assert "12-bit gray [0, 2048, 4095] -> [0, 128, 255]" in output
    assert "float [0.5, 0.3, 1.0] -> [128, 76, 255]" in output
    assert "rejected: declared rgb_f32_chw" in output
    assert "float32  (3, 32, 32, 3)" in output
