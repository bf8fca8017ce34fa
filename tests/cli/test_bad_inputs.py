"""Bad inputs for every command a user runs first (extract, match, eval homography, eval pose,
sfm, train): each gives exit status 2, one line naming the file and the problem, no traceback,
and leaves earlier outputs as they were. The corpus is generated here (small files, plus one
12000 x 9000 JPEG of a constant grey, about 1 MB, made once per session)."""
from __future__ import annotations

import io
import os
import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image, ImageOps

import selfdesc
from selfdesc.cli.main import main
from selfdesc.errors import ImageError
from selfdesc.io.image import MAX_PIXELS_FULL_SIZE, load_image


def _photo(seed: int, w: int = 160, h: int = 120) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)).resize((w, h), Image.BICUBIC)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    good = root / "good"
    good.mkdir()
    for i in range(3):
        _photo(i).save(good / f"g{i}.png")
    buf = io.BytesIO()
    _photo(7).save(buf, "JPEG")
    (root / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    Image.fromarray(np.asarray(_photo(6).convert("L"), np.uint16) * 257).save(root / "16bit.png")
    assert Image.open(root / "16bit.png").mode.startswith("I")
    _photo(8).convert("CMYK").save(root / "cmyk.jpg")
    raw = _photo(9).transpose(Image.Transpose.ROTATE_270)  # stored sideways (120 x 160) ...
    exif = Image.Exif()
    exif[0x0112] = 8  # ... and displayed upright (160 x 120) by its EXIF orientation
    raw.save(root / "exif.jpg", exif=exif, quality=95)
    Image.new("RGB", (1, 1)).save(root / "tiny.png")
    (root / "text.jpg").write_text("this is not a JPEG")
    (root / "empty").mkdir()
    (root / "a-file").write_text("x")
    return root


@pytest.fixture(scope="module")
def huge(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("huge") / "huge.jpg"
    Image.new("L", (12000, 9000), 128).save(path, quality=50)
    return path


def _folder(corpus: Path, tmp_path: Path, *extra: Path | str) -> Path:
    """The good images plus ``extra`` files of the corpus, in a fresh folder."""
    folder = tmp_path / "images"
    folder.mkdir(parents=True)
    for p in (corpus / "good").iterdir():
        (folder / p.name).write_bytes(p.read_bytes())
    for name in extra:
        src = Path(name) if Path(name).is_absolute() else corpus / name
        (folder / src.name).write_bytes(src.read_bytes())
    return folder


def _fails(argv: list[str], capsys, *names: str) -> str:
    """Runs ``selfdesc argv``: exit status 2 and a last line ``selfdesc: error: ...`` naming ``names``."""
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith("selfdesc: error: "), err
    for name in names:
        assert name in line, line
    return line


def _read_only(monkeypatch, folder: Path) -> None:
    """Make ``folder`` look read-only (the tests run as root, for whom chmod changes nothing)."""
    real = os.access

    def access(path, mode, *args, **kwargs):
        if Path(path).resolve() == folder.resolve() and mode & os.W_OK:
            return False
        return real(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)


def _bytes(path: Path) -> bytes:
    return path.read_bytes()


# ---------------------------------------------------------------------------------- images
def test_odd_but_valid_images_are_read(corpus, tmp_path, capsys):
    folder = _folder(corpus, tmp_path, "16bit.png", "cmyk.jpg", "exif.jpg")
    assert main(["extract", "--features", "sift", "--images", str(folder), "--out", str(tmp_path / "f.h5"), "--quiet", "--workers", "0"]) == 0
    with h5py.File(tmp_path / "f.h5") as f:
        assert {"16bit.png", "cmyk.jpg", "exif.jpg"} <= set(f)
        assert len(f["16bit.png/keypoints"]) > 0 and len(f["cmyk.jpg/keypoints"]) > 0
        assert tuple(f["exif.jpg/image_size"][()]) == (160, 120)  # the displayed frame, not the stored 120 x 160


def test_exif_rotated_keypoints_are_in_the_displayed_frame(corpus):
    extractor = selfdesc.load("sift")
    from_file = extractor.extract(str(corpus / "exif.jpg"))["keypoints"]
    with Image.open(corpus / "exif.jpg") as img:
        shown = np.asarray(ImageOps.exif_transpose(img.convert("RGB")), np.float32) / 255
        stored = np.asarray(img.convert("RGB"), np.float32) / 255
    assert shown.shape[:2] == (120, 160) and stored.shape[:2] == (160, 120)
    np.testing.assert_array_equal(from_file, extractor.extract(shown)["keypoints"])
    assert from_file[:, 0].max() > 120  # x beyond the stored width: coordinates of the displayed image
    assert not np.array_equal(from_file[:20], extractor.extract(stored)["keypoints"][:20])


@pytest.mark.parametrize("bad, problem", [("truncated.jpg", "truncated"), ("text.jpg", "not an image"), ("tiny.png", "too small")])
def test_extract_names_the_unreadable_image_and_keeps_the_earlier_file(corpus, tmp_path, capsys, bad, problem):
    out = tmp_path / "f.h5"
    assert main(["extract", "--features", "sift", "--images", str(_folder(corpus, tmp_path)), "--out", str(out), "--quiet"]) == 0
    before = _bytes(out)
    folder = _folder(corpus, tmp_path / "second", bad)
    line = _fails(["extract", "--features", "sift", "--images", str(folder), "--out", str(out), "--quiet", "--workers", "0"], capsys, bad)
    assert problem in line
    assert _bytes(out) == before


def test_extract_can_skip_unreadable_images_and_reports_them(corpus, tmp_path, capsys):
    folder = _folder(corpus, tmp_path, "truncated.jpg", "text.jpg")
    out = tmp_path / "f.h5"
    assert main(["extract", "--features", "sift", "--images", str(folder), "--out", str(out), "--quiet", "--skip-unreadable"]) == 0
    report = capsys.readouterr().err
    skipped = [line for line in report.splitlines() if line.startswith("selfdesc: skipped: ")]
    assert len(skipped) == 2 and "truncated.jpg" in report and "text.jpg" in report
    with h5py.File(out) as f:
        assert sorted(f) == ["g0.png", "g1.png", "g2.png"]
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "text.jpg").write_bytes((corpus / "text.jpg").read_bytes())
    _fails(["extract", "--features", "sift", "--images", str(only_bad), "--out", str(tmp_path / "g.h5"), "--quiet", "--skip-unreadable"], capsys, "none of the 1 images")


def test_huge_image_needs_a_resize_and_is_then_read_cheaply(huge, tmp_path, capsys):
    with pytest.raises(ImageError, match="12000x9000 .*--resize-max"):
        load_image(huge)
    assert 12000 * 9000 > MAX_PIXELS_FULL_SIZE
    tracemalloc.start()
    loaded = load_image(huge, resize_max=1600)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert loaded.size == (1600, 1200) and loaded.original_size == (12000, 9000)
    assert loaded.scale == (7.5, 7.5)
    assert peak < 200e6  # full size as float RGB would be 1.3 GB
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "huge.jpg").write_bytes(huge.read_bytes())
    _fails(["extract", "--features", "sift", "--images", str(folder), "--out", str(tmp_path / "f.h5"), "--quiet", "--workers", "0"], capsys, "huge.jpg", "--resize-max")
    assert main(["extract", "--features", "sift", "--images", str(folder), "--out", str(tmp_path / "g.h5"), "--quiet", "--workers", "0", "--resize", "1600"]) == 0
    with h5py.File(tmp_path / "g.h5") as f:
        assert tuple(f["huge.jpg/image_size"][()]) == (12000, 9000)


