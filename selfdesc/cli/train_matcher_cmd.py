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
    from selfdesc.cli.common import add_command
    from selfdesc.cli.train_cmd import add_training_options

    p = add_command(
        sub,
        "train-matcher",
        "train an attention matcher for a feature on a folder of your own photos (no labels)",
        "selfdesc train-matcher --config configs/matcher_default.yaml --features sift --images my_photos/ --out runs/matcher-sift",
        __doc__,
    )
    p.add_argument("--features", default=None, help="feature the matcher is for: a registered name or a model file (default: the config's method.features.name)")
    add_training_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from selfdesc.cli import train_cmd
    from selfdesc.errors import ConfigError
    from selfdesc.methods.matcher import load_frozen_extractor, probe_descriptor_dim
    from selfdesc.training.run import load_run_config

    overrides = ["method.name=matcher", *args.overrides]
    if args.features is not None:
        from selfdesc.cli.common import parse_features

        if len(parse_features(args.features)) != 1:
            raise ConfigError(f"--features: a matcher is trained for one feature, got '{args.features}'")
        overrides.append(f"method.features.name={args.features}")
    conf = load_run_config(args.config, overrides)
    if conf["method"]["name"] != "matcher":
        raise ConfigError(f"train-matcher trains method 'matcher', the config asks for '{conf['method']['name']}'")
    if conf["method"]["descriptor_dim"] is None:
        dim = probe_descriptor_dim(load_frozen_extractor(conf["method"]["features"], "cpu"))
        overrides.append(f"method.descriptor_dim={dim}")
    return train_cmd.run(argparse.Namespace(**{**vars(args), "overrides": overrides, "init_from": None}))
