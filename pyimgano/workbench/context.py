"""``RunContext``: what a recipe may write to, handed to it by the runner.

Without a run folder (``output.save_run: false``, ``pyimgano-benchmark``) every method returns
None and nothing is written, so one recipe serves both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import attrs

from pyimgano.state import DetectorState, save_state
from pyimgano.workbench.config import WorkbenchConfig
from pyimgano.workbench.run_dir import RunDir

__all__ = ["RunContext"]


@attrs.frozen(eq=False)
class RunContext:
    """The run folder (or None) and an optional ``progress(stage, done, total)`` callback."""

    run_dir: RunDir | None = None
    progress: Callable[[str, int, int], None] | None = None

    def maps_dir(self, config: WorkbenchConfig, category: str) -> Path | None:
        """``artifacts/maps/<cat>`` when the run saves maps (``adaptation.save_maps``), else None."""
        if self.run_dir is None or not config.adaptation.save_maps:
            return None
        return self.run_dir.maps_dir(category)

    def training_dir(self, category: str) -> Path | None:
        """``checkpoints/<cat>/training``: a trained detector's resumable checkpoint folder."""
        return None if self.run_dir is None else self.run_dir.training_dir(category)

    def save_state(self, config: WorkbenchConfig, category: str, state: DetectorState) -> str | None:
        """Write ``state`` to ``checkpoints/<cat>/<training.checkpoint_name>``; returns the path
        relative to the run folder (None without a run folder)."""
        if self.run_dir is None:
            return None
        path = self.run_dir.checkpoint_path(category, config.training.checkpoint_name)
        save_state(state, path)
        return self.run_dir.relative(path)