# ---------------------------------------------------------------------------------- extract
def test_extract_folder_weights_and_feature_errors(corpus, tmp_path, capsys):
    good = str(corpus / "good")
    _fails(["extract", "--features", "sift", "--images", str(corpus / "empty"), "--out", str(tmp_path / "f.h5")], capsys, "empty", "no image files")
    _fails(["extract", "--features", "sift", "--images", str(tmp_path / "nowhere"), "--out", str(tmp_path / "f.h5")], capsys, "nowhere")
    _fails(["extract", "--features", "disk", "--weights-dir", str(tmp_path / "no-weights"), "--images", good, "--out", str(tmp_path / "f.h5")], capsys, "no-weights")
    _fails(["extract", "--features", "siftt", "--images", good, "--out", str(tmp_path / "f.h5")], capsys, "siftt")
    assert not (tmp_path / "f.h5").exists()


@pytest.mark.parametrize("command", ["extract", "match", "pairs"])
def test_file_outputs_that_cannot_be_written(corpus, tmp_path, capsys, monkeypatch, command):
    features = tmp_path / "f.h5"
    assert main(["extract", "--features", "sift", "--images", str(corpus / "good"), "--out", str(features), "--quiet"]) == 0
    (tmp_path / "pairs.txt").write_text("g0.png g1.png\n")
    argv = {
        "extract": ["extract", "--features", "sift", "--images", str(corpus / "good"), "--quiet"],
        "match": ["match", "--features", str(features), "--pairs", str(tmp_path / "pairs.txt"), "--quiet"],
        "pairs": ["pairs", "--features", str(features), "--mode", "exhaustive"],
    }[command]
    (tmp_path / "folder").mkdir()
    _fails([*argv, "--out", str(tmp_path / "folder")], capsys, "folder", "is a folder")
    _fails([*argv, "--out", str(corpus / "a-file" / "out.h5")], capsys, "a-file", "not a folder")
    ro = tmp_path / "read-only"
    ro.mkdir()
    _read_only(monkeypatch, ro)
    _fails([*argv, "--out", str(ro / "out.h5")], capsys, "read-only")
    assert list(ro.iterdir()) == []


