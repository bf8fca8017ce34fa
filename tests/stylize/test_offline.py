"""stylize_folder (mirror tree, resume, corrupt images), find_stylized_copies, OnlineStylizer."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from selfdesc.errors import ConfigError, DatasetError
from selfdesc.io.image import load_image
from selfdesc.stylize import OnlineStylizer, find_stylized_copies, stylize_folder, stylized_copy_path


def write_image(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((image * 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture
def image_tree(tmp_path: Path, scene: np.ndarray) -> Path:
    root = tmp_path / "images"
    write_image(root / "x.png", scene[:60, :80])
    write_image(root / "b" / "c" / "y.jpg", scene[60:, 80:])
    (root / "b" / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    return root


def mtimes(root: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_mirror_tree_resume_and_corrupt_images(image_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "stylized"
    with pytest.warns(UserWarning) as caught:
        summary = stylize_folder(image_tree, out, ["fog", "overcast"], copies_per_image=2, seed=1, progress=False)
    messages = [str(w.message) for w in caught]
    assert any("bad.jpg: unreadable or truncated image" in m or "bad.jpg: not an image" in m for m in messages)
    assert "1 of 3 images could not be read and were skipped" in messages
    assert (summary.images, summary.written, summary.existing) == (3, 4, 0)
    assert summary.failed == [image_tree / "b" / "bad.jpg"]
    expected = {out / "x_st00.jpg", out / "x_st01.jpg", out / "b" / "c" / "y_st00.jpg", out / "b" / "c" / "y_st01.jpg"}
    assert set(mtimes(out)) == expected  # no temp files left behind
    assert load_image(out / "b" / "c" / "y_st01.jpg").size == load_image(image_tree / "b" / "c" / "y.jpg").size

    # resume: nothing rewritten
    before = mtimes(out)
    with pytest.warns(UserWarning):
        again = stylize_folder(image_tree, out, ["fog", "overcast"], copies_per_image=2, seed=1, progress=False)
    assert (again.written, again.existing) == (0, 4)
    assert mtimes(out) == before

    # a missing copy is regenerated identically (per-copy generators do not depend on the run)
    lost = out / "x_st01.jpg"
    original = lost.read_bytes()
    lost.unlink()
    with pytest.warns(UserWarning):
        third = stylize_folder(image_tree, out, ["fog", "overcast"], copies_per_image=2, seed=1, progress=False)
    assert (third.written, third.existing) == (1, 3)
    assert lost.read_bytes() == original
    assert {p: t for p, t in mtimes(out).items() if p != lost} == {p: t for p, t in before.items() if p != lost}

    with pytest.warns(UserWarning):
        forced = stylize_folder(image_tree, out, ["fog"], copies_per_image=2, seed=1, overwrite=True, progress=False)
    assert (forced.written, forced.existing) == (4, 0)


def test_copies_alternate_stylizers_and_depend_on_seed(image_tree: Path, tmp_path: Path) -> None:
    (image_tree / "b" / "bad.jpg").unlink()
    a, b = tmp_path / "a", tmp_path / "b"
    stylize_folder(image_tree, a, ["night", "fog"], copies_per_image=2, seed=0, progress=False)
    stylize_folder(image_tree, b, ["night", "fog"], copies_per_image=2, seed=5, progress=False)
    night, fog = load_image(a / "x_st00.jpg").image, load_image(a / "x_st01.jpg").image
    assert night.mean() < 0.5 * fog.mean()  # copy 0 is a night rendering, copy 1 fog
    assert (a / "x_st00.jpg").read_bytes() != (b / "x_st00.jpg").read_bytes()


def test_find_stylized_copies(image_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "stylized"
    (image_tree / "b" / "bad.jpg").unlink()
    stylize_folder(image_tree, out, "overcast", copies_per_image=3, progress=False)
    y = image_tree / "b" / "c" / "y.jpg"
    assert find_stylized_copies(y, image_tree, out) == [out / "b" / "c" / f"y_st0{k}.jpg" for k in range(3)]
    assert stylized_copy_path(y, image_tree, out, 12) == out / "b" / "c" / "y_st12.jpg"
    # HNDesc release layout: one copy with the image's own name, listed first
    hndesc = write_image(out / "x.png", np.zeros((4, 4, 3)))
    assert find_stylized_copies(image_tree / "x.png", image_tree, out)[0] == hndesc
    assert find_stylized_copies(image_tree / "x.png", image_tree, tmp_path / "empty") == []
    with pytest.raises(DatasetError, match="not inside the image folder"):
        find_stylized_copies(tmp_path / "elsewhere.jpg", image_tree, out)


def test_symlinked_images_keep_their_place_in_the_tree(image_tree: Path, tmp_path: Path) -> None:
    (image_tree / "b" / "bad.jpg").unlink()
    linked = image_tree / "b" / "link.png"
    linked.symlink_to(image_tree / "x.png")
    out = tmp_path / "stylized"
    stylize_folder(image_tree, out, "fog", copies_per_image=1, progress=False)
    assert (out / "b" / "link_st00.jpg").is_file()
    assert find_stylized_copies(linked, image_tree, out) == [out / "b" / "link_st00.jpg"]


def test_output_inside_the_image_folder_is_not_restylized(image_tree: Path) -> None:
    (image_tree / "b" / "bad.jpg").unlink()
    out = image_tree / "stylized"
    stylize_folder(image_tree, out, "fog", copies_per_image=1, progress=False)
    second = stylize_folder(image_tree, out, "fog", copies_per_image=1, progress=False)
    assert (second.images, second.written) == (2, 0)
    with pytest.raises(DatasetError, match="must differ"):
        stylize_folder(image_tree, image_tree, "fog", progress=False)
    with pytest.raises(ConfigError, match="copies_per_image"):
        stylize_folder(image_tree, out, "fog", copies_per_image=0, progress=False)


class Brighten:
    name = "brighten"

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.clip(image + 0.5, 0, 1)


def test_online_stylizer_probability(scene: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    online = OnlineStylizer(Brighten())
    assert online.p == 0.7 and online.name == "online(brighten, p=0.7)"
    applied = [not np.array_equal(online(scene, rng), scene) for _ in range(2000)]
    assert abs(np.mean(applied) - 0.7) < 0.04
    assert OnlineStylizer(Brighten(), p=0.0)(scene, rng) is scene
    assert OnlineStylizer("fog", p=1.0)(scene, rng).shape == scene.shape
    with pytest.raises(ConfigError, match=r"in \[0, 1\]"):
        OnlineStylizer(Brighten(), p=1.5)
