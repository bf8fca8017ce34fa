"""``selfdesc export-onnx``: a model file exports and checks; hand-crafted features are refused."""
from __future__ import annotations

import pytest

from selfdesc.cli.main import main
from selfdesc.models.l2net import QuadL2Net
from selfdesc.weights import save_model_file


def test_export_model_file_and_refuse_sift(tmp_path, capsys):
    pytest.importorskip("onnx", reason="needs the onnx package (pip install 'selfdesc[onnx]')")
    pytest.importorskip("onnxruntime", reason="needs onnxruntime (pip install 'selfdesc[onnx]')")
    backbone = {"name": "r2d2", "dim": 16, "mchan": 1, "final_relu": True, "heads": True}
    state = QuadL2Net({k: v for k, v in backbone.items() if k != "name"}).state_dict()
    save_model_file(tmp_path / "m.pt", method="hndesc", conf={"backbone": backbone}, state_dict=state, meta={})
    assert main(["export-onnx", "--features", str(tmp_path / "m.pt"), "--out", str(tmp_path / "m.onnx")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].endswith("outputs descriptors, reliability, repeatability")
    diffs = [float(x.split()[-1]) for x in lines[1].split(": ", 1)[1].split(", ")]
    assert len(diffs) == 3 and max(diffs) < 1e-4
    assert main(["export-onnx", "--features", "sift", "--out", str(tmp_path / "s.onnx")]) == 2
    assert capsys.readouterr().err.strip() == "selfdesc: error: feature 'sift' has no learned dense network to export"
