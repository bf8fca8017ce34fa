"""Synthetic HPatches-style benchmark: warp consistency, layout, determinism, safety."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from selfdesc.datasets.hpatches import load_hpatches
from selfdesc.datasets.synth import MANIFEST, build_synthetic, ensure_synthetic, is_synthetic, warp_image
from selfdesc.errors import ConfigError, DatasetError
from selfdesc.geometry.homography import warp_points
from selfdesc.geometry.random_homography import HomographyParams, homography_from_params
from selfdesc.io.image import load_image


def dot_image(width: int, height: int, rng: np.random.Generator, spacing: int = 32, sigma: float = 2.0):
    """Gaussian dots at random sub-pixel positions on a jittered grid; returns (image, N x 2 centres)."""
    gx, gy = np.meshgrid(np.arange(spacing, width - spacing, spacing), np.arange(spacing, height - spacing, spacing))
    centres = np.stack([gx.ravel(), gy.ravel()], 1) + rng.uniform(-4, 4, size=(gx.size, 2))
    y, x = np.mgrid[0:height, 0:width]
    image = np.zeros((height, width), np.float64)
    for cx, cy in centres:
        image += np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2))
    return np.clip(image, 0, 1).astype(np.float32), centres


def centroids(image: np.ndarray, points: np.ndarray, radius: int = 6) -> np.ndarray:
    """Intensity centroid of ``image`` in a square window around each point."""
    out = []
    for px, py in np.round(points).astype(int):
        win = image[py - radius : py + radius + 1, px - radius : px + radius + 1].astype(np.float64)
        yy, xx = np.mgrid[py - radius : py + radius + 1, px - radius : px + radius + 1]
        out.append([(win * xx).sum() / win.sum(), (win * yy).sum() / win.sum()])
    return np.array(out)


def inside(points: np.ndarray, width: int, height: int, margin: int = 10) -> np.ndarray:
    return np.all((points >= margin) & (points < np.array([width, height]) - margin), axis=1)


def file_hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def built(synth_base, tmp_path) -> Path:
    """The first 2 base images (set14_baboon, set14_baby) at max side 200, seed 0."""
    return build_synthetic(synth_base, tmp_path / "bench", seed=0, num_images=2, max_side=200)


def test_warp_image_moves_dots_by_h():
    rng = np.random.default_rng(0)
    image, dots = dot_image(240, 180, rng)
    H = homography_from_params(HomographyParams(tilt_deg=40, tilt_axis_deg=30, rotation_deg=25, scale=0.8, translation=(0.05, -0.03)), 240, 180)
    for supersample in (1, 2):
        warped = warp_image(image, H, (240, 180), supersample=supersample)
        expected = warp_points(H, dots)
        keep = inside(expected, 240, 180)
        assert keep.sum() > 15
        err = np.linalg.norm(centroids(warped, expected[keep]) - expected[keep], axis=1)
        assert err.max() < 0.25, (supersample, err.max())


def test_written_homographies_match_the_written_images(tmp_path):
    """End to end: dots found in image 1 move to where H_1_k sends them in image k."""
    base = tmp_path / "base"
    base.mkdir()
    image, dots = dot_image(240, 180, np.random.default_rng(1))
    Image.fromarray((image * 255 + 0.5).astype(np.uint8)).save(base / "dots.png")
    pairs = load_hpatches(build_synthetic(base, tmp_path / "out", seed=3, max_side=400))
    v_pairs = [p for p in pairs if p.split == "v"]
    assert len(v_pairs) == 5
    image1 = load_image(v_pairs[0].image0, gray=True).image
    found1 = centroids(image1, dots)
    np.testing.assert_allclose(found1, dots, atol=0.1)
    for p in v_pairs:
        imagek = load_image(p.image1, gray=True).image
        assert imagek.shape == image1.shape
        expected = warp_points(p.H, found1)
        keep = inside(expected, 240, 180)
        assert keep.sum() > 10
        err = np.linalg.norm(centroids(imagek, expected[keep]) - expected[keep], axis=1)
        assert err.max() < 0.25, (p.name, err.max())  # a half-pixel convention slip gives > 0.4
        assert np.abs(p.H - np.eye(3)).max() > 1e-3  # a real change


def test_layout_loads_as_hpatches(built, synth_base):
    assert is_synthetic(built)
    pairs = load_hpatches(built)
    assert len(pairs) == 20 and sum(p.split == "i" for p in pairs) == 10
    stems = sorted(p.name for p in synth_base.iterdir())[:2]
    assert sorted({p.sequence for p in pairs}) == sorted([f"{t}_{Path(s).stem}" for s in stems for t in "iv"])
    for p in pairs:
        w0, h0 = Image.open(p.image0).size
        assert Image.open(p.image1).size == (w0, h0) and max(w0, h0) <= 200
        assert p.image0.suffix == ".ppm"
        if p.split == "i":
            np.testing.assert_array_equal(p.H, np.eye(3))
    i_pair = next(p for p in pairs if p.name.startswith("i_") and p.name.endswith("1-6"))
    a, b = (np.asarray(Image.open(f), np.float32) for f in (i_pair.image0, i_pair.image1))
    assert np.abs(a - b).mean() > 5  # strongest illumination change is visible
    manifest = json.loads((built / MANIFEST).read_text())
    assert manifest["synthetic"] is True and manifest["seed"] == 0 and manifest["num_pairs"] == 20
    assert [s["file"] for s in manifest["sources"]] == stems and manifest["skipped"] == []


def test_same_seed_same_bytes_other_seed_differs(built, synth_base, tmp_path):
    again = build_synthetic(synth_base, tmp_path / "again", seed=0, num_images=2, max_side=200)
    assert file_hashes(again) == file_hashes(built)
    other = file_hashes(build_synthetic(synth_base, tmp_path / "other", seed=1, num_images=2, max_side=200))
    mine = file_hashes(built)
    assert other.keys() == mine.keys()
    changed = [k for k in mine if mine[k] != other[k]]
    assert all(f"{t}_{s}" in {c.split('/')[0] for c in changed} for t in "iv" for s in ["set14_baboon", "set14_baby"])
    assert not any(c.endswith("/1.ppm") for c in changed)  # image 1 is the base image either way


def test_refuses_to_overwrite_unless_asked(built, synth_base, tmp_path):
    with pytest.raises(DatasetError, match="exists and is not empty"):
        build_synthetic(synth_base, built, num_images=1, max_side=200)
    out = tmp_path / "copy"
    build_synthetic(synth_base, out, num_images=1, max_side=64)
    build_synthetic(synth_base, out, num_images=2, max_side=64, overwrite=True)
    assert len(load_hpatches(out)) == 20
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(DatasetError, match="not a synthetic benchmark"):
        build_synthetic(synth_base, mine, num_images=1, overwrite=True)
    assert (mine / "notes.txt").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench", "copy", "mine"]  # no temp folder left


def test_bad_base_images_are_skipped_and_counted(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    Image.new("RGB", (64, 48), (120, 60, 30)).save(base / "good.png")
    (base / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.warns(UserWarning, match="broken.jpg"):
        out = build_synthetic(base, tmp_path / "out", max_side=64)
    manifest = json.loads((out / MANIFEST).read_text())
    assert [s["file"] for s in manifest["sources"]] == ["good.png"]
    assert [s["file"] for s in manifest["skipped"]] == ["broken.jpg"]
    (base / "good.png").unlink()
    with pytest.warns(UserWarning), pytest.raises(DatasetError, match="no usable base image"):
        build_synthetic(base, tmp_path / "out2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base", "out"]


def test_empty_base_folder_and_bad_settings(tmp_path, graf_root):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no image files found"):
        build_synthetic(tmp_path / "empty", tmp_path / "out")
    with pytest.raises(ConfigError, match="per_sequence=1"):
        build_synthetic(tmp_path / "empty", tmp_path / "out", per_sequence=1)
    assert not is_synthetic(graf_root) and not is_synthetic(tmp_path / "missing")
    (tmp_path / MANIFEST).write_text("{broken")
    with pytest.raises(DatasetError, match="unreadable manifest"):
        is_synthetic(tmp_path)


def test_ensure_synthetic_builds_once_and_checks_the_seed(tmp_path, capsys):
    rng = np.random.default_rng(0)
    base = tmp_path / "base"
    base.mkdir()
    image, _ = dot_image(96, 80, rng)
    Image.fromarray((image * 255).astype(np.uint8)).save(base / "a.png")
    out = ensure_synthetic(base, tmp_path / "bench", seed=2, verbose=True, max_side=64)
    assert is_synthetic(out) and json.loads((out / MANIFEST).read_text())["max_side"] == 64
    assert "building the synthetic benchmark (seed 2)" in capsys.readouterr().out
    before = file_hashes(out)
    assert ensure_synthetic(base, out, seed=2, verbose=True, max_side=32) == out  # reused, not rebuilt
    assert file_hashes(out) == before and "already built" in capsys.readouterr().out
    with pytest.raises(DatasetError, match="built with seed 2, not 3"):
        ensure_synthetic(base, out, seed=3)
