"""Small image folders for the pipeline tests (scikit-image photos, no ../shared needed)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

PHOTOS = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png", "brick.png")


def photo(name: str, size: tuple[int, int] = (320, 240)) -> np.ndarray:
    """A scikit-image sample photo resized to ``size`` (W, H), uint8 RGB."""
    skimage = pytest.importorskip("skimage")
    img = Image.open(Path(skimage.__file__).resolve().parent / "data" / name).convert("RGB")
    return np.asarray(img.resize(size, Image.BICUBIC))


def write_folder(root: Path, count: int, size: tuple[int, int] = (320, 240)) -> list[str]:
    """``count`` images under ``root`` (some in a subfolder); returns their relative names, sorted."""
    names = []
    for i in range(count):
        name = f"{'sub/' if i % 3 == 2 else ''}img{i:03d}.png"
        arr = np.roll(photo(PHOTOS[i % len(PHOTOS)], size), 7 * i, axis=1)
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(root / name)
        names.append(name)
    return sorted(names)


@pytest.fixture
def image_dir(tmp_path: Path) -> tuple[Path, list[str]]:
    root = tmp_path / "images"
    return root, write_folder(root, 5)


#: the homography between ``img000.png`` and ``warped.png`` of :func:`sift_features`
H_TRUE = np.array([[0.95, 0.08, 12.0], [-0.06, 1.02, 6.0], [2e-4, 1e-4, 1.0]])


@pytest.fixture(scope="module")
def sift_features(tmp_path_factory) -> tuple[Path, Path, list[str], np.ndarray]:
    """``(image root, features.h5, names, H)``: 5 photos plus ``warped.png`` = ``H`` applied to ``img000.png``; SIFT, 400 keypoints."""
    import cv2

    from selfdesc.features import load_extractor
    from selfdesc.pipeline.extract import ExtractConfig, extract_features

    tmp = tmp_path_factory.mktemp("sift_features")
    root = tmp / "images"
    names = write_folder(root, 5)
    Image.fromarray(cv2.warpPerspective(photo(PHOTOS[0]), H_TRUE, (320, 240))).save(root / "warped.png")
    out = tmp / "f.h5"
    extract_features(load_extractor("sift", max_keypoints=400), "sift", root, out, ExtractConfig(num_workers=0, progress=False))
    return root, out, sorted([*names, "warped.png"]), H_TRUE
