from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from selfdesc.sfm.align import centre_accuracy, umeyama


def test_umeyama_recovers_similarity():
    rng = np.random.default_rng(1)
    src = rng.normal(size=(10, 3))
    R = Rotation.from_euler("xyz", [20, -35, 70], degrees=True).as_matrix()
    dst = 2.5 * src @ R.T + np.array([1.0, -2.0, 3.0])
    sim = umeyama(src, dst)
    assert sim.scale == pytest.approx(2.5)
    np.testing.assert_allclose(sim.R, R, atol=1e-10)
    np.testing.assert_allclose(sim.apply(src), dst, atol=1e-10)


def test_umeyama_never_returns_a_reflection():
    rng = np.random.default_rng(2)
    src = rng.normal(size=(8, 3))
    dst = src * np.array([1, 1, -1])  # a mirror image: best proper rotation, det +1
    assert np.linalg.det(umeyama(src, dst).R) == pytest.approx(1.0)


def test_centre_accuracy_measures_residuals_and_registration():
    rng = np.random.default_rng(3)
    gt = {f"{i}.jpg": rng.normal(size=3) * 5 for i in range(6)}
    R = Rotation.from_euler("z", 40, degrees=True).as_matrix()
    rec = {n: 0.1 * R @ c for n, c in gt.items() if n != "5.jpg"}
    rec["0.jpg"] = rec["0.jpg"] + np.array([0.0, 0.0, 0.05])  # 0.5 GT units off before alignment spreads it
    acc = centre_accuracy(rec, gt)
    assert acc["num_registered"] == 5 and acc["fraction_registered"] == pytest.approx(5 / 6)
    assert 0 < acc["median_error"] < acc["max_error"] < 0.5
    assert set(acc["errors"]) == set(rec)
    exact = centre_accuracy({n: 0.1 * R @ c for n, c in gt.items()}, gt)
    assert exact["max_error"] == pytest.approx(0.0, abs=1e-9)


def test_too_few_registered_images_give_no_error():
    gt = {f"{i}": np.array([i, 0.0, 0.0]) for i in range(4)}
    acc = centre_accuracy({"0": gt["0"], "1": gt["1"]}, gt)
    assert acc["median_error"] is None and acc["fraction_registered"] == 0.5
