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

Batches: ``extract_batch`` takes several images of one size and is the same computation as
``extract`` one image at a time, in three steps a pipeline can time or overlap separately:
:meth:`Extractor.to_device` (host to device), :meth:`Extractor.forward_batch` (network and
keypoint selection on the device) and :meth:`Extractor.to_host` (one device-to-host copy per
output for the whole batch). Extractors that can run a batch at once override
``_extract_batch``; the others (OpenCV) implement ``_extract`` and run one image at a time.
``precision="bf16"`` runs the step on the device under ``torch.autocast`` (bfloat16).
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
from torch import nn

from selfdesc.config import merge
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
        merged = merge({**self._base_conf, **self.default_conf}, {**(conf or {}), **kwargs}, owner=f"feature '{self.name}'")
        self.conf = merged
        # an empty buffer records the module's device, also for parameter-free extractors
        self.register_buffer("_device_anchor", torch.empty(0), persistent=False)
        self._init(merged)

    def _init(self, conf: dict[str, Any]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _extract(self, image: torch.Tensor) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        """``image`` ``(1, C, H, W)`` on the module device -> keypoints / scores / descriptors."""
        raise NotImplementedError

    def _extract_batch(self, images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """``images`` ``(B, C, H, W)`` on the module device -> one prediction per image.

        The default runs ``_extract`` one image at a time; extractors that batch override it.
        """
        return [self._extract(images[i : i + 1]) for i in range(images.shape[0])]

    def _network(self, images: torch.Tensor) -> Any:
        """The dense network part of ``_extract_batch`` alone (profiling); ``None`` when there is none."""
        return None

    @property
    def batches(self) -> bool:
        """True when ``_extract_batch`` runs a whole batch through the network at once."""
        return type(self)._extract_batch is not Extractor._extract_batch

    @property
    def device(self) -> torch.device:
        return self._device_anchor.device

    def _channels(self, images: torch.Tensor) -> torch.Tensor:
        """RGB -> gray (ITU-R 601) for gray models, gray -> RGB for colour models; ``(B, C, H, W)``."""
        if self.grayscale and images.shape[1] == 3:
            return (images * images.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        if not self.grayscale and images.shape[1] == 1:
            return images.expand(-1, 3, -1, -1)
        return images

    def forward(self, data: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        image = data["image"]
        if image.ndim != 4 or image.shape[0] != 1:
            raise ValueError(f"expected image of shape (1, C, H, W), got {tuple(image.shape)}")
        return self.forward_batch(image)[0]

    def forward_batch(self, images: torch.Tensor, precision: str = "fp32") -> list[dict[str, torch.Tensor]]:
        """``images`` ``(B, C, H, W)`` in [0, 1] on the module device -> per image, on the device,
        the top ``max_keypoints`` ``keypoints`` ``(N, 2)`` (x, y, pixel centres of ``images``),
        ``scores`` ``(N,)`` and ``descriptors`` ``(N, D)``."""
        if images.ndim != 4:
            raise ValueError(f"expected images of shape (B, C, H, W), got {tuple(images.shape)}")
        with autocast(self.device, precision):
            preds = self._extract_batch(self._channels(images))
        return [select_top_k(p, self.conf["max_keypoints"]) for p in preds]

    def network(self, images: torch.Tensor, precision: str = "fp32") -> Any:
        """The dense network alone on ``(B, C, H, W)`` images (``None`` when the extractor has none)."""
        with autocast(self.device, precision):
            return self._network(self._channels(images))

    def to_device(self, images: Sequence[torch.Tensor]) -> torch.Tensor:
        """Same-size float ``(C, H, W)`` or ``(1, C, H, W)`` CPU tensors in [0, 1] (pinned ones are
        copied asynchronously) -> one ``(B, C, H, W)`` float32 tensor on the module device."""
        moved = [t.to(self.device, non_blocking=True).reshape(t.shape[-3:]) for t in images]
        return torch.stack(moved).float()

    @staticmethod
    def to_host(
        preds: Sequence[dict[str, torch.Tensor]],
        scales: Sequence[tuple[float, float]],
        sizes: Sequence[tuple[int, int]],
    ) -> list[dict[str, torch.Tensor]]:
        """Device predictions -> float32 CPU tensors, one copy per output for the whole batch;
        keypoints mapped by ``scales`` ``(sx, sy)`` to the original images of ``sizes`` ``(W, H)``."""
        counts = [int(p["keypoints"].shape[0]) for p in preds]
        host: list[dict[str, torch.Tensor]] = [{} for _ in preds]
        for key in preds[0] if preds else ():
            values = [p[key] for p in preds]
            if all(v.ndim >= 1 and v.shape[0] == n for v, n in zip(values, counts)):
                parts = torch.cat([v.detach().float() for v in values]).cpu().split(counts)
            else:
                parts = tuple(v.detach().float().cpu() for v in values)
            for out, part in zip(host, parts):
                out[key] = part
        for out, scale, size in zip(host, scales, sizes):
            if tuple(scale) != (1.0, 1.0):
                out["keypoints"] = torch.from_numpy(rescale_keypoints(out["keypoints"].numpy(), tuple(scale)))
            out["image_size"] = torch.tensor(tuple(size))
        return host

    @torch.no_grad()
    def extract_batch(self, images: Sequence[LoadedImage], precision: str = "fp32") -> list[dict[str, torch.Tensor]]:
        """Extract features from same-size images at once: ``extract`` of each, as a list."""
        tensors = [to_tensor(im.image) for im in images]
        preds = self.forward_batch(self.to_device(tensors), precision)
        return self.to_host(preds, [im.scale for im in images], [im.original_size for im in images])

    @torch.no_grad()
    def extract(self, image: np.ndarray | torch.Tensor | LoadedImage | str | Path) -> dict[str, torch.Tensor]:
        """Extract features from one image (see module docstring for the output)."""
        if isinstance(image, (str, Path)):
            image = load_image(image, resize_max=self.conf["resize_max"])
        if not isinstance(image, LoadedImage):
            tensor = to_tensor(image)
            image = LoadedImage(image=tensor, original_size=(int(tensor.shape[-1]), int(tensor.shape[-2])), scale=(1.0, 1.0))  # type: ignore[arg-type]
        return self.extract_batch([image])[0]


#: values of the ``precision`` arguments
PRECISIONS = ("fp32", "bf16")


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` to bfloat16 on ``device`` for ``"bf16"``; nothing for ``"fp32"``."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got '{precision}'")
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


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
