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
from dataclasses import asdict
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "train",
        "train a feature on a folder of your own photos (CPU or GPU; Ctrl-C stops with a checkpoint)",
        "selfdesc train --config configs/hndesc_r2d2.yaml --images my_photos/ --out runs/mine --max-minutes 10",
        __doc__,
    )
    add_training_options(p)
    p.add_argument("--init-from", default=None, metavar="MODEL", help="start from the tensors of MODEL (model file or checkpoint) whose name and shape match; ignored with --resume")
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
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.steps=1000")


def default_config(method: str = "hndesc") -> dict[str, Any]:
    """Engine defaults plus the defaults of ``method``."""
    from selfdesc.methods import method_defaults
    from selfdesc.training.trainer import TrainConfig

    from selfdesc.training.validation import ValidationConfig

    return {
        "train": asdict(TrainConfig()),
        "data": {"size": [320, 240], "stylized_root": None, "index": None},
        "val": asdict(ValidationConfig()),
        "method": {"name": method, **method_defaults(method)},
    }


def method_name(file_conf: dict[str, Any], overrides: list[str]) -> str:
    """The method a run trains: ``method.name`` from the last override, else the config file's
    content ``file_conf`` (:func:`~selfdesc.config.read_yaml`), else hndesc."""
    from selfdesc.config import parse_override

    name = (file_conf.get("method") or {}).get("name", "hndesc")
    for text in overrides:
        value = parse_override(text)
        if isinstance(value.get("method"), dict) and "name" in value["method"]:
            name = value["method"]["name"]
    return str(name)


def load_run_config(config_path: str | None, overrides: list[str]) -> dict[str, Any]:
    """A run's full config, as ``selfdesc train`` resolves it: the method's code defaults <- YAML <- overrides."""
    from selfdesc.config import load_config, read_yaml

    file_conf = read_yaml(config_path) if config_path is not None else {}
    defaults = default_config(method_name(file_conf, overrides))
    return load_config(defaults, config_path, overrides, open_keys=["train.extra"], content=file_conf)


def resolve_config(args: argparse.Namespace) -> tuple[dict[str, Any], list[str]]:
    """The run's config and the lines that say where it came from.

    A new run: code defaults <- ``--config`` <- the CPU preset (``--preset``) <- overrides.
    ``--resume``: the run's own ``config.yaml`` <- overrides (``--config`` and the preset are
    not applied again, so a resumed run keeps its settings).
    """
    from pathlib import Path

    from selfdesc.config import load_config, merge, parse_override, read_yaml
    from selfdesc.errors import ConfigError
    from selfdesc.training.presets import cpu_preset
    from selfdesc.distributed import available_cores

    notes: list[str] = []
    if args.resume:
        saved = Path(args.out) / "config.yaml"
        if not saved.is_file():
            raise ConfigError(f"{saved}: no such file; --resume continues a run folder written by selfdesc train")
        conf = load_config(read_yaml(saved), None, args.overrides, open_keys=["train.extra"])
        notes.append(f"config: {saved} (the run's own settings)" + (f" with {' '.join(args.overrides)}" if args.overrides else ""))
        if args.config is not None:
            notes.append(f"--config {args.config} ignored: a resumed run keeps its config.yaml (change values with key=value)")
        return conf, notes
    file_conf = read_yaml(args.config) if args.config is not None else {}
    defaults = default_config(method_name(file_conf, args.overrides))
    conf = load_config(defaults, args.config, [], open_keys=["train.extra"], content=file_conf)
    preset = args.preset if args.preset != "auto" else ("cpu" if args.device == "cpu" else "none")
    if preset == "cpu":
        conf, changes = cpu_preset(conf, available_cores())
        overridden = {text.split("=", 1)[0].strip() for text in args.overrides}
        kept = [c for c in changes if c.split(" ", 1)[0] not in overridden]
        if kept:
            notes.append("CPU preset (--preset none keeps the config as written): " + ", ".join(kept))
    for text in args.overrides:
        try:
            conf = merge(conf, parse_override(text), open_keys=["train.extra"])
        except ConfigError as exc:
            raise ConfigError(f"override {text}: {exc}") from None
    notes.insert(0, f"config: {args.config or 'code defaults'}" + (f" with {' '.join(args.overrides)}" if args.overrides else ""))
    return conf, notes


