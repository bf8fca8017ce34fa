"""Help that teaches: commands in the order a user needs them, an example line in every
command's help, no RST markup, --resize / --resize-max as one option."""
from __future__ import annotations

import argparse
import re

import pytest

from selfdesc.cli.common import plain_text
from selfdesc.cli.main import build_parser


def _leaf_commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [(prefix, parser)]
    return [leaf for name, p in subs[0].choices.items() for leaf in _leaf_commands(p, (*prefix, name))]


LEAVES = _leaf_commands(build_parser())


def test_commands_are_listed_in_the_order_a_user_needs_them():
    text = build_parser().format_help()
    listed = re.findall(r"^    (\S+)", text, flags=re.M)
    assert listed[:6] == ["train", "extract", "pairs", "match", "sfm", "eval"]
    assert {"export-weights", "features", "demo", "data"} <= set(listed[6:])


@pytest.mark.parametrize("path, parser", LEAVES, ids=[" ".join(p) for p, _ in LEAVES])
def test_every_command_has_a_summary_and_an_example_and_no_markup(path, parser):
    text = parser.format_help()
    description = parser.description or ""
    summary = description.splitlines()[0] if description else ""
    assert summary and len(summary) < 120
    example = re.search(r"^example:\n  (selfdesc .+)$", text, flags=re.M)
    assert example, text
    assert example.group(1).startswith("selfdesc " + " ".join(path))
    assert not re.search(r"``|:(class|func|mod|meth|data):`", text), text


def test_plain_text_unwraps_roles_and_literals():
    doc = "``selfdesc x``: title\n\n    Uses :class:`~a.b.Thing` and :func:`a.b.f` on ``path``::\n\n        code\n"
    assert plain_text(doc) == "Uses Thing and a.b.f on path:\n\n    code"


@pytest.mark.parametrize("argv", [["extract", "--features", "sift", "--images", "d", "--out", "f.h5"], ["sfm", "--images", "d", "--features", "sift", "--out", "o"], ["eval", "homography", "--dataset", "pairs", "--root", "l", "--features", "sift", "--out", "o"], ["eval", "pose", "--format", "pairs", "--root", "l", "--features", "sift", "--out", "o"]])
def test_resize_and_resize_max_are_the_same_option(argv):
    parser = build_parser()
    assert parser.parse_args([*argv, "--resize", "800"]).resize_max == 800
    assert parser.parse_args([*argv, "--resize-max", "640"]).resize_max == 640
