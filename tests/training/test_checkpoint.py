import random

import numpy as np
import pytest
import torch

from selfdesc.errors import WeightsError
from selfdesc.training.checkpoint import latest_checkpoint, load_checkpoint, rng_state, save_checkpoint, set_rng_state


def test_round_trip_restores_model_optimizer_and_rng(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model(torch.randn(3, 4)).sum().backward()
    opt.step()
    path = save_checkpoint(tmp_path / "checkpoints" / "last.pt", {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": 1, "rng": rng_state()})
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    state = load_checkpoint(path)
    set_rng_state(state["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
    model2 = torch.nn.Linear(4, 2)
    model2.load_state_dict(state["model"])
    assert torch.equal(model2.weight, model.weight)
    opt2 = torch.optim.Adam(model2.parameters(), lr=1e-2)
    opt2.load_state_dict(state["optimizer"])
    assert opt2.state_dict()["state"][0]["step"] == 1
    assert latest_checkpoint(tmp_path) == path and list((tmp_path / "checkpoints").iterdir()) == [path]


def test_bad_checkpoint_errors(tmp_path):
    with pytest.raises(WeightsError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "x.pt")
    (tmp_path / "y.pt").write_bytes(b"garbage")
    with pytest.raises(WeightsError, match="y.pt: unreadable checkpoint"):
        load_checkpoint(tmp_path / "y.pt")
