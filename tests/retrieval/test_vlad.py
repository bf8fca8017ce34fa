"""k-means recovers separated clusters; VLAD is unit-norm and order-invariant; whitening whitens."""
import numpy as np
import pytest
import torch

from selfdesc.errors import ConfigError
from selfdesc.retrieval.vlad import VladEncoder, kmeans, learn_whitening, vlad_aggregate


def _blobs(k=6, d=8, per=200, spread=0.05, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 3.0
    labels = np.repeat(np.arange(k), per)
    x = centres[labels] + rng.normal(size=(k * per, d)) * spread
    perm = rng.permutation(len(x))
    return x[perm].astype(np.float32), labels[perm], centres


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kmeans_recovers_separated_clusters(seed):
    x, labels, centres = _blobs(seed=seed)
    c = kmeans(x, 6, seed=seed).numpy()
    # every true centre has exactly one recovered centroid close to it
    d = np.linalg.norm(centres[:, None] - c[None], axis=2)
    assert sorted(d.argmin(1).tolist()) == list(range(6))
    assert d.min(1).max() < 0.05
    # the partition equals the true one up to renaming
    pred = np.linalg.norm(x[:, None] - c[None], axis=2).argmin(1)
    for lab in range(6):
        assert len(set(pred[labels == lab].tolist())) == 1


def test_kmeans_is_deterministic_and_checks_input():
    x, _, _ = _blobs(k=4, spread=1.0)
    assert torch.equal(kmeans(x, 10, seed=3), kmeans(x, 10, seed=3))
    with pytest.raises(ConfigError, match="at least k=5"):
        kmeans(x[:4], 5)


def test_kmeans_handles_duplicate_points():
    x = np.repeat(np.eye(3, dtype=np.float32), 10, axis=0)  # 3 distinct points, k = 5
    c = kmeans(x, 5, seed=0)
    assert c.shape == (5, 3) and torch.isfinite(c).all()


def test_vlad_unit_norm_and_permutation_invariant():
    rng = np.random.default_rng(0)
    centroids = torch.from_numpy(rng.normal(size=(16, 32)).astype(np.float32))
    desc = rng.normal(size=(300, 32)).astype(np.float32)
    v = vlad_aggregate(desc, centroids)
    assert v.shape == (16 * 32,)
    assert abs(float(v.norm()) - 1.0) < 1e-5
    v_perm = vlad_aggregate(desc[rng.permutation(300)], centroids)
    assert torch.allclose(v, v_perm, atol=1e-6)
    # different descriptors give a different vector; no descriptors give zeros
    assert float(v @ vlad_aggregate(desc[:50], centroids)) < 0.99
    assert not vlad_aggregate(np.zeros((0, 32), np.float32), centroids).any()


def test_vlad_known_answer_one_cluster():
    centroids = torch.tensor([[0.0, 0.0], [10.0, 10.0]])
    desc = np.array([[1.0, 0.0], [0.0, 3.0]], np.float32)  # both nearest to centroid 0; residual sum (1, 3)
    v = vlad_aggregate(desc, centroids, power=0.5)
    block = np.sqrt(np.array([1.0, 3.0]) / np.sqrt(10.0))  # intra-norm, then signed sqrt
    expected = np.concatenate([block / np.linalg.norm(block), [0.0, 0.0]])
    assert np.allclose(v.numpy(), expected, atol=1e-6)


def test_whitening_gives_identity_covariance():
    rng = np.random.default_rng(0)
    for n, e in [(40, 100), (300, 20)]:  # Gram-matrix branch and covariance branch
        x = rng.normal(size=(n, e)) @ rng.normal(size=(e, e))
        mean, proj = learn_whitening(x, 10)
        y = (torch.from_numpy(x).float() - mean) @ proj
        cov = (y.T @ y / n).numpy()
        assert np.allclose(cov, np.eye(10), atol=1e-3)
    with pytest.raises(ConfigError, match="pca_dim=40"):
        learn_whitening(rng.normal(size=(40, 100)), 40)


def test_encoder_round_trip_arrays():
    rng = np.random.default_rng(0)
    enc = VladEncoder({"max_keypoints": 50}, rng.normal(size=(4, 128)), rng.normal(size=512), rng.normal(size=(512, 3)))
    again = VladEncoder.from_arrays(enc.conf, enc.to_arrays())
    assert again.dim == 3 and again.conf == enc.conf
    raw = torch.from_numpy(rng.normal(size=(5, 512)).astype(np.float32))
    assert torch.allclose(enc.whiten(raw), again.whiten(raw))
    with pytest.raises(ConfigError, match="bogus"):
        VladEncoder({"bogus": 1}, rng.normal(size=(4, 128)))
