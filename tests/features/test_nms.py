from __future__ import annotations

import numpy as np
import torch

from selfdesc.features.nms import apply_radius_nms, dense_nms_mask, radius_nms


def brute_force_nms(pts: np.ndarray, scores: np.ndarray, radius: float) -> list[int]:
    keep: list[int] = []
    for i in np.argsort(-scores, kind="stable"):
        if all(np.hypot(*(pts[i] - pts[j])) >= radius for j in keep):
            keep.append(int(i))
    return keep


def test_radius_nms_is_greedy() -> None:
    # B is suppressed by A; C is 3 px from A, so it survives although B (suppressed) is close to it
    pts = torch.tensor([[0.0, 0.0], [1.5, 0.0], [3.0, 0.0], [10.0, 10.0]])
    scores = torch.tensor([1.0, 0.9, 0.8, 0.1])
    assert radius_nms(pts, scores, 2.0).tolist() == [0, 2, 3]


def test_radius_nms_boundary_and_order() -> None:
    pts = torch.tensor([[0.0, 0.0], [2.0, 0.0], [3.5, 0.0], [10.0, 10.0]])
    scores = torch.tensor([0.5, 0.9, 0.8, 0.1])
    # exactly `radius` apart is not suppressed; output is in decreasing score order
    assert radius_nms(pts, scores, 2.0).tolist() == [1, 0, 3]


def test_radius_nms_matches_brute_force() -> None:
    rng = np.random.default_rng(1)
    pts = rng.uniform(-50, 150, size=(400, 2))
    scores = rng.random(400)
    for radius in (1.0, 4.0, 11.5):
        got = radius_nms(torch.from_numpy(pts).float(), torch.from_numpy(scores).float(), radius).tolist()
        assert got == brute_force_nms(pts.astype(np.float32).astype(np.float64), scores.astype(np.float32), radius)


def test_radius_nms_off_and_empty() -> None:
    pts = torch.tensor([[0.0, 0.0], [0.1, 0.0]])
    assert radius_nms(pts, torch.tensor([0.2, 0.7]), 0).tolist() == [1, 0]
    assert radius_nms(torch.zeros((0, 2)), torch.zeros(0), 3.0).tolist() == []


def test_apply_radius_nms_keeps_entries_aligned() -> None:
    pred = {
        "keypoints": torch.tensor([[0.0, 0.0], [1.0, 0.0], [9.0, 0.0]]),
        "scores": torch.tensor([0.3, 0.9, 0.5]),
        "descriptors": torch.eye(3),
    }
    out = apply_radius_nms(pred, 2.0)
    assert out["keypoints"].tolist() == [[1.0, 0.0], [9.0, 0.0]]
    assert out["descriptors"].tolist() == [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    assert apply_radius_nms(pred, 0) is pred


def test_dense_nms_mask() -> None:
    s = torch.zeros(1, 1, 5, 6)
    s[0, 0, 1, 1] = 0.9  # isolated peak
    s[0, 0, 3, 4] = s[0, 0, 3, 5] = 0.7  # tie: both kept
    s[0, 0, 2, 2] = 0.5  # next to the 0.9 peak: suppressed with radius 1
    mask = dense_nms_mask(s, radius=1)[0, 0]
    peaks = {(int(y), int(x)) for y, x in torch.nonzero(mask & (s[0, 0] > 0))}
    assert peaks == {(1, 1), (3, 4), (3, 5)}
    # a 5x5 window (radius 2) also suppresses the weaker of two peaks 2 px apart
    s2 = torch.zeros(1, 1, 5, 5)
    s2[0, 0, 2, 0], s2[0, 0, 2, 2] = 0.4, 0.6
    peaks2 = torch.nonzero(dense_nms_mask(s2, radius=2)[0, 0] & (s2[0, 0] > 0)).tolist()
    assert peaks2 == [[2, 2]]
