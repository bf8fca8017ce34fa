"""The training engine: loss goes down, exact resume after a kill, NaN guard, DDP on 2 CPU processes,
stopping by signal at any point (step, data loading, validation), worker count, time limit."""
from __future__ import annotations

import csv
import os
import signal
import socket
import threading
import time

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from selfdesc.errors import SelfdescError
from selfdesc.training.trainer import NonFiniteLossError, TrainConfig, Trainer, TrainingStopped, loader_workers


class Images(torch.utils.data.Dataset):
    def __init__(self, n: int = 12) -> None:
        g = torch.Generator().manual_seed(0)
        self.data = torch.rand(n, 1, 16, 16, generator=g)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.data[i], "index": i}


class Toy(nn.Module):
    """Learns to predict a shifted crop; uses the global RNG like pair generation does."""

    def __init__(self, fail_at: int | None = None, nan_every: int | None = None) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.net = nn.Conv2d(1, 1, 3, padding=1)
        self.calls, self.fail_at, self.nan_every = 0, fail_at, nan_every

    def forward(self, batch: dict) -> dict:
        self.calls += 1
        if self.fail_at is not None and self.calls == self.fail_at:
            raise KeyboardInterrupt  # a kill in the middle of the run
        img = batch["image"]
        noise = 0.1 * torch.rand_like(img)
        target = torch.roll(img, 1, dims=-1)
        loss = ((self.net(img + noise) - target) ** 2).mean()
        if self.nan_every and self.calls % self.nan_every == 0:
            loss = loss * float("nan")
        return {"loss": loss, "mean_input": img.mean()}


def _conf(**kw) -> TrainConfig:
    base = dict(steps=8, batch_size=4, lr=5e-2, num_workers=0, log_every=1, checkpoint_every=3, progress=False, seed=7)
    return TrainConfig(**{**base, **kw})


def _losses(run_dir) -> list[tuple[int, float]]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return [(int(float(r["step"])), float(r["loss"])) for r in csv.DictReader(f) if r["loss"] not in ("", "nan")]


def test_loss_goes_down(tmp_path):
    Trainer(Toy(), Images(), _conf(steps=40, log_every=5), tmp_path / "run").fit()
    losses = [loss for _, loss in _losses(tmp_path / "run")]
    assert losses[-1] < 0.5 * losses[0]


def test_resume_after_kill_gives_the_same_losses(tmp_path):
    Trainer(Toy(), Images(), _conf(), tmp_path / "a").fit()
    with pytest.raises(KeyboardInterrupt):
        Trainer(Toy(fail_at=5), Images(), _conf(), tmp_path / "b").fit()  # killed during step 5; last checkpoint: step 3
    with pytest.raises(SelfdescError, match="--resume"):
        Trainer(Toy(), Images(), _conf(), tmp_path / "b").fit()
    Trainer(Toy(), Images(), _conf(), tmp_path / "b").fit(resume=True)
    a, b = _losses(tmp_path / "a"), _losses(tmp_path / "b")
    assert [s for s, _ in b] == list(range(1, 9))
    assert a == b  # bit-identical loss sequence
    state_a = torch.load(tmp_path / "a" / "checkpoints" / "last.pt", weights_only=False)["model"]
    state_b = torch.load(tmp_path / "b" / "checkpoints" / "last.pt", weights_only=False)["model"]
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)


def test_nan_guard(tmp_path):
    Trainer(Toy(nan_every=3), Images(), _conf(steps=9), tmp_path / "n").fit()
    with open(tmp_path / "n" / "metrics.csv", newline="") as f:
        skipped = [float(r["skipped"]) for r in csv.DictReader(f)]
    assert skipped.count(1.0) == 3
    with pytest.raises(NonFiniteLossError):
        Trainer(Toy(nan_every=1), Images(), _conf(steps=50, max_bad_steps=4), tmp_path / "m").fit()