# ---------------------------------------------------------------------------------- match
def test_match_pair_list_and_features_errors(corpus, tmp_path, capsys):
    features = tmp_path / "f.h5"
    assert main(["extract", "--features", "sift", "--images", str(corpus / "good"), "--out", str(features), "--quiet"]) == 0
    out = tmp_path / "m.h5"
    (tmp_path / "ok.txt").write_text("g0.png g1.png\n")
    assert main(["match", "--features", str(features), "--pairs", str(tmp_path / "ok.txt"), "--out", str(out), "--quiet"]) == 0
    before = _bytes(out)
    (tmp_path / "one.txt").write_text("g0.png\n")
    (tmp_path / "missing.txt").write_text("g0.png gone.png\n")
    _fails(["match", "--features", str(features), "--pairs", str(tmp_path / "one.txt"), "--out", str(out)], capsys, "one.txt:1", "name0 name1")
    _fails(["match", "--features", str(features), "--pairs", str(tmp_path / "missing.txt"), "--out", str(out)], capsys, "gone.png")
    _fails(["match", "--features", str(features), "--pairs", str(features), "--out", str(out)], capsys, "f.h5", "not a text pair file")
    _fails(["match", "--features", str(corpus / "text.jpg"), "--pairs", str(tmp_path / "ok.txt"), "--out", str(out)], capsys, "text.jpg")
    assert _bytes(out) == before


# ---------------------------------------------------------------------------------- eval
def _homography_list(folder: Path, name: str, line: str) -> Path:
    path = folder / name
    path.write_text(line + "\n")
    return path


@pytest.mark.parametrize(
    "line, problem",
    [
        ("g0.png g1.png 1 0 0", "expected 11 fields"),
        ("g0.png g1.png 1 0 x 0 1 0 0 0 1", "'x' is not a number"),
        ("g0.png gone.png 1 0 0 0 1 0 0 0 1", "gone.png not found"),
        ("g0.png truncated.jpg 1 0 0 0 1 0 0 0 1", "truncated.jpg"),
    ],
)
def test_eval_homography_bad_pair_lists_keep_earlier_results(corpus, tmp_path, capsys, line, problem):
    folder = _folder(corpus, tmp_path, "truncated.jpg")
    out = tmp_path / "eval"
    ok = _homography_list(folder, "ok.txt", "g0.png g1.png 1 0 0 0 1 0 0 0 1")
    base = ["eval", "homography", "--dataset", "pairs", "--features", "sift", "--out", str(out), "--quiet", "--no-plot"]
    assert main([*base, "--root", str(ok)]) == 0
    before = _bytes(out / "results.json")
    _fails([*base, "--root", str(_homography_list(folder, "bad.txt", line))], capsys, problem)
    assert _bytes(out / "results.json") == before


def test_eval_homography_feature_weights_output_and_huge_image(corpus, huge, tmp_path, capsys):
    folder = _folder(corpus, tmp_path, huge)
    ok = _homography_list(folder, "ok.txt", "g0.png g1.png 1 0 0 0 1 0 0 0 1")
    base = ["eval", "homography", "--dataset", "pairs", "--quiet", "--no-plot"]
    _fails([*base, "--root", str(ok), "--features", "sift,nonesuch", "--out", str(tmp_path / "e")], capsys, "nonesuch")
    _fails([*base, "--root", str(ok), "--features", "xfeat", "--weights-dir", str(tmp_path / "no-weights"), "--out", str(tmp_path / "e")], capsys, "no-weights")
    _fails([*base, "--root", str(ok), "--features", "sift", "--out", str(corpus / "a-file")], capsys, "a-file", "is a file")
    big = _homography_list(folder, "big.txt", "g0.png huge.jpg 1 0 0 0 1 0 0 0 1")
    _fails([*base, "--root", str(big), "--features", "sift", "--out", str(tmp_path / "e")], capsys, "huge.jpg", "--resize-max")
    assert not (tmp_path / "e" / "results.json").exists()


