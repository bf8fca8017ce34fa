"""Options shared by several commands."""
from __future__ import annotations

import argparse
import os
import re
import textwrap
from pathlib import Path

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


def add_resize_option(parser: argparse.ArgumentParser, what: str = "extract on images resized") -> None:
    """``--resize-max N`` (alias ``--resize``): the longest-side limit, in ``args.resize_max``."""
    parser.add_argument(
        "--resize-max",
        "--resize",
        dest="resize_max",
        type=int,
        default=None,
        metavar="N",
        help=f"{what} so the longest side is at most N (keypoints stay in original pixels; needed above 40 MP)",
    )


def _writable_folder(path: Path, option: str, target: Path) -> None:
    """The nearest existing ancestor of ``path`` must be a folder we may write in."""
    folder = path
    while not folder.exists():
        if folder.parent == folder:
            break
        folder = folder.parent
    if not folder.is_dir():
        raise ConfigError(f"{target}: cannot be created ({folder} is a file, not a folder) ({option})")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{target}: cannot write here ({folder} is read-only) ({option})")


def check_output_file(path: str | Path, option: str = "--out") -> Path:
    """Fail before any work when ``path`` cannot be written as a file: it is a folder, a parent
    is a file, or its folder is read-only. An existing file is fine (replaced atomically later)."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder; {option} takes a file path")
    _writable_folder(path.parent, option, path)
    return path


def check_output_dir(path: str | Path, option: str = "--out") -> Path:
    """Fail before any work when ``path`` cannot be used as an output folder: it is a file, a
    parent is a file, or it (or its nearest existing parent) is read-only."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{path}: is a file; {option} takes a folder")
    _writable_folder(path, option, path)
    return path


def positive(option: str, value: int | float | None) -> None:
    """A count or size option must be at least 1 when given."""
    if value is not None and value < 1:
        raise ConfigError(f"{option} must be at least 1, got {value}")


def plain_text(doc: str) -> str:
    """A module docstring as plain help text: Sphinx roles and RST literals unwrapped, ``::`` as
    ``:``, a leading ````selfdesc cmd````: title line dropped, indentation removed."""
    text = textwrap.dedent(doc.split("\n", 1)[1] if doc.lstrip().startswith("``selfdesc") else doc)
    text = re.sub(r":[a-z]+:`~([^`]+)`", lambda m: m.group(1).split(".")[-1], text)
    text = re.sub(r":[a-z]+:`([^`]+)`", r"\1", text)
    text = text.replace("``", "").replace("::\n", ":\n")
    return text.strip()


def add_command(sub: argparse._SubParsersAction, name: str, summary: str, example: str, doc: str | None = None) -> argparse.ArgumentParser:
    """A (sub-)command whose ``--help`` starts with its one-line ``summary`` and one ``example``
    command line, followed by ``doc`` (the command module's docstring) as plain text."""
    description = f"{summary}\n\nexample:\n  {example}"
    if doc and plain_text(doc):
        description += "\n\n" + plain_text(doc)
    return sub.add_parser(name, help=summary, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
