from __future__ import annotations

import numpy as np
import pytest

from selfdesc.datasets.strecha import covisible_pairs, load_scene, load_scenes, read_camera, relative_pose
from selfdesc.errors import DatasetError
from tests.conftest import shared_path

CAMERA = """1000 0 500
0 1000 400
0 0 1
0 0 0
{r}
{c}
1000 800
"""
IDENTITY = "1 0 0\n0 1 0\n0 0 1"


def _look_at(centre: np.ndarray, target: np.ndarray) -> str:
    """Camera-to-world R (rows as text) of a camera at ``centre`` looking at ``target``."""
    z = (target - centre) / np.linalg.norm(target - centre)
    x = np.cross([0.0, 1.0, 0.0], z)
    x /= np.linalg.norm(x)
    R = np.stack([x, np.cross(z, x), z], axis=1)
    return "\n".join(" ".join(f"{v:.9f}" for v in row) for row in R)


def _scene(tmp_path, cameras):
    (tmp_path / "images").mkdir()
    (tmp_path / "cameras").mkdir()
    for i, (r, c) in enumerate(cameras):
        (tmp_path / "images" / f"{i:04d}.jpg").write_bytes(b"")
        (tmp_path / "cameras" / f"{i:04d}.jpg.camera").write_text(CAMERA.format(r=r, c=c))
    return tmp_path


def test_relative_pose_maps_camera0_points_to_camera1(tmp_path):
    root = shared_path("eval/strecha/fountain-P11")
    scene = load_scene(root)
    c0, c1 = scene.cameras["0000.jpg"], scene.cameras["0003.jpg"]
    X = np.array([[0.5, -1.0, 3.0], [2.0, 0.3, -1.0]])
    T = relative_pose(c0, c1)
    X0, X1 = c0.world_to_camera(X), c1.world_to_camera(X)
    np.testing.assert_allclose(X0 @ T[:3, :3].T + T[:3, 3], X1, atol=1e-4)  # R is stored to 6 digits


def test_real_scenes_parse_and_cameras_face_the_scene():
    scenes = load_scenes(shared_path("eval/strecha"))
    assert [s.name for s in scenes] == ["Herz-Jesus-P8", "entry-P10", "fountain-P11"]
    assert [len(s.images) for s in scenes] == [8, 10, 11]
    for s in scenes:
        for cam in s.cameras.values():
            assert cam.size == (1536, 1024)
            assert cam.K[0, 0] > 1000
        pairs = covisible_pairs(s)
        assert 0 < len(pairs) <= len(s.images) * (len(s.images) - 1) // 2
        assert all(p.scene == s.name for p in pairs)
    everything = covisible_pairs(scenes[2], min_overlap=0.0, max_angle=180.0)
    assert len(everything) == 55


def test_covisibility_drops_cameras_looking_elsewhere(tmp_path):
    # two cameras looking at (0, 0, 10) from nearby; a third at the origin looking the other way
    target = np.array([0.0, 0.0, 10.0])
    cams = [(_look_at(np.zeros(3), target), "0 0 0"), (_look_at(np.array([1.0, 0, 0]), target), "1 0 0")]
    cams.append(("-1 0 0\n0 1 0\n0 0 -1", "0 0 0"))
    root = _scene(tmp_path, cams)
    scene = load_scene(root)
    names = [p.name for p in covisible_pairs(scene)]
    assert names == [f"{tmp_path.name}/0000-0001"]


def test_bad_camera_files(tmp_path):
    (tmp_path / "a.camera").write_text("1 2 3")
    with pytest.raises(DatasetError, match="expected 26 numbers"):
        read_camera(tmp_path / "a.camera")
    (tmp_path / "b.camera").write_text(CAMERA.format(r=IDENTITY, c="0 0 x"))
    with pytest.raises(DatasetError, match="not a number"):
        read_camera(tmp_path / "b.camera")
    (tmp_path / "c.camera").write_text(CAMERA.format(r=IDENTITY.replace("0 1 0", "0 2 0"), c="0 0 0"))
    with pytest.raises(DatasetError, match="not a rotation"):
        read_camera(tmp_path / "c.camera")
    with pytest.raises(DatasetError, match="camera file not found"):
        read_camera(tmp_path / "missing.camera")
    with pytest.raises(DatasetError, match="no images/ folder"):
        load_scene(tmp_path)
