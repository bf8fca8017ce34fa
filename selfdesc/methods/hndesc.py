"""HNDesc training step (methods.md §2): H-crops pairs, photometric augmentation, hard-negative
mining and the modified AP loss, plus (optionally) R2D2-style repeatability and reliability
heads trained jointly and self-supervised (§3.3), so the model detects its own keypoints.

``HNDesc(conf)`` is an ``nn.Module`` whose ``forward(batch)`` takes ``{"image": (B, 3, H, W)
in [0, 1], "index": (B,)}`` (the image-folder batch, on the device) and returns the losses.
``conf`` merges over :data:`DEFAULT_CONF` (see :mod:`selfdesc.config`).
"""
from __future__ import annotations

from dataclasses import fields
from typing import Any

import torch
from torch import nn

from selfdesc.errors import ConfigError
from selfdesc.losses.ap import APLossConfig, HNDescAPLoss
from selfdesc.losses.repeatability import cosim_loss, homography_grid, peaky_loss
from selfdesc.losses.triplet import TripletConfig, TripletLoss
from selfdesc.models.l2net import QuadL2Net
from selfdesc.models.sampling import sample_descriptors
from selfdesc.training.augment import PhotometricAugment, PhotometricConfig
from selfdesc.training.hcrops import HCropsConfig, make_pairs, random_textured_points
from selfdesc.training.mining import Miner

DEFAULT_CONF: dict[str, Any] = {
    "backbone": {"name": "r2d2", "final_relu": False, "heads": True, "dim": 128, "mchan": 4},
    "hcrops": {"crop_size": 192, "num_keypoints": 200},
    "augment": {"enabled": True},
    "miner": {"pool": "in_batch", "num_negatives": 20, "neg_radius": 5.0},
    "loss": {"name": "ap", "num_bins": 20, "kappa": 0.5, "plain_weight": 1.0, "margin": 1.0},
    "detector": {"weight_cosim": 1.0, "weight_peaky": 1.0, "patch_size": 16},
    "keypoints": {"source": "textured", "num_source_points": 1024},
}


def _dataclass_from(cls: type, values: dict[str, Any]):
    known = {f.name for f in fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown option(s) {', '.join(sorted(unknown))}")
    return cls(**values)


class HNDesc(nn.Module):
    """The HNDesc method (r2d2 backbone; see the module docstring)."""

    def __init__(self, conf: dict[str, Any] | None = None) -> None:
        super().__init__()
        from selfdesc.config import merge

        self.conf = merge(DEFAULT_CONF, conf or {})
        b = self.conf["backbone"]
        if b["name"] != "r2d2":
            raise ConfigError(f"HNDesc backbone '{b['name']}' is not wired into training yet (available: r2d2)")
        self.net = QuadL2Net({k: v for k, v in b.items() if k != "name"})
        self.hcrops = _dataclass_from(HCropsConfig, self.conf["hcrops"])
        self.augment = PhotometricAugment(_dataclass_from(PhotometricConfig, self.conf["augment"]))
        self.miner = _dataclass_from(Miner, self.conf["miner"])
        lc = self.conf["loss"]
        if lc["name"] == "ap":
            self.loss_fn: nn.Module = HNDescAPLoss(
                APLossConfig(
                    num_bins=lc["num_bins"],
                    num_negatives=self.miner.num_negatives,
                    final_relu=b["final_relu"],
                    kappa=lc["kappa"],
                    plain_weight=lc["plain_weight"],
                )
            )
        elif lc["name"] == "triplet":
            self.loss_fn = TripletLoss(TripletConfig(margin=lc["margin"]))
        else:
            raise ConfigError(f"unknown loss '{lc['name']}' (ap, triplet)")

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        images = batch["image"]
        # pair generation and augmentation: fp32, no graph (mixed precision is for the network)
        with torch.no_grad(), torch.autocast(images.device.type, enabled=False):
            kp = random_textured_points(images, self.conf["keypoints"]["num_source_points"])
            pairs = make_pairs(images, keypoints=kp, config=self.hcrops)
            A, B = self.augment(pairs["A"]), self.augment(pairs["B"])
        valid = pairs["valid"] & pairs["pair_valid"][:, None]
        out_a, out_b = self.net({"image": A}), self.net({"image": B})
        mined = self.miner.mine(
            out_a["descriptors"], out_b["descriptors"], pairs["kpA"], pairs["kpB"], valid, pairs["H_AB"], image_ids=batch.get("index")
        )
        reliability = None
        if "reliability" in out_a and isinstance(self.loss_fn, HNDescAPLoss):
            qb = mined["query_pair"]
            r_a = sample_descriptors(out_a["reliability"], pairs["kpA"], normalize=False)[qb, mined["query_index"], 0]
            r_b = sample_descriptors(out_b["reliability"], pairs["kpB"], normalize=False)[qb, mined["query_index"], 0]
            reliability = 0.5 * (r_a + r_b)
        if isinstance(self.loss_fn, HNDescAPLoss):
            res = self.loss_fn(mined["query"], mined["positive"], mined["negatives"], reliability=reliability)
        else:
            res = self.loss_fn(mined["query"], mined["positive"], mined["negatives"])
        out = {"loss": res["loss"], "desc_loss": res["loss"].detach(), "num_queries": torch.tensor(float(len(mined["query"])))}
        if "ap" in res:
            out["ap"] = res["ap"]
        if "repeatability" in out_a:
            d = self.conf["detector"]
            ok = pairs["pair_valid"]
            S = A.shape[-1]
            grid = homography_grid(pairs["H_AB"][ok].float(), (S, S), (S, S))
            rep_a, rep_b = out_a["repeatability"][ok], out_b["repeatability"][ok]
            cos = cosim_loss(rep_a, rep_b, grid, d["patch_size"])
            peaky = 0.5 * (peaky_loss(rep_a, d["patch_size"]) + peaky_loss(rep_b, d["patch_size"]))
            out["loss"] = out["loss"] + d["weight_cosim"] * cos + d["weight_peaky"] * peaky
            out["cosim"], out["peaky"] = cos.detach(), peaky.detach()
        return out
