"""Where weight files are found.

Peer weights (DISK, ALIKED, XFeat, R2D2) are never shipped with selfdesc. They are read
from a *weights directory*, chosen in this order: the ``weights_dir`` argument
(``--weights-dir``), the ``SELFDESC_WEIGHTS_DIR`` environment variable, then
``../shared/data/weights`` next to the current folder or next to the selfdesc checkout.
Our own trained models ship inside the package (``selfdesc/weights/``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from selfdesc.errors import WeightsError
from selfdesc.shared_data import shared_data_path

PACKAGE_WEIGHTS = Path(__file__).resolve().parent / "weights"


def default_weights_dir() -> Path | None:
    """The first existing default weights directory, or ``None``."""
    env = os.environ.get("SELFDESC_WEIGHTS_DIR")
    if env:
        return Path(env)
    found = shared_data_path("weights")
    return found if found is not None and found.is_dir() else None


def weight_file(relative: str, weights_dir: str | Path | None, feature: str) -> Path:
    """Resolve ``relative`` (e.g. ``"disk/depth-save.pth"``) inside the weights directory.

    Raises:
        WeightsError: no weights directory is known, or the file is missing.
    """
    root = Path(weights_dir) if weights_dir is not None else default_weights_dir()
    if root is None:
        raise WeightsError(
            f"feature '{feature}' needs the weight file {relative}, but no weights directory is set "
            "(pass --weights-dir DIR or set SELFDESC_WEIGHTS_DIR)"
        )
    path = root / relative
    if not path.is_file():
        raise WeightsError(f"{path}: missing weight file for feature '{feature}' (check --weights-dir)")
    return path


def read_checkpoint(path: str | Path) -> Any:
    """``torch.load`` a local weight file on the CPU, tensors and plain containers only (``weights_only``).

    Raises:
        WeightsError: the file cannot be read that way.
    """
    import numpy as np
    import torch

    # numpy arrays (the RNG state inside our training checkpoints) are data, not code
    numpy_globals = [np._core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]
    try:
        with torch.serialization.safe_globals(numpy_globals):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad weight file
        raise WeightsError(f"{path}: cannot load as a weights-only torch checkpoint ({type(exc).__name__})") from None


def load_state_checked(module: Any, state: Any, path: str | Path, allowed_missing: tuple[str, ...] = ()) -> None:
    """``module.load_state_dict(state)``, strict except for ``allowed_missing`` (non-learned buffers).

    Raises:
        WeightsError: naming ``path`` and the first missing / unexpected / mis-shaped keys.
    """
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: expected a state dict, got {type(state).__name__}")
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        detail = [line.strip() for line in str(exc).splitlines() if line.strip()][-1]
        raise WeightsError(f"{path}: weights do not fit {type(module).__name__} ({detail})") from None
    missing = [k for k in result.missing_keys if k not in allowed_missing]
    if missing or result.unexpected_keys:
        raise WeightsError(
            f"{path}: weights do not fit {type(module).__name__} "
            f"(missing {missing[:3]}, unexpected {list(result.unexpected_keys)[:3]})"
        )


MODEL_FORMAT = "selfdesc-model/1"


def save_model_file(path: str | Path, *, method: str, conf: dict[str, Any], state_dict: dict[str, Any], meta: dict[str, Any]) -> None:
    """Write one of our trained models atomically: ``{"format", "method", "conf", "state_dict", "meta"}``.

    ``conf`` is what the method's feature extractor needs to rebuild the network; tensors are
    stored on the CPU.
    """
    import torch

    from selfdesc.io.atomic import atomic_path

    payload = {
        "format": MODEL_FORMAT,
        "method": method,
        "conf": conf,
        "state_dict": {k: v.detach().cpu().clone() for k, v in state_dict.items()},
        "meta": meta,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def is_training_checkpoint(data: Any) -> bool:
    """Whether ``data`` (a loaded file) is a training checkpoint (``RUN/checkpoints/*.pt``) rather than a model file."""
    return isinstance(data, dict) and "model" in data and "config" in data and "optimizer" in data


def read_model_file(path: str | Path, method: str | None = None) -> dict[str, Any]:
    """Read a model file of ours, or a training checkpoint (``RUN/checkpoints/last.pt``) exported on the fly.

    Returns ``{"format", "method", "conf", "state_dict", "meta"}``.

    Raises:
        WeightsError: missing or unreadable file, not one of our formats, or (with ``method``)
            a model of another method.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such model file")
    data = read_checkpoint(path)
    if is_training_checkpoint(data):
        # the one place inference reaches into training: a run's checkpoint holds the state of the
        # method that wrote it, which exports the network (model files carry it themselves)
        from selfdesc.training.checkpoint import export_checkpoint

        data = export_checkpoint(path, data)
    if not isinstance(data, dict) or data.get("format") != MODEL_FORMAT:
        raise WeightsError(f"{path}: not a selfdesc model file (expected format {MODEL_FORMAT} or a training checkpoint)")
    if method is not None and data.get("method") != method:
        raise WeightsError(f"{path}: holds a '{data.get('method')}' model, expected '{method}'")
    return data


def export_run(checkpoint: str | Path, out: str | Path) -> dict[str, Any]:
    """Export a training checkpoint to a model file at ``out``; returns ``{"method", "step"}``."""
    data = read_model_file(checkpoint)
    save_model_file(out, method=data["method"], conf=data["conf"], state_dict=data["state_dict"], meta=data["meta"])
    return {"method": data["method"], "step": data["meta"].get("step", -1)}


def package_model(name: str) -> Path:
    """Path of a model file shipped in ``selfdesc/weights/`` (may not exist)."""
    return PACKAGE_WEIGHTS / name
