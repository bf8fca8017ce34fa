from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from selfdesc.errors import ConfigError, WeightsError
from selfdesc.features import load_extractor
from selfdesc.features.r2d2 import R2D2, pyramid_levels
from selfdesc.io import rescale_keypoints
from tests.conftest import shared_path


@pytest.fixture(scope="module")
def crop(graf1: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(graf1[300:428, 200:360])  # 160 x 128


@pytest.fixture(scope="module")
def r2d2() -> R2D2:
    return load_extractor("r2d2", weights_dir=shared_path("weights"))


def test_pyramid_schedule() -> None:
    # full-resolution variant on graf (800 x 640): 7 levels from 1 down to 2^(-6/4) = 0.354 (>= 0.3)
    full = pyramid_levels(640, 800, 2**0.25, 0.3, 1.0, 0, 9999)
    assert [round(s, 3) for s, *_ in full] == [1.0, 0.841, 0.707, 0.595, 0.5, 0.42, 0.354]
    assert all(used for *_, used in full)
    assert full[-1][1:3] == (226, 283)
    # paper variant on 1600 x 1200: levels with a longest side in [256, 1024]; larger ones are only cascaded through
    paper = pyramid_levels(1200, 1600, 2**0.25, 0.0, 1.0, 256, 1024)
    used = [max(h, w) for _, h, w, u in paper if u]
    assert used[0] == 951 and used[-1] == 283 and len(paper) - len(used) == 3


def test_missing_weights(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="r2d2_WASF_N16.pt"):
        R2D2({"weights_dir": tmp_path})
    with pytest.raises(ConfigError, match="huge"):
        R2D2({"weights_dir": tmp_path, "variant": "huge"})


def test_outputs(r2d2: R2D2, crop: np.ndarray) -> None:
    pred = r2d2.extract(crop)
    n = len(pred["keypoints"])
    assert 100 < n <= 5000
    assert pred["keypoints"].dtype == pred["scores"].dtype == pred["descriptors"].dtype == torch.float32
    assert pred["descriptors"].shape == (n, 128)
    assert torch.allclose(pred["descriptors"].norm(dim=1), torch.ones(n), atol=1e-5)
    assert (pred["scores"] >= 0.49 - 1e-6).all() and (pred["scores"] <= 1).all()  # R * S with both >= 0.7
    k = pred["keypoints"]
    assert (k >= -0.5).all() and (k[:, 0] <= 159.5).all() and (k[:, 1] <= 127.5).all()


def test_top_k(r2d2: R2D2, crop: np.ndarray, weights_dir: Path) -> None:
    full = r2d2.extract(crop)
    top = load_extractor("r2d2", weights_dir=weights_dir, max_keypoints=50).extract(crop)
    assert len(top["keypoints"]) == 50
    assert torch.allclose(top["scores"].sort().values, torch.topk(full["scores"], 50).values.sort().values)


def test_no_keypoints(r2d2: R2D2, weights_dir: Path) -> None:
    pred = r2d2.extract(np.full((120, 160, 3), 0.5, np.float32))
    assert pred["keypoints"].shape == (0, 2) and pred["descriptors"].shape == (0, 128)
    # the paper variant uses no level whose longest side is under 256 px
    small = load_extractor("r2d2", weights_dir=weights_dir, variant="paper").extract(np.random.default_rng(0).random((128, 160, 3)))
    assert small["keypoints"].shape == (0, 2) and small["scores"].shape == (0,)


def test_level_to_image_mapping(crop: np.ndarray, weights_dir: Path) -> None:
    """A level at scale 1/2 gives the keypoints of the half-size image mapped back with (p + 0.5) * 2 - 0.5."""
    img = torch.from_numpy(crop).permute(2, 0, 1)[None]
    half_level = load_extractor("r2d2", weights_dir=weights_dir, scale_f=2.0, min_scale=0.5, max_scale=0.5)
    k = half_level.extract(img)["keypoints"].numpy()
    half = F.interpolate(img, (64, 80), mode="bilinear", align_corners=False)
    one_level = load_extractor("r2d2", weights_dir=weights_dir, min_scale=1.0)
    kh = rescale_keypoints(one_level.extract(half)["keypoints"].numpy(), (2.0, 2.0))
    assert len(k) == len(kh) > 10
    np.testing.assert_allclose(np.sort(k, axis=0), np.sort(kh, axis=0), atol=1e-5)


def test_translation_equivariance(r2d2: R2D2, graf1: np.ndarray, offsets, weights_dir: Path) -> None:
    dx, dy, y, x = 5, 3, 300, 200
    a, b = graf1[y : y + 128, x : x + 160], graf1[y + dy : y + dy + 128, x + dx : x + dx + 160]
    single = load_extractor("r2d2", weights_dir=weights_dir, min_scale=1.0)
    d = offsets(single.extract(b)["keypoints"].numpy() + [dx, dy], single.extract(a)["keypoints"].numpy())
    assert len(d) > 50 and np.median(np.linalg.norm(d, axis=1)) < 0.5
    # multi-scale: the coarse levels are quantised differently, but without a bias
    d = offsets(r2d2.extract(b)["keypoints"].numpy() + [dx, dy], r2d2.extract(a)["keypoints"].numpy())
    assert len(d) > 100 and np.abs(np.median(d, axis=0)).max() < 0.25
