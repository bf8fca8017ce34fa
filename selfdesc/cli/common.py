"""Options shared by several commands."""
from __future__ import annotations

import argparse

from selfdesc.errors import ConfigError


def add_feature_options(parser: argparse.ArgumentParser, default_features: str | None = None) -> None:
    """``--features``, ``--weights-dir``, ``--max-keypoints``, ``--device``."""
    parser.add_argument(
        "--features",
        required=default_features is None,
        default=default_features,
        help="comma-separated feature names (see `selfdesc features`) or paths of model files / training checkpoints",
    )
    parser.add_argument("--weights-dir", default=None, help="folder of peer weight files (default: ../shared/data/weights when present)")
    parser.add_argument("--max-keypoints", type=int, default=None, help="keep at most N keypoints per image (by score)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where networks and matching run")


def parse_features(text: str) -> list[str]:
    """Split and validate a comma-separated list of feature names or model-file paths."""
    from selfdesc.features import REGISTRY, available_features, is_model_path

    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigError("--features is empty")
    unknown = [n for n in names if n not in REGISTRY and not is_model_path(n)]
    if unknown:
        raise ConfigError(f"unknown feature(s) {', '.join(unknown)} (available: {', '.join(available_features())})")
    return names


def add_matcher_option(parser: argparse.ArgumentParser) -> None:
    """``--matcher``: evaluate features also with a trained matcher (see :func:`parse_matchers`)."""
    parser.add_argument(
        "--matcher",
        default=None,
        help="also evaluate with a trained matcher (results as FEATURE+matcher): NAME|FILE for every feature, or FEATURE=NAME|FILE,...",
    )


def parse_matchers(text: str | None, features: list[str]) -> dict[str, str]:
    """``--matcher`` -> ``{feature: matcher}``: ``NAME|FILE`` applies to every feature,
    ``FEATURE=NAME|FILE,...`` to the features named. Unknown matchers fail here, before any work."""
    from selfdesc.matching.learned import resolve_matcher

    if not text:
        return {}
    out: dict[str, str] = {}
    if "=" not in text:
        out = {f: text for f in features}
    for item in text.split(",") if "=" in text else ():
        feature, _, matcher = (s.strip() for s in item.partition("="))
        if feature not in features or not matcher:
            raise ConfigError(f"--matcher: '{item}' is not FEATURE=MATCHER with FEATURE one of --features ({', '.join(features)})")
        out[feature] = matcher
    for matcher in set(out.values()):
        resolve_matcher(matcher)
    return out


def check_device(device: str) -> str:
    """Fail clearly when CUDA is asked for but absent."""
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("--device cuda was given but no CUDA device is available")
    return device
