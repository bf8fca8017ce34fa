"""Homography pair lists: parsing, path resolution and one-line errors naming file:line."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from selfdesc.datasets.hpatches import load_hpatches
from selfdesc.datasets.pairs import load_pair_list
from selfdesc.errors import DatasetError

IDENTITY = "1 0 0 0 1 0 0 0 1"


@pytest.fixture
def folder(tmp_path) -> Path:
    (tmp_path / "imgs").mkdir()
    for name in ["a.png", "b.png", "c.png"]:
        Image.new("RGB", (4, 4)).save(tmp_path / "imgs" / name)
    return tmp_path


def write(folder: Path, text: str) -> Path:
    path = folder / "pairs.txt"
    path.write_text(text)
    return path


def test_reads_pairs_relative_to_the_list_folder(folder, monkeypatch):
    absolute = folder / "imgs" / "c.png"
    path = write(
        folder,
        "# image0 image1 H\n\n"
        "imgs/a.png imgs/b.png 2 0 10  0 2 -5  0 0 1   # trailing comment\n"
        f"  imgs/b.png {absolute} {IDENTITY}\n",
    )
    monkeypatch.chdir("/")
    pairs = load_pair_list(path)
    assert [p.name for p in pairs] == ["imgs/a.png|imgs/b.png", f"imgs/b.png|{absolute}"]
    assert pairs[0].image0 == folder / "imgs" / "a.png" and pairs[1].image1 == absolute
    np.testing.assert_array_equal(pairs[0].H, [[2, 0, 10], [0, 2, -5], [0, 0, 1]])
    assert all(p.split == "overall" and p.sequence == "" for p in pairs)


def test_matches_the_hpatches_loader_on_graf(graf_root, tmp_path):
    seq = graf_root / "v_graffiti"
    lines = [f"{seq / '1.ppm'} {seq / f'{k}.ppm'} " + " ".join(seq.joinpath(f"H_1_{k}").read_text().split()) for k in range(2, 7)]
    pairs = load_pair_list(write(tmp_path, "\n".join(lines)))
    for mine, ref in zip(pairs, load_hpatches(graf_root), strict=True):
        assert (mine.image0, mine.image1) == (ref.image0, ref.image1)
        np.testing.assert_array_equal(mine.H, ref.H)


@pytest.mark.parametrize(
    ("line", "problem", "lineno"),
    [
        ("imgs/a.png imgs/b.png 1 0 0 0 1 0 0 0", "expected 11 fields .* got 10", 2),
        ("imgs/a.png imgs/b.png 1 0 0 0 1 0 0 0 1 7", "expected 11 fields .* got 12", 2),
        ("imgs/a.png imgs/b.png 1 0 0 0 x 0 0 0 1", "homography value 'x' is not a number", 2),
        ("imgs/a.png imgs/b.png 1 0 0 0 inf 0 0 0 1", "NaN or infinite", 2),
        ("imgs/a.png imgs/b.png 1 2 3 2 4 6 0 0 1", "singular", 2),
        ("imgs/a.png imgs/zzz.png " + IDENTITY, r"image .*imgs/zzz\.png not found", 2),
        ("imgs/a.png imgs/b.png " + IDENTITY + "\nimgs/a.png imgs/b.png " + IDENTITY, "repeats line 2", 3),
    ],
)
def test_errors_name_file_and_line(folder, line, problem, lineno):
    path = write(folder, "# header\n" + line + "\n")
    with pytest.raises(DatasetError, match=problem) as err:
        load_pair_list(path)
    assert str(err.value).startswith(f"{path}:{lineno}: ") and "\n" not in str(err.value)


def test_empty_and_missing_lists(folder):
    with pytest.raises(DatasetError, match="pairs.txt: no pairs in the list"):
        load_pair_list(write(folder, "# only comments\n\n   \n"))
    with pytest.raises(DatasetError, match="absent.txt: no such file"):
        load_pair_list(folder / "absent.txt")
