"""What a benchmark run writes: the same report for the command line and the demo."""
from __future__ import annotations

import json

import numpy as np

from selfdesc.eval.extraction import Timing
from selfdesc.eval.mma import EvalAccumulator
from selfdesc.eval.runner import BenchmarkRun, HomographyBenchmarkConfig
from selfdesc.eval.writers import write_homography_report, write_pose_report


def _run() -> BenchmarkRun:
    acc = EvalAccumulator()
    acc.add_pair("i", np.array([0.5, 2.0, 9.0]), (10, 12), homography_error=1.5, image_ids=("i_a/1.ppm", "i_a/2.ppm"))
    acc.add_pair("v", np.array([0.2, 0.4]), (8, 8), homography_error=4.0, image_ids=("v_b/1.ppm", "v_b/2.ppm"))
    per_pair = [{"pair": "i_a/2", "split": "i", "num_matches": 3}, {"pair": "v_b/2", "split": "v", "num_matches": 2}]
    return BenchmarkRun({"sift": acc.summary()}, {"sift": Timing("cpu", 0.25, 4)}, {"sift": acc}, {"sift": per_pair})


def test_homography_report_with_and_without_run_record(tmp_path):
    run = _run()
    config = HomographyBenchmarkConfig(max_keypoints=100, weights_dir=tmp_path)
    dataset = {"kind": "hpatches", "root": "x", "synthetic": False, "num_pairs": 2}
    table = write_homography_report(tmp_path / "full", run, "hpatches: x, 2 pairs", "MMA", settings=config, dataset=dataset, caches=True)
    full = tmp_path / "full"
    assert (full / "results.md").read_text() == table and "hpatches: x, 2 pairs" in table and "250.0" in table  # ms per image
    assert json.loads((full / "results.json").read_text())["sift"]["overall"]["num_pairs"] == 2
    record = json.loads((full / "run.json").read_text())
    assert record["dataset"] == dataset and record["config"]["max_keypoints"] == 100 and record["config"]["weights_dir"] == str(tmp_path)
    assert record["timing"]["sift"]["seconds_per_image"] == 0.25 and record["environment"]["selfdesc"]
    assert json.loads((full / "pairs.json").read_text())["sift"][1]["pair"] == "v_b/2"
    assert (full / "caches" / "sift.npy").is_file() and (full / "mma.png").stat().st_size > 0

    write_homography_report(tmp_path / "demo", run, "demo", None)
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == ["results.json", "results.md"]


def test_pose_report_writes_failures_as_null(tmp_path):
    from selfdesc.eval.pose import PoseBenchmarkConfig

    records = {"sift": [{"name": "a-b", "scene": "", "error": float("inf")}, {"name": "a-c", "scene": "", "error": 2.0}]}
    write_pose_report(tmp_path, {"sift": {"overall": {}}}, {"sift": Timing("cpu", 0.1, 3)}, records, PoseBenchmarkConfig(), {"format": "pairs"})
    assert [r["error"] for r in json.loads((tmp_path / "pairs.json").read_text())["sift"]] == [None, 2.0]
    assert json.loads((tmp_path / "run.json").read_text())["config"]["estimator"].startswith("OpenCV")
