"""Negative mining: descriptor sampling, true non-matches per pool, hardest-K, masks."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from selfdesc.errors import ConfigError
from selfdesc.geometry.homography import warp_points_torch
from selfdesc.methods.parts.mining import Miner, sample_descriptors

B, D, S, N = 4, 8, 24, 12
IMAGE_IDS = torch.tensor([7, 7, 3, 5])  # pairs 0 and 1 are crops of the same image
SENTINEL = (0.25, 0.75)  # where padded keypoints point


def homography(angle: float, scale: float, tx: float, ty: float) -> torch.Tensor:
    c = (S - 1) / 2
    cos, sin = scale * math.cos(angle), scale * math.sin(angle)
    to_centre = torch.tensor([[1.0, 0, -c], [0, 1, -c], [0, 0, 1]])
    back = torch.tensor([[1.0, 0, c + tx], [0, 1, c + ty], [0, 0, 1]])
    return back @ torch.tensor([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1.0]]) @ to_centre


def make_batch(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    H = torch.stack([homography(0.2 * b - 0.3, 0.9 + 0.05 * b, b - 1.5, 1.0 - b) for b in range(B)])
    kp_a = 6 + 11 * torch.rand(B, N, 2, generator=g)
    kp_a[0, 1] = kp_a[0, 0] + 1.0  # two keypoints closer than the radius
    valid = torch.ones(B, N, dtype=torch.bool)
    valid[2, 8:] = False
    valid[3, 1:] = False  # a single valid keypoint: no queries from pair 3
    kp_b = warp_points_torch(H, kp_a)
    kp_a[~valid] = torch.tensor(SENTINEL)
    kp_b[~valid] = torch.tensor(SENTINEL)
    return {
        "desc_a": F.normalize(torch.randn(B, D, S, S, generator=g), dim=1).requires_grad_(),
        "desc_b": F.normalize(torch.randn(B, D, S, S, generator=g), dim=1).requires_grad_(),
        "kp_a": kp_a,
        "kp_b": kp_b,
        "valid": valid,
        "H_ab": H,
        "image_ids": IMAGE_IDS,
    }


def bilinear(map_: torch.Tensor, x: float, y: float) -> torch.Tensor:
    x0, y0 = math.floor(x), math.floor(y)
    x1, y1 = min(x0 + 1, map_.shape[2] - 1), min(y0 + 1, map_.shape[1] - 1)
    fx, fy = x - x0, y - y0
    top = (1 - fx) * map_[:, y0, x0] + fx * map_[:, y0, x1]
    bottom = (1 - fx) * map_[:, y1, x0] + fx * map_[:, y1, x1]
    return (1 - fy) * top + fy * bottom


def test_sample_descriptors_bilinear_and_nearest_against_manual() -> None:
    maps = torch.randn(2, 5, 7, 9, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    points = torch.tensor([[[0.0, 0.0], [3.25, 2.5], [8.0, 6.0]], [[7.9, 0.1], [4.0, 5.0], [0.5, 6.0]]], dtype=torch.float64)
    got = sample_descriptors(maps, points, "bilinear", normalize=False)
    near = sample_descriptors(maps, points, "nearest", normalize=False)
    for b in range(2):
        for i, (x, y) in enumerate(points[b].tolist()):
            assert torch.allclose(got[b, i], bilinear(maps[b], x, y), atol=1e-12)
            assert torch.equal(near[b, i], maps[b, :, round(y), round(x)])
    unit = sample_descriptors(maps, points)
    assert torch.allclose(unit.norm(dim=-1), torch.ones(2, 3, dtype=torch.float64))


@pytest.mark.parametrize("stride", [1, 4])
def test_every_pool_returns_only_true_non_matches(stride: int) -> None:
    batch = make_batch()
    s = S // stride  # maps of a strided backbone (e.g. CAPS fine map, stride 4); positions stay in crop pixels
    batch["desc_a"] = F.normalize(torch.randn(B, D, s, s), dim=1)
    batch["desc_b"] = F.normalize(torch.randn(B, D, s, s), dim=1)
    extra = F.normalize(torch.randn(2, D, s, s), dim=1)
    extra_kp = 1 + (S - 2) * torch.rand(2, 5, 2, generator=torch.Generator().manual_seed(2))
    for pool in ("in_pair", "in_batch", "both", "gd", "selfgd"):
        miner = Miner(pool=pool, num_negatives=10, neg_radius=4.0, num_candidates=30, layout="grid")
        out = miner.mine(**batch, extra_desc=extra, extra_keypoints=extra_kp, extra_image_ids=torch.tensor([3, 9]), stride=stride)
        M = len(out["query"])
        assert M == 12 + 12 + 8  # pair 3 gives no queries, padded keypoints none
        assert out["negatives"].shape == (M, 10, D) and out["neg_xy"].shape == (M, 10, 2)
        assert batch["valid"][out["query_pair"], out["query_index"]].all()
        assert torch.allclose(out["target_xy"], out["positive_xy"], atol=1e-4)
        owner = out["query_pair"][:, None].expand(-1, 10)
        own = out["neg_map"] == owner
        dist = (out["neg_xy"] - out["target_xy"][:, None]).norm(dim=-1)
        assert (dist[own] > 4.0).all()  # in-pair negatives are outside the positive neighbourhood
        other = ~own
        from_b = out["neg_map"] < B
        assert (IMAGE_IDS[out["neg_map"][other & from_b]] != IMAGE_IDS[owner[other & from_b]]).all()
        assert not (out["neg_xy"] == torch.tensor(SENTINEL)).all(-1).any()  # padded keypoints never used
        if pool == "in_pair":
            assert own.all()
        if pool in ("in_batch", "gd", "selfgd"):
            assert not own.any()
        if pool in ("gd", "selfgd"):
            assert (out["neg_map"] == B).any()  # extra crop of image 9 is a negative...
            assert not ((out["neg_map"] == B) & (IMAGE_IDS[owner] == 3)).any()  # ...but not for image 3 queries
        else:
            assert (out["neg_map"] < B).all()
        # the returned descriptors are the maps' descriptors at the returned positions
        maps = torch.cat([batch["desc_b"], extra])[out["neg_map"][:, 0]]
        first = sample_descriptors(maps, out["neg_xy"][:, :1], stride=stride)[:, 0]
        assert torch.allclose(first, out["negatives"][:, 0], atol=1e-6)
        assert (out["neg_xy"] >= 0).all() and (out["neg_xy"] <= S - 1).all()  # candidates cover the crop, not the map
        want_q = sample_descriptors(batch["desc_a"], batch["kp_a"], stride=stride)[out["query_pair"], out["query_index"]]
        assert torch.allclose(out["query"], want_q)


@pytest.mark.parametrize("pool", ["in_pair", "in_batch", "both"])
def test_hardest_k_matches_brute_force(pool: str) -> None:
    batch = make_batch(seed=3)
    k, radius = 6, 3.0
    out = Miner(pool=pool, num_negatives=k, neg_radius=radius).mine(**batch)
    pb = sample_descriptors(batch["desc_b"], batch["kp_b"])
    for i in range(len(out["query"])):
        b = int(out["query_pair"][i])
        sims = []
        for bb in range(B):
            for n in range(N):
                if not batch["valid"][bb, n]:
                    continue
                in_pair = bb == b and float((batch["kp_b"][bb, n] - out["target_xy"][i]).norm()) > radius
                in_batch = IMAGE_IDS[bb] != IMAGE_IDS[b]
                if (pool != "in_batch" and in_pair) or (pool != "in_pair" and in_batch):
                    sims.append(float(out["query"][i].detach() @ pb[bb, n].detach()))
        want = sorted(sims, reverse=True)[:k]
        want += want[-1:] * (k - len(want))  # HNDesc padding: repeat the weakest
        got = (out["negatives"][i] @ out["query"][i]).tolist()
        assert got == pytest.approx(want, abs=1e-6)
        assert int(out["neg_count"][i]) == min(k, len(sims))


def test_near_duplicate_keypoint_is_not_a_negative_and_padding() -> None:
    batch = make_batch()
    out = Miner(pool="in_pair", num_negatives=20, neg_radius=3.0).mine(**batch)
    q0 = (out["query_pair"] == 0) & (out["query_index"] == 0)
    neighbour = batch["kp_b"][0, 1]
    assert not (out["neg_xy"][q0] - neighbour).norm(dim=-1).lt(1e-6).any()
    far = (batch["kp_b"][0] - out["target_xy"][q0]).norm(dim=-1) > 3.0
    count = int(out["neg_count"][q0])
    assert count == int(far.sum()) < N - 1  # itself and its neighbour are among the excluded
    assert (out["neg_xy"][q0][0, count:] == out["neg_xy"][q0][0, count - 1]).all()  # padding repeats the weakest


def test_gradients_reach_both_maps_and_random_layout_is_seeded() -> None:
    batch = make_batch()
    miner = Miner(pool="both", num_candidates=40, layout="random")
    out = miner.mine(**batch, generator=torch.Generator().manual_seed(5))
    again = miner.mine(**batch, generator=torch.Generator().manual_seed(5))
    assert torch.equal(out["neg_xy"], again["neg_xy"])
    ((out["query"][:, None] * out["negatives"]).sum() + (out["query"] * out["positive"]).sum()).backward()
    assert batch["desc_a"].grad.abs().sum() > 0 and batch["desc_b"].grad.abs().sum() > 0


def test_nearest_sampling_and_config_errors() -> None:
    batch = make_batch()
    out = Miner(pool="in_batch", sampling="nearest").mine(**batch)
    maps = batch["desc_b"][out["neg_map"][:, 0]]
    xy = out["neg_xy"][:, 0].round().long()
    want = F.normalize(maps[torch.arange(len(xy)), :, xy[:, 1], xy[:, 0]], dim=-1)
    assert torch.allclose(out["negatives"][:, 0], want, atol=1e-6)
    with pytest.raises(ConfigError, match="needs extra_desc"):
        Miner(pool="gd").mine(**batch)
    with pytest.raises(ConfigError, match="unknown pool"):
        Miner(pool="everything")
    with pytest.raises(ConfigError, match="no candidates"):
        Miner(use_keypoints=False)
