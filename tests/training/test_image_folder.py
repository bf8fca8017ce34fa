import itertools

import numpy as np
import pytest
import torch
from PIL import Image

from selfdesc.errors import ConfigError, DatasetError
from selfdesc.training.image_folder import ImageFolder, ResumableSampler, SampleKey


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
        assert [k.epoch for k in resumed] == [k.epoch for k in full[start:]] == [(start + i) // 10 for i in range(35 - start)]
        assert all(k.seed == 3 for k in resumed)


def test_sampler_ranks_partition_each_epoch():
    ranks = [ResumableSampler(11, seed=1, rank=r, num_replicas=2) for r in range(2)]
    epoch0 = ranks[0].epoch_order(0) + ranks[1].epoch_order(0)
    assert len(epoch0) == 12 and set(epoch0) == set(range(11))
    with pytest.raises(DatasetError):
        ResumableSampler(0)


def _textured(folder, n=3, size=(80, 60)):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (15, 20, 3), dtype=np.uint8)).resize(size, Image.NEAREST).save(folder / f"{i}.png")
    return folder


def test_sift_keypoints_are_real_sift_points(tmp_path):
    import cv2

    ds = ImageFolder(_textured(tmp_path / "imgs"), size=(80, 60), keypoints="sift", num_keypoints=500)
    item = ds[0]
    kp, mask = item["keypoints"], item["keypoint_mask"]
    assert kp.shape == (500, 2) and mask.dtype == torch.bool and 0 < mask.sum() < 500
    gray = cv2.cvtColor((item["image"].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2GRAY)
    want = {tuple(np.float32(k.pt)) for k in cv2.SIFT_create().detect(gray, None)}
    assert {tuple(p) for p in kp[mask].numpy()} == want  # every detection once, nothing else
    assert (kp[~mask] == 0).all()
    few = ImageFolder(tmp_path / "imgs", size=(80, 60), keypoints="sift", num_keypoints=5)[0]
    assert few["keypoint_mask"].all() and {tuple(p) for p in few["keypoints"].numpy()} <= want  # the strongest 5
    batch = torch.utils.data.default_collate([ds[0], ds[1]])
    assert batch["keypoints"].shape == (2, 500, 2)
    with pytest.raises(ConfigError, match="keypoint source"):
        ImageFolder(tmp_path / "imgs", keypoints="orb")


class _Darken:
    name = "darken"

    def __call__(self, image, rng):
        return image * rng.uniform(0.2, 0.8)


def test_online_stylized_source_is_pixel_aligned_and_per_sample_seeded(tmp_path):
    ds = ImageFolder(_textured(tmp_path / "imgs"), size=(80, 60), style_p=1.0, stylizer=_Darken())
    item = ds[SampleKey(1, seed=4, epoch=0)]
    a, b = item["image"], item["image_b"]
    assert item["stylized"] and not torch.allclose(a, b)
    ratio = b[a > 0.05] / a[a > 0.05]
    assert torch.allclose(ratio, ratio[0].expand_as(ratio), atol=1e-5)  # same pixels, only darker
    same = ds[SampleKey(1, seed=4, epoch=0)]["image_b"]
    other_epoch = ds[SampleKey(1, seed=4, epoch=1)]["image_b"]
    assert torch.equal(same, b) and not torch.equal(other_epoch, b)
    never = ImageFolder(tmp_path / "imgs", size=(80, 60), style_p=1e-9, stylizer=_Darken())[0]
    assert not never["stylized"] and torch.equal(never["image_b"], never["image"])
    with pytest.raises(ConfigError, match="stylizer"):
        ImageFolder(tmp_path / "imgs", style_p=0.5)


def test_offline_stylized_copies(tmp_path):
    from selfdesc.stylize import stylize_folder

    root = _textured(tmp_path / "imgs", n=2)
    stylize_folder(root, tmp_path / "st", "fog", copies_per_image=3, progress=False)
    ds = ImageFolder(root, size=(80, 60), style_p=1.0, stylized_root=tmp_path / "st")
    copies = [ds._read(tmp_path / "st" / f"0_st{k:02d}.jpg") for k in range(3)]
    seen = set()
    for epoch in range(12):
        b = ds[SampleKey(0, seed=0, epoch=epoch)]["image_b"].permute(1, 2, 0).numpy()
        seen |= {k for k, c in enumerate(copies) if np.array_equal(b, c)}
    assert seen == {0, 1, 2}  # one copy drawn per sample, all used across epochs
    (tmp_path / "imgs" / "sub").mkdir()
    Image.new("RGB", (80, 60), (9, 9, 9)).save(tmp_path / "imgs" / "sub" / "new.png")
    fresh = ImageFolder(root, size=(80, 60), style_p=1.0, stylized_root=tmp_path / "st")
    item = fresh[[p.name for p in fresh.files].index("new.png")]
    assert not item["stylized"] and torch.equal(item["image_b"], item["image"])  # no copy: the image itself


class _FakeIndex:
    def __init__(self, names, table):
        self.names, self.table = names, np.asarray(table)

    def neighbours(self, k):
        return self.table[:, :k]


def test_neighbours_from_a_global_index(tmp_path):
    root = _textured(tmp_path / "imgs", n=4)
    # rows follow the index's own order; row 1 lists itself and an image that is not in the folder
    names = ["3.png", "0.png", "gone.png", "2.png", "1.png"]
    index = _FakeIndex(names, [[0, 3, 1], [1, 2, 0], [2, 0, 1], [3, 0, 4], [4, 1, 3]])
    ds = ImageFolder(root, size=(80, 60), index=index, num_neighbours=2)
    pos = {p.name: i for i, p in enumerate(ds.files)}
    item = ds[pos["0.png"]]
    assert item["neighbours"].shape == (2, 3, 60, 80)
    assert item["neighbour_index"][0] == pos["3.png"]  # self and gone.png skipped
    assert item["neighbour_index"][1] != pos["0.png"]  # a random other image fills the gap
    assert torch.equal(item["neighbours"][0], ds[pos["3.png"]]["image"])
    assert ds[pos["3.png"]]["neighbour_index"].tolist() == [pos["2.png"], pos["0.png"]]
    with pytest.raises(ConfigError, match="global index"):
        ImageFolder(root, num_neighbours=1)
    with pytest.raises(DatasetError, match="not in the global index"):
        ImageFolder(root, index=_FakeIndex(names[:2], [[0, 1], [1, 0]]), num_neighbours=1)


def test_neighbours_from_a_saved_index_file(tmp_path):
    from selfdesc.retrieval import GlobalIndex

    root = _textured(tmp_path / "imgs", n=3)
    desc = np.array([[1, 0, 0], [0.9, 0.1, 0], [0, 0, 1]], np.float32)
    path = GlobalIndex(names=["0.png", "1.png", "2.png"], descriptors=desc / np.linalg.norm(desc, axis=1, keepdims=True)).save(tmp_path / "i.npz")
    ds = ImageFolder(root, size=(80, 60), index=path, num_neighbours=1)
    pos = {p.name: i for i, p in enumerate(ds.files)}
    assert ds[pos["0.png"]]["neighbour_index"].tolist() == [pos["1.png"]]
    assert ds[pos["1.png"]]["neighbour_index"].tolist() == [pos["0.png"]]
