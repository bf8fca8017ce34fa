from __future__ import annotations

import numpy as np
import pytest

from selfdesc.datasets.scannet_pairs import load_pose_pairs
from selfdesc.errors import DatasetError
from tests.conftest import shared_path

K = "500 0 320 0 500 240 0 0 1"
T = "1 0 0 0.5 0 1 0 0 0 0 1 0 0 0 0 1"


def _write(tmp_path, lines):
    (tmp_path / "images").mkdir(exist_ok=True)
    for n in ("a.jpg", "b.jpg"):
        (tmp_path / "images" / n).write_bytes(b"")
    path = tmp_path / "list_pairs.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_parses_a_list(tmp_path):
    pairs = load_pose_pairs(_write(tmp_path, ["# comment", f"a.jpg b.jpg 0 0 {K} {K} {T}", ""]))
    assert len(pairs) == 1
    np.testing.assert_allclose(pairs[0].T_0to1[:3, 3], [0.5, 0, 0])
    assert pairs[0].image0 == tmp_path / "images" / "a.jpg" and pairs[0].name == "a.jpg|b.jpg"
    assert load_pose_pairs(tmp_path)[0].name == "a.jpg|b.jpg"  # the folder finds its list


@pytest.mark.parametrize(
    "line, message",
    [
        (f"a.jpg b.jpg 0 0 {K} {K}", "expected 38 fields"),
        (f"a.jpg b.jpg 1 0 {K} {K} {T}", "rotated pairs"),
        (f"a.jpg b.jpg 0 0 {K} {K} {T.replace('0.5', 'x')}", "T_0to1 has a value that is not a number"),
        (f"a.jpg b.jpg 0 0 {K} {K} {T.replace('1 0 0 0.5', '2 0 0 0.5')}", "not a rigid transform"),
        (f"a.jpg b.jpg 0 0 {K.replace('500 0 320', '-5 0 320')} {K} {T}", "K0 is not an intrinsics matrix"),
        (f"a.jpg c.jpg 0 0 {K} {K} {T}", "c.jpg not found"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path, line, message):
    with pytest.raises(DatasetError, match=message) as err:
        load_pose_pairs(_write(tmp_path, [line]))
    assert "list_pairs.txt:1" in str(err.value) and "\n" not in str(err.value)


def test_repeats_and_empty(tmp_path):
    with pytest.raises(DatasetError, match="repeats line 1"):
        load_pose_pairs(_write(tmp_path, [f"a.jpg b.jpg 0 0 {K} {K} {T}"] * 2))
    with pytest.raises(DatasetError, match="no pairs"):
        load_pose_pairs(_write(tmp_path, ["# nothing"]))
    with pytest.raises(DatasetError, match="no such file or folder"):
        load_pose_pairs(tmp_path / "missing")


def test_real_scannet_sample():
    root = shared_path("eval/scannet_sample")
    pairs = load_pose_pairs(root)
    assert len(pairs) == 15
    for p in pairs:
        assert p.image0.is_file() and p.image1.is_file()
        R = p.T_0to1[:3, :3]
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-3)
        assert 1000 < p.K0[0, 0] < 1300 and p.K0[0, 2] > 600
