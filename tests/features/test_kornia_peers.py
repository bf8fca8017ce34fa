from __future__ import annotations

from pathlib import Path

import kornia.feature as KF
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from selfdesc.errors import ConfigError, WeightsError
from selfdesc.features import load_extractor
from selfdesc.features.base import Extractor
from selfdesc.features.kornia_peers import ALIKED, DISK, XFeat
from selfdesc.io import rescale_keypoints
from tests.conftest import shared_path

PEERS = ["disk", "aliked", "xfeat"]
DIMS = {"disk": 128, "aliked": 128, "xfeat": 64}


@pytest.fixture(scope="module")
def peers() -> dict[str, Extractor]:
    """The three extractors with default options, built once (needs ../shared weights)."""
    return {name: load_extractor(name, weights_dir=shared_path("weights")) for name in PEERS}


@pytest.fixture(scope="module")
def crop(graf1: np.ndarray) -> np.ndarray:
    """A 160 x 128 crop of graf 1 (multiples of 32: XFeat does not resize it)."""
    return np.ascontiguousarray(graf1[300:428, 200:360])


@pytest.mark.parametrize("name", PEERS)
def test_outputs(peers: dict[str, Extractor], name: str, crop: np.ndarray) -> None:
    pred = peers[name].extract(crop)
    n = len(pred["keypoints"])
    assert n > 20
    assert pred["keypoints"].shape == (n, 2) and pred["keypoints"].dtype == torch.float32
    assert pred["scores"].shape == (n,) and pred["scores"].dtype == torch.float32
    assert pred["descriptors"].shape == (n, DIMS[name]) and pred["descriptors"].dtype == torch.float32
    assert torch.allclose(pred["descriptors"].norm(dim=1), torch.ones(n), atol=1e-5)
    assert pred["image_size"].tolist() == [160, 128]


@pytest.mark.parametrize(("cls", "file"), [(DISK, "depth-save.pth"), (ALIKED, "aliked-n16.pth"), (XFeat, "xfeat.pt")])
def test_missing_weights(cls: type[Extractor], file: str, tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match=file):
        cls({"weights_dir": tmp_path})
    with pytest.raises(WeightsError, match=file):
        load_extractor(cls.name, weights_dir=tmp_path)


@pytest.mark.parametrize("model", ALIKED.models)
def test_aliked_checkpoints_load(model: str, weights_dir: Path) -> None:
    """Every published ALIKED file fits; only the constant buffer dkd.hw_grid is absent from it."""
    net = KF.ALIKED(model_name=model)
    state = torch.load(weights_dir / "aliked" / f"{model}.pth", map_location="cpu", weights_only=True)
    result = net.load_state_dict(state, strict=False)
    assert result.missing_keys == ["dkd.hw_grid"] and result.unexpected_keys == []
    assert ALIKED({"weights_dir": weights_dir, "model": model}).net.model_name == model


def test_aliked_incomplete_weights(weights_dir: Path, tmp_path: Path) -> None:
    state = torch.load(weights_dir / "aliked" / "aliked-n16.pth", map_location="cpu", weights_only=True)
    del state["score_head.0.weight"]
    (tmp_path / "aliked").mkdir()
    torch.save(state, tmp_path / "aliked" / "aliked-n16.pth")
    with pytest.raises(WeightsError, match="aliked-n16.pth.*score_head.0.weight"):
        ALIKED({"weights_dir": tmp_path})


def test_aliked_unknown_model(weights_dir: Path) -> None:
    with pytest.raises(ConfigError, match="aliked-x99"):
        ALIKED({"weights_dir": weights_dir, "model": "aliked-x99"})


@pytest.mark.parametrize("name", PEERS)
def test_constant_image(peers: dict[str, Extractor], name: str) -> None:
    pred = peers[name].extract(np.full((120, 160, 3), 0.5, np.float32))
    n = len(pred["keypoints"])
    assert pred["keypoints"].shape == (n, 2) and pred["descriptors"].shape == (n, DIMS[name])


