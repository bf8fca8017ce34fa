"""Batched extraction is one-image-at-a-time extraction: same keypoints and descriptors (1e-4, fp32)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from selfdesc.errors import ConfigError
from selfdesc.features import load_extractor
from selfdesc.features.base import Extractor
from selfdesc.io.image import LoadedImage
from selfdesc.models.l2net import QuadL2Net
from selfdesc.weights import save_model_file
from tests.conftest import shared_path


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: on a shared 2-core machine, two are much slower for these small inputs."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_model_file(path: Path) -> Path:
    """A small random HNDesc model file (16-D, 1/4 of the channels; no external weights).

    The convolution weights are doubled so that the random maps vary enough for distinct scores.
    """
    torch.manual_seed(0)
    backbone = {"dim": 16, "mchan": 1, "final_relu": False, "heads": True}
    net = QuadL2Net(backbone)
    with torch.no_grad():
        for p in net.parameters():
            if p.ndim == 4:
                p.mul_(2.0)
    save_model_file(path, method="hndesc", conf={"backbone": {"name": "r2d2", **backbone}}, state_dict=net.state_dict(), meta={})
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Extractor:
    path = tiny_model_file(tmp_path_factory.mktemp("tiny") / "tiny.pt")
    return load_extractor(str(path), max_keypoints=150, reliability_thr=0.0, repeatability_thr=0.0, min_scale=0.5)


@pytest.fixture(scope="module")
def images() -> list[LoadedImage]:
    """Four 160 x 120 crops of the astronaut (the third as if downsized from 320 x 240: scale != 1)."""
    from skimage import data

    photo = data.astronaut().astype(np.float32) / 255.0
    crops = [np.ascontiguousarray(photo[y : y + 120, x : x + 160]) for y, x in [(40, 150), (200, 200), (300, 120), (100, 300)]]
    loaded = [LoadedImage(image=c, original_size=(160, 120), scale=(1.0, 1.0)) for c in crops]
    loaded[2] = LoadedImage(image=crops[2], original_size=(320, 240), scale=(2.0, 2.0))
    return loaded


def assert_same(batched: list[dict[str, torch.Tensor]], singles: list[dict[str, torch.Tensor]], atol: float = 1e-4) -> None:
    for b, s in zip(batched, singles, strict=True):
        assert b["keypoints"].shape == s["keypoints"].shape and len(s["keypoints"]) > 10
        torch.testing.assert_close(b["keypoints"], s["keypoints"], atol=atol, rtol=0)
        torch.testing.assert_close(b["scores"], s["scores"], atol=atol, rtol=0)
        torch.testing.assert_close(b["descriptors"], s["descriptors"], atol=atol, rtol=0)
        assert b["image_size"].tolist() == s["image_size"].tolist()


def test_tiny_model_batches_and_matches_single_images(tiny: Extractor, images: list[LoadedImage]) -> None:
    assert tiny.batches and tiny.name == "hndesc"
    batched = tiny.extract_batch(images)
    assert_same(batched, [tiny.extract(im) for im in images])
    # keypoints are in original pixels: those of the downsized image spread twice as far
    assert batched[2]["keypoints"][:, 0].max() > 160 and batched[2]["image_size"].tolist() == [320, 240]


def test_sift_falls_back_to_one_image_at_a_time(images: list[LoadedImage]) -> None:
    sift = load_extractor("sift", max_keypoints=200)
    assert not sift.batches
    assert_same(sift.extract_batch(images), [sift.extract(im) for im in images], atol=0.0)


@pytest.mark.parametrize("name", ["xfeat", "disk", "aliked"])
def test_learned_peers_batch_and_match_single_images(name: str, images: list[LoadedImage]) -> None:
    more = {"detection_threshold": 0.0} if name == "aliked" else {}  # top-k mode: its threshold finds ~5 peaks in these crops
    extractor = load_extractor(name, weights_dir=shared_path("weights"), max_keypoints=300, **more)
    assert extractor.batches
    assert_same(extractor.extract_batch(images), [extractor.extract(im) for im in images])


def test_hndesc_lite_batches_and_matches_single_images(images: list[LoadedImage]) -> None:
    lite = load_extractor("hndesc-lite", max_keypoints=300)
    assert lite.batches
    batched = lite.extract_batch(images)
    assert_same(batched, [lite.extract(im) for im in images])
    assert lite.network(torch.zeros(2, 3, 64, 80))["heatmap"].shape == (2, 1, 64, 80)


def test_network_alone_and_precision(tiny: Extractor, images: list[LoadedImage]) -> None:
    x = torch.stack([torch.from_numpy(im.image.transpose(2, 0, 1)) for im in images])
    levels = tiny.network(x)
    assert len(levels) > 1 and levels[0]["descriptors"].shape == (4, 16, 120, 160)  # the pyramid, full size first
    assert load_extractor("sift").network(x) is None
    low = tiny.extract_batch(images[:1], precision="bf16")[0]
    assert low["keypoints"].dtype == torch.float32 and low["descriptors"].shape[1] == 16
    with pytest.raises(ConfigError, match="precision"):
        tiny.extract_batch(images[:1], precision="fp8")


def test_bf16_stays_close_to_fp32(images: list[LoadedImage]) -> None:
    """XFeat under bfloat16 autocast on the CPU: most keypoints within 1 px, descriptors nearly equal
    (the tolerance stated in docs/extract_speed.md)."""
    xfeat = load_extractor("xfeat", weights_dir=shared_path("weights"), max_keypoints=300)
    ref, low = xfeat.extract_batch(images), xfeat.extract_batch(images, precision="bf16")
    near, total, cos = 0, 0, []
    for a, b in zip(ref, low):
        d, j = torch.cdist(a["keypoints"], b["keypoints"]).min(dim=1)
        near, total = near + int((d <= 1).sum()), total + len(d)
        cos.append((a["descriptors"][d <= 1] * b["descriptors"][j[d <= 1]]).sum(1))
    assert near / total >= 0.8
    assert torch.cat(cos).median() >= 0.99
