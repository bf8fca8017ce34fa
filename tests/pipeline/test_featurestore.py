"""features.h5 written once: packed batches, the store's run file and journal, resume after a kill, ranks."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from selfdesc.errors import ConfigError
from selfdesc.io.image import rescale_keypoints
from selfdesc.pipeline.featurestore import FeatureStore
from selfdesc.pipeline.h5io import FeatureFile
from selfdesc.pipeline.packed import pack_batch


def _pred(n: int, dim: int = 8, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "keypoints": torch.rand(n, 2, generator=g) * 50,
        "scores": torch.rand(n, generator=g),
        "descriptors": torch.nn.functional.normalize(torch.randn(n, dim, generator=g), dim=1),
    }


def _items(names: list[str], seed: int = 0, fp16: bool = False) -> tuple[list[tuple[str, dict]], list[dict]]:
    preds = [_pred(5 + 3 * i, seed=seed + i) for i in range(len(names))]
    packed = pack_batch(preds, [(1.0, 1.0)] * len(names), [(64, 48)] * len(names), fp16)
    return [(n, packed.arrays(i)) for i, n in enumerate(names)], preds


@pytest.mark.parametrize("fp16", [False, True])
def test_packed_batch_holds_the_file_layout(fp16):
    preds = [_pred(7, seed=1), _pred(0, seed=2), _pred(4, seed=3)]
    scales = [(1.0, 1.0), (2.0, 2.0), (1.5, 2.5)]
    packed = pack_batch(preds, scales, [(64, 48), (128, 96), (96, 120)], fp16)
    assert packed.counts == [7, 0, 4]
    for i, (pred, scale) in enumerate(zip(preds, scales)):
        a = packed.arrays(i)
        np.testing.assert_array_equal(a["keypoints"], rescale_keypoints(pred["keypoints"].numpy(), scale))
        np.testing.assert_array_equal(a["scores"], pred["scores"].numpy())
        want = pred["descriptors"].numpy().T.astype(np.float16 if fp16 else np.float32)
        assert a["descriptors"].dtype == want.dtype and a["descriptors"].shape == (8, len(pred["scores"]))
        np.testing.assert_array_equal(a["descriptors"], want)
    np.testing.assert_array_equal(packed.arrays(2)["image_size"], [96, 120])
    assert packed.arrays(2)["keypoints"][0, 0] == pytest.approx((float(preds[2]["keypoints"][0, 0]) + 0.5) * 1.5 - 0.5, abs=1e-4)


def test_written_once_into_a_valid_hloc_file(tmp_path):
    out = tmp_path / "f.h5"
    store = FeatureStore(out, {"s": 1}, {"features": "x"}, checkpoint_every=2)
    items, preds = _items(["a.jpg", "sub/b.jpg", "c.jpg"])
    store.write(items)
    assert not out.exists()  # nothing is visible before the end
    store.close()
    assert store.finalize() and not store.parts_dir.exists()
    with h5py.File(out) as fd:
        assert fd.attrs["features"] == "x" and fd["sub/b.jpg/descriptors"].shape == (8, 8)  # (D, N), hloc's layout
        assert fd["a.jpg/keypoints"].dtype == np.float32 and fd["a.jpg/image_size"][()].tolist() == [64, 48]
    with FeatureFile(out) as ff:
        assert ff.names == ["a.jpg", "c.jpg", "sub/b.jpg"]
        for name, pred in zip(["a.jpg", "sub/b.jpg", "c.jpg"], preds):
            r = ff.read(name)
            np.testing.assert_array_equal(r["keypoints"], pred["keypoints"].numpy())
            np.testing.assert_array_equal(r["descriptors"], pred["descriptors"].numpy())
            np.testing.assert_array_equal(r["scores"], pred["scores"].numpy())


def test_new_images_are_added_to_an_existing_output_atomically(tmp_path):
    out = tmp_path / "f.h5"
    first = FeatureStore(out, {"s": 1})
    first.write(_items(["a.jpg"])[0])
    first.close()
    first.finalize()
    before = out.read_bytes()
    second = FeatureStore(out, {"s": 1})
    assert second.done == {"a.jpg"}
    second.write(_items(["a.jpg", "b.jpg"], seed=5)[0])  # a is in the file already: skipped
    second.close()
    assert out.read_bytes() == before  # untouched until the end
    assert second.finalize()
    with FeatureFile(out) as ff:
        assert ff.names == ["a.jpg", "b.jpg"]
        np.testing.assert_array_equal(ff.read("a.jpg")["scores"], _pred(5, seed=0)["scores"].numpy())
    with pytest.raises(ConfigError, match="other settings"):
        FeatureStore(out, {"s": 2})


def test_a_killed_run_resumes_from_its_journal(tmp_path):
    """A process killed with its run file open (HDF5 metadata never written): the journaled images
    are done, their bytes are read back by offset, a torn last journal line is ignored."""
    out = tmp_path / "f.h5"
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from tests.pipeline.test_featurestore import _items
        from selfdesc.pipeline.featurestore import FeatureStore
        store = FeatureStore({str(out)!r}, {{"s": 1}}, checkpoint_every=2)
        store.write(_items(["a.jpg", "b.jpg", "c.jpg"])[0])
        os._exit(0)  # like SIGKILL: nothing is closed or flushed by HDF5
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    journal = next((tmp_path / ".f.h5.parts").glob("run-*.journal"))
    with open(journal, "a") as fh:
        fh.write('{"name": "d.jpg", "datas')  # torn by the kill
    store = FeatureStore(out, {"s": 1})
    assert store.done == {"a.jpg", "b.jpg", "c.jpg"}
    items, _ = _items(["e.jpg"], seed=9)
    store.write(items)
    store.close()
    assert store.finalize() and not store.parts_dir.exists()
    _, preds = _items(["a.jpg", "b.jpg", "c.jpg"])
    with FeatureFile(out) as ff:
        assert ff.names == ["a.jpg", "b.jpg", "c.jpg", "e.jpg"]
        for name, pred in zip(["a.jpg", "b.jpg", "c.jpg"], preds):
            np.testing.assert_array_equal(ff.read(name)["descriptors"], pred["descriptors"].numpy())
    with pytest.raises(ConfigError, match="unfinished run"):
        (tmp_path / ".f.h5.parts").mkdir()
        journal.write_text(json.dumps({"format": "selfdesc-features/1", "signature": "other"}) + "\n")
        journal.with_suffix(".h5").write_bytes(b"")
        FeatureStore(out, {"s": 1})


def test_rank_zero_adds_the_other_ranks_runs(tmp_path):
    out = tmp_path / "f.h5"
    zero, one = FeatureStore(out, {"s": 1}, rank=0), FeatureStore(out, {"s": 1}, rank=1)
    zero.write(_items(["a.jpg", "c.jpg"])[0])
    one.write(_items(["b.jpg", "d.jpg"], seed=3)[0])
    one.close()
    zero.close()
    assert zero.finalize()
    with FeatureFile(out) as ff:
        assert ff.names == ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]
        np.testing.assert_array_equal(ff.read("d.jpg")["keypoints"], _pred(8, seed=4)["keypoints"].numpy())


def test_a_kill_between_the_rename_and_the_cleanup_is_harmless(tmp_path):
    out = tmp_path / "f.h5"
    store = FeatureStore(out, {"s": 1})
    store.write(_items(["a.jpg"])[0])
    store.close()
    journal = store.path.with_suffix(".journal")
    store.path.replace(out)  # the rename of finalize, then the kill: the journal stays, its run file is gone
    again = FeatureStore(out, {"s": 1})
    assert again.done == {"a.jpg"} and journal.exists()
    again.write(_items(["b.jpg"], seed=2)[0])
    again.close()
    assert again.finalize() and not journal.exists()
    with FeatureFile(out) as ff:
        assert ff.names == ["a.jpg", "b.jpg"]


def test_nothing_to_do_leaves_the_output_alone(tmp_path):
    out = tmp_path / "f.h5"
    assert not FeatureStore(out, {"s": 1}).finalize() and not out.exists()
