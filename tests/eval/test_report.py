import json

import numpy as np
import pytest
from PIL import Image

from selfdesc.eval.report import (
    REFERENCE_CACHES,
    markdown_table,
    plot_mma,
    reference_caches,
    reference_label,
    write_results_json,
)
from tests.conftest import shared_path


def _split(mma3, ha3=None, n_pairs=5):
    entry = {
        "mma": {str(t): min(1.0, mma3 * t / 3) for t in range(1, 11)},
        "num_features": 1234.4,
        "num_matches": 567.6,
        "num_pairs": n_pairs,
    }
    if ha3 is not None:
        entry["homography_accuracy"] = {"1": 0.25, "3": ha3, "5": 0.875, "10": 1.0}
    return entry


RESULTS = {
    "hndesc": {
        "overall": _split(0.6789, 0.5, 10),
        "i": _split(0.7111, 0.625),
        "v": _split(0.6467, 0.375),
        "timing": {"device": "cpu", "seconds_per_image": 0.0421, "num_images": 12},
    },
    "sift": {"overall": _split(0.5432), "extra": "ignored"},
}


def test_write_results_json_atomic_and_valid(tmp_path):
    out = tmp_path / "sub" / "results.json"
    assert write_results_json(out, RESULTS) == out
    assert json.loads(out.read_text()) == RESULTS
    write_results_json(out, {"x": {"overall": _split(0.1)}})  # overwrite in place
    assert json.loads(out.read_text())["x"]["overall"]["mma"]["3"] == pytest.approx(0.1)
    with pytest.raises(ValueError):  # NaN is not JSON: nothing is written, the old file stays
        write_results_json(out, {"x": float("nan")})
    assert "x" in json.loads(out.read_text())
    assert [p.name for p in out.parent.iterdir()] == ["results.json"]  # no temp files left


def test_markdown_table_contains_numbers():
    md = markdown_table(RESULTS, label="synthetic")
    assert md.startswith("### Results — synthetic")
    lines = md.splitlines()
    assert "| feature | split | MMA@1 | MMA@3 | MMA@5 | HA@1 | HA@3 | HA@5 | #features | #matches | #pairs | ms/image |" in lines
    hndesc_v = next(line for line in lines if line.startswith("| hndesc | v |"))
    assert "| 0.647 |" in hndesc_v and "| 0.375 |" in hndesc_v and "| 42.1 |" in hndesc_v
    assert "| hndesc | overall | 0.226 | 0.679 |" in md
    sift = next(line for line in lines if line.startswith("| sift |"))
    assert "| 0.543 |" in sift and "| – |" in sift and "| 1234 | 568 | 5 |" in sift  # no HA, no timing
    assert sum(line.startswith("| ") for line in lines) == 1 + 3 + 1  # header + rows; timing/extra ignored
    assert "synthetic" in lines[-1] and "cpu" in lines[-1]


def test_markdown_without_timing_has_no_time_column():
    md = markdown_table({"sift": RESULTS["sift"]})
    assert "ms/image" not in md and md.startswith("### Results\n")


def _check_png(path, min_width):
    assert path.stat().st_size > 1000
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] >= min_width


def test_plot_mma_with_references(tmp_path):
    refs = reference_caches(shared_path("reference-results/hpatches-d2net-caches"))
    assert len(refs) == len(REFERENCE_CACHES)
    out = plot_mma(RESULTS, tmp_path / "mma.png", references=refs[:3], title="MMA — synthetic")
    _check_png(out, 3 * 400)  # three panels: overall, i, v
    assert [p.name for p in tmp_path.iterdir()] == ["mma.png"]


def test_plot_mma_single_split_without_references(tmp_path):
    out = plot_mma({"sift": RESULTS["sift"]}, tmp_path / "one.png")
    _check_png(out, 300)
    with Image.open(out) as one, Image.open(plot_mma(RESULTS, tmp_path / "three.png")) as three:
        assert three.size[0] > 2 * one.size[0]
    with pytest.raises(ValueError, match="no MMA"):
        plot_mma({"x": {"timing": {}}}, tmp_path / "none.png")


def test_reference_registry(tmp_path):
    known = next(iter(REFERENCE_CACHES))
    np.save(tmp_path / known, np.zeros(1))
    np.save(tmp_path / "unlisted.npy", np.zeros(1))
    assert reference_caches(tmp_path) == [tmp_path / known]
    assert reference_caches(tmp_path / "absent") == []
    assert reference_label(tmp_path / "aslfeat-repo__superpoint.npy") == "SuperPoint (published, full HPatches)"
    assert reference_label("other.npy") == "other (published, full HPatches)"
