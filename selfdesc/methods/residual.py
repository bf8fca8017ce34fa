"""Residual descriptors training step (methods.md §7.3, §12; Shrestha et al. 2023).

Per step, on the device: the engine's H-crops pairs (:func:`~selfdesc.methods.parts.hcrops.make_pairs`)
and photometric augmentation of both crops; then, on the CPU, the handcrafted ``g`` (SIFT) on
the augmented crops. Positives are mutual nearest neighbours between the keypoints of A,
reprojected into B with ``H_AB``, and the keypoints of B, within ``pos_radius`` pixels (ties
between keypoints at the same position, e.g. SIFT's multiple orientations, go to the most
similar ``g`` descriptor). Keypoints within ``border`` pixels of a crop's black,
outside-the-image area are dropped. For each anchor the hardest negative is the closest
descriptor among all B keypoints of the batch, except those of pairs from the same image that
lie within ``neg_radius`` pixels of the anchor's reprojection. Loss: the paper's hinge
``max(0, y(a, p) - y(a, n) + m)`` with ``m = 2`` on squared (default) or plain L2 distances
(:class:`~selfdesc.losses.triplet.TripletLoss`). Only ``f`` and ``h`` are trained.

``Residual(conf)`` takes the image-folder batch ``{"image": (B, 3, H, W) in [0, 1], "index": (B,)}``;
``conf`` merges over :attr:`Residual.default_conf`; :meth:`Residual.export` gives what the
``residual-*`` features need.
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from selfdesc.config import merge, to_dataclass
from selfdesc.errors import ConfigError
from selfdesc.features.residual import Handcrafted
from selfdesc.geometry.homography import warp_points_torch
from selfdesc.losses.hardest import select_hardest
from selfdesc.losses.triplet import TripletConfig, TripletLoss
from selfdesc.methods.parts.augment import PhotometricAugment, PhotometricConfig
from selfdesc.methods.parts.hcrops import HCropsConfig, make_pairs, warp_crops
from selfdesc.models.residual import ResidualNet


#: ``g`` options that define the descriptor (exported with the model); the rest are detector settings
_G_IDENTITY = ("name", "upright")


def reprojection_matches(
    kp_a: torch.Tensor,
    kp_b: torch.Tensor,
    mask_a: torch.Tensor,
    mask_b: torch.Tensor,
    H_ab: torch.Tensor,
    radius: float,
    desc_a: torch.Tensor | None = None,
    desc_b: torch.Tensor | None = None,
    tie_px: float = 0.01,
) -> torch.Tensor:
    """Mutual nearest keypoints of B for each keypoint of A after reprojection.

    The cost of ``(i, j)`` is ``|H_ab(kp_a[i]) - kp_b[j]|`` plus, with descriptors,
    ``tie_px * (1 - <desc_a[i], desc_b[j]>)``: a tie-break between keypoints at the same place
    that moves no match by more than ``2 * tie_px`` pixels.

    Args:
        kp_a, kp_b: ``(B, N, 2)``, ``(B, M, 2)`` ``(x, y)`` pixel centres in A and B.
        mask_a, mask_b: ``(B, N)``, ``(B, M)`` bool, valid keypoints.
        H_ab: ``(B, 3, 3)`` A pixels to B pixels.
        radius: largest reprojection distance of a match, pixels.
        desc_a, desc_b: optional unit descriptors ``(B, N, D)``, ``(B, M, D)`` for the tie-break.

    Returns:
        ``(B, N)`` long: index of the matched keypoint of B, ``-1`` where none.
    """
    proj = warp_points_torch(H_ab.to(torch.float64), kp_a.to(torch.float64))
    dist = torch.cdist(proj, kp_b.to(torch.float64))  # (B, N, M)
    cost = dist if desc_a is None else dist + tie_px * (1 - desc_a.double() @ desc_b.double().transpose(1, 2))
    ok = mask_a[:, :, None] & mask_b[:, None, :] & (dist <= radius)
    cost = cost.masked_fill(~ok, float("inf"))
    if cost.shape[2] == 0:
        return torch.full(kp_a.shape[:2], -1, dtype=torch.long, device=kp_a.device)
    best_b = cost.argmin(dim=2)  # (B, N)
    best_a = cost.argmin(dim=1)  # (B, M)
    mutual = best_a.gather(1, best_b) == torch.arange(kp_a.shape[1], device=kp_a.device)[None]
    found = mutual & torch.isfinite(cost.gather(2, best_b[..., None])[..., 0])
    return torch.where(found, best_b, -1)


def valid_region(H: torch.Tensor, image_shape: tuple[int, int], size: int, border: int) -> torch.Tensor:
    """``(B, size, size)`` bool: crop pixels at least ``border`` px away from any pixel outside the image.

    Args:
        H: ``(B, 3, 3)`` image pixels to crop pixels.
        image_shape: ``(H, W)`` of the (fully valid) source images.
    """
    ones = torch.ones(len(H), 1, *image_shape, device=H.device)
    inside = warp_crops(ones, H.float(), size) > 0.999
    if border > 0:
        inside = -F.max_pool2d(-inside.float(), 2 * border + 1, stride=1, padding=border) > 0.5
    return inside[:, 0]


def _lookup(region: torch.Tensor, kp: torch.Tensor) -> torch.Tensor:
    """``region`` ``(B, S, S)`` bool at the nearest pixel of ``kp`` ``(B, N, 2)`` -> ``(B, N)``."""
    S = region.shape[-1]
    idx = kp.round().long().clamp(0, S - 1)
    return region.flatten(1).gather(1, idx[..., 1] * S + idx[..., 0])


class Residual(nn.Module):
    """The residual-descriptor method (see the module docstring)."""

    default_conf: ClassVar[dict[str, Any]] = {
        "model": ResidualNet.default_conf,
        "handcrafted": {**Handcrafted.default_conf, "max_keypoints": 512},
        # H-crops options (HCropsConfig); keypoints for make_pairs' overlap test are random textured points
        "hcrops": {"crop_size": 256, "min_zoom": 0.8, "max_zoom_out": 1.0, "max_rot_deg": 15.0, "num_source_points": 256, "min_texture_std": 20.0 / 255.0},
        "augment": {"enabled": True},
        "pos_radius": 3.0,
        "neg_radius": 5.0,
        "border": 4,
        "loss": {"margin": 2.0, "squared": True},
        "threads": 8,
    }

    def __init__(self, conf: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.conf = merge(self.default_conf, conf or {}, open_keys=["hcrops", "augment"])
        self.g = Handcrafted(self.conf["handcrafted"])
        self.net = ResidualNet(self.conf["model"])
        self.hcrops = to_dataclass(HCropsConfig, self.conf["hcrops"])
        self.augment = PhotometricAugment(to_dataclass(PhotometricConfig, self.conf["augment"]))
        self.loss_fn = TripletLoss(to_dataclass(TripletConfig, self.conf["loss"]))
        if self.conf["pos_radius"] <= 0 or self.conf["neg_radius"] < self.conf["pos_radius"]:
            raise ConfigError(f"need 0 < pos_radius <= neg_radius, got {self.conf['pos_radius']} and {self.conf['neg_radius']}")

    def export(self) -> dict[str, Any]:
        """``{"conf": {"model", "handcrafted"}, "state_dict"}``: what the ``residual-*`` features rebuild."""
        g = {k: self.g.conf[k] for k in _G_IDENTITY}
        return {"conf": {"model": self.net.conf, "handcrafted": g}, "state_dict": self.net.state_dict()}

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        images = batch["image"]
        B = len(images)
        S = self.hcrops.crop_size
        with torch.no_grad(), torch.autocast(images.device.type, enabled=False):
            pairs = make_pairs(images.float(), config=self.hcrops)
            crops = torch.cat([self.augment(pairs["A"]), self.augment(pairs["B"])])
            region = valid_region(torch.cat([pairs["H1"], pairs["H2"]]), tuple(images.shape[-2:]), S, int(self.conf["border"]))
            g = self.g.batch(crops, threads=int(self.conf["threads"]))
            ok = g["mask"] & _lookup(region, g["keypoints"]) & pairs["pair_valid"].repeat(2)[:, None]
            kp_a, kp_b, ok_a, ok_b = g["keypoints"][:B], g["keypoints"][B:], ok[:B], ok[B:]
            H_ab = pairs["H_AB"].float()
            match = reprojection_matches(
                kp_a, kp_b, ok_a, ok_b, H_ab, float(self.conf["pos_radius"]), g["descriptors"][:B], g["descriptors"][B:]
            )
        desc = self.net({"image": crops, "keypoints": g["keypoints"], "handcrafted": g["descriptors"]})["descriptors"].float()
        desc_a, desc_b = desc[:B], desc[B:]
        qb, qi = (match >= 0).nonzero(as_tuple=True)
        query = desc_a[qb, qi]
        positive = desc_b[qb, match[qb, qi]]
        # negative pool: every valid keypoint of every B crop
        pb, pj = ok_b.nonzero(as_tuple=True)
        pool = desc_b[pb, pj]
        with torch.no_grad():
            target = warp_points_torch(H_ab[qb], kp_a[qb, qi][:, None])[:, 0]  # (Q, 2) in B
            ids = batch.get("index", torch.arange(B, device=images.device)).to(images.device)
            same_image = ids[qb][:, None] == ids[pb][None, :]
            near = (kp_b[pb, pj][None] - target[:, None]).norm(dim=-1) <= float(self.conf["neg_radius"])
            allowed = ~same_image | ((qb[:, None] == pb[None, :]) & ~near)
            index, count = select_hardest(query.detach() @ pool.detach().T, allowed, 1)
        res = self.loss_fn(query, positive, pool[index], neg_mask=(count > 0)[:, None])
        with torch.no_grad():
            d_pos = (query - positive).norm(dim=-1)
            d_neg = (query - pool[index[:, 0]]).norm(dim=-1)
            accuracy = ((d_pos < d_neg) & (count > 0)).float().sum() / max(len(query), 1)
        return {
            "loss": res["loss"],
            "active": res["active"].detach(),
            "accuracy": accuracy,
            "positives_per_pair": torch.tensor(len(query) / B),
            "keypoints_per_crop": ok.float().sum() / (2 * B),
        }
