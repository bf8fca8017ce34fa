"""``selfdesc train``: train a method on a folder of unlabeled images.

    selfdesc train --config configs/hndesc_r2d2.yaml --images DIR --out RUN_DIR [--resume]
                   [--device cuda] [key.path=value ...]

The config has four sections: ``train`` (engine: steps, batch size, lr, precision, ...;
see :class:`selfdesc.training.trainer.TrainConfig`), ``data`` (``size: [W, H]`` the training
images are resized/cropped to), ``val`` (``images: DIR`` of held-out base images turns on
MMA@3 validation every ``train.validate_every`` steps, see
:class:`selfdesc.training.validation.ValidationConfig`) and ``method`` (``name`` plus that
method's options). Dotted
overrides after the options change any value, e.g. ``train.steps=500 method.miner.pool=both``.
Multi-GPU: ``torchrun --nproc_per_node N -m selfdesc train ... --device cuda``.
"""
from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a method on a folder of unlabeled images", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=None, help="YAML config (defaults in code when omitted)")
    p.add_argument("--images", required=True, help="folder of training images (recursive)")
    p.add_argument("--out", required=True, help="run folder (config.yaml, metrics.csv, checkpoints/)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from checkpoints/last.pt")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.steps=1000")
    p.set_defaults(handler=run)


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


def method_name(config_path: str | None, overrides: list[str]) -> str:
    """The method a run trains: ``method.name`` from the last override, else the YAML file, else hndesc."""
    from selfdesc.config import parse_override, read_yaml

    name = "hndesc"
    if config_path is not None:
        name = (read_yaml(config_path).get("method") or {}).get("name", name)
    for text in overrides:
        value = parse_override(text)
        if isinstance(value.get("method"), dict) and "name" in value["method"]:
            name = value["method"]["name"]
    return str(name)


def load_run_config(config_path: str | None, overrides: list[str]) -> dict[str, Any]:
    """A run's full config, as ``selfdesc train`` resolves it: the method's code defaults <- YAML <- overrides."""
    from selfdesc.config import load_config

    return load_config(default_config(method_name(config_path, overrides)), config_path, overrides, open_keys=["train.extra"])


def run(args: argparse.Namespace) -> int:
    from selfdesc.cli.common import check_device
    from selfdesc.methods import build_method
    from selfdesc.training.image_folder import ImageFolder
    from selfdesc.training.trainer import TrainConfig, Trainer, seed_everything

    device = check_device(args.device)
    conf = load_run_config(args.config, args.overrides)
    method_conf = dict(conf["method"])
    name = method_conf.pop("name")
    seed_everything(conf["train"]["seed"])  # the method's initial weights are part of a seeded run
    method = build_method(name, method_conf)
    loader_options = getattr(method, "loader_options", None)  # extras the method needs from the loader
    dataset = ImageFolder(args.images, **(loader_options(conf["data"]) if loader_options else {"size": tuple(conf["data"]["size"])}))
    validate = None
    if conf["val"]["images"] is not None:
        from selfdesc.training.validation import SyntheticValidation, ValidationConfig

        validation = getattr(method, "validation", SyntheticValidation)  # a method may bring its own
        validate = validation(ValidationConfig(**conf["val"]), name, args.out, device=device)
    trainer = Trainer(method, dataset, TrainConfig(**conf["train"]), args.out, device=device, validate=validate, full_config=conf)
    last = trainer.fit(resume=args.resume)
    if dataset.skipped:
        print(f"skipped {len(dataset.skipped)} unreadable image(s), e.g. {dataset.skipped[0]}")
    if trainer.is_main:
        print(f"step {trainer.step}: " + ", ".join(f"{k} {v:.4g}" for k, v in last.items()))
        print(f"checkpoints in {trainer.run_dir / 'checkpoints'}")
    return 0
