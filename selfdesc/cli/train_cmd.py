"""``selfdesc train``: train a method on a folder of unlabeled images.

    selfdesc train --config configs/hndesc_r2d2.yaml --images DIR --out RUN_DIR [--resume]
                   [--device cuda] [key.path=value ...]

The config has three sections: ``train`` (engine: steps, batch size, lr, precision, ...;
see :class:`selfdesc.training.trainer.TrainConfig`), ``data`` (``size: [W, H]`` the training
images are resized/cropped to) and ``method`` (``name`` plus that method's options). Dotted
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


def default_config() -> dict[str, Any]:
    from selfdesc.methods.hndesc import DEFAULT_CONF
    from selfdesc.training.trainer import TrainConfig

    return {"train": asdict(TrainConfig()), "data": {"size": [320, 240]}, "method": {"name": "hndesc", **DEFAULT_CONF}}


def run(args: argparse.Namespace) -> int:
    from selfdesc.cli.common import check_device
    from selfdesc.config import load_config
    from selfdesc.errors import ConfigError
    from selfdesc.methods.hndesc import HNDesc
    from selfdesc.training.image_folder import ImageFolder
    from selfdesc.training.trainer import TrainConfig, Trainer

    device = check_device(args.device)
    conf = load_config(default_config(), args.config, args.overrides, open_keys=["train.extra"])
    method_conf = dict(conf["method"])
    name = method_conf.pop("name")
    if name != "hndesc":
        raise ConfigError(f"unknown method '{name}' (available: hndesc)")
    dataset = ImageFolder(args.images, size=tuple(conf["data"]["size"]))
    trainer = Trainer(HNDesc(method_conf), dataset, TrainConfig(**conf["train"]), args.out, device=device, full_config=conf)
    last = trainer.fit(resume=args.resume)
    if dataset.skipped:
        print(f"skipped {len(dataset.skipped)} unreadable image(s), e.g. {dataset.skipped[0]}")
    if trainer.is_main:
        print(f"step {trainer.step}: " + ", ".join(f"{k} {v:.4g}" for k, v in last.items()))
        print(f"checkpoints in {trainer.run_dir / 'checkpoints'}")
    return 0
