"""The common interface of every feature extractor.

An extractor is an ``nn.Module`` with an explicit ``default_conf``. Its pipeline boundary
is dict-in / dict-out::

    pred = extractor({"image": image})   # image: (1, C, H, W) float in [0, 1]
    pred["keypoints"]    # (N, 2) float32, x right / y down, pixel-centre convention
    pred["scores"]       # (N,)   float32, higher is better
    pred["descriptors"]  # (N, D) float32, L2-normalised

``extract`` is the convenience entry: it accepts a numpy array, a tensor, a
:class:`~selfdesc.io.image.LoadedImage` or a path, runs on the module's device, keeps the
top ``max_keypoints`` by score, maps keypoints back to the original image, and returns
CPU tensors plus ``image_size`` ``(W, H)``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from selfdesc.errors import ConfigError
from selfdesc.io.image import LoadedImage, load_image, rescale_keypoints, rgb_to_gray


class Extractor(nn.Module):
    """Base class: subclasses set ``default_conf`` and implement ``_init`` and ``_extract``."""

    name: ClassVar[str] = "base"
    #: True when the model takes a 1-channel image.
    grayscale: ClassVar[bool] = False
    #: True when the computation always runs on the CPU (OpenCV), whatever ``.to(device)`` says.
    cpu_only: ClassVar[bool] = False
    default_conf: ClassVar[dict[str, Any]] = {}
    _base_conf: ClassVar[dict[str, Any]] = {"max_keypoints": None, "resize_max": None}

    def __init__(self, conf: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__()
        merged = {**self._base_conf, **self.default_conf}
        for key, value in {**(conf or {}), **kwargs}.items():
            if key not in merged:
                raise ConfigError(f"feature '{self.name}': unknown option '{key}' (known: {', '.join(sorted(merged))})")
            merged[key] = value
        self.conf = merged
        # an empty buffer records the module's device, also for parameter-free extractors
        self.register_buffer("_device_anchor", torch.empty(0), persistent=False)
        self._init(merged)

    def _init(self, conf: dict[str, Any]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _extract(self, image: torch.Tensor) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        """``image`` ``(1, C, H, W)`` on the module device -> keypoints / scores / descriptors."""
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        return self._device_anchor.device

    def forward(self, data: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        image = data["image"]
        if image.ndim != 4 or image.shape[0] != 1:
            raise ValueError(f"expected image of shape (1, C, H, W), got {tuple(image.shape)}")
        if self.grayscale and image.shape[1] == 3:
            image = (image * image.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        elif not self.grayscale and image.shape[1] == 1:
            image = image.expand(-1, 3, -1, -1)
        pred = self._extract(image)
        return select_top_k(pred, self.conf["max_keypoints"])

    @torch.no_grad()
    def extract(self, image: np.ndarray | torch.Tensor | LoadedImage | str | Path) -> dict[str, torch.Tensor]:
        """Extract features from one image (see module docstring for the output)."""
        if isinstance(image, (str, Path)):
            image = load_image(image, resize_max=self.conf["resize_max"])
        scale: tuple[float, float] = (1.0, 1.0)
        size: tuple[int, int] | None = None
        if isinstance(image, LoadedImage):
            scale, size, image = image.scale, image.original_size, image.image
        tensor = to_tensor(image).to(self.device)
        if size is None:
            size = (int(tensor.shape[-1]), int(tensor.shape[-2]))
        pred = {k: v.detach().float().cpu() for k, v in self({"image": tensor}).items()}
        if scale != (1.0, 1.0):
            pred["keypoints"] = torch.from_numpy(rescale_keypoints(pred["keypoints"].numpy(), scale))
        pred["image_size"] = torch.tensor(size)
        return pred


def to_tensor(image: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``H x W``, ``H x W x C`` (numpy, uint8 or float in [0, 1]) or ``C x H x W`` tensor -> ``(1, C, H, W)`` float."""
    if isinstance(image, torch.Tensor):
        t = image.float()
        if t.ndim == 2:
            t = t[None]
        if t.ndim == 3:
            t = t[None]
        if t.max() > 1.5:
            t = t / 255.0
        return t
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    elif arr.dtype == np.uint16:
        arr = arr.astype(np.float32) / 65535.0
    arr = arr.astype(np.float32)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an H x W or H x W x C image, got shape {arr.shape}")
    arr = arr[:, :, :3]
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))[None]


def to_uint8_gray(image: torch.Tensor) -> np.ndarray:
    """``(1, C, H, W)`` float tensor in [0, 1] -> ``H x W`` uint8 luminance (for OpenCV)."""
    arr = image[0].detach().cpu().numpy().transpose(1, 2, 0)
    arr = rgb_to_gray(arr) if arr.shape[2] == 3 else arr[:, :, 0]
    return np.clip(np.round(arr * 255.0), 0, 255).astype(np.uint8)


def select_top_k(pred: dict[str, torch.Tensor], k: int | None) -> dict[str, torch.Tensor]:
    """Keep the ``k`` highest-scoring keypoints (all when ``k`` is ``None`` or larger than N)."""
    n = pred["keypoints"].shape[0]
    if k is None or k <= 0 or n <= k:
        return pred
    return select_keypoints(pred, torch.topk(pred["scores"], k).indices)


def select_keypoints(pred: dict[str, torch.Tensor], index: torch.Tensor) -> dict[str, torch.Tensor]:
    """Index every per-keypoint entry (first dim ``N``) of a prediction dict; other entries pass through."""
    n = pred["keypoints"].shape[0]
    return {key: (v[index] if isinstance(v, torch.Tensor) and v.ndim >= 1 and v.shape[0] == n else v) for key, v in pred.items()}
