"""``selfdesc stylize``: parses, writes the mirror tree, fails with a ConfigError on a bad style."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from selfdesc.cli import stylize_cmd
from selfdesc.errors import ConfigError


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="selfdesc")
    stylize_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.handler(args)


def test_stylize_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images, styles = tmp_path / "img", tmp_path / "styles"
    rng = np.random.default_rng(0)
    for path in (images / "a.png", images / "sub" / "b.png", styles / "s.png"):
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(path)
    out = tmp_path / "out"
    argv = ["stylize", "--images", str(images), "--out", str(out), "--copies", "3", "--styles", "lab,night", "--style-bank", str(styles)]
    assert run(argv) == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.jpg")) == [
        "a_st00.jpg", "a_st01.jpg", "a_st02.jpg", "sub/b_st00.jpg", "sub/b_st01.jpg", "sub/b_st02.jpg",
    ]
    assert "2 images: 6 copies written, 0 already there, 0 unreadable images skipped" in capsys.readouterr().out
    assert run(argv) == 0
    assert "0 copies written, 6 already there" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="unknown stylizer 'sepia'"):
        run(["stylize", "--images", str(images), "--out", str(out), "--styles", "fog,sepia"])
