from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from selfdesc.errors import ConfigError
from selfdesc.features import load_extractor
from selfdesc.features.opencv import binary_to_float
from selfdesc.io import rescale_keypoints

NAMES = ["sift", "rootsift", "orb"]
DIMS = {"sift": 128, "rootsift": 128, "orb": 256}


@pytest.mark.parametrize("name", NAMES)
def test_outputs(name: str, texture: np.ndarray) -> None:
    pred = load_extractor(name).extract(texture)
    n = len(pred["keypoints"])
    assert n > 50
    assert pred["keypoints"].shape == (n, 2) and pred["keypoints"].dtype == torch.float32
    assert pred["scores"].shape == (n,) and pred["scores"].dtype == torch.float32
    assert pred["descriptors"].shape == (n, DIMS[name]) and pred["descriptors"].dtype == torch.float32
    assert torch.allclose(pred["descriptors"].norm(dim=1), torch.ones(n), atol=1e-5)
    assert pred["image_size"].tolist() == [320, 240]
    k = pred["keypoints"]
    assert (k >= -0.5).all() and (k[:, 0] <= 319.5).all() and (k[:, 1] <= 239.5).all()


@pytest.mark.parametrize("name", NAMES)
def test_constant_image_gives_no_keypoints(name: str) -> None:
    pred = load_extractor(name).extract(np.full((120, 160), 0.5, np.float32))
    assert pred["keypoints"].shape == (0, 2)
    assert pred["scores"].shape == (0,)
    assert pred["descriptors"].shape == (0, DIMS[name])


@pytest.mark.parametrize("name", ["sift", "rootsift"])
def test_max_keypoints_keeps_the_best(name: str, texture: np.ndarray) -> None:
    full = load_extractor(name).extract(texture)
    top = load_extractor(name, max_keypoints=40).extract(texture)
    assert len(top["keypoints"]) == 40
    assert top["scores"].min() >= torch.topk(full["scores"], 40).values.min() - 1e-6
    # every kept keypoint is one of the full set
    d = torch.cdist(top["keypoints"], full["keypoints"]).min(dim=1).values
    assert d.max() < 1e-3


def test_orb_max_keypoints(texture: np.ndarray) -> None:
    # ORB gets max_keypoints as its nfeatures (spread over the pyramid levels by OpenCV)
    assert len(load_extractor("orb", max_keypoints=40).extract(texture)["keypoints"]) == 40
    assert len(load_extractor("orb", n_features=70).extract(texture)["keypoints"]) == 70


@pytest.mark.parametrize("name", NAMES)
def test_nms_radius(name: str, texture: np.ndarray) -> None:
    pred = load_extractor(name, nms_radius=6, max_keypoints=100).extract(texture)
    k = pred["keypoints"]
    assert 0 < len(k) <= 100
    d = torch.cdist(k, k) + torch.eye(len(k)) * 1e3
    assert d.min() >= 6.0


def test_rootsift_is_sqrt_of_l1_normalised_sift(texture: np.ndarray) -> None:
    sift = load_extractor("sift").extract(texture)["descriptors"]
    root = load_extractor("rootsift").extract(texture)["descriptors"]
    assert torch.allclose(root, torch.sqrt(sift / sift.sum(dim=1, keepdim=True)), atol=1e-5)


def test_orb_dot_product_is_hamming() -> None:
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, size=(20, 32), dtype=np.uint8)
    f = binary_to_float(raw)
    assert f.shape == (20, 256)
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, atol=1e-6)
    hamming = np.array([[cv2.norm(a, b, cv2.NORM_HAMMING) for b in raw] for a in raw])
    np.testing.assert_allclose(f @ f.T, 1.0 - 2.0 * hamming / 256.0, atol=1e-6)


