"""HPatches loader and release preparation (real graf sequence + small fake trees)."""
from __future__ import annotations

import io
import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from selfdesc.datasets.hpatches import (
    D2NET_EXCLUDED,
    RELEASE_FOLDER,
    load_hpatches,
    prepare_hpatches,
    sequence_type,
)
from selfdesc.errors import DatasetError


def make_sequence(root: Path, name: str, n: int = 6, suffix: str = ".ppm") -> Path:
    """A tiny sequence: 8x6 images, ``H_1_k`` = translation by ``(k, 0)``."""
    seq = root / name
    seq.mkdir(parents=True)
    for k in range(1, n + 1):
        Image.new("RGB", (8, 6), (10 * k, 0, 0)).save(seq / f"{k}{suffix}")
        if k >= 2:
            np.savetxt(seq / f"H_1_{k}", [[1, 0, k], [0, 1, 0], [0, 0, 1]])
    return seq


# ------------------------------------------------------------------ real data


def test_graf_sequence(graf_root):
    pairs = load_hpatches(graf_root)
    assert [p.name for p in pairs] == [f"v_graffiti/1-{k}" for k in range(2, 7)]
    assert {p.split for p in pairs} == {"v"} and {p.sequence for p in pairs} == {"v_graffiti"}
    assert all(p.image0 == graf_root / "v_graffiti" / "1.ppm" for p in pairs)
    assert [p.image1.name for p in pairs] == [f"{k}.ppm" for k in range(2, 7)]
    # H_1_3 as printed in the file
    expected = [[7.6285898e-01, -2.9922929e-01, 2.2567123e02],
                [3.3443473e-01, 1.0143901e00, -7.6999973e01],
                [3.4663091e-04, -1.4364524e-05, 1.0]]
    np.testing.assert_allclose(pairs[1].H, expected, rtol=1e-7)
    for p in pairs:
        assert p.H.shape == (3, 3) and p.H.dtype == np.float64
        np.testing.assert_array_equal(p.H, np.loadtxt(graf_root / "v_graffiti" / f"H_1_{p.name[-1]}"))
    assert load_hpatches(graf_root, split_list="all", sequences=["v_graffiti"])[0].name == "v_graffiti/1-2"


# ------------------------------------------------------------------ fake trees


def test_sequence_type():
    assert sequence_type("i_ajuntament") == "i" and sequence_type("v_graffiti") == "v"
    with pytest.raises(DatasetError, match="x_bad"):
        sequence_type("x_bad")


def test_d2net_split_skips_the_excluded_sequences(tmp_path):
    for name in ["i_dc", "v_talent", "i_ajuntament", "v_graffiti"]:
        make_sequence(tmp_path, name)
    (tmp_path / "README.txt").write_text("not a sequence")
    (tmp_path / "other").mkdir()
    d2net = load_hpatches(tmp_path)
    assert len(D2NET_EXCLUDED) == 8 and {"i_dc", "v_talent"} <= D2NET_EXCLUDED
    assert sorted({p.sequence for p in d2net}) == ["i_ajuntament", "v_graffiti"]
    assert len(d2net) == 10 and sum(p.split == "i" for p in d2net) == 5
    everything = load_hpatches(tmp_path, split_list="all")
    assert len(everything) == 20 and {p.split for p in everything} == {"i", "v"}
    p = everything[2]
    assert p.name == "i_ajuntament/1-4" and p.H[0, 2] == 4.0


def test_sequences_filter(tmp_path):
    for name in ["i_dc", "i_a", "v_b"]:
        make_sequence(tmp_path, name)
    assert {p.sequence for p in load_hpatches(tmp_path, sequences=["v_b"])} == {"v_b"}
    with pytest.raises(DatasetError, match="v_missing: sequence not found"):
        load_hpatches(tmp_path, sequences=["v_missing"])
    with pytest.raises(DatasetError, match="i_dc: sequence excluded by split_list='d2net'"):
        load_hpatches(tmp_path, sequences=["i_dc"])
    assert len(load_hpatches(tmp_path, split_list="all", sequences=["i_dc"])) == 5
    with pytest.raises(DatasetError, match="unknown HPatches split list"):
        load_hpatches(tmp_path, split_list="d2")


def test_other_image_suffix_and_short_sequences(tmp_path):
    make_sequence(tmp_path, "v_png", suffix=".png")
    make_sequence(tmp_path, "i_three", n=3)
    pairs = load_hpatches(tmp_path)
    assert [p.name for p in pairs] == ["i_three/1-2", "i_three/1-3"] + [f"v_png/1-{k}" for k in range(2, 7)]
    assert pairs[-1].image1.name == "6.png"


def test_missing_root_and_empty_root(tmp_path):
    with pytest.raises(DatasetError, match="nope: no such folder"):
        load_hpatches(tmp_path / "nope")
    with pytest.raises(DatasetError, match="no HPatches sequences"):
        load_hpatches(tmp_path)
    make_sequence(tmp_path / RELEASE_FOLDER, "v_a")
    with pytest.raises(DatasetError, match=f"did you mean .*{RELEASE_FOLDER}"):
        load_hpatches(tmp_path)


def test_missing_image_names_the_file(tmp_path):
    seq = make_sequence(tmp_path, "v_a")
    (seq / "3.ppm").unlink()
    with pytest.raises(DatasetError, match=r"v_a/3\.ppm: missing image"):
        load_hpatches(tmp_path)


