import pytest
import torch
import torch.nn.functional as F

from selfdesc.errors import ConfigError
from selfdesc.methods.hndesc import HNDesc

SMALL = {"hcrops": {"crop_size": 64, "num_keypoints": 32}, "keypoints": {"num_source_points": 128}}


def _batch(n=3):
    g = torch.Generator().manual_seed(0)
    return {"image": F.interpolate(torch.rand(n, 3, 16, 20, generator=g), size=(96, 120), mode="bilinear"), "index": torch.arange(n)}


@pytest.mark.parametrize("extra", [{}, {"loss": {"name": "triplet"}}, {"miner": {"pool": "both"}}, {"backbone": {"heads": False}}])
def test_step_gives_gradients(extra):
    torch.manual_seed(0)
    conf = {**SMALL, **extra}
    m = HNDesc(conf)
    out = m(_batch())
    assert torch.isfinite(out["loss"]) and out["num_queries"] > 0
    out["loss"].backward()
    grads = [p.grad for p in m.net.parameters() if p.grad is not None]
    assert grads and sum(g.abs().sum() for g in grads) > 0
    assert ("cosim" in out) == (extra.get("backbone", {}).get("heads", True))


def test_unknown_options():
    with pytest.raises(ConfigError):
        HNDesc({"miner": {"pool_size": 3}})
    with pytest.raises(ConfigError, match="caps"):
        HNDesc({"backbone": {"name": "caps"}})