def _ddp_worker(rank: int, world: int, port: int, run_dir: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    trainer = Trainer(Toy(), Images(), _conf(steps=4), run_dir)
    trainer.fit()
    torch.save(trainer.method.state_dict(), os.path.join(run_dir, f"rank{rank}.pt"))
    torch.distributed.destroy_process_group()


def test_ddp_two_cpu_processes(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in range(2))
    assert all(torch.equal(r0[k], r1[k]) for k in r0)  # gradients were averaged: replicas agree
    assert (tmp_path / "checkpoints" / "last.pt").is_file()
    assert [s for s, _ in _losses(tmp_path)] == [1, 2, 3, 4]


class Terminated(Toy):
    """Sends itself SIGTERM during one step, as `timeout` or `kill` would."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at

    def forward(self, batch: dict) -> dict:
        if self.calls + 1 == self.at:
            os.kill(os.getpid(), signal.SIGTERM)
        return super().forward(batch)


class WithStatistics(Terminated):
    """Terminated plus a BatchNorm whose running statistics every forward pass moves."""

    def __init__(self, at: int = 0) -> None:
        super().__init__(at)
        self.norm = nn.BatchNorm2d(1)

    def forward(self, batch: dict) -> dict:
        out = super().forward(batch)
        return {**out, "loss": out["loss"] + 0.01 * self.norm(batch["image"]).square().mean()}


def test_sigterm_during_a_step_stops_at_once_with_the_last_completed_step(tmp_path):
    Trainer(WithStatistics(), Images(), _conf(), tmp_path / "a").fit()
    with pytest.raises(TrainingStopped, match="SIGTERM at step 4") as stopped:
        Trainer(WithStatistics(at=5), Images(), _conf(), tmp_path / "b").fit()  # in step 5's forward; no checkpoint due at 4
    assert stopped.value.signum == signal.SIGTERM
    saved = torch.load(tmp_path / "b" / "checkpoints" / "last.pt", weights_only=False)
    assert saved["step"] == 4 and [s for s, _ in _losses(tmp_path / "b")] == [1, 2, 3, 4]
    assert int(saved["model"]["norm.num_batches_tracked"]) == 4  # the abandoned forward pass left no trace
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is removed again
    Trainer(WithStatistics(), Images(), _conf(), tmp_path / "b").fit(resume=True)
    assert _losses(tmp_path / "a") == _losses(tmp_path / "b")
    state_a = torch.load(tmp_path / "a" / "checkpoints" / "last.pt", weights_only=False)["model"]
    state_b = torch.load(tmp_path / "b" / "checkpoints" / "last.pt", weights_only=False)["model"]
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)  # weights and running statistics


class SignalOnLoad(Images):
    """Sends SIGINT to this process during its ``at``-th sample load (``num_workers=0``: in the main process)."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at, self.loads = at, 0

    def __getitem__(self, i: int) -> dict:
        self.loads += 1
        if self.loads == self.at:
            os.kill(os.getpid(), signal.SIGINT)
        return super().__getitem__(i)


class StuckAfter(Images):
    """Sample loading that hangs (in a worker process) once ``ready`` samples were served."""

    def __init__(self, ready: int) -> None:
        super().__init__()
        self.ready, self.served = ready, 0

    def __getitem__(self, i: int) -> dict:
        self.served += 1
        if self.served > self.ready:
            time.sleep(60)
        return super().__getitem__(i)


def test_sigint_during_data_loading_saves_the_last_step_and_resumes_exactly(tmp_path):
    Trainer(Toy(), Images(), _conf(), tmp_path / "a").fit()
    before = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN under nohup / a background job
    with pytest.raises(TrainingStopped, match="SIGINT at step 5") as stopped:
        Trainer(Toy(), SignalOnLoad(at=5 * 4 + 2), _conf(), tmp_path / "b").fit()  # loading step 6's 2nd sample
    assert stopped.value.signum == signal.SIGINT
    assert signal.getsignal(signal.SIGINT) is before  # restored
    assert torch.load(tmp_path / "b" / "checkpoints" / "last.pt", weights_only=False)["step"] == 5
    Trainer(Toy(), Images(), _conf(), tmp_path / "b").fit(resume=True)
    assert _losses(tmp_path / "a") == _losses(tmp_path / "b")


def test_sigterm_while_a_worker_is_stuck_loading_stops_within_seconds(tmp_path):
    timer = threading.Timer(2.0, os.kill, (os.getpid(), signal.SIGTERM))
    trainer = Trainer(Toy(), StuckAfter(ready=8), _conf(num_workers=1, steps=20), tmp_path / "s")  # 2 batches, then it hangs
    timer.start()
    t0 = time.monotonic()
    with pytest.raises(TrainingStopped, match="SIGTERM at step 2"):
        trainer.fit()
    timer.join()
    assert time.monotonic() - t0 < 10  # the stuck sample would take 60 s
    assert torch.load(tmp_path / "s" / "checkpoints" / "last.pt", weights_only=False)["step"] == 2


class SlowValidation:
    """A validation callback that receives SIGTERM once, at ``signal_at_step``, then works for a long time."""

    def __init__(self, trainer_steps: list[int], signal_at: int | None = None) -> None:
        self.calls, self.finished, self.signal_at = trainer_steps, 0, signal_at

    def __call__(self, model: nn.Module) -> dict:
        self.calls.append(len(self.calls))
        if self.signal_at is not None and len(self.calls) == self.signal_at:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)  # never reached in full: the signal ends the validation
        self.finished += 1
        weight = float(model.net.weight.detach().sum())
        return {"score": -abs(weight), "weight": weight}


