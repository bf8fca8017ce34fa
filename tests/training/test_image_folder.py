import itertools

import numpy as np
import pytest
import torch
from PIL import Image

from selfdesc.errors import DatasetError
from selfdesc.training.image_folder import ImageFolder, ResumableSampler


def test_folder_resizes_and_skips_bad_files(tmp_path):
    (tmp_path / "sub").mkdir()
    Image.fromarray(np.full((60, 90, 3), 100, np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.full((90, 60, 3), 200, np.uint8)).save(tmp_path / "sub" / "b.jpg")
    (tmp_path / "c.png").write_bytes(b"not a png")
    ds = ImageFolder(tmp_path, size=(64, 48))
    assert len(ds) == 3
    with pytest.warns(UserWarning, match="c.png"):
        item = ds[1]  # c.png is unreadable -> the next readable image
    assert item["image"].shape == (3, 48, 64) and item["index"] != 1
    assert [p.name for p in ds.skipped] == ["c.png"]
    assert torch.allclose(ds[0]["image"], torch.full((3, 48, 64), 100 / 255))


def test_folder_of_only_bad_images(tmp_path):
    (tmp_path / "x.jpg").write_text("no")
    ds = ImageFolder(tmp_path)
    with pytest.warns(UserWarning), pytest.raises(DatasetError, match="none of the 1 images"):
        ds[0]


def test_sampler_resumes_exactly():
    full = list(itertools.islice(iter(ResumableSampler(10, seed=3)), 35))
    assert sorted(full[:10]) == list(range(10)) and full[:10] != full[10:20]  # epochs reshuffle
    for start in (0, 7, 10, 23):
        resumed = list(itertools.islice(iter(ResumableSampler(10, seed=3, start=start)), 35 - start))
        assert resumed == full[start:]


def test_sampler_ranks_partition_each_epoch():
    ranks = [ResumableSampler(11, seed=1, rank=r, num_replicas=2) for r in range(2)]
    epoch0 = ranks[0].epoch_order(0) + ranks[1].epoch_order(0)
    assert len(epoch0) == 12 and set(epoch0) == set(range(11))
    with pytest.raises(DatasetError):
        ResumableSampler(0)
