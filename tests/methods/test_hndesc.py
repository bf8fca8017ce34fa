import csv
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from selfdesc.errors import ConfigError
from selfdesc.methods.hndesc import HNDesc, repeatability_peaks
from selfdesc.methods.parts.hcrops import make_pairs, warp_crops
from selfdesc.models.caps import ResUNet
from selfdesc.models.l2net import QuadL2Net
from selfdesc.training.image_folder import ImageFolder
from selfdesc.training.trainer import TrainConfig, Trainer

SMALL = {"hcrops": {"crop_size": 48, "num_keypoints": 24}, "keypoints": {"num_source_points": 96}}
TINY_NET = {"mchan": 1, "dim": 32}
# matcher configs are trained by `selfdesc train-matcher` (tests/cli/test_train_matcher_cmd.py)
CONFIGS = sorted(c for c in (Path(__file__).parents[2] / "configs").glob("*.yaml") if not c.stem.startswith("matcher"))


def _batch(n=3):
    g = torch.Generator().manual_seed(0)
    return {"image": F.interpolate(torch.rand(n, 3, 16, 20, generator=g), size=(96, 120), mode="bilinear"), "index": torch.arange(n)}


def _grads(module):
    return [p.grad for p in module.parameters() if p.grad is not None]


@pytest.mark.parametrize("extra", [{}, {"loss": {"name": "triplet"}}, {"miner": {"pool": "both"}}, {"backbone": {"heads": False}}])
def test_step_gives_gradients(extra):
    torch.manual_seed(0)
    conf = {**SMALL, "backbone": {**TINY_NET, **extra.pop("backbone", {})}, **extra}
    m = HNDesc(conf)
    out = m(_batch())
    assert torch.isfinite(out["loss"]) and out["num_queries"] > 0
    out["loss"].backward()
    grads = _grads(m.net)
    assert grads and sum(g.abs().sum() for g in grads) > 0
    assert ("cosim" in out) == conf["backbone"].get("heads", True)


@pytest.mark.parametrize("name", ["caps", "superpoint"])
def test_headless_backbones_train_and_export(name):
    torch.manual_seed(0)
    m = HNDesc({**SMALL, "hcrops": {"crop_size": 32, "num_keypoints": 16}, "backbone": {"name": name, "heads": False, "dim": 32}})
    out = m(_batch(2))
    assert torch.isfinite(out["loss"]) and out["num_queries"] > 0 and "cosim" not in out
    out["loss"].backward()
    assert all(torch.isfinite(g).all() for g in _grads(m.net)) and sum(g.abs().sum() for g in _grads(m.net)) > 0
    if name == "caps":
        assert m.stride == 4 and m.net.conv_coarse[0].weight.grad is None  # discarded branch: frozen
    exported = m.export()
    assert exported["conf"]["backbone"]["name"] == name
    assert set(exported["state_dict"]) == set(m.net.state_dict())


def test_export_rebuilds_the_networks():
    r2d2 = HNDesc({"backbone": TINY_NET}).export()
    conf = dict(r2d2["conf"]["backbone"])
    assert conf.pop("name") == "r2d2" and conf == {"dim": 32, "mchan": 1, "final_relu": False, "heads": True}
    QuadL2Net(conf).load_state_dict(r2d2["state_dict"])
    caps = HNDesc({"backbone": {"name": "caps", "heads": False, "dim": 32}}).export()
    ResUNet({k: v for k, v in caps["conf"]["backbone"].items() if k != "name"}).load_state_dict(caps["state_dict"])


def test_unknown_options():
    with pytest.raises(ConfigError):
        HNDesc({"miner": {"pool_size": 3}})
    with pytest.raises(ConfigError, match="heads: false"):
        HNDesc({"backbone": {"name": "caps"}})
    with pytest.raises(ConfigError, match="available"):
        HNDesc({"backbone": {"name": "vgg"}})
    with pytest.raises(ConfigError, match="multiple of the caps stride"):
        HNDesc({"backbone": {"name": "caps", "heads": False}, "hcrops": {"crop_size": 66}})
    with pytest.raises(ConfigError, match="data.index"):
        HNDesc({"miner": {"pool": "gd"}}).loader_options({"size": [64, 64], "index": None})
    with pytest.raises(ConfigError, match="stylize.enabled is false"):
        HNDesc().loader_options({"size": [64, 64], "stylized_root": "st"})
    with pytest.raises(ConfigError, match="pool gd"):
        HNDesc().loader_options({"size": [64, 64], "index": "index.npz"})
    with pytest.raises(ConfigError, match="image_b"):
        HNDesc({**SMALL, "stylize": {"enabled": True}, "backbone": TINY_NET})(_batch())


