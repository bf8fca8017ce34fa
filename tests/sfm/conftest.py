"""A tiny synthetic multi-view scene written as hloc-layout features.h5 / matches.h5."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from selfdesc.pipeline.h5io import names_to_pair

W, H, F = 640, 480, 500.0


def _rotation_y(deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


@pytest.fixture
def synthetic_scene(tmp_path: Path) -> dict:
    """4 cameras on an arc looking at 300 random points; keypoints (pixel-centre) with 0.2 px noise,
    20 wrong matches per pair. Names include a sub-folder to exercise hloc pair names."""
    rng = np.random.default_rng(0)
    K = np.array([[F, 0, W / 2 - 0.5], [0, F, H / 2 - 0.5], [0, 0, 1]])
    X = rng.uniform([-1.5, -1.0, -1.0], [1.5, 1.0, 1.0], (300, 3))
    names = [f"seq/img{i}.png" for i in range(4)]
    cams = {}
    kpts = {}
    for i, name in enumerate(names):
        R = _rotation_y(-12.0 * i)  # camera-to-world
        C = R @ np.array([0.0, 0.0, -6.0])
        cams[name] = (R, C)
        Xc = (X - C) @ R
        uv = Xc @ K.T
        kpts[name] = (uv[:, :2] / uv[:, 2:]) + rng.normal(0, 0.2, (len(X), 2))
    perm = {n: rng.permutation(len(X)) for n in names}  # keypoint order differs per image
    feats = tmp_path / "features.h5"
    with h5py.File(feats, "w") as fd:
        for n in names:
            g = fd.create_group(n)
            k = kpts[n][perm[n]].astype(np.float32)
            g["keypoints"] = k
            g["scores"] = np.ones(len(k), np.float32)
            g["descriptors"] = rng.normal(size=(8, len(k))).astype(np.float32)
            g["image_size"] = np.array([W, H], np.int32)
    pairs = [(names[i], names[j]) for i in range(4) for j in range(i + 1, 4)]
    matches = tmp_path / "matches.h5"
    with h5py.File(matches, "w") as fd:
        for a, b in pairs:
            inv_b = np.argsort(perm[b])
            m0 = inv_b[perm[a]].astype(np.int32)  # keypoint i of a is point perm[a][i]
            wrong = rng.choice(len(m0), 20, replace=False)
            m0[wrong] = np.roll(m0[wrong], 1)
            g = fd.create_group(names_to_pair(a, b))
            g["matches0"] = m0
            g["matching_scores0"] = np.ones(len(m0), np.float32)
    pair_file = tmp_path / "pairs.txt"
    pair_file.write_text("".join(f"{a} {b}\n" for a, b in pairs))
    return {"names": names, "K": K, "cams": cams, "features": feats, "matches": matches, "pairs": pairs, "pair_file": pair_file, "size": (W, H)}
