"""CPU facts for benchmark tables: model name, clock, and a theoretical f32 peak."""

from __future__ import annotations

import os
import re


def cpu_peak_gflops(cores: int | None = None) -> tuple[str, float]:
    """(description, peak f32 GFLOP/s) from /proc/cpuinfo: cores x GHz x FLOP/cycle.

    FLOP/cycle per core: 64 with AVX-512 (two 16-lane FMA units), 32 with AVX2+FMA
    (two 8-lane FMA units), 8 otherwise. An upper bound: real CPUs clock down under load.
    """
    text = open("/proc/cpuinfo").read()
    model = re.search(r"model name\s*:\s*(.*)", text)
    mhz = re.search(r"cpu MHz\s*:\s*([\d.]+)", text)
    flags = re.search(r"flags\s*:\s*(.*)", text)
    flag_set = set(flags.group(1).split()) if flags else set()
    per_cycle = 64 if "avx512f" in flag_set else 32 if {"avx2", "fma"} <= flag_set else 8
    cores = cores or os.cpu_count() or 1
    ghz = float(mhz.group(1)) / 1000 if mhz else 2.0
    desc = f"{model.group(1) if model else 'cpu'}, {cores} cores @ {ghz:.2f} GHz, {per_cycle} f32 FLOP/cycle/core"
    return desc, cores * ghz * per_cycle
