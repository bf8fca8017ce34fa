import numpy as np
import pytest

from selfdesc.eval.mma import EvalAccumulator, match_errors, pair_mma


def test_identity_perfect_matching_is_fully_accurate():
    kp = np.random.default_rng(0).uniform(0, 500, (50, 2))
    matches = np.stack([np.arange(50), np.arange(50)], axis=1)
    errors = match_errors(kp, kp, matches, np.eye(3))
    assert errors.shape == (50,)
    np.testing.assert_array_equal(errors, 0.0)
    assert pair_mma(errors, [1])[0] == 1.0


def test_match_errors_known_answer_one_directional():
    H = np.array([[1.0, 0, 10], [0, 1, -5], [0, 0, 1]])
    kp0 = np.array([[0.0, 0.0], [100.0, 50.0]])
    kp1 = np.array([[0.0, 0.0], [113.0, 49.0], [10.0, -5.0]])  # 113-110=3, 49-45=4 -> 5
    errors = match_errors(kp0, kp1, np.array([[0, 2], [1, 1]]), H)
    np.testing.assert_allclose(errors, [0.0, 5.0])
    assert match_errors(kp0, kp1, np.zeros((0, 2), int), H).shape == (0,)


def test_pair_mma_hand_computed_and_inclusive():
    errors = np.array([0.5, 2.0, 4.0, 20.0])
    np.testing.assert_array_equal(pair_mma(errors, [1, 3, 5, 10]), [0.25, 0.5, 0.75, 0.75])
    # err <= t is correct (inclusive), as in the D2-Net notebook
    np.testing.assert_array_equal(pair_mma(np.array([3.0]), [2.999, 3]), [0.0, 1.0])
    np.testing.assert_array_equal(pair_mma(np.array([np.nan, np.inf, 1.0]), [1]), [1 / 3])


def test_zero_match_pair_counts_as_zero():
    np.testing.assert_array_equal(pair_mma(np.zeros(0), [1, 5, 10]), [0.0, 0.0, 0.0])
    acc = EvalAccumulator()
    acc.add_pair("v", np.zeros(10), (10, 10))
    acc.add_pair("v", np.zeros(0), (10, 0))
    s = acc.summary()
    assert s["overall"]["mma"]["1"] == 0.5
    assert s["overall"]["num_matches"] == 5.0
    assert s["overall"]["num_pairs"] == 2


def test_overall_is_pair_weighted_not_mean_of_splits():
    acc = EvalAccumulator()
    acc.add_pair("i", np.array([0.5, 0.5]), (2, 2))  # MMA@1 = 1
    for errs in ([0.5, 9.0], [9.0, 9.0], [9.0, 9.0, 9.0, 0.1]):  # MMA@1 = 0.5, 0, 0.25
        acc.add_pair("v", np.array(errs), (4, 4))
    s = acc.summary(thresholds=[1])
    assert s["i"]["mma"]["1"] == pytest.approx(1.0)
    assert s["v"]["mma"]["1"] == pytest.approx(0.75 / 3)
    assert s["overall"]["mma"]["1"] == pytest.approx((1.0 + 0.5 + 0 + 0.25) / 4)
    assert s["overall"]["mma"]["1"] != pytest.approx((s["i"]["mma"]["1"] + s["v"]["mma"]["1"]) / 2)
    assert [s[k]["num_pairs"] for k in ("overall", "i", "v")] == [4, 1, 3]
    assert s["v"]["num_matches"] == pytest.approx(8 / 3)
    assert "homography_accuracy" not in s["overall"]


def test_summary_keys_and_default_thresholds():
    acc = EvalAccumulator()
    acc.add_pair("v", np.array([0.5, 2.5, 7.0]), (3, 3), homography_error=2.0)
    s = acc.summary()
    assert list(s) == ["overall", "v"]
    assert list(s["v"]["mma"]) == [str(t) for t in range(1, 11)]
    assert s["v"]["mma"]["3"] == pytest.approx(2 / 3)
    assert s["v"]["homography_accuracy"] == {"1": 0.0, "3": 1.0, "5": 1.0, "10": 1.0}


def test_other_split_labels_count_in_overall_only():
    acc = EvalAccumulator()
    acc.add_pair("overall", np.array([0.1]), (1, 1))
    acc.add_pair("synthetic", np.array([5.0]), (1, 1))
    s = acc.summary(thresholds=[1])
    assert list(s) == ["overall"]
    assert s["overall"]["mma"]["1"] == 0.5


def test_features_per_image_counts_shared_reference_once():
    shared, plain = EvalAccumulator(), EvalAccumulator()
    for k, n in enumerate([200, 300, 400, 500, 600], start=2):
        shared.add_pair("v", np.zeros(1), (100, n), image_ids=("seq/1", f"seq/{k}"))
        plain.add_pair("v", np.zeros(1), (100, n))
    assert shared.summary()["v"]["num_features"] == pytest.approx((100 + 2000) / 6)
    assert plain.summary()["v"]["num_features"] == pytest.approx((500 + 2000) / 10)


def test_errors_on_inconsistent_input():
    with pytest.raises(ValueError, match="no pairs"):
        EvalAccumulator().summary()
    acc = EvalAccumulator()
    acc.add_pair("v", np.zeros(1), (1, 1), homography_error=1.0)
    acc.add_pair("v", np.zeros(1), (1, 1))
    with pytest.raises(ValueError, match="some pairs only"):
        acc.summary()
    acc = EvalAccumulator()
    acc.add_pair("v", np.zeros(1), (10, 20), image_ids=("a", "b"))
    acc.add_pair("v", np.zeros(1), (11, 20), image_ids=("a", "c"))
    with pytest.raises(ValueError, match="'a'"):
        acc.summary()
