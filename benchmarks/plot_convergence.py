"""Validation score against training steps for several runs, from their ``metrics.csv``.

    python benchmarks/plot_convergence.py --runs residual=runs/residual_half cnn-only=runs/cnn_only_half \\
        [--baselines sift=0.833] [--metric val/mma@3] --out convergence.png

Each ``LABEL=RUN_DIR`` reads ``RUN_DIR/metrics.csv`` (written by the trainer; validation rows
carry ``val/...`` columns), and ``LABEL=FILE.csv`` reads a copied metrics file; each draws one
line, and the table of points is printed too.
"""
from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path


def read_curve(run_dir: str | Path, metric: str) -> list[tuple[int, float]]:
    """``(step, value)`` of every row of ``run_dir/metrics.csv`` (or of the CSV file ``run_dir``)
    that has ``metric``."""
    path = Path(run_dir)
    if path.is_dir():
        path = path / "metrics.csv"
    if not path.is_file():
        raise SystemExit(f"plot_convergence: {path}: no such file")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    curve = []
    for row in rows:
        value = row.get(metric)
        if value not in (None, "") and math.isfinite(float(value)):
            curve.append((int(float(row["step"])), float(value)))
    return curve


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", nargs="+", required=True, help="LABEL=RUN_DIR ...")
    p.add_argument("--baselines", nargs="*", default=[], help="LABEL=VALUE horizontal reference lines")
    p.add_argument("--metric", default="val/mma@3")
    p.add_argument("--title", default="")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for spec in args.runs:
        label, _, run_dir = spec.partition("=")
        curve = read_curve(run_dir, args.metric)
        print(f"{label}: " + ", ".join(f"{s}: {v:.3f}" for s, v in curve))
        if curve:
            ax.plot([s for s, _ in curve], [v for _, v in curve], marker="o", label=label)
    for spec in args.baselines:
        label, _, value = spec.partition("=")
        ax.axhline(float(value), linestyle="--", color="gray", linewidth=1)
        ax.annotate(label, (0, float(value)), xycoords=("axes fraction", "data"), fontsize=8, va="bottom")
    ax.set_xlabel("training step")
    ax.set_ylabel(args.metric)
    ax.set_title(args.title or f"{args.metric} on the validation set")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
