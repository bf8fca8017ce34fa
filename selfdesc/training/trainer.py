"""The training engine every method (HNDesc, TPR, residual descriptors) plugs into.

A *method* is an ``nn.Module`` whose ``forward(batch)`` takes the data-loader batch (already
on the device) and returns a dict with a scalar ``"loss"`` and any other scalars to log.
Pair generation and augmentation run inside the method, on the device; the loader only
decodes images.

What the engine gives every method: seeded runs; AdamW/Adam with warm-up + cosine or
constant schedule; mixed precision (bf16 or fp16 with loss scaling); gradient clipping; a NaN
guard (non-finite losses skip the step; too many in a row abort); tqdm progress; CSV (and
TensorBoard when installed) logs; periodic validation through a callback; atomic checkpoints;
``resume=True`` continues a killed run exactly (same step, optimizer/scheduler/scaler state,
RNG state and data order); SIGTERM or SIGINT stops the run within moments wherever it is (loading
data, in a forward/backward pass, validating; never inside an optimizer update or a checkpoint
write) and saves the state of the last completed step (:class:`TrainingStopped`), so
``timeout``/``kill``/Ctrl-C lose at most the step in progress; a ``deadline`` stops the same way
at a step boundary; DataLoader workers never outnumber the CPU cores; multi-GPU through
``torchrun`` (DistributedDataParallel, one process per GPU; gloo on CPU).
"""
from __future__ import annotations

import math
import random
import signal
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from selfdesc.config import dump_config
from selfdesc.distributed import available_cores, dist_info
from selfdesc.errors import ConfigError, SelfdescError, StopRequested
from selfdesc.io.atomic import write_text_atomic
from selfdesc.training.checkpoint import latest_checkpoint, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from selfdesc.training.image_folder import ResumableSampler
from selfdesc.training.logging import MetricLogger


@dataclass
class TrainConfig:
    """Engine settings (method-specific settings live in the method's own config)."""

    steps: int = 20000
    batch_size: int = 8
    lr: float = 1e-4
    weight_decay: float = 5e-4
    optimizer: str = "adam"  # adam | adamw
    schedule: str = "constant"  # constant | cosine
    warmup_steps: int = 0
    precision: str = "fp32"  # fp32 | bf16 | fp16
    grad_clip: float | None = 10.0
    max_bad_steps: int = 20
    seed: int = 0
    num_workers: int = 4
    log_every: int = 20
    checkpoint_every: int = 1000
    validate_every: int = 1000
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


class NonFiniteLossError(SelfdescError):
    """Too many consecutive steps produced a NaN/inf loss or gradient."""


class TrainingStopped(StopRequested):
    """A requested stop (SIGTERM/SIGINT, or the time limit): ``checkpoints/last.pt`` holds the
    last completed step. Not an error: ``signum`` is the signal (``None`` for the time limit)."""


class _Interrupted(BaseException):
    """Raised by the signal handler inside an interruptible region (a BaseException, so that
    no ``except Exception`` in data loading or evaluation code swallows it)."""


