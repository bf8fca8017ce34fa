"""Workers hand over chunks: one tensor per shape, the items come back unchanged, and the pipeline
over many chunks and batches gives the features of one image at a time."""
from __future__ import annotations

import io
import pickle
from multiprocessing.reduction import ForkingPickler

import numpy as np
import pytest
import torch
from PIL import Image

import selfdesc.pipeline.extract as extract_module
from selfdesc.features import load_extractor
from selfdesc.io.image import load_image
from selfdesc.pipeline.chunks import pack_chunk, unpack_chunk
from selfdesc.pipeline.extract import ExtractConfig, extract_features
from selfdesc.pipeline.h5io import FeatureFile
from tests.features.test_batch import one_thread, tiny_model_file  # noqa: F401 - one_thread: an autouse fixture
from tests.pipeline.conftest import PHOTOS, photo


def test_a_chunk_crosses_as_one_tensor_per_shape_and_comes_back_unchanged():
    g = torch.Generator().manual_seed(0)
    items = [
        {"name": "a", "image": torch.rand(3, 4, 5, generator=g), "shape": (3, 4, 5), "scale": (1.0, 1.0)},
        {"name": "b", "jpeg": b"\xff\xd8 first", "shape": (3, 8, 8)},
        {"name": "c", "image": torch.rand(3, 6, 5, generator=g), "shape": (3, 6, 5)},
        {"name": "d", "error": "d: not an image file"},
        {"name": "e", "image": torch.rand(3, 4, 5, generator=g), "shape": (3, 4, 5)},
        {"name": "f", "jpeg": b"\xff\xd8 second, longer", "shape": (3, 8, 8)},
    ]
    packed = pack_chunk(items)
    assert sorted(packed["images"]) == [(3, 4, 5), (3, 6, 5)] and packed["images"][(3, 4, 5)].shape == (2, 3, 4, 5)
    assert isinstance(packed["jpeg"], bytes)  # through the pipe, no shared-memory file
    buf = io.BytesIO()
    ForkingPickler(buf, pickle.HIGHEST_PROTOCOL).dump(packed)  # as a loader worker sends it
    back = unpack_chunk(pickle.loads(buf.getvalue()))
    assert [item["name"] for item in back] == list("abcdef")
    for got, want in zip(back, items):
        assert got.keys() == want.keys()
        if "image" in want:
            torch.testing.assert_close(got["image"], want["image"], rtol=0, atol=0)
        if "jpeg" in want:
            assert got["jpeg"].dtype == torch.uint8 and bytes(got["jpeg"].numpy()) == want["jpeg"]
        assert {k: v for k, v in got.items() if k not in ("image", "jpeg")} == {k: v for k, v in want.items() if k not in ("image", "jpeg")}


def _stand_in(items, device):
    """nvJPEG's interface on the CPU (Pillow), images already at their size."""
    return [torch.from_numpy(np.asarray(Image.open(io.BytesIO(item["jpeg"].numpy().tobytes())).convert("RGB"), np.float32).transpose(2, 0, 1) / 255.0) for item in items]


@pytest.mark.parametrize("decode", ["cpu", "gpu stand-in"])
def test_many_chunks_and_batches_give_one_image_at_a_time(tmp_path, monkeypatch, decode):
    """11 JPEGs in chunks of 4 from 2 workers, batches of 3, a writer queue of one batch: every
    image's features are those of the image extracted alone (a mixed-up or overwritten buffer
    would give another image's features)."""
    root = tmp_path / "img"
    root.mkdir()
    for i in range(11):
        Image.fromarray(np.roll(photo(PHOTOS[i % len(PHOTOS)], (120, 90)), 5 * i, axis=0)).save(root / f"i{i:02d}.jpg", quality=95)
    if decode != "cpu":
        monkeypatch.setattr(extract_module, "resolve_decode", lambda decode, device: "gpu")
        monkeypatch.setattr(extract_module, "decode_jpegs", _stand_in)
    tiny = load_extractor(str(tiny_model_file(tmp_path / "tiny.pt")), max_keypoints=60, reliability_thr=0.0, repeatability_thr=0.0, min_scale=0.5)
    conf = ExtractConfig(batch_size=3, num_workers=2, write_queue=3, checkpoint_every=2, decode="gpu" if decode != "cpu" else "cpu", progress=False)
    s = extract_features(tiny, "tiny", root, tmp_path / "f.h5", conf)
    assert (s.num_extracted, s.failed) == (11, [])
    with FeatureFile(tmp_path / "f.h5") as ff:
        assert len(ff.names) == 11
        for name in ff.names:
            got, ref = ff.read(name), tiny.extract(load_image(root / name))
            assert len(got["keypoints"]) == len(ref["keypoints"]) > 0
            for key in ("keypoints", "scores", "descriptors"):
                np.testing.assert_allclose(got[key], ref[key].numpy(), atol=1e-4, rtol=0, err_msg=f"{name} {key}")
