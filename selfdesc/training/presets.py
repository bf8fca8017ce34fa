"""The CPU preset: scale a training config down so that a step takes seconds on a laptop CPU.

Configs in ``configs/`` are sized for a GPU (bf16, batch 8-16, 192-256 px crops, 8 loader
workers). On a CPU bf16 runs dilated convolutions on a slow fallback (minutes per step on CPUs
without native bf16) and a full-size batch takes tens of seconds, so ``selfdesc train --device
cpu`` applies this preset between the YAML file and the command-line overrides: fp32, at most
:data:`CPU_LIMITS` (smaller batch, crops, images and validation set), loader workers below the
core count. It only ever lowers a value, and any key given as an override keeps the override.
"""
from __future__ import annotations

import copy
from typing import Any

#: upper bounds the preset puts on numeric config values (dotted path -> limit)
CPU_LIMITS: dict[str, int] = {
    "train.batch_size": 4,
    "method.hcrops.crop_size": 96,
    "val.num_images": 2,
    "val.max_side": 320,
    "val.max_keypoints": 500,
}

#: the shorter side of ``data.size`` (the image crops are cut from) on CPU; the aspect is kept
CPU_IMAGE_SIDE = 144


def _get(conf: dict[str, Any], path: str) -> Any:
    node: Any = conf
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _set(conf: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node = conf
    for key in parents:
        node = node[key]
    node[last] = value


def cpu_preset(conf: dict[str, Any], cores: int) -> tuple[dict[str, Any], list[str]]:
    """A copy of ``conf`` scaled for CPU training, and the changes as ``"key old -> new"`` lines.

    Args:
        conf: a full training config (``train``, ``data``, ``val``, ``method`` sections).
        cores: CPU cores available; loader workers are capped at ``cores - 1`` (the main
            process computes the steps).
    """
    out = copy.deepcopy(conf)
    changes: list[tuple[str, Any, Any]] = []

    def lower(path: str, value: Any) -> None:
        old = _get(out, path)
        if old is not None and old != value:
            _set(out, path, value)
            changes.append((path, old, value))

    if _get(out, "train.precision") in ("bf16", "fp16"):
        lower("train.precision", "fp32")
    for path, limit in CPU_LIMITS.items():
        old = _get(out, path)
        if isinstance(old, int) and old > limit:
            lower(path, limit)
    workers = _get(out, "train.num_workers")
    if isinstance(workers, int) and workers > max(0, cores - 1):
        lower("train.num_workers", max(0, cores - 1))
    size = _get(out, "data.size")
    if isinstance(size, list) and len(size) == 2 and min(size) > CPU_IMAGE_SIDE:
        scale = CPU_IMAGE_SIDE / min(size)
        lower("data.size", [int(round(size[0] * scale)), int(round(size[1] * scale))])
    return out, [f"{path} {old} -> {new}" for path, old, new in changes]


__all__ = ["CPU_IMAGE_SIDE", "CPU_LIMITS", "cpu_preset"]
