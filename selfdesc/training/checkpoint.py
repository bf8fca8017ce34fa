"""Training checkpoints: everything needed to continue a run exactly, written atomically.

A checkpoint holds the model, optimizer, scheduler and grad-scaler states, the step, the
data-order position and the RNG states (Python, NumPy, torch CPU and CUDA), so that a run
killed at any point and resumed with ``--resume`` produces the same loss sequence as an
uninterrupted one.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from selfdesc.errors import WeightsError
from selfdesc.io.atomic import atomic_path


def rng_state() -> dict[str, Any]:
    """Snapshot of every random generator that training touches."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore a :func:`rng_state` snapshot."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (a dict of state dicts and plain values) atomically to ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises:
        WeightsError: missing or unreadable file (one line, naming it).
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such checkpoint")
    try:
        # our own files: they hold RNG states (numpy arrays, tuples), so not weights_only
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any failure means the file is not a usable checkpoint
        raise WeightsError(f"{path}: unreadable checkpoint ({type(exc).__name__})") from None


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """``run_dir/checkpoints/last.pt`` when it exists."""
    path = Path(run_dir) / "checkpoints" / "last.pt"
    return path if path.is_file() else None

def export_checkpoint(path: str | Path, ckpt: dict[str, Any]) -> dict[str, Any]:
    """The model-file content (:func:`selfdesc.weights.read_model_file`) of a loaded training
    checkpoint: its method is rebuilt from the run's config, loaded, and asked to ``export()``.

    Raises:
        WeightsError: no usable ``config.method`` entry, or weights that do not fit the method.
    """
    from selfdesc.methods import build_method
    from selfdesc.weights import MODEL_FORMAT, load_state_checked

    try:
        method_conf = dict(ckpt["config"]["method"])
        name = method_conf.pop("name")
        model = build_method(name, method_conf)
    except (KeyError, TypeError):
        raise WeightsError(f"{path}: training checkpoint without a usable 'config.method' entry") from None
    load_state_checked(model, ckpt["model"], path)
    exported = model.export()
    meta = {"step": int(ckpt.get("step", -1)), "source": str(path), "train_config": ckpt["config"]}
    return {"format": MODEL_FORMAT, "method": name, "conf": exported["conf"], "state_dict": exported["state_dict"], "meta": meta}
