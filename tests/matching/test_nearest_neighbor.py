import numpy as np
import torch

from selfdesc.matching.nearest_neighbor import match_mnn, match_mnn_batched


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_permutation_is_recovered():
    rng = np.random.default_rng(0)
    d0 = _unit(rng.normal(size=(50, 32))).astype(np.float32)
    perm = rng.permutation(50)
    d1 = d0[perm]
    m, s = match_mnn(d0, d1)
    assert len(m) == 50
    np.testing.assert_array_equal(perm[m[:, 1]], m[:, 0])
    np.testing.assert_allclose(s, 1.0, atol=1e-5)


def test_non_mutual_pairs_are_dropped():
    d0 = _unit(np.array([[1.0, 0.0], [0.9, 0.1]])).astype(np.float32)
    d1 = _unit(np.array([[1.0, 0.02]])).astype(np.float32)
    m, _ = match_mnn(d0, d1)
    # both rows of d0 pick d1[0], but d1[0] picks only d0[0]
    np.testing.assert_array_equal(m, [[0, 0]])


def test_ratio_and_threshold():
    d0 = _unit(np.array([[1.0, 0.0, 0.0]])).astype(np.float32)
    d1 = _unit(np.array([[1.0, 0.05, 0.0], [1.0, 0.0, 0.06]])).astype(np.float32)
    assert len(match_mnn(d0, d1)[0]) == 1
    assert len(match_mnn(d0, d1, ratio=0.8)[0]) == 0  # ambiguous: two near-equal candidates
    assert len(match_mnn(d0, d1, min_similarity=0.9999)[0]) == 0


def test_empty_sets():
    m, s = match_mnn(np.zeros((0, 8), np.float32), np.ones((3, 8), np.float32))
    assert m.shape == (0, 2) and s.shape == (0,)


def test_batched_with_padding_equals_single():
    rng = np.random.default_rng(3)
    a = [_unit(rng.normal(size=(n, 16))).astype(np.float32) for n in (10, 7)]
    b = [_unit(rng.normal(size=(n, 16))).astype(np.float32) for n in (8, 12)]
    D0 = torch.zeros(2, 10, 16)
    D1 = torch.zeros(2, 12, 16)
    M0 = torch.zeros(2, 10, dtype=torch.bool)
    M1 = torch.zeros(2, 12, dtype=torch.bool)
    for i in range(2):
        D0[i, : len(a[i])] = torch.from_numpy(a[i])
        D1[i, : len(b[i])] = torch.from_numpy(b[i])
        M0[i, : len(a[i])] = True
        M1[i, : len(b[i])] = True
    m0, _ = match_mnn_batched(D0, D1, M0, M1)
    for i in range(2):
        single, _ = match_mnn(a[i], b[i])
        got = [(j, int(m0[i, j])) for j in range(len(a[i])) if m0[i, j] >= 0]
        assert got == [tuple(r) for r in single.tolist()]