def test_eval_pose_bad_list_feature_and_output(corpus, tmp_path, capsys):
    folder = _folder(corpus, tmp_path)
    (folder / "pairs.txt").write_text("g0.png g1.png 0 0 1 2 3\n")
    base = ["eval", "pose", "--format", "pairs", "--quiet"]
    _fails([*base, "--root", str(folder / "pairs.txt"), "--features", "sift", "--out", str(tmp_path / "p")], capsys, "pairs.txt:1", "expected 38 fields")
    _fails([*base, "--root", str(folder / "pairs.txt"), "--features", "nonesuch", "--out", str(tmp_path / "p")], capsys, "nonesuch")
    _fails([*base, "--root", str(folder / "pairs.txt"), "--features", "sift", "--out", str(corpus / "a-file")], capsys, "a-file", "is a file")


@pytest.mark.parametrize("command", ["eval-homography", "eval-pose", "sfm", "train"])
def test_read_only_output_folder_fails_before_any_work(corpus, tmp_path, capsys, monkeypatch, command):
    folder = _folder(corpus, tmp_path)
    (folder / "h.txt").write_text("g0.png g1.png 1 0 0 0 1 0 0 0 1\n")
    argv = {
        "eval-homography": ["eval", "homography", "--dataset", "pairs", "--root", str(folder / "h.txt"), "--features", "sift", "--quiet"],
        "eval-pose": ["eval", "pose", "--format", "pairs", "--root", str(folder / "h.txt"), "--features", "sift", "--quiet"],
        "sfm": ["sfm", "--images", str(folder), "--features", "sift", "--quiet"],
        "train": ["train", "--images", str(folder), "train.steps=1"],
    }[command]
    ro = tmp_path / "read-only"
    ro.mkdir()
    _read_only(monkeypatch, ro)
    _fails([*argv, "--out", str(ro / "run")], capsys, "read-only")
    _fails([*argv, "--out", str(ro)], capsys, "read-only")
    _fails([*argv, "--out", str(corpus / "a-file" / "run")], capsys, "a-file", "not a folder")
    assert list(ro.iterdir()) == []


# ---------------------------------------------------------------------------------- sfm, train
def test_sfm_bad_folder_image_feature_and_output(corpus, tmp_path, capsys):
    base = ["sfm", "--quiet"]
    _fails([*base, "--images", str(corpus / "empty"), "--features", "sift", "--out", str(tmp_path / "s")], capsys, "empty")
    _fails([*base, "--images", str(_folder(corpus, tmp_path, "text.jpg")), "--features", "sift", "--out", str(tmp_path / "s")], capsys, "text.jpg")
    _fails([*base, "--images", str(corpus / "good"), "--features", "nonesuch", "--out", str(tmp_path / "s")], capsys, "nonesuch")
    _fails([*base, "--images", str(corpus / "good"), "--features", "sift", "--out", str(corpus / "a-file")], capsys, "a-file", "is a file")


def test_train_bad_folder_config_and_output(corpus, tmp_path, capsys):
    run = ["--out", str(tmp_path / "run"), "train.steps=1", "train.progress=false", "train.num_workers=0"]
    _fails(["train", "--images", str(corpus / "empty"), *run], capsys, "empty", "no image files")
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "text.jpg").write_bytes((corpus / "text.jpg").read_bytes())
    with pytest.warns(UserWarning, match="text.jpg"):
        _fails(["train", "--images", str(only_bad), *run], capsys, "none of the 1 images could be read")
    _fails(["train", "--images", str(corpus / "good"), "--config", str(tmp_path / "nope.yaml"), *run], capsys, "nope.yaml")
    _fails(["train", "--images", str(corpus / "good"), *run, "method.name=nonesuch"], capsys, "nonesuch")
    _fails(["train", "--images", str(corpus / "good"), "--out", str(corpus / "a-file")], capsys, "a-file", "is a file")
