"""torchrun helpers: this process's rank and share of the host, barriers and gathers.

Without torchrun (no ``WORLD_SIZE`` in the environment) every helper describes a single
process: rank 0 of 1, all the cores, barriers that return at once.
"""
from __future__ import annotations

import datetime
import os
from typing import Any


def dist_info() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from torchrun's environment (``(0, 1, 0)`` without it)."""
    env = os.environ
    return int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0))


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def process_cores() -> int:
    """CPU cores of this process's share of the host (one share per torchrun process on the node)."""
    return max(1, available_cores() // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", 1))))


def _process_group() -> bool:
    """Join torchrun's process group (gloo: only barriers and small objects) when ``WORLD_SIZE > 1``;
    a group the caller already started (e.g. the trainer's NCCL one) is used as it is."""
    if dist_info()[1] <= 1:
        return False
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo", timeout=datetime.timedelta(hours=12))
    return True


def barrier() -> None:
    """Wait for every rank (a no-op without torchrun)."""
    if _process_group():
        import torch.distributed as dist

        dist.barrier()


def all_gather(obj: Any) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` (``[obj]`` without torchrun)."""
    if not _process_group():
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * dist_info()[1]
    dist.all_gather_object(out, obj)
    return out


__all__ = ["all_gather", "available_cores", "barrier", "dist_info", "process_cores"]