def test_sift_blob_at_pixel_centre() -> None:
    """A Gaussian blob centred on pixel (60, 50) is detected there (pixel-centre convention)."""
    yy, xx = np.mgrid[0:120, 0:160].astype(np.float32)
    blob = 1.0 - np.exp(-((xx - 60.0) ** 2 + (yy - 50.0) ** 2) / (2 * 4.0**2))
    k = load_extractor("sift").extract(blob)["keypoints"]
    assert len(k) > 0
    assert np.abs(k.numpy() - [60.0, 50.0]).max() < 0.02
    # OpenCV's default up-sampling shifts it by about +0.23 px: the reason for precise_upscale
    k_default = load_extractor("sift", precise_upscale=False).extract(blob)["keypoints"].numpy()
    assert np.all(np.abs(k_default - [60.0, 50.0] - 0.23) < 0.03)


def test_orb_keypoints_on_square_corners(squares: tuple[np.ndarray, np.ndarray]) -> None:
    """FAST fires on the pixel diagonally 1.5 px inside each corner, the same for all 4 orientations
    (a half-pixel convention error would make it 1.0 px on one side and 2.0 px on the other)."""
    img, corners = squares
    k = load_extractor("orb").extract(cv2.GaussianBlur(img, (0, 0), 1.0))["keypoints"].numpy()
    inward = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]] * 4)  # TL, TR, BR, BL of each square
    d = k[None] - corners[:, None]  # (16, N, 2)
    on_corner = (np.abs(d - 1.5 * inward[:, None]) < 0.05).all(axis=2).any(axis=1)
    assert on_corner.sum() >= 4
    assert len({i % 4 for i in np.nonzero(on_corner)[0]}) >= 3


@pytest.mark.parametrize("name", ["sift", "orb"])
def test_flip_equivariance(name: str, texture: np.ndarray, offsets) -> None:
    """x -> W - 1 - x is exact in the pixel-centre convention (a half-pixel error would show as 2 x 0.5 px)."""
    ext = load_extractor(name)
    w = texture.shape[1]
    k = ext.extract(texture)["keypoints"].numpy()
    kf = ext.extract(np.ascontiguousarray(texture[:, ::-1]))["keypoints"].numpy()
    kf[:, 0] = w - 1 - kf[:, 0]
    d = offsets(kf, k, 1.0)
    assert len(d) > 0.8 * len(k)
    assert np.abs(np.median(d, axis=0)).max() < 0.01


@pytest.mark.parametrize("name", NAMES)
def test_translation_equivariance(name: str, texture: np.ndarray, offsets) -> None:
    ext = load_extractor(name)
    dx, dy = 7, 5
    k0 = ext.extract(texture[:120, :160])["keypoints"].numpy()
    k1 = ext.extract(texture[dy : dy + 120, dx : dx + 160])["keypoints"].numpy() + [dx, dy]
    d = offsets(k1, k0, 2.0)
    assert len(d) > 0.5 * len(k1) > 10
    assert np.median(np.linalg.norm(d, axis=1)) < 0.5


@pytest.mark.parametrize("name", ["sift", "orb"])
def test_scale_equivariance(name: str, texture: np.ndarray, offsets) -> None:
    """Keypoints of the 2x down-sampled image, mapped back with (p + 0.5) * 2 - 0.5, sit on the full-size ones."""
    ext = load_extractor(name)
    small = cv2.resize(texture, (160, 120), interpolation=cv2.INTER_AREA)
    k = ext.extract(texture)["keypoints"].numpy()
    ks = rescale_keypoints(ext.extract(small)["keypoints"].numpy(), (2.0, 2.0))
    d = offsets(ks, k, 2.0)
    assert len(d) > 20
    assert np.abs(d.mean(axis=0)).max() < 0.15


def test_upright_sift_has_one_keypoint_per_location(texture: np.ndarray) -> None:
    k = load_extractor("sift", upright=True).extract(texture)["keypoints"]
    assert len(k) > 50
    assert len(torch.unique(k, dim=0)) == len(k)


def test_unknown_option() -> None:
    with pytest.raises(ConfigError, match="n_features"):
        load_extractor("sift", n_features=10)