def _warm_start(method: Any, name: str, args: argparse.Namespace) -> str:
    """Apply ``--init-from`` to a new run (recorded in ``RUN_DIR/init_from.txt``); the line to print."""
    from pathlib import Path

    from selfdesc.io.atomic import write_text_atomic
    from selfdesc.training.checkpoint import latest_checkpoint
    from selfdesc.training.warm_start import warm_start

    if args.resume:
        return f"--init-from {args.init_from} ignored: a resumed run continues from its checkpoint"
    report = warm_start(method, args.init_from, name)
    out = Path(args.out)
    if latest_checkpoint(out) is None:  # else the trainer refuses the folder; leave its record alone
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / "init_from.txt", report.summary(args.init_from, full=True) + "\n")
    return report.summary(args.init_from).replace("\n", "\nselfdesc train:   ")


def run(args: argparse.Namespace) -> int:
    from selfdesc.cli.common import check_output_dir
    from selfdesc.device import check_device
    from selfdesc.methods import build_method
    from selfdesc.training.image_folder import ImageFolder
    from selfdesc.distributed import available_cores
    from selfdesc.training.trainer import TrainConfig, Trainer, loader_workers, seed_everything

    device = check_device(args.device)
    check_output_dir(args.out)
    if args.max_minutes is not None and args.max_minutes <= 0:
        from selfdesc.errors import ConfigError

        raise ConfigError(f"--max-minutes must be positive, got {args.max_minutes}")
    conf, notes = resolve_config(args)
    method_conf = dict(conf["method"])
    name = method_conf.pop("name")
    seed_everything(conf["train"]["seed"])  # the method's initial weights are part of a seeded run
    method = build_method(name, method_conf)
    if args.init_from is not None:
        notes.append(_warm_start(method, name, args))
    loader_options = getattr(method, "loader_options", None)  # extras the method needs from the loader
    dataset = ImageFolder(args.images, **(loader_options(conf["data"]) if loader_options else {"size": tuple(conf["data"]["size"])}))
    train_conf = TrainConfig(**conf["train"])
    validate = None
    if conf["val"]["images"] is not None:
        from selfdesc.training.validation import SyntheticValidation, ValidationConfig

        validation = getattr(method, "validation", SyntheticValidation)  # a method may bring its own
        validate = validation(ValidationConfig(**conf["val"]), name, args.out, device=device, progress=train_conf.progress)
    trainer = Trainer(method, dataset, train_conf, args.out, device=device, validate=validate, full_config=conf)
    if trainer.is_main:
        workers = loader_workers(train_conf.num_workers, trainer.world)
        crop = conf["method"].get("hcrops", {}).get("crop_size")
        lines = [
            *notes,
            f"image files: {len(dataset.files)} in {args.images}",
            f"method {name} on {device} ({available_cores()} CPU cores, {workers} loader worker(s)), precision {train_conf.precision}",
            f"each step: {train_conf.batch_size} images -> {train_conf.batch_size} pairs of "
            + (f"{crop}x{crop} crops" if crop else "views")
            + f" from images resized to {conf['data']['size'][0]}x{conf['data']['size'][1]}; {train_conf.steps} steps"
            + (f", time limit {args.max_minutes:g} min" if args.max_minutes else ""),
            (f"validation: {len(validate.pairs)} synthetic pairs every {train_conf.validate_every} steps" if validate else "validation: off (val.images=DIR turns it on)"),
        ]
        print("\n".join(f"selfdesc train: {line}" for line in lines), flush=True)
    last = trainer.fit(resume=args.resume, max_seconds=None if args.max_minutes is None else 60 * args.max_minutes)
    if dataset.skipped:
        print(f"skipped {len(dataset.skipped)} unreadable image(s), e.g. {dataset.skipped[0]}")
    if trainer.is_main:
        print(f"step {trainer.step}: " + ", ".join(f"{k} {v:.4g}" for k, v in last.items()))
        print(f"checkpoints in {trainer.run_dir / 'checkpoints'}")
    return 0
