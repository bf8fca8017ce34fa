"""Learned peer features through kornia: DISK, ALIKED and XFeat.

Weights are read from local files only (never downloaded), resolved inside the weights
directory by :func:`selfdesc.weights.weight_file`:

* DISK: ``disk/depth-save.pth`` (state dict under ``'extractor'``),
* ALIKED: ``aliked/<model>.pth`` (``model`` = aliked-t16 / aliked-n16 / aliked-n16rot / aliked-n32),
* XFeat: ``xfeat/xfeat.pt`` (the backbone ``XFeatModel``).

All three take RGB in [0, 1] (XFeat averages the channels itself). Keypoint convention, from
reading kornia 0.9.0's sources:

* DISK: keypoints are the integer pixels of the full-resolution heatmap: pixel centres
  already. Inputs are zero-padded at the bottom/right to multiples of 16 and the maps are
  cropped back before the NMS, so no keypoint lies in the padding.
* ALIKED: sub-pixel positions on the full-resolution score map, converted with
  ``(w - 1, h - 1)`` from ``align_corners=True`` normalised coordinates: pixel centres already.
* XFeat: the image is resized (bilinear, half-pixel centres) to ``W' x H'``, multiples of 32,
  and kornia reports an integer pixel ``i`` of the resized image at ``i * W / W'``. The
  pixel-centre position is ``(i + 0.5) * W / W' - 0.5``; we add ``0.5 * (W / W' - 1)``
  (zero when ``W`` is a multiple of 32).

Defaults follow the published settings: DISK keeps at most ``num_keypoints`` = 8192 maxima of
a 5x5 NMS with score > 0 (the DISK HPatches cache used a 1024 px long side and 2048 / 8000
keypoints; set ``resize_max`` / ``max_keypoints`` for that); ALIKED-n16 with score threshold
0.2, NMS radius 2 and at most 5000 keypoints; XFeat top-k 4096 with threshold 0.05.
``resize_max`` is None (full resolution) for all three: the caller decides.

All three run a batch of same-size images through kornia at once (``_extract_batch``);
``_network`` is the dense network alone (for profiling).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import kornia.feature as KF
import torch
import torch.nn.functional as F
from kornia.geometry.subpix import nms2d
from torch import nn

from selfdesc.errors import ConfigError, WeightsError
from selfdesc.features.base import Extractor
from selfdesc.weights import load_state_checked, read_checkpoint, weight_file


def load_weights(module: nn.Module, path: Path, key: str | None = None, allowed_missing: tuple[str, ...] = ()) -> None:
    """Load the local file ``path`` (its entry ``key`` if given) into ``module``.

    Raises:
        WeightsError: unreadable file, or keys / shapes that do not fit the network.
    """
    state = read_checkpoint(path)
    if key is not None:
        if not isinstance(state, dict) or key not in state:
            raise WeightsError(f"{path}: expected a checkpoint with a '{key}' entry")
        state = state[key]
    load_state_checked(module, state, path, allowed_missing)


class _KorniaPeer(Extractor):
    """Shared part: local weights, eval mode, L2-normalised float32 outputs."""

    needs_weights: ClassVar[bool] = True

    def _finish(self, keypoints: torch.Tensor, scores: torch.Tensor, descriptors: torch.Tensor) -> dict[str, torch.Tensor]:
        return {
            "keypoints": keypoints.float().reshape(-1, 2),
            "scores": scores.float().reshape(-1),
            "descriptors": F.normalize(descriptors.float(), p=2, dim=1),
        }


class DISK(_KorniaPeer):
    """DISK (depth weights), 128-D. Options: ``num_keypoints`` 8192, ``window_size`` 5, ``score_threshold`` 0."""

    name = "disk"
    default_conf: ClassVar[dict[str, Any]] = {
        "weights_dir": None,
        "weights": "disk/depth-save.pth",
        "num_keypoints": 8192,
        "window_size": 5,
        "score_threshold": 0.0,
    }

    def _init(self, conf: dict[str, Any]) -> None:
        self.net = KF.DISK()
        load_weights(self.net, weight_file(conf["weights"], conf["weights_dir"], self.name), key="extractor")
        self.net.eval()

    def _network(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = images.shape[-2:]
        padded = F.pad(images, (0, -w % 16, 0, -h % 16))
        return self.net.heatmap_and_dense_descriptors(padded)

    def _extract_batch(self, images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        c = self.conf
        if max(images.shape[-2:]) <= 16:
            # the U-Net's instance norms need more than one pixel at 1/16 resolution
            empty = images.new_zeros((0, 2))
            return [self._finish(empty, empty[:, 0], empty.new_zeros((0, self.net.desc_dim)))] * images.shape[0]
        feats = self.net(
            images,
            n=c["num_keypoints"],
            window_size=int(c["window_size"]),
            score_threshold=float(c["score_threshold"]),
            pad_if_not_divisible=True,
        )
        return [self._finish(f.keypoints, f.detection_scores, f.descriptors) for f in feats]


class ALIKED(_KorniaPeer):
    """ALIKED. Options: ``model`` (aliked-n16), ``detection_threshold`` 0.2, ``nms_radius`` 2, ``num_keypoints`` 5000."""

    name = "aliked"
    default_conf: ClassVar[dict[str, Any]] = {
        "weights_dir": None,
        "model": "aliked-n16",
        "detection_threshold": 0.2,
        "nms_radius": 2,
        "num_keypoints": 5000,
    }
    models: ClassVar[tuple[str, ...]] = ("aliked-t16", "aliked-n16", "aliked-n16rot", "aliked-n32")

    def _init(self, conf: dict[str, Any]) -> None:
        if conf["model"] not in self.models:
            raise ConfigError(f"feature 'aliked': unknown model '{conf['model']}' (known: {', '.join(self.models)})")
        self.net = KF.ALIKED(
            model_name=conf["model"],
            max_num_keypoints=int(conf["num_keypoints"]),
            detection_threshold=float(conf["detection_threshold"]),
            nms_radius=int(conf["nms_radius"]),
        )
        path = weight_file(f"aliked/{conf['model']}.pth", conf["weights_dir"], self.name)
        # dkd.hw_grid is a constant grid built in the constructor, not part of the published files
        load_weights(self.net, path, allowed_missing=("dkd.hw_grid",))
        self.net.eval()

    def _network(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net.extract_dense_map(images)

    def _extract_batch(self, images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        return [self._finish(f.keypoints, f.keypoint_scores, f.descriptors) for f in self.net(images)]


class XFeat(_KorniaPeer):
    """XFeat sparse features, 64-D. Options: ``top_k`` 4096, ``detection_threshold`` 0.05."""

    name = "xfeat"
    default_conf: ClassVar[dict[str, Any]] = {
        "weights_dir": None,
        "weights": "xfeat/xfeat.pt",
        "top_k": 4096,
        "detection_threshold": 0.05,
    }

    def _init(self, conf: dict[str, Any]) -> None:
        self.net = KF.XFeat(top_k=int(conf["top_k"]), detection_threshold=float(conf["detection_threshold"]))
        load_weights(self.net.net, weight_file(conf["weights"], conf["weights_dir"], self.name))
        self.net.eval()

    def _network(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.net.net(self.net._preprocess_tensor(images)[0])

    def _extract_batch(self, images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """kornia's ``XFeat.detectAndCompute``, step by step, with a fixed number of host
        synchronisations per batch (kornia has two per image: a ``nonzero`` and a boolean index)."""
        c, xf = self.conf, self.net
        x, rh, rw = xf._preprocess_tensor(images)
        _, _, H1, W1 = x.shape
        M1, K1, R1 = xf.net(x)
        heat = xf._get_kpts_heatmap(K1)
        pos = padded_peaks(nms2d(heat, (5, 5), mask_only=True) & (heat > float(c["detection_threshold"])))
        scores = (sample_at(heat, pos, H1, W1, "nearest") * sample_at(R1, pos, H1, W1, "bilinear")).squeeze(-1)
        scores = scores.masked_fill((pos == -1).all(dim=-1), -1)
        scores, idx = torch.topk(scores, min(int(c["top_k"]), scores.shape[-1]), dim=-1)
        pos = torch.gather(pos, 1, idx[..., None].expand(-1, -1, 2))
        desc = F.normalize(sample_at(F.normalize(M1, dim=1), pos, H1, W1, "bicubic"), dim=-1)
        counts = (scores > 0).sum(dim=1).tolist()  # scores are sorted: the valid ones come first
        # kornia reports resized pixel i at i * W / W'; its centre is at (i + 0.5) * W / W' - 0.5
        kpts = torch.stack([(pos[..., 0] + 0.5) * rw - 0.5, (pos[..., 1] + 0.5) * rh - 0.5], dim=-1)
        return [self._finish(kpts[b, :n], scores[b, :n], desc[b, :n]) for b, n in enumerate(counts)]


def padded_peaks(mask: torch.Tensor) -> torch.Tensor:
    """``(B, 1, H, W)`` bool peaks -> ``(B, P, 2)`` int64 ``(x, y)`` in raster order, padded with -1
    (kornia's ``XFeat._nms`` output) with two host synchronisations for the whole batch."""
    B = mask.shape[0]
    found = mask[:, 0].nonzero()  # (M, 3): image, y, x in raster order
    counts = torch.bincount(found[:, 0], minlength=B)
    width = int(counts.max()) if len(found) else 0
    rank = torch.arange(len(found), device=mask.device) - (torch.cumsum(counts, 0) - counts)[found[:, 0]]
    out = torch.full((B, width, 2), -1, dtype=torch.long, device=mask.device)
    out[found[:, 0], rank] = found[:, [2, 1]]
    return out


def sample_at(fmap: torch.Tensor, pos: torch.Tensor, H: int, W: int, mode: str) -> torch.Tensor:
    """kornia's ``InterpolateSparse2d`` (``2 p / (W - 1) - 1``, ``align_corners=False``): ``(B, C, h, w)``
    at ``(B, N, 2)`` ``(x, y)`` -> ``(B, N, C)``, normalised with Python numbers (no host-to-device copy)."""
    p = pos.float()
    grid = torch.stack([2.0 * (p[..., 0] / float(W - 1)) - 1.0, 2.0 * (p[..., 1] / float(H - 1)) - 1.0], dim=-1)
    return F.grid_sample(fmap, grid.unsqueeze(-2).to(fmap.dtype), mode=mode, align_corners=False).permute(0, 2, 3, 1).squeeze(-2)


__all__ = ["DISK", "ALIKED", "XFeat", "load_weights", "padded_peaks", "sample_at"]
