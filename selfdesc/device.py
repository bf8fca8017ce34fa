"""Where tensors run: checking that a device exists, and waiting for it before reading a clock.

torch is imported on first use, so that the command line can check options before loading it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from selfdesc.errors import ConfigError

if TYPE_CHECKING:
    import torch


def check_device(device: str) -> str:
    """``device`` itself; a :class:`~selfdesc.errors.ConfigError` when CUDA is asked for but absent."""
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("--device cuda was given but no CUDA device is available")
    return device


def sync_device(device: torch.device | str) -> None:
    """Wait for the work queued on ``device`` (a no-op off CUDA): call before reading a clock."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


__all__ = ["check_device", "sync_device"]