class _StopSignals:
    """Within ``with``: SIGTERM and SIGINT set ``requested`` instead of killing the process; while
    ``interruptible`` is true the handler also raises :class:`_Interrupted` at once (handlers are
    installed only in the main thread; elsewhere this does nothing)."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, raise_in_regions: bool = True) -> None:
        self.requested: int | None = None
        self.interruptible = False
        self.raise_in_regions = raise_in_regions
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = signum
        if self.interruptible:
            self.interruptible = False
            raise _Interrupted

    @contextmanager
    def region(self) -> Iterator[None]:
        """Code that a stop signal may abandon midway (it changes no training state). Under DDP
        (``raise_in_regions`` false) processes stop together at a step boundary instead."""
        if not self.raise_in_regions:
            yield
            return
        if self.requested is not None:
            raise _Interrupted
        self.interruptible = True
        try:
            yield
        finally:
            self.interruptible = False

    def __enter__(self) -> "_StopSignals":
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc: Any) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)


def _ignore_sigint(worker_id: int) -> None:
    """DataLoader workers leave Ctrl-C to the main process, which shuts them down."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def loader_workers(requested: int, world_size: int = 1) -> int:
    """``requested`` DataLoader workers, capped at this process's share of the CPU cores."""
    return max(0, min(int(requested), available_cores() // max(1, world_size)))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _lr_factor(conf: TrainConfig, step: int) -> float:
    if conf.warmup_steps and step < conf.warmup_steps:
        return (step + 1) / conf.warmup_steps
    if conf.schedule == "cosine":
        t = (step - conf.warmup_steps) / max(1, conf.steps - conf.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
    return 1.0


class Trainer:
    """Train ``method`` on ``dataset`` into ``run_dir`` (see the module docstring).

    Args:
        method: the trainable module (``forward(batch) -> {"loss": ..., ...}``).
        dataset: a map-style dataset returning dicts of tensors.
        conf: engine settings.
        run_dir: where ``config.yaml``, ``metrics.csv`` and ``checkpoints/`` go.
        device: ``"cpu"`` or ``"cuda"``; under torchrun each process takes its local GPU.
        validate: optional ``callback(model) -> {name: value}`` run every ``validate_every``
            steps on rank 0; its ``"score"`` (higher is better) selects ``best.pt``.
        full_config: the complete merged config, written to ``run_dir/config.yaml``.
    """

    def __init__(
        self,
        method: nn.Module,
        dataset: Dataset,
        conf: TrainConfig,
        run_dir: str | Path,
        device: str = "cpu",
        validate: Callable[[nn.Module], dict[str, float]] | None = None,
        full_config: dict[str, Any] | None = None,
    ) -> None:
        if conf.precision not in ("fp32", "bf16", "fp16"):
            raise ConfigError(f"unknown precision '{conf.precision}' (fp32, bf16, fp16)")
        if conf.optimizer not in ("adam", "adamw") or conf.schedule not in ("constant", "cosine"):
            raise ConfigError(f"unknown optimizer/schedule '{conf.optimizer}'/'{conf.schedule}'")
        self.conf = conf
        self.run_dir = Path(run_dir)
        self.rank, self.world, local = dist_info()
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if device == "cuda" else "gloo")
        self.device = torch.device(f"cuda:{local}" if device == "cuda" else "cpu")
        if device == "cuda":
            torch.cuda.set_device(self.device)
        self.method = method.to(self.device)
        self.model: nn.Module = method
        if self.world > 1:
            self.model = nn.parallel.DistributedDataParallel(
                self.method, device_ids=[self.device.index] if device == "cuda" else None, find_unused_parameters=False
            )
        params = [p for p in self.method.parameters() if p.requires_grad]
        opt_cls = torch.optim.AdamW if conf.optimizer == "adamw" else torch.optim.Adam
        self.optimizer = opt_cls(params, lr=conf.lr, weight_decay=conf.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: _lr_factor(conf, s))
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=conf.precision == "fp16")
        self.dataset = dataset
        self.validate = validate
        self.full_config = full_config or {"train": asdict(conf)}
        self.step = 0
        self.best_score = -math.inf
        self.is_main = self.rank == 0
        self.logger = MetricLogger(self.run_dir, enabled=self.is_main)
        self._step_rng: dict[str, Any] | None = None
        self._step_buffers: list[torch.Tensor] | None = None
        self._pending_validation = False
        self._timed_out = False

    # ------------------------------------------------------------------ state
    def state(self, rng: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "model": self.method.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "best_score": self.best_score,
            "rng": rng if rng is not None else rng_state(),
            "pending_validation": self._pending_validation,
            "config": self.full_config,
            "world_size": self.world,
        }

    def _restore(self, state: dict[str, Any]) -> None:
        """Load everything but the RNG state (restored once the data loader exists)."""
        self.method.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.best_score = float(state["best_score"])

    def save(self, name: str = "last.pt", rng: dict[str, Any] | None = None) -> Path | None:
        """Write the state of the last completed step (``rng``: the RNG snapshot taken then,
        when the generators have moved on since) to ``checkpoints/name``, on rank 0 only."""
        if not self.is_main:
            return None
        self.logger.flush()
        return save_checkpoint(self.run_dir / "checkpoints" / name, self.state(rng))

    # ------------------------------------------------------------------ loop
    def _loader(self) -> DataLoader:
        sampler = ResumableSampler(
            len(self.dataset),  # type: ignore[arg-type]
            seed=self.conf.seed,
            rank=self.rank,
            num_replicas=self.world,
            start=self.step * self.conf.batch_size,
        )
        workers = loader_workers(self.conf.num_workers, self.world)
        return DataLoader(
            self.dataset,
            batch_size=self.conf.batch_size,
            sampler=sampler,
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            drop_last=True,
            persistent_workers=workers > 0,
            worker_init_fn=_ignore_sigint if workers > 0 else None,
        )

    def _to_device(self, batch: Any) -> Any:
        if isinstance(batch, torch.Tensor):
            return batch.to(self.device, non_blocking=True)
        if isinstance(batch, dict):
            return {k: self._to_device(v) for k, v in batch.items()}
        if isinstance(batch, (list, tuple)):
            return type(batch)(self._to_device(v) for v in batch)
        return batch

    def _all_finite(self, loss: torch.Tensor) -> bool:
        """Whether the loss is finite on every process (all skip together, so DDP never hangs)."""
        flag = torch.isfinite(loss.detach()).to(torch.float32)
        if self.world > 1:
            dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag)

    def _stop_requested(self, signals: _StopSignals) -> bool:
        """Whether any process got a stop signal (all stop at the same step, so DDP never hangs).
        A single process answers from the flag alone: no device tensor, no sync on the step path."""
        requested = signals.requested is not None
        if self.world == 1:
            return requested
        flag = torch.tensor(float(requested), device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag)

    def fit(self, resume: bool = False, max_seconds: float | None = None) -> dict[str, float]:
        """Train until ``conf.steps`` (or, with ``max_seconds``, until the first step boundary
        after that much time); returns the last logged metrics. Raises :class:`TrainingStopped`
        (after saving ``last.pt``) when SIGTERM/SIGINT arrives or the time is up."""
        with _StopSignals(raise_in_regions=self.world == 1) as signals:
            try:
                return self._fit(resume, signals, max_seconds)
            except _Interrupted:
                self.logger.truncate(self.step)  # nothing of the abandoned step is kept
                if self._step_buffers is not None:  # e.g. BatchNorm statistics its forward pass moved
                    with torch.no_grad():
                        for buffer, saved in zip(self.method.buffers(), self._step_buffers):
                            buffer.copy_(saved)
                self.save("last.pt", self._step_rng)
                raise self._stopped(signals) from None

    def _stopped(self, signals: _StopSignals) -> TrainingStopped:
        if signals.requested is None and self._timed_out:
            why = "the time limit"
        else:
            why = signal.Signals(signals.requested).name if signals.requested else "a stop signal on another process"
        return TrainingStopped(f"{self.run_dir}: stopped by {why} at step {self.step}; checkpoint saved, continue with --resume", signals.requested)

    def _validate(self, signals: _StopSignals) -> None:
        """Validation at ``self.step``: interruptible, and RNG-neutral (a resumed run that repeats
        it draws the same numbers as one that never stopped)."""
        saved_rng = rng_state()
        self._pending_validation = True
        self.method.eval()
        with signals.region(), torch.no_grad():
            scores = self.validate(self.method)  # type: ignore[misc]
        self.method.train()
        set_rng_state(saved_rng)
        self._pending_validation = False
        self.logger.log(self.step, {f"val/{k}": v for k, v in scores.items()})
        if scores.get("score", -math.inf) > self.best_score:
            self.best_score = scores["score"]
            self.save("best.pt")

    def _fit(self, resume: bool, signals: _StopSignals, max_seconds: float | None) -> dict[str, float]:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        seed_everything(self.conf.seed + self.rank)
        saved: dict[str, Any] | None = None
        if resume:
            ckpt = latest_checkpoint(self.run_dir)
            if ckpt is None:
                raise SelfdescError(f"{self.run_dir}: nothing to resume (no checkpoints/last.pt)")
            saved = load_checkpoint(ckpt, map_location="cpu")
            self._restore(saved)
            self.logger.truncate(self.step)
        elif latest_checkpoint(self.run_dir) is not None:
            raise SelfdescError(f"{self.run_dir}: holds a run already; pass --resume to continue it or choose another --out")
        if self.is_main:
            write_text_atomic(self.run_dir / "config.yaml", dump_config(self.full_config))
        amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.conf.precision)
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        bad_in_a_row = 0
        last: dict[str, float] = {}
        self.method.train()
        bar = tqdm(total=self.conf.steps, initial=self.step, disable=not (self.conf.progress and self.is_main), unit="step", dynamic_ncols=True)
        bar.set_description("loading")
        batches = iter(self._loader())  # creating the iterator draws worker seeds from the global RNG
        if saved is not None and saved.get("world_size", 1) == self.world:
            set_rng_state(saved["rng"])  # ... so the saved RNG state is restored after it
        self._step_rng = rng_state()
        if saved is not None and saved.get("pending_validation") and self.validate is not None and self.is_main:
            self._validate(signals)  # the validation a stop interrupted
        t0 = started = time.perf_counter()
        first_step = self.step
        while self.step < self.conf.steps:
            self._step_rng = rng_state()  # what a checkpoint of the last completed step holds
            if signals.raise_in_regions:
                self._step_buffers = [b.detach().clone() for b in self.method.buffers()]
            with signals.region():
                bar.set_description("loading")
                batch = next(batches, None)
                if batch is None:
                    break
                bar.set_description("training")
                batch = self._to_device(batch)
                with torch.autocast(self.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    out = self.model(batch)
                loss = out["loss"].float()
                self.optimizer.zero_grad(set_to_none=True)
                finite = self._all_finite(loss)
                if finite:
                    self.scaler.scale(loss).backward()
            if finite:  # from here on the step changes the training state: not interruptible
                self.scaler.unscale_(self.optimizer)
                grads = [p.grad for p in self.method.parameters() if p.grad is not None]
                norm = torch.nn.utils.clip_grad_norm_(self.method.parameters(), self.conf.grad_clip or math.inf) if grads else torch.zeros(())
                finite = bool(torch.isfinite(norm)) or self.conf.precision == "fp16"
            if finite:
                self.scaler.step(self.optimizer)
                self.scaler.update()
                after_step = getattr(self.method, "after_step", None)  # e.g. EMA target updates (TPR)
                if after_step is not None:
                    after_step(self.step)
                bad_in_a_row = 0
            else:
                self.optimizer.zero_grad(set_to_none=True)
                bad_in_a_row += 1
                if bad_in_a_row > self.conf.max_bad_steps:
                    self.save("last.pt")
                    raise NonFiniteLossError(f"{bad_in_a_row} consecutive steps with a non-finite loss or gradient at step {self.step}")
            with warnings.catch_warnings():  # a skipped (non-finite) first step is expected here
                warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
                self.scheduler.step()
            self.step += 1
            self._step_buffers = None
            bar.update(1)
            if self.step - first_step == 3 and not bar.disable:
                per_step = (time.perf_counter() - started) / 3
                left = (self.conf.steps - self.step) * per_step
                bar.write(f"about {per_step:.1f} s per step: {self.conf.steps - self.step} steps left, about {_duration(left)} (Ctrl-C stops with a checkpoint)")
            if self.step % self.conf.log_every == 0 or self.step == self.conf.steps:
                last = {k: float(v.detach().float()) for k, v in out.items() if isinstance(v, torch.Tensor) and v.numel() == 1}
                last.update(lr=self.scheduler.get_last_lr()[0], skipped=float(not finite), steps_per_s=self.conf.log_every / max(1e-9, time.perf_counter() - t0))
                t0 = time.perf_counter()
                self.logger.log(self.step, last)
                bar.set_postfix(loss=f"{last['loss']:.4f}")
            if self.validate is not None and self.is_main and (self.step % self.conf.validate_every == 0 or self.step == self.conf.steps):
                self._step_rng = rng_state()
                bar.set_description("validating")
                self._validate(signals)
            self._timed_out = deadline is not None and time.monotonic() >= deadline
            stop = self.step < self.conf.steps and (self._stop_requested(signals) or self._timed_out)
            if stop or self.step % self.conf.checkpoint_every == 0 or self.step == self.conf.steps:
                self.save("last.pt")
            if stop:
                bar.close()
                self.logger.flush()
                raise self._stopped(signals)
        bar.close()
        self.logger.flush()
        if self.world > 1:
            dist.barrier()
        return last


def _duration(seconds: float) -> str:
    """``"42 s"``, ``"7 min"`` or ``"3 h 20 min"``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"
