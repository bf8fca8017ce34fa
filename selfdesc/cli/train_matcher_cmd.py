"""``selfdesc train-matcher``: train an attention matcher for a feature, on unlabeled images.

    selfdesc train-matcher --config configs/matcher_default.yaml --features NAME|MODEL.pt
                           --images DIR --out RUN_DIR [--resume] [--device cuda] [key.path=value ...]

``selfdesc train`` with the ``matcher`` method (:mod:`selfdesc.methods.matcher`): the same engine,
config sections, checkpoints, ``--resume``, mixed precision and ``torchrun`` multi-GPU.
With ``val.images`` the run is validated on a held-out synthetic benchmark matched by the
matcher (MMA@3 selects ``best.pt``). ``--features`` sets ``method.features.name`` (a registered feature or one of our model files);
the run records the features' descriptor dimension. Export the matcher with
``selfdesc export-weights RUN_DIR matcher.pt`` and use it with ``--matcher matcher.pt``.
"""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-matcher", help="train an attention matcher for a feature on unlabeled images", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=None, help="YAML config (e.g. configs/matcher_default.yaml; defaults in code when omitted)")
    p.add_argument("--features", default=None, help="feature the matcher is for: a registered name or a model file (default: the config's method.features.name)")
    p.add_argument("--images", required=True, help="folder of training images (recursive)")
    p.add_argument("--out", required=True, help="run folder (config.yaml, metrics.csv, checkpoints/)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from checkpoints/last.pt")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.steps=1000 method.features.max_keypoints=1024")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from selfdesc.cli import train_cmd
    from selfdesc.errors import ConfigError
    from selfdesc.methods.matcher import load_frozen_extractor, probe_descriptor_dim

    overrides = ["method.name=matcher", *args.overrides]
    if args.features is not None:
        from selfdesc.cli.common import parse_features

        if len(parse_features(args.features)) != 1:
            raise ConfigError(f"--features: a matcher is trained for one feature, got '{args.features}'")
        overrides.append(f"method.features.name={args.features}")
    conf = train_cmd.load_run_config(args.config, overrides)
    if conf["method"]["name"] != "matcher":
        raise ConfigError(f"train-matcher trains method 'matcher', the config asks for '{conf['method']['name']}'")
    if conf["method"]["descriptor_dim"] is None:
        dim = probe_descriptor_dim(load_frozen_extractor(conf["method"]["features"], "cpu"))
        overrides.append(f"method.descriptor_dim={dim}")
    return train_cmd.run(argparse.Namespace(config=args.config, images=args.images, out=args.out, resume=args.resume, device=args.device, overrides=overrides))
