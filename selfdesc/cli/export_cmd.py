"""``selfdesc export-weights``: turn a training run's checkpoint into a model weight file.

    selfdesc export-weights RUN_DIR OUT.pt [--checkpoint last.pt]

The file holds only what the method's feature extractor needs (network config and weights,
see :func:`selfdesc.weights.save_model_file`); use it with ``--features NAME`` and the
extractor option ``checkpoint``, or ship it in ``selfdesc/weights/``.
"""
from __future__ import annotations

import argparse

from selfdesc.cli.common import add_command


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "export-weights", "write a model weight file from a training run", "selfdesc export-weights runs/mine my_model.pt", __doc__)
    p.add_argument("run_dir", help="training run folder (config.yaml, checkpoints/)")
    p.add_argument("out", help="output .pt file")
    p.add_argument("--checkpoint", default="last.pt", help="checkpoint file name inside RUN_DIR/checkpoints (default: last.pt)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from selfdesc.weights import export_run

    meta = export_run(Path(args.run_dir) / "checkpoints" / args.checkpoint, Path(args.out))
    print(f"wrote {args.out} ({meta['method']}, step {meta['step']})")
    return 0
