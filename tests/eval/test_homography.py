import numpy as np
import pytest

from selfdesc.errors import ConfigError
from selfdesc.eval.homography import estimate_homography, homography_correct, homography_error
from selfdesc.eval.mma import EvalAccumulator
from selfdesc.geometry.homography import warp_points

H_GT = np.array([[0.9, 0.05, 20.0], [-0.03, 1.1, -10.0], [1e-4, -5e-5, 1.0]])


def _perfect_correspondences(n=60):
    kp0 = np.random.default_rng(0).uniform(0, 600, (n, 2))
    return kp0, warp_points(H_GT, kp0), np.stack([np.arange(n), np.arange(n)], axis=1)


def test_perfect_correspondences_recover_h():
    kp0, kp1, matches = _perfect_correspondences()
    H = estimate_homography(kp0, kp1, matches)
    assert H is not None and H.shape == (3, 3)
    assert homography_error(H_GT.copy(), H_GT, (640, 480), (640, 480)) < 1e-9
    err = homography_error(H, H_GT, (640, 480), (640, 480))
    # OpenCV's solver is not exact: 2e-6 .. 1.5e-5 px on exact correspondences (measured)
    assert err < 1e-4
    acc = EvalAccumulator()
    acc.add_pair("v", np.zeros(len(matches)), (60, 60), homography_error=err)
    assert acc.summary()["v"]["homography_accuracy"] == {"1": 1.0, "3": 1.0, "5": 1.0, "10": 1.0}


def test_failures_give_none_and_inf():
    kp0, kp1, matches = _perfect_correspondences()
    assert estimate_homography(kp0, kp1, matches[:3]) is None
    assert estimate_homography(kp0, kp1, np.zeros((0, 2), int)) is None
    same = np.zeros((10, 2))
    assert estimate_homography(same, same, np.stack([np.arange(10)] * 2, axis=1)) is None
    err = homography_error(None, H_GT, (640, 480), (640, 480))
    assert err == np.inf
    np.testing.assert_array_equal(homography_correct(err, (1, 3, 5, 10)), [0, 0, 0, 0])


def test_reference_vs_target_corners_known_answer():
    H_est = np.diag([1.01, 1.01, 1.0])  # a 1 % zoom: corner (x, y) is off by 0.01 * |(x, y)|

    def expected(w, h):
        return 0.01 * np.mean([0, w - 1, h - 1, np.hypot(w - 1, h - 1)])

    ref = homography_error(H_est, np.eye(3), (641, 481), (321, 241), corners="reference")
    tgt = homography_error(H_est, np.eye(3), (641, 481), (321, 241), corners="target")
    assert ref == pytest.approx(expected(641, 481))
    assert tgt == pytest.approx(expected(321, 241))
    assert ref != pytest.approx(tgt)
    with pytest.raises(ConfigError, match="corner mode"):
        homography_error(H_est, np.eye(3), (1, 1), (1, 1), corners="source")


def test_threshold_inequality():
    np.testing.assert_array_equal(homography_correct(3.0, (1, 3, 5)), [0, 1, 1])
    np.testing.assert_array_equal(homography_correct(3.0, (1, 3, 5), inclusive=False), [0, 0, 1])
