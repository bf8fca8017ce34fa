"""The demo (`make demo`): builds its benchmark from scikit-image's photos and writes every output."""
import json

from selfdesc.demo import DEMO_MAX_SIDE, run_demo
from selfdesc.io.image import load_image


def test_demo_writes_results_table_and_pictures(tmp_path, capsys):
    results = run_demo(tmp_path, features=["sift", "orb"])
    assert set(results) == {"sift", "orb"}
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["sift"]["overall"]["mma"]["3"] == results["sift"]["overall"]["mma"]["3"]
    # a mild synthetic benchmark: SIFT matches most pairs correctly
    assert results["sift"]["overall"]["mma"]["3"] > 0.5 and results["sift"]["overall"]["num_pairs"] == 60
    for name in ("results.md", "mma.png", "matches.png"):
        assert (tmp_path / name).stat().st_size > 0
    image = load_image(next((tmp_path / "synth-benchmark").rglob("1.*")))
    assert max(image.image.shape[:2]) <= DEMO_MAX_SIDE
    assert "| sift | overall |" in capsys.readouterr().out
