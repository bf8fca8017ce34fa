"""The matcher training method: one step on real extraction, export and reload."""
import numpy as np
import pytest
import torch
from PIL import Image

from selfdesc.errors import ConfigError, WeightsError
from selfdesc.matching.learned import load_matcher
from selfdesc.methods import build_method
from selfdesc.weights import save_model_file

TINY = {
    "features": {"name": "sift", "max_keypoints": 64},
    "matcher": {"width": 32, "num_heads": 2, "num_layers": 2},
    "hcrops": {"crop_size": 96, "num_source_points": 64},
}


def _images(b=2, seed=0):
    rng = np.random.default_rng(seed)
    out = [np.asarray(Image.fromarray(rng.integers(0, 256, (15, 20, 3), dtype=np.uint8)).resize((200, 150), Image.BICUBIC)) for _ in range(b)]
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float() / 255


def test_step_trains_only_the_matcher():
    torch.manual_seed(0)
    method = build_method("matcher", TINY)
    assert method.conf["descriptor_dim"] == 128  # probed from SIFT
    assert all(k.startswith(("matcher.", "augment.")) for k in method.state_dict())  # the frozen extractor is not saved
    assert not any(p.requires_grad for p in method.extractor(torch.device("cpu")).parameters())
    out = method({"image": _images(), "index": torch.arange(2)})
    assert torch.isfinite(out["loss"]) and out["valid_pairs"] == 2 and out["gt_matches"] > 0
    out["loss"].backward()
    assert all(p.grad is not None for p in method.matcher.parameters())


def test_unknown_option():
    with pytest.raises(ConfigError, match="hcrops"):
        build_method("matcher", {**TINY, "hcrops": {"crop_size": 96, "zoom": 2}})


def test_export_and_load(tmp_path):
    torch.manual_seed(0)
    method = build_method("matcher", TINY)
    exported = method.export()
    path = tmp_path / "m.pt"
    save_model_file(path, method="matcher", conf=exported["conf"], state_dict=exported["state_dict"], meta={})
    m = load_matcher(path)
    assert m.features == "sift" and m.descriptor_dim == 128
    labelled = build_method("matcher", {**TINY, "features": {**TINY["features"], "label": "default"}})
    assert labelled.export()["conf"]["features"] == "default"
    for key, value in exported["state_dict"].items():  # stored as float16, loaded into float32
        assert value.dtype == (torch.float16 if value.is_floating_point() else value.dtype), key
    for a, b in zip(method.matcher.state_dict().values(), m.model.state_dict().values()):
        assert b.dtype == a.dtype
        assert torch.equal(a.half().to(a.dtype), b) if a.is_floating_point() else torch.equal(a, b)


def test_missing_or_wrong_matcher_file(tmp_path):
    with pytest.raises(WeightsError, match="unknown matcher 'nonexistent'"):
        load_matcher("nonexistent")
    with pytest.raises(WeightsError, match="no such matcher file"):
        load_matcher(tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(WeightsError, match="garbage.pt"):
        load_matcher(garbage)
    other = tmp_path / "hndesc.pt"
    save_model_file(other, method="hndesc", conf={}, state_dict={}, meta={})
    with pytest.raises(WeightsError, match="expected 'matcher'"):
        load_matcher(other)
    broken = tmp_path / "broken.pt"
    save_model_file(broken, method="matcher", conf={"matcher": {"width": 32, "num_heads": 2}, "features": "sift"}, state_dict={"x": torch.zeros(1)}, meta={})
    with pytest.raises(WeightsError, match="do not fit"):
        load_matcher(broken)


def test_tiny_training_lowers_the_loss():
    """Adam steps on the same H-crops pairs (same seed each step) lower the assignment NLL."""
    torch.manual_seed(0)
    method = build_method("matcher", {**TINY, "augment": {"enabled": False}, "supervision": {"deep_supervision": False}})
    opt = torch.optim.Adam(method.parameters(), lr=2e-3)
    images = _images(2, seed=3)
    losses = []
    for _ in range(15):
        torch.manual_seed(1)  # the same pairs every step
        out = method({"image": images, "index": torch.arange(2)})
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(float(out["loss"].detach()))
    assert losses[-1] < 0.7 * losses[0], losses


def test_batch_without_valid_pairs_is_skipped_not_crashed():
    """Blank images give no textured crop pair: a NaN loss, which the engine's guard skips."""
    method = build_method("matcher", TINY)
    out = method({"image": torch.zeros(2, 3, 150, 200), "index": torch.arange(2)})
    assert out["valid_pairs"] == 0 and torch.isnan(out["loss"])


def test_extract_padded_batches_like_one_at_a_time(tmp_path):
    """The on-the-fly features for training: chunks of crops per forward give what one crop at a time gives."""
    from selfdesc.features import load_extractor
    from selfdesc.methods.matcher import extract_padded
    from tests.features.test_batch import tiny_model_file

    extractor = load_extractor(str(tiny_model_file(tmp_path / "tiny.pt")), max_keypoints=60, reliability_thr=0.0, repeatability_thr=0.0, min_scale=0.5)
    crops = torch.nn.functional.interpolate(_images(b=5, seed=3), size=(96, 96), mode="bilinear", align_corners=False)
    single = extract_padded(extractor, crops, 50, 16, chunk=1)
    batched = extract_padded(extractor, crops, 50, 16, chunk=4)
    assert single["mask"].sum() > 100 and torch.equal(single["mask"], batched["mask"])
    for key in ("keypoints", "descriptors"):
        assert torch.allclose(single[key], batched[key], atol=1e-4), key