@pytest.mark.parametrize(
    ("name", "conf", "size"),
    [
        ("disk", {"score_threshold": 1e6}, (120, 160)),
        ("disk", {}, (16, 16)),  # too small for the U-Net
        ("xfeat", {"detection_threshold": 1.0}, (120, 160)),
        ("aliked", {}, (4, 4)),  # every pixel is within the NMS border
    ],
)
def test_no_keypoints(name: str, conf: dict, size: tuple[int, int], weights_dir: Path) -> None:
    rng = np.random.default_rng(0)
    pred = load_extractor(name, weights_dir=weights_dir, **conf).extract(rng.random((*size, 3)).astype(np.float32))
    assert pred["keypoints"].shape == (0, 2)
    assert pred["scores"].shape == (0,)
    assert pred["descriptors"].shape == (0, DIMS[name])


@pytest.mark.parametrize(("name", "budget"), [("disk", "num_keypoints"), ("aliked", "num_keypoints"), ("xfeat", "top_k")])
def test_keypoint_budgets(peers: dict[str, Extractor], name: str, budget: str, crop: np.ndarray, weights_dir: Path) -> None:
    full = peers[name].extract(crop)
    top = load_extractor(name, weights_dir=weights_dir, max_keypoints=15).extract(crop)
    assert len(top["keypoints"]) == 15
    assert torch.allclose(top["scores"].sort().values, torch.topk(full["scores"], 15).values.sort().values)
    own = load_extractor(name, weights_dir=weights_dir, **{budget: 12}).extract(crop)
    assert len(own["keypoints"]) == 12


def test_disk_padding(peers: dict[str, Extractor], crop: np.ndarray, offsets) -> None:
    """150 x 110 is padded to 160 x 112: no keypoint in the padding, and the same keypoints as the larger crop."""
    small = peers["disk"].extract(crop[:110, :150])["keypoints"].numpy()
    assert small[:, 0].max() <= 149 and small[:, 1].max() <= 109
    big = peers["disk"].extract(crop[:120, :160])["keypoints"].numpy()
    inner = small[(small[:, 0] < 140) & (small[:, 1] < 100)]
    d = offsets(inner, big, 1.0)
    assert len(d) > 0.5 * len(inner) and np.abs(d).max() == 0


@pytest.mark.parametrize("name", PEERS)
def test_translation_equivariance(peers: dict[str, Extractor], name: str, graf1: np.ndarray, offsets) -> None:
    """Crops shifted by (5, 3) px: matched keypoints differ by the shift."""
    dx, dy, y, x = 5, 3, 300, 200
    k0 = peers[name].extract(graf1[y : y + 128, x : x + 160])["keypoints"].numpy()
    k1 = peers[name].extract(graf1[y + dy : y + dy + 128, x + dx : x + dx + 160])["keypoints"].numpy() + [dx, dy]
    d = offsets(k1, k0, 2.0)
    assert len(k1) >= 20 and len(d) > 0.3 * len(k1)
    assert np.abs(np.median(d, axis=0)).max() < 0.5
    if name != "xfeat":  # XFeat's 8 x 8 cells are not shift-equivariant to the pixel
        assert np.median(np.linalg.norm(d, axis=1)) < 0.5


def test_xfeat_resize_convention(peers: dict[str, Extractor], crop: np.ndarray) -> None:
    """XFeat resizes 160 x 120 to 160 x 96: its keypoints equal those of the pre-resized image mapped back
    with the pixel-centre rule (kornia's own i * 1.25 would be off by 0.125 px)."""
    img = torch.from_numpy(crop[:120]).permute(2, 0, 1)[None]
    k = peers["xfeat"].extract(img)["keypoints"].numpy()
    resized = F.interpolate(img, (96, 160), mode="bilinear", align_corners=False)
    kr = rescale_keypoints(peers["xfeat"].extract(resized)["keypoints"].numpy(), (1.0, 1.25))
    assert len(k) == len(kr) > 20
    np.testing.assert_allclose(np.sort(k, axis=0), np.sort(kr, axis=0), atol=1e-4)


@pytest.mark.parametrize("name", PEERS)
def test_keypoints_on_square_corners(peers: dict[str, Extractor], name: str, squares: tuple[np.ndarray, np.ndarray]) -> None:
    img, corners = squares
    k = peers[name].extract(img)["keypoints"].numpy()
    dist = np.linalg.norm(corners[:, None] - k[None], axis=2).min(axis=1)
    assert np.sum(dist <= 3.0) >= 3


