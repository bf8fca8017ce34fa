"""GeM pooling against a brute-force loop; gradients; p=1 is average pooling."""
import math

import pytest
import torch

from selfdesc.retrieval import gem_pool


def _brute(x, p, eps):
    b, d, h, w = x.shape
    out = torch.zeros(b, d, dtype=torch.float64)
    for i in range(b):
        for c in range(d):
            acc = 0.0
            for y in range(h):
                for xx in range(w):
                    acc += max(float(x[i, c, y, xx]), eps) ** p
            out[i, c] = (acc / (h * w)) ** (1.0 / p)
        out[i] /= math.sqrt(float((out[i] ** 2).sum()))
    return out


@pytest.mark.parametrize("p", [1.0, 3.0, 5.5])
def test_gem_matches_loop(p):
    x = torch.randn(2, 5, 4, 3, dtype=torch.float64)  # signed: negatives are clamped to eps
    got = gem_pool(x, p=p, eps=1e-6)
    assert got.shape == (2, 5)
    assert torch.allclose(got, _brute(x, p, 1e-6), atol=1e-10)
    assert torch.allclose(got.norm(dim=1), torch.ones(2, dtype=torch.float64))


def test_gem_p1_is_normalised_average_and_large_p_tends_to_max():
    x = torch.rand(3, 8, 6, 7) + 0.1
    avg = torch.nn.functional.normalize(x.mean(dim=(2, 3)), dim=1)
    assert torch.allclose(gem_pool(x, p=1.0), avg, atol=1e-6)
    mx = torch.nn.functional.normalize(x.amax(dim=(2, 3)), dim=1)
    assert torch.allclose(gem_pool(x.double(), p=200.0), mx.double(), atol=2e-2)


def test_gem_gradients_and_learnable_p():
    x = (torch.rand(2, 4, 5, 5, dtype=torch.float64) + 0.1).requires_grad_()
    p = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, q: gem_pool(a, q), (x, p))


def test_gem_rejects_wrong_rank():
    with pytest.raises(ValueError, match="B, D, H, W"):
        gem_pool(torch.rand(4, 5, 6))
