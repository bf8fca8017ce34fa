"""``selfdesc extract``: output, clear errors, resume after a SIGKILL, torchrun sharding."""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from selfdesc.cli.main import main
from selfdesc.pipeline.h5io import FeatureFile
from tests.features.test_batch import tiny_model_file


def _photos(root: Path, count: int, size=(320, 240), start: int = 0) -> list[str]:
    skimage = pytest.importorskip("skimage")
    src = Image.open(Path(skimage.__file__).resolve().parent / "data" / "astronaut.png").convert("RGB").resize(size)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + count):
        Image.fromarray(np.roll(np.asarray(src), 5 * i, axis=1)).save(root / f"im{i:03d}.jpg", quality=92)
    return [f"im{i:03d}.jpg" for i in range(start, start + count)]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("selfdesc: error: ")
    return err[0]


def test_extract_writes_features_and_errors_keep_outputs(tmp_path, capsys):
    names = _photos(tmp_path / "img", 3)
    out = tmp_path / "f.h5"
    assert main(["extract", "--features", "sift", "--images", str(tmp_path / "img"), "--out", str(out), "--max-keypoints", "100", "--fp16", "--quiet"]) == 0
    assert "3 images (0 already there, 3 extracted" in capsys.readouterr().out
    with FeatureFile(out) as ff:
        assert ff.names == names and ff.attrs["features"] == "sift"
        assert ff.fd[names[0]]["descriptors"].dtype == np.float16 and len(ff.read(names[0])["keypoints"]) == 100
    digest = _digest(out)
    assert main(["extract", "--features", "nope", "--images", str(tmp_path / "img"), "--out", str(out)]) == 2
    assert "unknown feature 'nope'" in _error_line(capsys)
    assert main(["extract", "--features", "sift", "--images", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert "missing: no such folder" in _error_line(capsys)
    (tmp_path / "img" / "broken.jpg").write_bytes(b"garbage")
    assert main(["extract", "--features", "sift", "--images", str(tmp_path / "img"), "--out", str(out), "--max-keypoints", "100", "--fp16", "--quiet"]) == 2
    assert "broken.jpg: " in _error_line(capsys)
    assert _digest(out) == digest


@pytest.mark.parametrize("feature,batch,size", [("sift", "1", (640, 480)), ("tiny", "3", (240, 180))])
def test_resume_after_sigkill(tmp_path, capsys, feature, batch, size):
    """One image at a time (SIFT), and batches of 3 through a network (a tiny random HNDesc model)."""
    root, out = tmp_path / "img", tmp_path / "f.h5"
    if feature == "tiny":
        feature = str(tiny_model_file(tmp_path / "tiny.pt"))
    args = ["extract", "--features", feature, "--images", str(root), "--out", str(out), "--checkpoint-every", "2", "--workers", "1", "--batch-size", batch, "--quiet"]
    _photos(root, 3, size=size)
    assert main(args) == 0
    digest = _digest(out)
    names = sorted(_photos(root, 12, size=size))
    proc = subprocess.Popen([sys.executable, "-m", "selfdesc", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = tmp_path / ".f.h5.parts"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and _journaled(parts) < 2:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    assert _digest(out) == digest  # the previous complete file is untouched and valid
    with FeatureFile(out) as ff:
        assert len(ff.names) == 3
    finished = _journaled(parts)
    assert finished >= 2
    capsys.readouterr()
    assert main(args) == 0
    done = capsys.readouterr().out
    skipped = int(done.split("(")[1].split(" ")[0])
    assert skipped >= 3 + finished and f"12 images ({skipped} already there, {12 - skipped} extracted" in done
    counts: dict[str, int] = {}
    with h5py.File(out) as fd:
        for name in [n.rsplit("/", 1)[0] for n in _datasets(fd) if n.endswith("/keypoints")]:
            counts[name] = counts.get(name, 0) + 1
    assert sorted(counts) == names and set(counts.values()) == {1}
    assert not parts.exists()


def _journaled(parts: Path) -> int:
    """Images recorded in the journals of the unfinished runs in ``parts`` (after each one's header line)."""
    return sum(max(0, len([x for x in j.read_text().splitlines() if x.endswith("}")]) - 1) for j in parts.glob("run-*.journal"))


def _datasets(fd) -> list[str]:
    found: list[str] = []
    fd.visititems(lambda n, o: found.append(n) if isinstance(o, h5py.Dataset) else None)
    return found


@pytest.mark.benchmark  # three Python processes start torch: ~25 s on 2 busy cores
def test_torchrun_shards_and_merges(tmp_path):
    torchrun = shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun not installed")
    names = _photos(tmp_path / "img", 5)
    one, two = tmp_path / "one.h5", tmp_path / "two.h5"
    base = ["-m", "selfdesc", "extract", "--features", "sift", "--images", str(tmp_path / "img"), "--max-keypoints", "64", "--workers", "0", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    assert main([*base[2:], "--out", str(one)]) == 0
    port = str(29500 + os.getpid() % 1000)
    res = subprocess.run([torchrun, "--nproc_per_node", "2", "--master_port", port, *base, "--out", str(two)], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "5 images (0 already there, 5 extracted" in res.stdout
    with FeatureFile(one) as a, FeatureFile(two) as b:
        assert a.names == b.names == names
        for n in names:
            np.testing.assert_array_equal(a.read(n)["keypoints"], b.read(n)["keypoints"])
    assert not (tmp_path / ".two.h5.parts").exists()


def test_decode_gpu_where_it_cannot_run_is_one_line(tmp_path, capsys):
    _photos(tmp_path / "img", 1)
    args = ["extract", "--features", "sift", "--images", str(tmp_path / "img"), "--out", str(tmp_path / "f.h5"), "--device", "cpu", "--quiet"]
    assert main([*args, "--decode", "gpu"]) == 2
    assert "--decode gpu needs torchvision with CUDA and --device cuda: the device is not CUDA" in _error_line(capsys)
    assert not (tmp_path / "f.h5").exists()
    assert main([*args, "--decode", "auto"]) == 0  # auto falls back to the CPU