def test_missing_homography_names_the_file(tmp_path):
    seq = make_sequence(tmp_path, "v_a")
    (seq / "H_1_4").unlink()
    with pytest.raises(DatasetError, match=r"v_a/H_1_4: missing homography file"):
        load_hpatches(tmp_path)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("1 0 0\n0 1 0\n", "must be 3x3, got 2x3"),
        ("1 0 0\n0 one 0\n0 0 1\n", "cannot read homography"),
        ("1 0 0\n0 nan 0\n0 0 1\n", "NaN or infinite"),
        ("1 2 3\n2 4 6\n0 0 1\n", "singular"),
        ("", "empty homography file"),
    ],
)
def test_malformed_homography_names_the_file(tmp_path, text, problem):
    seq = make_sequence(tmp_path, "v_a")
    (seq / "H_1_5").write_text(text)
    with pytest.raises(DatasetError, match=problem) as err:
        load_hpatches(tmp_path)
    assert str(err.value).startswith(str(seq / "H_1_5")) and "\n" not in str(err.value)


# ------------------------------------------------------------------ prepare_hpatches


@pytest.fixture
def release(tmp_path) -> Path:
    """``tmp/src/hpatches-sequences-release`` with two sequences."""
    rel = tmp_path / "src" / RELEASE_FOLDER
    make_sequence(rel, "i_a")
    make_sequence(rel, "v_b")
    return rel


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith((".tmp", ".part"))]


@pytest.mark.parametrize("fmt", ["gztar", "tar", "zip"])
def test_prepare_from_archive(tmp_path, release, fmt):
    archive = Path(shutil.make_archive(str(tmp_path / "hp"), fmt, root_dir=release.parent, base_dir=RELEASE_FOLDER))
    root = prepare_hpatches(tmp_path / "data" / "hpatches", source=archive)
    assert root == tmp_path / "data" / "hpatches"
    pairs = load_hpatches(root)
    assert len(pairs) == 10 and pairs[0].image0 == root / "i_a" / "1.ppm"
    assert leftovers(root.parent) == []
    assert prepare_hpatches(root, source=tmp_path / "absent.tar.gz") == root  # already there: no-op


def test_prepare_from_tgz_without_top_folder(tmp_path, release):
    archive = tmp_path / "hp.tgz"
    with tarfile.open(archive, "w:gz") as tf:
        for seq in release.iterdir():
            tf.add(seq, arcname=seq.name)
    assert len(load_hpatches(prepare_hpatches(tmp_path / "root", source=archive))) == 10


def test_prepare_from_folder_copies_the_release(tmp_path, release):
    root = prepare_hpatches(tmp_path / "root", source=release.parent)  # the folder holding the release
    assert sorted(p.name for p in root.iterdir()) == ["i_a", "v_b"]
    assert release.is_dir() and len(load_hpatches(root)) == 10
    root2 = prepare_hpatches(tmp_path / "root2", source=release)  # the release itself
    assert len(load_hpatches(root2)) == 10


def test_prepare_into_existing_empty_folder(tmp_path, release):
    (tmp_path / "root").mkdir()
    assert len(load_hpatches(prepare_hpatches(tmp_path / "root", source=release))) == 10


def test_prepare_refuses_unsafe_archives(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        data = b"x"
        info = tarfile.TarInfo("../escaped.txt")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    with pytest.raises(DatasetError, match="unsafe member path '../escaped.txt'"):
        prepare_hpatches(tmp_path / "out" / "root", source=archive)
    assert not (tmp_path / "out" / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()
    assert leftovers(tmp_path / "out") == []

    link = tmp_path / "link.tar"
    with tarfile.open(link, "w") as tf:
        info = tarfile.TarInfo("v_a/1.ppm")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(info)
    with pytest.raises(DatasetError, match="links and special files are not allowed"):
        prepare_hpatches(tmp_path / "root", source=link)

    zipped = tmp_path / "evil.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("/abs.txt", "x")
    with pytest.raises(DatasetError, match="unsafe member path"):
        prepare_hpatches(tmp_path / "root", source=zipped)


def test_prepare_errors(tmp_path):
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no HPatches sequences"):
        prepare_hpatches(tmp_path / "root", source=empty)
    archive = Path(shutil.make_archive(str(tmp_path / "nothing"), "gztar", root_dir=empty))
    with pytest.raises(DatasetError, match="archive holds no HPatches sequences"):
        prepare_hpatches(tmp_path / "root", source=archive)
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"not an archive")
    with pytest.raises(DatasetError, match="cannot extract archive"):
        prepare_hpatches(tmp_path / "root", source=bad)
    (tmp_path / "bad.txt").write_text("x")
    with pytest.raises(DatasetError, match="not a .tar.gz, .tgz, .tar or .zip archive"):
        prepare_hpatches(tmp_path / "root", source=tmp_path / "bad.txt")
    with pytest.raises(DatasetError, match="missing.tar.gz: no such file or folder"):
        prepare_hpatches(tmp_path / "root", source=tmp_path / "missing.tar.gz")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(DatasetError, match="holds no HPatches sequences; give an empty or new folder"):
        prepare_hpatches(busy, source=empty)
    assert (busy / "notes.txt").read_text() == "mine"
    broken = tmp_path / "broken"
    (make_sequence(broken, "v_a") / "H_1_2").write_text("1 0\n")
    with pytest.raises(DatasetError, match=r"v_a/H_1_2: homography must be 3x3"):
        prepare_hpatches(tmp_path / "root", source=broken)
    assert not (tmp_path / "root").exists() and leftovers(tmp_path) == []


def test_download_failure_suggests_from(tmp_path):
    with pytest.raises(DatasetError) as err:
        prepare_hpatches(tmp_path / "root", url="http://127.0.0.1:9/hpatches-sequences-release.tar.gz")
    message = str(err.value)
    assert "cannot download http://127.0.0.1:9/" in message and "--from" in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []
