"""Random draws that give the same numbers whatever device the data lives on."""
from __future__ import annotations

import torch


def uniform(
    shape: tuple[int, ...],
    generator: torch.Generator | None,
    device: torch.device | str,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``U[0, 1)`` samples of ``shape`` on ``device``.

    They are drawn on the generator's own device (so a seeded CPU generator yields the same
    numbers for CPU and CUDA data) and then moved; without a generator they are drawn on
    ``device`` from the global torch RNG. For large draws pass a generator living on ``device``.
    """
    draw_device = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=draw_device, dtype=dtype).to(device)


def normal(
    shape: tuple[int, ...],
    generator: torch.Generator | None,
    device: torch.device | str,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Standard normal samples of ``shape`` on ``device`` (drawn like :func:`uniform`)."""
    draw_device = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=draw_device, dtype=dtype).to(device)