def _val(run_dir) -> list[tuple[int, float]]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return [(int(float(r["step"])), float(r["val/weight"])) for r in csv.DictReader(f) if r.get("val/weight") not in (None, "", "nan")]


def test_sigterm_during_validation_stops_at_once_and_resume_repeats_the_validation(tmp_path):
    conf = _conf(validate_every=2)
    Trainer(Toy(), Images(), conf, tmp_path / "a", validate=SlowValidation([])).fit()
    t0 = time.monotonic()
    with pytest.raises(TrainingStopped, match="SIGTERM at step 4"):
        Trainer(Toy(), Images(), conf, tmp_path / "b", validate=SlowValidation([], signal_at=2)).fit()  # 2nd validation: step 4
    assert time.monotonic() - t0 < 10
    saved = torch.load(tmp_path / "b" / "checkpoints" / "last.pt", weights_only=False)
    assert saved["step"] == 4 and saved["pending_validation"]
    resumed = SlowValidation([])
    Trainer(Toy(), Images(), conf, tmp_path / "b", validate=resumed).fit(resume=True)
    assert resumed.finished == 3  # steps 4 (the interrupted one), 6, 8
    assert _losses(tmp_path / "a") == _losses(tmp_path / "b")
    assert _val(tmp_path / "a") == _val(tmp_path / "b")


def test_workers_never_outnumber_the_cores(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert loader_workers(8) == 2 and loader_workers(1) == 1 and loader_workers(0) == 0
    assert loader_workers(8, world_size=2) == 1
    trainer = Trainer(Toy(), Images(), _conf(num_workers=16), tmp_path / "w")
    assert trainer._loader().num_workers == 2


def test_time_limit_stops_at_a_step_boundary(tmp_path):
    with pytest.raises(TrainingStopped, match="time limit at step 1") as stopped:
        Trainer(Toy(), Images(), _conf(), tmp_path / "t").fit(max_seconds=0.0)
    assert stopped.value.signum is None
    Trainer(Toy(), Images(), _conf(), tmp_path / "t").fit(resume=True)
    assert [s for s, _ in _losses(tmp_path / "t")] == list(range(1, 9))
