"""``--decode``: the GPU path's resize is OpenCV's, which files it takes, clear errors, and the
pipeline plumbing (run here with a CPU stand-in for nvJPEG: the same features as CPU decoding)."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

import selfdesc.pipeline.extract as extract_module
from selfdesc.errors import ConfigError
from selfdesc.features import load_extractor
from selfdesc.io.image import resize_image
from selfdesc.pipeline.decode import gpu_jpeg_size, resize_like_cpu, resolve_decode
from selfdesc.pipeline.extract import ExtractConfig, extract_features
from selfdesc.pipeline.h5io import FeatureFile
from tests.features.test_batch import one_thread, tiny_model_file  # noqa: F401 - one_thread: an autouse fixture
from tests.pipeline.conftest import photo


@pytest.mark.parametrize(
    "size,new",
    [((481, 321), (160, 120)), ((481, 321), (640, 480)), ((1000, 750), (333, 250)), ((481, 321), (481, 200)), ((321, 481), (640, 480)), ((64, 48), (64, 48))],
)
def test_resize_on_the_device_is_opencvs(size, new):
    """Area when shrinking (non-integer factors too), bilinear when growing, also with one side
    shrinking while the image grows (321 x 481 -> 640 x 480)."""
    rng = np.random.default_rng(0)
    img = rng.random((size[1], size[0], 3), dtype=np.float32)
    ref, _ = resize_image(img, size=new)
    got = resize_like_cpu(torch.from_numpy(img.transpose(2, 0, 1).copy()), *new)
    assert got.shape == (3, new[1], new[0])
    np.testing.assert_allclose(got.numpy().transpose(1, 2, 0), ref, atol=1e-5, rtol=0)


def test_which_files_the_gpu_path_takes(tmp_path):
    arr = photo("astronaut.png", (96, 64))
    Image.fromarray(arr).save(tmp_path / "plain.jpg", quality=90)
    Image.fromarray(arr).convert("L").save(tmp_path / "gray.jpg")
    Image.fromarray(arr).save(tmp_path / "prog.jpg", progressive=True)
    Image.fromarray(arr).convert("CMYK").save(tmp_path / "cmyk.jpg")
    Image.fromarray(arr).save(tmp_path / "photo.png")
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(arr).save(tmp_path / "rotated.jpg", exif=exif)
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    assert gpu_jpeg_size(tmp_path / "plain.jpg", None, None) == (96, 64)
    assert gpu_jpeg_size(tmp_path / "gray.jpg", 48, None) == (96, 64)
    assert gpu_jpeg_size(tmp_path / "plain.jpg", None, (100, 60)) is None  # area resize with a growing side
    for name in ("prog.jpg", "cmyk.jpg", "photo.png", "rotated.jpg", "broken.jpg", "missing.jpg"):
        assert gpu_jpeg_size(tmp_path / name, None, None) is None, name


def test_decode_choice_and_errors(monkeypatch):
    assert resolve_decode("cpu", "cuda") == "cpu"
    assert resolve_decode("auto", "cpu") == "cpu"
    with pytest.raises(ConfigError, match="--decode gpu needs torchvision with CUDA and --device cuda: the device is not CUDA"):
        resolve_decode("gpu", "cpu")
    with pytest.raises(ConfigError, match="decode must be one of auto, cpu, gpu"):
        resolve_decode("nvjpeg", "cpu")
    monkeypatch.setattr("selfdesc.pipeline.decode.gpu_decoder_missing", lambda: "torchvision is not installed")
    assert resolve_decode("auto", "cuda") == "cpu"  # auto falls back where torchvision is absent
    with pytest.raises(ConfigError, match="torchvision is not installed"):
        resolve_decode("gpu", "cuda")
    monkeypatch.setattr("selfdesc.pipeline.decode.gpu_decoder_missing", lambda: None)
    assert resolve_decode("auto", "cuda") == "gpu"


def test_gpu_decoding_plumbing_gives_the_cpu_features(tmp_path, monkeypatch):
    """JPEG bytes from the workers, decoded by a stand-in with nvJPEG's interface (Pillow + the
    device resize); a JPEG it cannot decode goes to the CPU, a broken one is named and skipped."""
    root = tmp_path / "img"
    root.mkdir()
    for i, name in enumerate(("astronaut.png", "coffee.png", "chelsea.png")):
        Image.fromarray(photo(name, (200, 150))).save(root / f"p{i}.jpg", quality=92)
    Image.fromarray(photo("rocket.jpg", (200, 150))).save(root / "q.png")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    seen: list[str] = []

    def stand_in(items, device):
        out = []
        for item in items:
            seen.append(item["name"])
            if item["name"] == "p1.jpg":
                out.append(None)  # as if nvJPEG refused it
                continue
            img = np.asarray(Image.open(io.BytesIO(item["jpeg"].numpy().tobytes())).convert("RGB"), np.float32) / 255.0
            _, h, w = item["shape"]
            out.append(resize_like_cpu(torch.from_numpy(img.transpose(2, 0, 1).copy()), w, h))
        return out

    tiny = load_extractor(str(tiny_model_file(tmp_path / "tiny.pt")), max_keypoints=80, reliability_thr=0.0, repeatability_thr=0.0, min_scale=0.5)
    conf = {"resize_max": 160, "batch_size": 2, "num_workers": 1, "progress": False}
    ref = extract_features(tiny, "tiny", root, tmp_path / "cpu.h5", ExtractConfig(decode="cpu", **conf))
    monkeypatch.setattr(extract_module, "resolve_decode", lambda decode, device: "gpu")
    monkeypatch.setattr(extract_module, "decode_jpegs", stand_in)
    got = extract_features(tiny, "tiny", root, tmp_path / "gpu.h5", ExtractConfig(decode="gpu", **conf))
    assert sorted(seen) == ["p0.jpg", "p1.jpg", "p2.jpg"]  # PNG and the broken file were decoded by the workers
    assert got.num_extracted == ref.num_extracted == 4 and len(got.failed) == 1 and "broken.jpg" in got.failed[0]
    with FeatureFile(tmp_path / "cpu.h5") as a, FeatureFile(tmp_path / "gpu.h5") as b:
        assert a.names == b.names == ["p0.jpg", "p1.jpg", "p2.jpg", "q.png"]
        for name in a.names:
            x, y = a.read(name), b.read(name)
            for key in ("keypoints", "scores", "descriptors", "image_size"):
                np.testing.assert_allclose(x[key], y[key], atol=1e-4, rtol=0, err_msg=f"{name} {key}")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (nvJPEG)")
def test_nvjpeg_never_writes_over_memory_queued_kernels_still_read(tmp_path):
    """Round 7's crash: torchvision's CUDA decoder is handed blocks of the current stream's pool
    that queued kernels still read. ``decode_jpegs`` must leave them alone
    (``benchmarks/pipeline_check.py --hazard`` also measures torchvision's own rate)."""
    pytest.importorskip("torchvision")
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("pipeline_check", Path(__file__).resolve().parents[2] / "benchmarks" / "pipeline_check.py")
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    paths = []
    for i, name in enumerate(("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg") * 2):
        paths.append(tmp_path / f"p{i}.jpg")
        Image.fromarray(np.roll(photo(name, (481, 321)), 9 * i, axis=1)).save(paths[-1], quality=90)
    assert check.nvjpeg_hazard(paths, torch.device("cuda"), rounds=10)["selfdesc decode_jpegs"] == 0
