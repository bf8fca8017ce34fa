"""The batched pipeline: same features as one image at a time, any mix of sizes, writer-thread failures."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from selfdesc.errors import ConfigError, DatasetError
from selfdesc.features import load_extractor
from selfdesc.io.image import load_image
from selfdesc.pipeline.background import BackgroundWriter
from selfdesc.pipeline.extract import ExtractConfig, extract_features, size_batches
from selfdesc.pipeline.featurestore import FeatureStore
from selfdesc.pipeline.h5io import FeatureFile
from selfdesc.pipeline.packed import pack_batch
from tests.features.test_batch import one_thread, tiny_model_file  # noqa: F401 - one_thread: an autouse fixture
from tests.pipeline.conftest import photo, write_folder


def test_size_batches_groups_equal_shapes_and_bounds_the_wait():
    items = [{"id": i, "shape": (3, h, 4)} for i, h in enumerate([2, 3, 2, 2, 3, 5, 2, 7, 8, 9, 9])]
    batches = list(size_batches(items, 3))
    assert sorted(i["id"] for b in batches for i in b) == list(range(11))  # every image exactly once
    assert all(len({i["shape"] for i in b}) == 1 and len(b) <= 3 for b in batches)
    assert [i["id"] for i in batches[0]] == [0, 2, 3]  # the first full batch goes as soon as it is full
    # never more than 2 * batch_size images waiting: the fullest partial batch leaves early
    assert [i["id"] for i in batches[1]] == [1, 4]


@pytest.mark.parametrize("resize_max", [None, 150])
def test_batched_folder_equals_single_images(tmp_path, resize_max):
    root = tmp_path / "images"
    write_folder(root, 5, size=(160, 120))
    Image.fromarray(photo("coffee.png", (140, 100))).save(root / "other.png")  # sizes that do not fill a batch
    write_folder(root / "big", 2, size=(200, 150))
    tiny = load_extractor(str(tiny_model_file(tmp_path / "tiny.pt")), max_keypoints=100, reliability_thr=0.0, repeatability_thr=0.0, min_scale=0.5)
    out = tmp_path / "f.h5"
    s = extract_features(tiny, "tiny", root, out, ExtractConfig(resize_max=resize_max, batch_size=3, num_workers=1, checkpoint_every=2, progress=False))
    assert (s.num_extracted, s.failed, s.written) == (8, [], True)
    with FeatureFile(out) as ff:
        assert len(ff.names) == 8
        for name in ff.names:
            got, ref = ff.read(name), tiny.extract(load_image(root / name, resize_max=resize_max))
            np.testing.assert_allclose(got["keypoints"], ref["keypoints"].numpy(), atol=1e-4)
            np.testing.assert_allclose(got["scores"], ref["scores"].numpy(), atol=1e-4)
            np.testing.assert_allclose(got["descriptors"], ref["descriptors"].numpy(), atol=1e-4)
            assert got["image_size"].tolist() == ref["image_size"].tolist()


def test_profile_times_every_step(image_dir, tmp_path):
    root, _ = image_dir
    sift = load_extractor("sift", max_keypoints=50)
    s = extract_features(sift, "sift", root, tmp_path / "f.h5", ExtractConfig(batch_size=2, num_workers=1, profile=True, progress=False))
    assert set(s.stages) == {"decode", "wait_decode", "h2d", "network", "select", "d2h", "write", "wait_write", "finalize", "total"}
    assert s.stages["decode"] > 0 and s.stages["write"] > 0 and s.stages["select"] > 0
    assert sum(v for k, v in s.stages.items() if k not in ("total", "decode", "write")) <= s.stages["total"]
    assert extract_features(sift, "sift", root, tmp_path / "g.h5", ExtractConfig(num_workers=0, progress=False)).stages == {}


def test_precision_is_part_of_the_settings(image_dir, tmp_path):
    root, _ = image_dir
    out = tmp_path / "f.h5"
    sift = load_extractor("sift", max_keypoints=50)
    extract_features(sift, "sift", root, out, ExtractConfig(num_workers=0, progress=False))
    with pytest.raises(ConfigError, match="other settings"):
        extract_features(sift, "sift", root, out, ExtractConfig(precision="bf16", num_workers=0, progress=False))
    with pytest.raises(ConfigError, match="precision must be one of fp32, bf16"):
        extract_features(sift, "sift", root, tmp_path / "g.h5", ExtractConfig(precision="fp16", progress=False))


@pytest.mark.parametrize("queue_size", [0, 4])
def test_writer_failure_is_one_line_and_keeps_finished_images(tmp_path, queue_size, monkeypatch):
    out = tmp_path / "f.h5"
    store = FeatureStore(out, {"s": 1}, checkpoint_every=2)
    writer = BackgroundWriter(store, queue_size=queue_size)
    pred = {"keypoints": torch.zeros(3, 2), "scores": torch.zeros(3), "descriptors": torch.ones(3, 4) / 2}

    def batch(n, size=(8, 6)):
        return pack_batch([pred] * n, [(1.0, 1.0)] * n, [size] * n)

    writer.add(["a.jpg", "b.jpg", "c.jpg"], batch(3))  # journaled: a and b, then c
    original = FeatureStore._pwrite

    def failing(self, offset, value):
        if value.tolist() == [9, 7]:  # the image_size of d and e: their other bytes may be written
            raise OSError("No space left on device\nsecond line")
        original(self, offset, value)

    monkeypatch.setattr(FeatureStore, "_pwrite", failing)
    with pytest.raises(DatasetError) as err:
        writer.add(["d.jpg", "e.jpg"], batch(2, (9, 7)))
        writer.add(["f.jpg"], batch(1))
        writer.close()
    msg = str(err.value)
    assert "\n" not in msg and str(out) in msg and "No space left on device" in msg
    with pytest.raises(DatasetError, match="No space left"):  # reported again
        writer.close()
    rerun = FeatureStore(out, {"s": 1})
    assert rerun.done == {"a.jpg", "b.jpg", "c.jpg"}  # d and e were not journaled: nothing half-written is counted
    assert rerun.finalize() and not rerun.parts_dir.exists()
    with FeatureFile(out) as ff:
        assert ff.names == ["a.jpg", "b.jpg", "c.jpg"]
        np.testing.assert_array_equal(ff.read("c.jpg")["descriptors"], pred["descriptors"].numpy())
