"""``selfdesc train``: train a method on a folder of unlabeled images.

    selfdesc train --config configs/hndesc_r2d2.yaml --images DIR --out RUN_DIR [--resume]
        [--device cpu|cuda] [--preset auto|cpu|none] [--max-minutes M] [--init-from MODEL]
        [key.path=value ...]

Before the first step it prints what it will do (images, pairs per step, device, precision,
validation), after three steps the time per step and the expected duration; the progress bar
says whether it is loading, training or validating and shows a live ETA.

On CPU (``--device cpu``, the default) the CPU preset scales GPU-sized configs down so a step
takes seconds: fp32 instead of bf16/fp16, batch <= 4, 96-px crops from images resized to a
144-px short side, loader workers below the core count, validation on 2 images (10 pairs) at
320 px. It only lowers values; ``key=value`` overrides win; ``--preset none`` turns it off.

Stopping: Ctrl-C (SIGINT) or SIGTERM stops within moments wherever the run is (loading data,
a step, validation), saves ``RUN_DIR/checkpoints/last.pt`` at the last completed step and
exits with status 130 (SIGINT) or 143 (SIGTERM); ``--max-minutes`` stops the same way at a
step boundary with status 0. ``--resume`` continues exactly (same data order and random
numbers) with the run's own ``config.yaml``; overrides given with ``--resume`` (e.g. a larger
``train.steps``) apply on top of it.

Warm start: ``--init-from MODEL`` (a model file or a training checkpoint of the same method)
initialises a new run with every tensor of MODEL whose name and shape match the network; the
others keep their fresh initialisation. The loaded / skipped tensors are printed and written to
``RUN_DIR/init_from.txt``. With ``--resume`` it is ignored (the checkpoint holds the weights).

The config has four sections: ``train`` (engine: steps, batch size, lr, precision, ...;
see :class:`selfdesc.training.trainer.TrainConfig`), ``data`` (``size: [W, H]`` the training
images are resized/cropped to), ``val`` (``images: DIR`` of held-out base images turns on
MMA@3 validation every ``train.validate_every`` steps, see
:class:`selfdesc.training.validation.ValidationConfig`) and ``method`` (``name`` plus that
method's options). Multi-GPU: ``torchrun --nproc_per_node N -m selfdesc train ... --device cuda``.
"""
from __future__ import annotations

import argparse

from selfdesc.cli.common import add_command


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "train",
        "train a feature on a folder of your own photos (CPU or GPU; Ctrl-C stops with a checkpoint)",
        "selfdesc train --config configs/hndesc_r2d2.yaml --images my_photos/ --out runs/mine --max-minutes 10",
        __doc__,
    )
    add_training_options(p)
    p.set_defaults(handler=run)


def add_training_options(p: argparse.ArgumentParser) -> None:
    """The options of a training run, shared by ``train`` and ``train-matcher``."""
    p.add_argument("--config", default=None, help="YAML config (defaults in code when omitted); ignored with --resume")
    p.add_argument("--images", required=True, help="folder of training images (recursive)")
    p.add_argument("--out", required=True, help="run folder (config.yaml, metrics.csv, checkpoints/)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from checkpoints/last.pt with its own config.yaml (overrides still apply)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument(
        "--preset",
        default="auto",
        choices=["auto", "cpu", "none"],
        help="auto (default): the CPU preset when --device cpu (fp32, batch <= 4, 96 px crops, small validation); none: the config as written",
    )
    p.add_argument("--max-minutes", type=float, default=None, help="stop (with a checkpoint, exit status 0) at the first step after this many minutes")
    p.add_argument("--init-from", default=None, metavar="MODEL", help="start from the tensors of MODEL (model file or checkpoint) whose name and shape match; ignored with --resume")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.steps=1000")


def run(args: argparse.Namespace) -> int:
    from selfdesc.cli.common import check_output_dir
    from selfdesc.device import check_device
    from selfdesc.errors import ConfigError
    from selfdesc.training.run import resolve_run_config, train_run

    device = check_device(args.device)
    check_output_dir(args.out)
    if args.max_minutes is not None and args.max_minutes <= 0:
        raise ConfigError(f"--max-minutes must be positive, got {args.max_minutes}")
    conf, notes = resolve_run_config(args.config, args.overrides, args.out, resume=args.resume, preset=args.preset, device=args.device)
    train_run(conf, notes, args.images, args.out, device, resume=args.resume, max_minutes=args.max_minutes, init_from=args.init_from)
    return 0


__all__ = ["add_training_options", "register"]
