"""Warm start (``selfdesc train --init-from``): matching tensors are loaded, the others skipped or
left as initialised; bad files are clear errors."""
import pytest
import torch

from selfdesc.cli.main import main
from selfdesc.errors import WeightsError
from selfdesc.methods.hndesc import HNDesc
from selfdesc.training.warm_start import warm_start
from selfdesc.weights import save_model_file
from tests.cli.test_train_cmd import TINY, _images


def _cell_file(path, dim=32):
    torch.manual_seed(1)
    m = HNDesc({"backbone": {"name": "lite", "dim": dim, "kp_head": "cell"}})
    exported = m.export()
    save_model_file(path, method="hndesc", conf=exported["conf"], state_dict=exported["state_dict"], meta={})
    return exported["state_dict"]


def test_loads_matching_tensors_and_skips_the_others(tmp_path):
    source = _cell_file(tmp_path / "cell.pt")
    torch.manual_seed(2)
    target = HNDesc({"backbone": {"name": "lite", "dim": 32, "kp_head": "dense"}})
    before = {k: v.clone() for k, v in target.net.state_dict().items()}
    report = warm_start(target, tmp_path / "cell.pt", "hndesc")
    after = target.net.state_dict()
    assert {n.split(".")[0] for n in report.loaded} == {"block1", "block2", "block3", "block4", "lat2", "lat3", "lat4", "fuse", "fine", "desc_head", "rel_head"}
    assert {n.split(" ")[0].split(".")[0] for n in report.skipped} == {"pixel_branch", "kp_head"}
    assert {n.split(".")[0] for n in report.fresh} == {"kp_local", "kp_ctx8", "kp_ctx4", "kp_ctx2", "kp_score"}
    for name in report.loaded:
        assert torch.equal(after[name], source[name]), name
    for name in report.fresh:
        assert torch.equal(after[name], before[name]), name
    assert all(torch.equal(p, after[n]) for n, p in target.net.named_parameters())  # the live parameters changed
    assert report.summary("f.pt").splitlines()[0] == (
        f"init-from f.pt: loaded {len(report.loaded)} tensors, skipped 26 of the file, {len(report.fresh)} of the network left as initialised"
    )


def test_shape_mismatches_are_skipped_with_the_reason(tmp_path):
    _cell_file(tmp_path / "cell.pt", dim=32)
    target = HNDesc({"backbone": {"name": "lite", "dim": 64, "kp_head": "cell"}})
    report = warm_start(target, tmp_path / "cell.pt", "hndesc")
    assert [n for n in report.skipped if n.startswith("desc_head.")] == [
        "desc_head.weight (shape (32, 64, 1, 1) in the file, (64, 64, 1, 1) in the network)",
        "desc_head.bias (shape (32,) in the file, (64,) in the network)",
    ]
    assert report.fresh == ["desc_head.weight", "desc_head.bias"]


def test_bad_files_are_clear_errors(tmp_path):
    target = HNDesc({"backbone": {"name": "lite", "dim": 32}})
    (tmp_path / "text.pt").write_text("not a model")
    with pytest.raises(WeightsError, match="text.pt: cannot load"):
        warm_start(target, tmp_path / "text.pt", "hndesc")
    with pytest.raises(WeightsError, match="missing.pt: no such model file"):
        warm_start(target, tmp_path / "missing.pt", "hndesc")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "plain.pt")
    with pytest.raises(WeightsError, match="plain.pt: not a selfdesc model file"):
        warm_start(target, tmp_path / "plain.pt", "hndesc")
    save_model_file(tmp_path / "other.pt", method="tpr", conf={}, state_dict={"w": torch.zeros(1)}, meta={})
    with pytest.raises(WeightsError, match="holds a 'tpr' model, expected 'hndesc'"):
        warm_start(target, tmp_path / "other.pt", "hndesc")
    save_model_file(tmp_path / "nofit.pt", method="hndesc", conf={}, state_dict={"w": torch.zeros(1)}, meta={})
    with pytest.raises(WeightsError, match="nofit.pt: no tensor of the model file fits"):
        warm_start(target, tmp_path / "nofit.pt", "hndesc")


def test_train_cli_init_from(tmp_path, capsys):
    _images(tmp_path / "imgs")
    source = _cell_file(tmp_path / "cell.pt")
    lite = ["method.backbone.name=lite", "method.backbone.dim=32"]
    args = ["train", "--images", str(tmp_path / "imgs"), "--out", str(tmp_path / "run"), "--init-from", str(tmp_path / "cell.pt"), "train.steps=1", *TINY, *lite]
    assert main(args) == 0
    log = capsys.readouterr().out
    assert "init-from" in log and "skipped: pixel_branch (18), kp_head (8)" in log
    record = (tmp_path / "run" / "init_from.txt").read_text()
    assert "loaded: block1.0.0.weight" in record and "fresh: kp_score.1.bias" in record
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=False)
    # one step of AdamW at lr 1e-4 moves the loaded weights by about 1e-4, far less than two random inits differ
    assert (ckpt["model"]["net.block3.1.0.weight"] - source["block3.1.0.weight"]).abs().max() < 1e-3
    (tmp_path / "bad.pt").write_text("x")
    bad = ["train", "--images", str(tmp_path / "imgs"), "--out", str(tmp_path / "run2"), "--init-from", str(tmp_path / "bad.pt"), "train.steps=1", *TINY, *lite]
    assert main(bad) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.pt: cannot load" in err[0]
