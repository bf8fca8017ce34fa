"""Warm start: initialise a new training run from an existing model file.

Every tensor of the file whose name and shape match a tensor of the method's exported network
(:meth:`export`'s ``state_dict``, the same names a model file holds) is copied into the method;
the others keep their fresh initialisation. Used by ``selfdesc train --init-from PATH``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from selfdesc.errors import WeightsError
from selfdesc.weights import read_model_file


@dataclass
class WarmStart:
    """What :func:`warm_start` did: tensor names ``loaded``, ``skipped`` (in the file, absent or of
    another shape in the network, with the reason) and ``fresh`` (in the network, not loaded)."""

    loaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    fresh: list[str] = field(default_factory=list)

    def summary(self, path: str | Path, full: bool = False) -> str:
        """Report for the run's log: counts, then per top-level module (``full``: per tensor)."""

        def listed(names: list[str]) -> list[str]:
            if full:
                return names
            groups: dict[str, int] = {}
            for name in names:
                groups[name.split(".", 1)[0]] = groups.get(name.split(".", 1)[0], 0) + 1
            return [", ".join(f"{g} ({n})" for g, n in groups.items())] if groups else []

        head = f"init-from {path}: loaded {len(self.loaded)} tensors, skipped {len(self.skipped)} of the file, {len(self.fresh)} of the network left as initialised"
        lines = [head]
        for what, names in (("loaded", self.loaded), ("skipped", self.skipped), ("fresh", self.fresh)):
            lines += [f"  {what}: {text}" for text in listed(names)]
        return "\n".join(lines)


@torch.no_grad()
def warm_start(method: Any, path: str | Path, method_name: str) -> WarmStart:
    """Copy the matching tensors of the model file ``path`` into ``method`` (in place).

    Args:
        method: a training method with ``export()`` (its ``state_dict`` shares storage with the
            method's parameters and buffers).
        path: a model file (``selfdesc export-weights``) or a training checkpoint.
        method_name: the run's method; the file must hold a model of the same method.

    Raises:
        WeightsError: unreadable file, not a model file, a model of another method, or no
            tensor that fits.
    """
    model = read_model_file(path, method=method_name)
    source = model["state_dict"]
    if not isinstance(source, dict):
        raise WeightsError(f"{path}: the model file has no state dict")
    target = method.export()["state_dict"]
    report = WarmStart()
    for name, value in source.items():
        if name not in target:
            report.skipped.append(f"{name} (not in the network)")
        elif not isinstance(value, torch.Tensor) or value.shape != target[name].shape:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            report.skipped.append(f"{name} (shape {shape} in the file, {tuple(target[name].shape)} in the network)")
        else:
            target[name].copy_(value)
            report.loaded.append(name)
    report.fresh = [name for name in target if name not in set(report.loaded)]
    if not report.loaded:
        raise WeightsError(f"{path}: no tensor of the model file fits the network (names or shapes differ everywhere)")
    return report


__all__ = ["WarmStart", "warm_start"]
