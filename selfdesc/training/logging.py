"""Training logs: a CSV file always, TensorBoard when the ``tensorboard`` package is installed."""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Mapping


class MetricLogger:
    """Append scalar metrics per step to ``run_dir/metrics.csv`` (and TensorBoard if available).

    The CSV is rewritten with a wider header when new metric names appear; rows logged after the
    resumed checkpoint's step are dropped on resume (so a resumed run leaves no duplicates).
    """

    def __init__(self, run_dir: str | Path, enabled: bool = True, tensorboard: bool = True) -> None:
        self.path = Path(run_dir) / "metrics.csv"
        self.enabled = enabled
        self.rows: list[dict[str, Any]] = []
        self.writer = None
        if not enabled:
            return
        if self.path.is_file():
            with self.path.open(newline="") as f:
                self.rows = list(csv.DictReader(f))
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # optional dependency
                self.writer = None
            else:
                self.writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))

    def truncate(self, step: int) -> None:
        """Forget rows after ``step`` (called when resuming from a checkpoint taken at ``step``)."""
        self.rows = [r for r in self.rows if int(float(r["step"])) <= step]

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        if not self.enabled:
            return
        clean = {k: (float(v) if v is not None and math.isfinite(float(v)) else float("nan")) for k, v in metrics.items()}
        self.rows.append({"step": step, **clean})
        if self.writer is not None:
            for k, v in clean.items():
                self.writer.add_scalar(k, v, step)

    def flush(self) -> None:
        """Write the CSV (atomically: a temp file then rename)."""
        if not self.enabled:
            return
        from selfdesc.io.atomic import atomic_path

        keys: list[str] = ["step"]
        for r in self.rows:
            keys += [k for k in r if k not in keys]
        with atomic_path(self.path) as tmp, tmp.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(self.rows)
        if self.writer is not None:
            self.writer.flush()