def test_repeatability_peaks_known_answer():
    rep = torch.zeros(1, 1, 20, 30)
    rep[0, 0, 5, 7], rep[0, 0, 12, 20], rep[0, 0, 12, 21] = 0.9, 0.8, 0.5  # (12, 21) is suppressed by (12, 20)
    rep[0, 0, 1, 1] = 1.0  # in the border
    xy, valid = repeatability_peaks(rep, 3, radius=1, border=4)
    assert xy[0, :2].tolist() == [[7.0, 5.0], [20.0, 12.0]] and valid[0, :2].all()
    # the third is one of the (tied, zero) plateau maxima, never the suppressed or border peak
    assert xy[0, 2].tolist() not in ([21.0, 12.0], [1.0, 1.0])


def test_own_keypoints_switch_on_after_warmup(monkeypatch):
    torch.manual_seed(0)
    m = HNDesc({**SMALL, "backbone": TINY_NET, "keypoints": {"source": "own", "own_after_steps": 1, "num_source_points": 64}})
    calls = []
    real = m.net.forward
    monkeypatch.setattr(m.net, "forward", lambda data: calls.append(data["image"].shape) or real(data))
    batch = _batch(2)
    m(batch)  # step 0: textured fallback, the net only sees the crops
    assert all(s[-1] == 48 for s in calls) and int(m.own_steps) == 1
    calls.clear()
    kp, mask = m._source_keypoints(batch)
    assert calls == [batch["image"].shape] and kp.shape == (2, 64, 2) and mask.any()
    assert m.net.training  # restored after the eval-mode detection pass
    with torch.no_grad():
        rep = m.net.eval()({"image": batch["image"]})["repeatability"]
    want, want_mask = repeatability_peaks(rep, 64, radius=1, border=4)
    assert torch.equal(kp, want) and torch.equal(mask, want_mask)  # the network's own peaks
    assert "own_steps" in m.state_dict() and "own_steps" not in HNDesc().state_dict()


def _images(folder, n=4, size=(120, 96), resample=Image.BICUBIC):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        small = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
        Image.fromarray(small).resize(size, resample).save(folder / f"{i}.png")
    return folder


def test_sift_source_uses_the_loader_keypoints(tmp_path):
    torch.manual_seed(0)
    m = HNDesc({**SMALL, "backbone": TINY_NET, "keypoints": {"source": "sift", "num_source_points": 128}})
    opts = m.loader_options({"size": [120, 96], "stylized_root": None, "index": None})
    assert opts == {"size": (120, 96), "keypoints": "sift", "num_keypoints": 128}
    ds = ImageFolder(_images(tmp_path / "imgs"), **opts)
    batch = torch.utils.data.default_collate([ds[i] for i in range(2)])
    kp, mask = m._source_keypoints(batch)
    assert torch.equal(kp, batch["keypoints"]) and torch.equal(mask, batch["keypoint_mask"])
    out = m(batch)
    assert torch.isfinite(out["loss"]) and out["num_queries"] > 0
    with pytest.raises(ConfigError, match="keypoints"):
        m({"image": batch["image"], "index": batch["index"]})


def test_stylized_b_source_keeps_the_geometry_exact():
    images = _batch(2)["image"]
    styled = images.flip(1) * 0.7  # another appearance, the same pixels
    plain = HNDesc({**SMALL, "backbone": TINY_NET})
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    a = make_pairs(images, config=plain.hcrops, generator=g())
    b = make_pairs(images, config=plain.hcrops, generator=g(), images_b=styled)
    for k in ("H_AB", "kpA", "kpB", "valid", "A"):
        assert torch.equal(a[k], b[k])
    assert not torch.allclose(a["B"], b["B"])
    assert torch.allclose(b["B"], warp_crops(styled, b["H2"], plain.hcrops.crop_size), atol=1e-4)  # same warp, other pixels
    m = HNDesc({**SMALL, "backbone": TINY_NET, "stylize": {"enabled": True}})
    out = m({"image": images, "image_b": styled, "index": torch.arange(2)})
    assert torch.isfinite(out["loss"])


class _FakeIndex:
    """A GlobalIndex stand-in: ``names`` and a fixed ``neighbours`` table."""

    def __init__(self, names, table):
        self.names, self.table = names, np.asarray(table)

    def neighbours(self, k):
        return self.table[:, :k]