def test_xfeat_batch_is_kornias_detect_and_compute(peers: dict[str, Extractor], graf1: np.ndarray) -> None:
    """Our batched XFeat post-processing (a fixed number of host synchronisations) gives kornia's
    keypoints (moved to pixel centres), scores and descriptors, image by image, with images of
    different peak counts in one batch and a size that is not a multiple of 32."""
    xfeat = peers["xfeat"]
    a = torch.from_numpy(graf1[100:340, 150:480].transpose(2, 0, 1).copy())
    batch = torch.stack([a, a.flip(-1), torch.zeros_like(a) + 0.5])  # the constant image has no peak
    with torch.no_grad():
        ours, ref = xfeat._extract_batch(batch), xfeat.net.detectAndCompute(batch)
    ratio = torch.tensor([330 / 320, 240 / 224])
    assert len(ours[0]["keypoints"]) > 100 and len(ours[0]["keypoints"]) != len(ours[1]["keypoints"]) and len(ours[2]["keypoints"]) == 0
    for o, r in zip(ours, ref, strict=True):
        torch.testing.assert_close(o["keypoints"], r["keypoints"] + 0.5 * (ratio - 1), atol=1e-4, rtol=0)
        torch.testing.assert_close(o["scores"], r["scores"], atol=1e-6, rtol=0)
        torch.testing.assert_close(o["descriptors"], r["descriptors"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("limit,top_k", [(5000, -1), (60, -1), (5000, 80)])
def test_aliked_batch_is_kornias_forward(peers: dict[str, Extractor], graf1: np.ndarray, limit: int, top_k: int, monkeypatch) -> None:
    """Batched DKD + SDDH give kornia's keypoints, scores and descriptors image by image, in its
    order: raster order, or by score when more than ``n_limit`` peaks were found (limit 60) or in
    top-k mode (``detection_threshold`` 0)."""
    aliked = peers["aliked"]
    monkeypatch.setattr(aliked.net.dkd, "n_limit", limit)
    monkeypatch.setattr(aliked.net.dkd, "top_k", top_k)
    a = torch.from_numpy(graf1[100:340, 150:480].transpose(2, 0, 1).copy())
    batch = torch.stack([a, a.flip(-1), torch.zeros_like(a) + 0.5])
    with torch.no_grad():
        ours, ref = aliked._extract_batch(batch), aliked.net(batch)
    assert len(ours[0]["keypoints"]) == min(limit, top_k if top_k > 0 else limit, len(ours[0]["keypoints"])) > 50
    for o, r in zip(ours, ref, strict=True):
        torch.testing.assert_close(o["keypoints"], r.keypoints, atol=1e-4, rtol=0)
        torch.testing.assert_close(o["scores"], r.keypoint_scores, atol=1e-6, rtol=0)
        torch.testing.assert_close(o["descriptors"], r.descriptors, atol=1e-5, rtol=0)


@pytest.mark.parametrize("limit", [8192, 50])
def test_disk_batch_is_kornias_forward(peers: dict[str, Extractor], graf1: np.ndarray, limit: int, monkeypatch) -> None:
    """Batched peaks and descriptor lookup give kornia's DISK features image by image, in raster
    order, also when ``num_keypoints`` cuts (50) and with a size that is not a multiple of 16."""
    disk = peers["disk"]
    monkeypatch.setitem(disk.conf, "num_keypoints", limit)
    a = torch.from_numpy(graf1[100:230, 150:330].transpose(2, 0, 1).copy())
    batch = torch.stack([a, a.flip(-1)])
    with torch.no_grad():
        ours = disk._extract_batch(batch)
        ref = disk.net(batch, n=limit, window_size=5, score_threshold=0.0, pad_if_not_divisible=True)
    assert len(ours[0]["keypoints"]) == min(limit, len(ours[0]["keypoints"])) > 40
    for o, r in zip(ours, ref, strict=True):
        torch.testing.assert_close(o["keypoints"], r.keypoints, atol=0, rtol=0)
        torch.testing.assert_close(o["scores"], r.detection_scores, atol=1e-6, rtol=0)
        torch.testing.assert_close(o["descriptors"], r.descriptors, atol=1e-6, rtol=0)
