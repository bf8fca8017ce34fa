"""`selfdesc index`: writes a loadable index, prints a summary, fails clearly."""
import numpy as np
import pytest
from PIL import Image

from selfdesc.cli.main import main
from selfdesc.retrieval import GlobalIndex


def _images(folder, n=5):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        small = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
        Image.fromarray(small).resize((256, 192), Image.BICUBIC).save(folder / f"{i}.png")
    (folder / "broken.jpg").write_bytes(b"nope")


def test_index_writes_file_and_summary(tmp_path, capsys):
    _images(tmp_path / "imgs")
    out = tmp_path / "out" / "index.h5"
    args = ["index", "--images", str(tmp_path / "imgs"), "--out", str(out), "--clusters", "4", "--max-keypoints", "200", "--quiet"]
    with pytest.warns(UserWarning, match="broken.jpg"):
        assert main(args) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("5 images indexed, dim 512, 1 skipped,") and line.endswith(f"-> {out}")
    index = GlobalIndex.load(out)
    assert index.names == [f"{i}.png" for i in range(5)] and index.dim == 512
    assert index.meta["conf"]["max_keypoints"] == 200 and index.meta["skipped"] == ["broken.jpg"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["index.h5"]


def test_index_errors(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["index", "--images", str(tmp_path / "empty"), "--out", str(tmp_path / "i.npz"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "no image files found" in err and "Traceback" not in err
    assert not (tmp_path / "i.npz").exists()
    assert main(["index", "--images", str(tmp_path / "empty"), "--out", str(tmp_path / "i.txt")]) == 2
    assert "must end in .npz" in capsys.readouterr().err
    assert main(["index", "--images", str(tmp_path / "empty"), "--out", str(tmp_path / "i.npz"), "--clusters", "0"]) == 2
    assert "--clusters must be at least 1" in capsys.readouterr().err