def test_gd_and_selfgd_steps_mine_other_images(tmp_path):
    folder = _images(tmp_path / "imgs")
    names = [f"{i}.png" for i in range(4)]
    index = _FakeIndex(names, [[0, 2, 1], [1, 3, 0], [2, 0, 3], [3, 1, 2]])  # self listed first
    torch.manual_seed(0)
    gd = HNDesc({**SMALL, "backbone": TINY_NET, "miner": {"pool": "gd"}})
    ds = ImageFolder(folder, **{**gd.loader_options({"size": [120, 96], "index": "unused"}), "index": index})
    batch = torch.utils.data.default_collate([ds[i] for i in range(3)])
    assert batch["neighbour_index"].squeeze(1).tolist() == [2, 3, 0]
    assert torch.equal(batch["neighbours"][0, 0], ds[2]["image"])
    out = gd(batch)
    assert torch.isfinite(out["loss"]) and out["neighbour_crops"] == 3
    out["loss"].backward()

    selfgd = HNDesc({**SMALL, "backbone": TINY_NET, "miner": {"pool": "selfgd"}, "neighbours": {"memory_size": 4, "refresh_every": 2}})
    first = selfgd(batch)
    assert first["neighbour_crops"] == 0  # empty memory: in-batch negatives only
    assert sorted(selfgd.memory.ids.tolist()) == [-1, 0, 1, 2]
    second = selfgd({**batch, "index": torch.tensor([0, 5, 6])})
    assert second["neighbour_crops"] == 3 and torch.isfinite(second["loss"])
    g = F.normalize(torch.randn(1, 32), dim=1)
    slots, ok = selfgd.memory.nearest(g, torch.tensor([0]), 4)
    assert 0 not in selfgd.memory.ids[slots[ok]].tolist()  # an image is never its own neighbour
    state = selfgd.state_dict()
    assert {"memory.crops", "memory.desc", "memory.ids", "memory.ptr"} <= set(state)
    restored = HNDesc({**SMALL, "backbone": TINY_NET, "miner": {"pool": "selfgd"}, "neighbours": {"memory_size": 4, "refresh_every": 2}})
    restored.load_state_dict(state)
    assert torch.equal(restored.memory.crops, selfgd.memory.crops)


def test_default_checkpoint_keys_unchanged():
    keys = {k for k in HNDesc().state_dict() if not k.startswith("augment.")}  # + kornia's CLAHE constant
    assert keys == {f"net.{k}" for k in QuadL2Net({"final_relu": False, "heads": True}).state_dict()}


class _Killable(HNDesc):
    def __init__(self, conf, fail_at=None):
        super().__init__(conf)
        self.calls, self.fail_at = 0, fail_at

    def forward(self, batch):
        self.calls += 1
        if self.calls == self.fail_at:
            raise KeyboardInterrupt
        return super().forward(batch)


def _losses(run):
    with open(run / "metrics.csv", newline="") as f:
        return [(int(r["step"]), float(r["loss"])) for r in csv.DictReader(f)]


