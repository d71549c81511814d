"""Per-step metrics: JSONL always (rank 0), TensorBoard when installed, a tqdm bar on a terminal."""

from __future__ import annotations

import json
import sys
from pathlib import Path


class MetricsLog:
    """Append one JSON object per line to ``OUTPUT/metrics.jsonl`` (flushed every row).

    On resume the file is cut back to the rows of steps <= the checkpoint's step, so the log
    never holds two rows for one step.
    """

    def __init__(self, output: Path, enabled: bool, total_steps: int, resume_step: int = 0):
        self.enabled = enabled
        self.path = output / "metrics.jsonl"
        self._tb = self._bar = None
        if not enabled:
            return
        output.mkdir(parents=True, exist_ok=True)
        if resume_step and self.path.exists():
            keep = [
                ln
                for ln in self.path.read_text().splitlines()
                if ln and json.loads(ln).get("step", 0) <= resume_step
            ]
            self.path.write_text("".join(k + "\n" for k in keep))
        elif not resume_step:
            self.path.write_text("")
        self._file = self.path.open("a")
        try:  # optional
            from torch.utils.tensorboard import (
                SummaryWriter,  # optional: when tensorboard is installed
            )

            self._tb = SummaryWriter(str(output / "tensorboard"))
        except Exception:  # tensorboard not installed
            self._tb = None
        if sys.stderr.isatty():
            try:
                from tqdm import tqdm  # optional: a bar on a terminal when tqdm is installed

                self._bar = tqdm(total=total_steps, initial=resume_step, unit="step")
            except ImportError:
                self._bar = None

    def log(self, row: dict) -> None:
        """Write one row; ``row['step']`` is the optimizer step it describes."""
        if not self.enabled:
            return
        self._file.write(json.dumps(row, sort_keys=True) + "\n")
        self._file.flush()
        if self._tb is not None:
            for k, v in row.items():
                if isinstance(v, (int, float)) and k != "step":
                    self._tb.add_scalar(k, v, row["step"])
        if self._bar is not None and "loss" in row:
            self._bar.update(1)
            self._bar.set_postfix(loss=f"{row['loss']:.3f}", lr=f"{row['lr']:.2e}")

    def close(self) -> None:
        if not self.enabled:
            return
        self._file.close()
        if self._tb is not None:
            self._tb.close()
        if self._bar is not None:
            self._bar.close()
