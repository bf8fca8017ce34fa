"""The attention matcher: output format, symmetry, padding, 0 / 1 keypoints, early exit, learning."""
import numpy as np
import pytest
import torch

from selfdesc.errors import ConfigError
from selfdesc.matching.attention_matcher import AttentionMatcher, normalize_keypoints
from selfdesc.matching.learned import LearnedMatcher
from selfdesc.methods.parts.assignment import assignment_nll, homography_assignment

SMALL = {"descriptor_dim": 16, "width": 32, "num_heads": 2, "num_layers": 2, "filter_threshold": 0.0}


def _features(n, seed, dim=16, size=(64, 48)):
    g = torch.Generator().manual_seed(seed)
    return {
        "keypoints": torch.rand(n, 2, generator=g) * torch.tensor(size, dtype=torch.float32),
        "descriptors": torch.nn.functional.normalize(torch.randn(n, dim, generator=g), dim=-1),
        "image_size": torch.tensor(size),
    }


def _batch(f0, f1):
    return {
        "keypoints0": f0["keypoints"][None], "keypoints1": f1["keypoints"][None],
        "descriptors0": f0["descriptors"][None], "descriptors1": f1["descriptors"][None],
        "image_size0": f0["image_size"][None], "image_size1": f1["image_size"][None],
    }


@pytest.fixture
def matcher():
    torch.manual_seed(0)
    return LearnedMatcher(AttentionMatcher(SMALL), "test", "memory")


def test_normalize_keypoints():
    kp = torch.tensor([[[0.0, 0.0], [64.0, 48.0], [32.0, 24.0]]])
    out = normalize_keypoints(kp, torch.tensor([[64, 48]]))
    assert torch.allclose(out, torch.tensor([[[-1.0, -0.75], [1.0, 0.75], [0.0, 0.0]]]))


def test_symmetric(matcher):
    f0, f1 = _features(30, 0), _features(25, 1, size=(50, 70))
    a = matcher.model(_batch(f0, f1))
    b = matcher.model(_batch(f1, f0))
    assert torch.allclose(a["scores"], b["scores"].transpose(1, 2), atol=1e-5)
    assert torch.equal(a["matches0"], b["matches1"]) and torch.equal(a["matches1"], b["matches0"])
    m01, s01 = matcher.match(f0, f1)
    m10, s10 = matcher.match(f1, f0)
    assert m01.dtype == m10.dtype == np.int64 and s01.dtype == s10.dtype == np.float32
    assert m01.shape == (len(s01), 2) and len(m01) > 0
    assert sorted(map(tuple, m01)) == sorted(map(tuple, m10[:, ::-1]))


def test_matches_are_mutual_and_consistent(matcher):
    out = matcher.model(_batch(_features(20, 2), _features(20, 3)))
    m0, m1 = out["matches0"][0], out["matches1"][0]
    for i, j in enumerate(m0.tolist()):
        if j >= 0:
            assert m1[j] == i
    assert (m0 >= 0).sum() == (m1 >= 0).sum()


@pytest.mark.parametrize("n0,n1", [(0, 0), (0, 5), (5, 0), (1, 1), (1, 7), (7, 1)])
def test_zero_or_one_keypoint(matcher, n0, n1):
    m, s = matcher.match(_features(n0, 4), _features(n1, 5))
    assert m.dtype == np.int64 and m.shape == (len(s), 2) and s.dtype == np.float32
    assert len(m) <= min(n0, n1)
    out = matcher.model(_batch(_features(n0, 4), _features(n1, 5)))
    assert out["scores"].shape == (1, n0 + 1, n1 + 1) and not out["scores"].isnan().any()


def test_padded_batch_equals_single_pairs(matcher):
    pairs = [(_features(12, 6), _features(9, 7)), (_features(5, 8), _features(14, 9)), (_features(0, 10), _features(3, 11))]
    batched = matcher.match_batch(pairs)
    for (f0, f1), (m0, s0) in zip(pairs, batched):
        single = matcher.match_batch([(f0, f1)])[0]
        assert np.array_equal(m0, single[0]) and np.allclose(s0, single[1], atol=1e-5)


def test_descriptor_dimension_mismatch(matcher):
    with pytest.raises(ConfigError, match="expects 16-dimensional descriptors"):
        matcher.match(_features(4, 0, dim=8), _features(4, 1, dim=8))


def test_bad_conf():
    with pytest.raises(ConfigError, match="unknown option"):
        AttentionMatcher({"depth": 3})
    with pytest.raises(ConfigError, match="multiple of 2"):
        AttentionMatcher({"width": 30, "num_heads": 4})


def test_early_exit():
    model = AttentionMatcher({**SMALL, "num_layers": 4, "min_layers": 2, "exit_confidence": 0.0}).eval()
    out = model(_batch(_features(10, 0), _features(10, 1)))
    assert out["num_layers"] == 2
    model.conf["exit_confidence"] = 1.1  # never confident: all layers
    assert model(_batch(_features(10, 0), _features(10, 1)))["num_layers"] == 4
    deep = model(_batch(_features(10, 0), _features(10, 1)), all_layers=True)
    assert len(deep["layer_scores"]) == 4 and deep["num_layers"] == 4


def test_learns_a_known_warp():
    """A few Adam steps on features related by a homography lower the assignment NLL and find the matches."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    B, N, size = 4, 24, torch.tensor([[96, 96]]).expand(4, 2)
    kp0 = torch.rand(B, N, 2, generator=g) * 95
    H = torch.eye(3, dtype=torch.float64).repeat(B, 1, 1)
    H[:, 0, 2], H[:, 1, 2] = 7.0, -5.0
    perm = torch.stack([torch.randperm(N, generator=g) for _ in range(B)])
    kp1 = torch.gather(kp0 + torch.tensor([7.0, -5.0]), 1, perm[..., None].expand(-1, -1, 2))
    d0 = torch.nn.functional.normalize(torch.randn(B, N, 16, generator=g), dim=-1)
    d1 = torch.nn.functional.normalize(torch.gather(d0, 1, perm[..., None].expand(-1, -1, 16)) + 0.3 * torch.randn(B, N, 16, generator=g), dim=-1)
    data = {"keypoints0": kp0, "keypoints1": kp1, "descriptors0": d0, "descriptors1": d1, "image_size0": size, "image_size1": size}
    gt0, gt1 = homography_assignment(kp0, kp1, H)
    assert (gt0 >= 0).all()
    model = AttentionMatcher(SMALL)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = assignment_nll(model(data)["scores"], gt0, gt1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
    model.eval()
    with torch.no_grad():
        m0 = model(data)["matches0"]
    assert (m0 == gt0).float().mean() > 0.9


def test_descriptor_prior_starts_from_descriptor_matching():
    """Untrained, the prior alone finds identical descriptors (a known permutation); without it, it does not."""
    f0 = _features(40, 12)
    perm = torch.randperm(40, generator=torch.Generator().manual_seed(3))
    f1 = {"keypoints": f0["keypoints"][perm], "descriptors": f0["descriptors"][perm], "image_size": f0["image_size"]}
    found = {}
    for prior in (30.0, None):
        torch.manual_seed(0)
        model = AttentionMatcher({**SMALL, "descriptor_prior": prior, "filter_threshold": 0.1}).eval()
        with torch.no_grad():
            found[prior] = model(_batch(f0, f1))["matches0"][0]
    assert torch.equal(found[30.0], torch.argsort(perm))
    assert (found[None] == torch.argsort(perm)).float().mean() < 0.5