def test_resume_is_exact_with_stylization(tmp_path):
    folder = _images(tmp_path / "imgs", n=5, size=(64, 48))
    conf = {"hcrops": {"crop_size": 32, "num_keypoints": 16}, "keypoints": {"num_source_points": 64}, "backbone": TINY_NET,
            "stylize": {"enabled": True, "p": 0.5, "stylizer": "mixed"}}
    train = TrainConfig(steps=3, batch_size=2, num_workers=1, log_every=1, checkpoint_every=2, progress=False, seed=3)

    def fit(run, fail_at=None, resume=False):
        torch.manual_seed(0)
        method = _Killable(conf, fail_at)
        Trainer(method, ImageFolder(folder, **method.loader_options({"size": [64, 48]})), train, run).fit(resume=resume)

    fit(tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        fit(tmp_path / "b", fail_at=3)  # killed in step 3; last checkpoint at step 2
    fit(tmp_path / "b", resume=True)
    assert _losses(tmp_path / "a") == _losses(tmp_path / "b") and len(_losses(tmp_path / "a")) == 3


def _known(conf, dotted):
    for part in dotted.split("."):
        if not isinstance(conf, dict) or part not in conf:
            return False
        conf = conf[part]
    return True


#: shrinks any method's run; an override is used only where the method's config has the key
TINY_RUN = [
    "train.steps=2", "train.batch_size=2", "train.num_workers=0", "train.progress=false", "train.precision=fp32",
    "data.size=[96,96]", "method.hcrops.crop_size=48", "method.hcrops.num_keypoints=32", "method.keypoints.num_source_points=512",
    "method.backbone.mchan=1", "method.backbone.dim=32", "method.neighbours.memory_size=4",
]


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_every_config_trains_two_steps(config, tmp_path):
    from selfdesc.cli.main import main
    from selfdesc.config import read_yaml
    from selfdesc.training.run import default_config, method_name

    folder = _images(tmp_path / "imgs", n=4, size=(96, 96), resample=Image.NEAREST)  # blocks: plenty of SIFT corners
    defaults = default_config(method_name(read_yaml(config), []))
    overrides = [o for o in TINY_RUN if _known(defaults, o.split("=")[0])]
    if "_gd" in config.stem:
        from selfdesc.retrieval import GlobalIndex

        desc = np.eye(4, dtype=np.float32) + 0.5
        index = GlobalIndex(names=[f"{i}.png" for i in range(4)], descriptors=desc / np.linalg.norm(desc, axis=1, keepdims=True))
        overrides.append(f"data.index={index.save(tmp_path / 'index.npz')}")
    assert main(["train", "--config", str(config), "--images", str(folder), "--out", str(tmp_path / "run"), *overrides]) == 0
    assert [s for s, _ in _losses(tmp_path / "run")] == [2] and (tmp_path / "run" / "checkpoints" / "last.pt").is_file()
    if config.stem.startswith("hndesc"):
        with open(tmp_path / "run" / "metrics.csv", newline="") as f:
            assert float(next(csv.DictReader(f))["num_queries"]) > 0  # the step really trained


LITE = {**SMALL, "hcrops": {"crop_size": 64, "num_keypoints": 32}, "backbone": {"name": "lite", "dim": 32}, "detector": {"num_peaks": 32}}


@pytest.mark.parametrize(
    "kp_head, heads", [("dense", {"kp_local", "kp_ctx8", "kp_ctx4", "kp_ctx2", "kp_score"}), ("cell", {"kp_head", "pixel_branch"})]
)
def test_lite_backbone_trains_descriptors_and_keypoints(kp_head, heads):
    torch.manual_seed(0)
    m = HNDesc({**LITE, "backbone": {**LITE["backbone"], "kp_head": kp_head}})
    assert m.stride == 4 and m.heads and m.net.conf["kp_head"] == kp_head
    out = m(_batch())
    assert torch.isfinite(out["loss"]) and out["num_queries"] > 0 and out["kp_points"] > 0
    for key in ("cosim", "peaky", "reproj", "dispersity"):
        assert torch.isfinite(out[key]), key
    out["loss"].backward()
    heads |= {"rel_head", "desc_head", "block1"}
    grads = {name.split(".")[0] for name, p in m.net.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert heads <= grads


def test_lite_export_carries_the_training_refinement_window():
    m = HNDesc({**LITE, "detector": {"refine_radius": 3, "temperature": 0.2}})
    conf = dict(m.export()["conf"]["backbone"])
    assert conf.pop("name") == "lite" and conf["refine_radius"] == 3 and conf["refine_temperature"] == 0.2 and conf["dim"] == 32
    from selfdesc.models.litenet import LiteNet

    LiteNet(conf).load_state_dict(m.export()["state_dict"])
    with pytest.raises(ConfigError, match="heads: true"):
        HNDesc({"backbone": {"name": "lite", "heads": False}})


def test_lite_own_keypoints_are_heatmap_peaks():
    torch.manual_seed(0)
    m = HNDesc({**LITE, "keypoints": {"source": "own", "own_after_steps": 0, "num_source_points": 32, "own_nms_radius": 2}})
    batch = _batch(2)
    kp, mask = m._source_keypoints(batch)
    with torch.no_grad():
        heat = m.net.eval()({"image": batch["image"]})["heatmap"]
    want, want_mask = repeatability_peaks(heat, 32, radius=2, border=4)
    assert torch.equal(kp, want) and torch.equal(mask, want_mask) and mask.all()


def test_a_batch_without_valid_pairs_gives_a_finite_loss(monkeypatch):
    import selfdesc.methods.hndesc as module

    real = module.make_pairs

    def no_valid_pair(*args, **kwargs):
        pairs = real(*args, **kwargs)
        return {**pairs, "pair_valid": torch.zeros_like(pairs["pair_valid"]), "valid": torch.zeros_like(pairs["valid"])}

    monkeypatch.setattr(module, "make_pairs", no_valid_pair)
    for conf in (LITE, {**SMALL, "backbone": TINY_NET}):
        out = HNDesc(conf)(_batch(2))
        assert torch.isfinite(out["loss"]) and out["num_queries"] == 0 and "cosim" not in out
