"""HNDesc training step (methods.md §2): H-crops pairs, photometric augmentation, hard-negative
mining and the modified AP loss, plus (optionally, r2d2 backbone) R2D2-style repeatability and
reliability heads trained jointly and self-supervised (§3.3), so the model detects its own keypoints.

``HNDesc(conf)`` is an ``nn.Module`` whose ``forward(batch)`` takes the image-folder batch (on the
device; see :class:`selfdesc.training.image_folder.ImageFolder`): ``{"image": (B, 3, H, W) in
[0, 1], "index": (B,)}`` plus the extras asked for by :meth:`HNDesc.loader_options`
(``keypoints`` / ``keypoint_mask`` for SIFT anchors, ``image_b`` for stylization, ``neighbours`` /
``neighbour_index`` for the ``gd`` pool), and returns the losses. ``conf`` merges over
:attr:`HNDesc.default_conf` (see :mod:`selfdesc.config`).

Options beyond the released HNDesc (all off by default):

* ``backbone.name``: ``r2d2`` (dilated L2-Net, full resolution), ``caps`` (CAPS ResUNet fine
  map, stride 4, §2.2.1), ``superpoint`` (SuperPoint descriptor head, stride 8) or ``lite``
  (:class:`~selfdesc.models.litenet.LiteNet`: light single-pass encoder, descriptors at stride
  4, full-resolution keypoint heatmap, reliability). r2d2 and lite have detection
  heads (``heads: false`` is required for the others, ``heads: true`` for lite). ``mchan`` and
  ``final_relu`` are r2d2 options; ``kp_head`` (``dense``, translation-equivariant, default; or
  ``cell``, the round-5 SuperPoint-style cell softmax) and ``antialias`` are lite options.
* Detector losses (``detector``): R2D2's cosine-similarity and peakiness losses on the
  repeatability map (r2d2) or the heatmap (lite) (``weight_cosim``, ``weight_peaky``,
  ``patch_size``); lite adds the keypoint reprojection distance and dispersity of
  :func:`~selfdesc.losses.reprojection.reprojection_loss` (``weight_reproj``,
  ``weight_dispersity``; ``num_peaks`` NMS peaks of radius ``nms_radius`` per crop, soft-argmax
  window ``refine_radius`` and ``temperature``, which are stored with the exported model so that
  extraction refines keypoints the same way). With heads, the AP loss is weighted by the
  reliability map (sampled at the keypoints at the map's own stride).
* ``keypoints.source`` (anchors of the pairs): ``textured`` (random high-gradient pixels),
  ``sift`` (OpenCV SIFT computed by the loader), ``own`` (top-k NMS peaks of the network's
  repeatability map (r2d2) or heatmap (lite) on the batch, detached; ``textured`` before
  ``own_after_steps`` steps and for backbones without heads).
* ``stylize``: crop B comes from a stylized copy of the image with probability ``p`` (HNDesc:
  0.7), made online by ``stylizer`` in the loader or read from ``data.stylized_root``.
* ``miner.pool: gd``: negatives also from crops of each image's ``neighbours.num`` nearest
  images in a global index (``data.index``, built by ``selfdesc index``), loaded by the loader.
  ``selfgd``: the same with the network's own GeM global descriptors, retrieved over a memory
  of recent crops (:class:`~selfdesc.methods.parts.neighbours.CropMemory`, ``neighbours.memory_size``
  crops, descriptors recomputed every ``neighbours.refresh_every`` steps). As in HNDesc's
  ``APCriterionInBatchGD`` the neighbour crops go through the network in the training graph,
  so their negatives carry gradient like those of the B crops.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
from torch import nn

from selfdesc.config import merge, to_dataclass
from selfdesc.errors import ConfigError
from selfdesc.features.nms import top_k_peaks
from selfdesc.losses.ap import APLossConfig, HNDescAPLoss
from selfdesc.losses.repeatability import cosim_loss, homography_grid, peaky_loss
from selfdesc.losses.reprojection import reprojection_loss
from selfdesc.losses.triplet import TripletConfig, TripletLoss
from selfdesc.methods.parts.augment import PhotometricAugment, PhotometricConfig
from selfdesc.methods.parts.hcrops import HCropsConfig, make_pairs, random_textured_points
from selfdesc.methods.parts.mining import Miner
from selfdesc.methods.parts.neighbours import CropMemory
from selfdesc.models.backbones import build_backbone
from selfdesc.models.sampling import sample_descriptors
from selfdesc.retrieval.gem import gem_pool


#: the backbones (:mod:`selfdesc.models.backbones`) HNDesc trains
BACKBONES = ("r2d2", "caps", "superpoint", "lite")
#: ``backbone`` options of the lite backbone only
LITE_OPTIONS = ("kp_head", "antialias")
KEYPOINT_SOURCES = ("textured", "sift", "own")


def backbone_options(conf: dict[str, Any], detector: dict[str, Any]) -> dict[str, Any]:
    """The network options (``{"name": ..., **options}`` for
    :func:`~selfdesc.models.backbones.build_backbone`) of the method's ``backbone`` section;
    ``detector`` (the method's ``detector`` section) gives lite its sub-pixel window."""
    name = conf["name"]
    if name not in BACKBONES:
        raise ConfigError(f"unknown HNDesc backbone '{name}' (available: {', '.join(BACKBONES)})")
    if name == "r2d2":
        return {"name": name, **{k: v for k, v in conf.items() if k != "name" and k not in LITE_OPTIONS}}
    if name == "lite":
        if not conf["heads"] or conf["final_relu"]:
            raise ConfigError("method.backbone: 'lite' always has a keypoint head and signed descriptors; set heads: true and final_relu: false")
        lite = {"dim": conf["dim"], "kp_head": conf["kp_head"], "antialias": conf["antialias"]}
        return {"name": name, **lite, "refine_radius": detector["refine_radius"], "refine_temperature": detector["temperature"]}
    if conf["heads"] or conf["final_relu"]:
        raise ConfigError(f"method.backbone: '{name}' has no detection heads and signed descriptors; set heads: false and final_relu: false")
    if name == "caps":
        return {"name": name, "fine_dim": conf["dim"]}
    return {"name": name, "dim": conf["dim"], "detector": False}


def repeatability_peaks(repeatability: torch.Tensor, num: int, radius: int = 1, border: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``num`` strongest local maxima of repeatability maps.

    Args:
        repeatability: ``(B, 1, H, W)`` scores.
        num: peaks per map.
        radius: NMS half window (1: 3x3, as R2D2).
        border: pixels next to the edges that are never peaks.

    Returns:
        ``(B, num, 2)`` float32 ``(x, y)`` pixel centres (0 where missing) and ``(B, num)`` bool validity.
    """
    xy, _, valid = top_k_peaks(repeatability, num, radius, border)
    return xy.float(), valid


class HNDesc(nn.Module):
    """The HNDesc method (see the module docstring)."""

    default_conf: ClassVar[dict[str, Any]] = {
        "backbone": {"name": "r2d2", "final_relu": False, "heads": True, "dim": 128, "mchan": 4, "kp_head": "dense", "antialias": False},
        "hcrops": {"crop_size": 192, "num_keypoints": 200, "min_zoom": 0.8, "max_zoom_out": 1.0, "max_rot_deg": 15.0, "min_distort": [0.6, 0.6]},
        "augment": {"enabled": True},
        "miner": {"pool": "in_batch", "num_negatives": 20, "neg_radius": 5.0},
        "loss": {"name": "ap", "num_bins": 20, "kappa": 0.5, "plain_weight": 1.0, "margin": 1.0},
        "detector": {
            "weight_cosim": 1.0, "weight_peaky": 1.0, "patch_size": 16,
            "weight_reproj": 1.0, "weight_dispersity": 1.0, "num_peaks": 256, "nms_radius": 2, "refine_radius": 2, "temperature": 0.1,
        },
        "keypoints": {"source": "textured", "num_source_points": 1024, "own_after_steps": 1000, "own_nms_radius": 1, "own_border": 4},
        "stylize": {"enabled": False, "p": 0.7, "stylizer": "mixed", "style_bank": None},
        "neighbours": {"num": 1, "memory_size": 128, "refresh_every": 1000, "gem_p": 3.0},
    }

    def __init__(self, conf: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.conf = merge(self.default_conf, conf or {})
        b = self.conf["backbone"]
        self.net = build_backbone(backbone_options(b, self.conf["detector"]))
        self.stride = int(self.net.stride)
        if b["name"] == "caps":
            self.net.conv_coarse.requires_grad_(False)  # HNDesc discards the coarse branch (kept for weight files)
        self.heads = b["name"] in ("r2d2", "lite") and bool(b["heads"])
        self.hcrops = to_dataclass(HCropsConfig, self.conf["hcrops"])
        if self.hcrops.crop_size % self.stride:
            raise ConfigError(f"method.hcrops.crop_size {self.hcrops.crop_size} must be a multiple of the {b['name']} stride {self.stride}")
        self.augment = PhotometricAugment(to_dataclass(PhotometricConfig, self.conf["augment"]))
        self.miner = to_dataclass(Miner, self.conf["miner"])
        kp = self.conf["keypoints"]
        if kp["source"] not in KEYPOINT_SOURCES:
            raise ConfigError(f"method.keypoints.source: unknown '{kp['source']}' (available: {', '.join(KEYPOINT_SOURCES)})")
        if kp["source"] == "own":  # steps seen, to switch from textured to own keypoints; in the checkpoint
            self.register_buffer("own_steps", torch.zeros((), dtype=torch.int64))
        nb = self.conf["neighbours"]
        if nb["num"] < 1:
            raise ConfigError(f"method.neighbours.num must be >= 1, got {nb['num']}")
        self.memory = CropMemory(nb["memory_size"], self.hcrops.crop_size, b["dim"]) if self.miner.pool == "selfgd" else None
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

    # ------------------------------------------------------------------ plumbing
    def loader_options(self, data: dict[str, Any]) -> dict[str, Any]:
        """:class:`~selfdesc.training.image_folder.ImageFolder` options this configuration needs.

        Args:
            data: the run's ``data`` config section (``size``, ``stylized_root``, ``index``).
        """
        opts: dict[str, Any] = {"size": tuple(data["size"])}
        if self.conf["keypoints"]["source"] == "sift":
            opts.update(keypoints="sift", num_keypoints=self.conf["keypoints"]["num_source_points"])
        st = self.conf["stylize"]
        if data.get("stylized_root") and not st["enabled"]:
            raise ConfigError("data.stylized_root is set but method.stylize.enabled is false")
        if data.get("index") and self.miner.pool != "gd":
            raise ConfigError(f"data.index is set but method.miner.pool is '{self.miner.pool}' (the index is used by pool gd)")
        if st["enabled"]:
            opts.update(style_p=st["p"], stylized_root=data.get("stylized_root"))
            if not data.get("stylized_root"):
                opts.update(stylizer=st["stylizer"], style_bank=st["style_bank"])
        if self.miner.pool == "gd":
            if not data.get("index"):
                raise ConfigError("method.miner.pool gd needs data.index (a global index built by `selfdesc index`)")
            opts.update(index=data["index"], num_neighbours=self.conf["neighbours"]["num"])
        return opts

    def export(self) -> dict[str, Any]:
        """``{"conf": {"backbone": {...}}, "state_dict": network weights}`` for a feature extractor."""
        conf = {"name": self.conf["backbone"]["name"], **self.net.conf}
        conf = {k: list(v) if isinstance(v, tuple) else v for k, v in conf.items()}
        return {"conf": {"backbone": conf}, "state_dict": dict(self.net.state_dict())}

    def describe(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Network outputs of ``(B, 3, S, S)`` crops: ``descriptors`` ``(B, D, S/stride, S/stride)``
        (plus, r2d2 with heads: ``repeatability`` / ``reliability`` ``(B, 1, S, S)``; lite:
        ``heatmap`` ``(B, 1, S, S)``, ``reliability`` ``(B, 1, S/8, S/8)``)."""
        out = self.net({"image": images})
        return {"descriptors": out["fine"]} if "fine" in out else out

    def global_descriptors(self, images: torch.Tensor) -> torch.Tensor:
        """GeM-pooled, L2-normalised ``(B, D)`` global descriptors of ``(B, 3, S, S)`` crops."""
        return gem_pool(self.describe(images)["descriptors"].float(), self.conf["neighbours"]["gem_p"])

    # ------------------------------------------------------------------ data
    def _source_keypoints(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Anchor keypoints ``(B, N, 2)`` on the full images and their validity (``None``: all valid)."""
        kc, images = self.conf["keypoints"], batch["image"]
        if kc["source"] == "sift":
            if "keypoints" not in batch:
                raise ConfigError("keypoints.source sift: the batch has no 'keypoints' (build the ImageFolder with loader_options())")
            return batch["keypoints"], batch["keypoint_mask"]
        if kc["source"] == "own" and self.heads and int(self.own_steps) >= kc["own_after_steps"]:
            was_training = self.net.training
            self.net.eval()
            out = self.net({"image": images})
            rep = out["repeatability"] if "repeatability" in out else out["heatmap"]
            self.net.train(was_training)
            return repeatability_peaks(rep, kc["num_source_points"], kc["own_nms_radius"], kc["own_border"])
        return random_textured_points(images, kc["num_source_points"]), None

    def _neighbour_crops(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``gd``: one H-crop of each neighbour image: crops, keypoints, validity, image ids."""
        images, ids = batch["neighbours"].flatten(0, 1), batch["neighbour_index"].flatten()
        kp = random_textured_points(images, self.conf["keypoints"]["num_source_points"])
        crops = make_pairs(images, keypoints=kp, config=self.hcrops)
        return crops["A"], crops["kpA"], crops["valid"] & crops["pair_valid"][:, None], ids

    def _memory_crops(self, global_desc: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``selfgd``: the stored crops nearest to the batch images, with textured keypoints."""
        assert self.memory is not None
        slots, ok = self.memory.nearest(global_desc, ids, self.conf["neighbours"]["num"])
        slots = slots[ok]
        crops = self.memory.images(slots)
        n = min(self.hcrops.num_keypoints, (self.hcrops.crop_size - 8) ** 2)
        kp = random_textured_points(crops, n) if len(slots) else crops.new_zeros(0, n, 2)
        return crops, kp, torch.ones(kp.shape[:2], dtype=torch.bool, device=kp.device), self.memory.ids[slots]

    # ------------------------------------------------------------------ step
    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        images = batch["image"]
        if self.conf["stylize"]["enabled"] and "image_b" not in batch:
            raise ConfigError("stylize.enabled: the batch has no 'image_b' (build the ImageFolder with loader_options())")
        pool = self.miner.pool
        # pair generation and augmentation: fp32, no graph (mixed precision is for the network)
        with torch.no_grad(), torch.autocast(images.device.type, enabled=False):
            kp, kp_mask = self._source_keypoints(batch)
            pairs = make_pairs(images, keypoints=kp, keypoint_mask=kp_mask, config=self.hcrops, images_b=batch.get("image_b"))
            A, B = self.augment(pairs["A"]), self.augment(pairs["B"])
            extra = self._neighbour_crops(batch) if pool == "gd" else None
        if "own_steps" in self._buffers and self.training:
            self.own_steps += 1
        valid = pairs["valid"] & pairs["pair_valid"][:, None]
        ids = batch.get("index")
        out_a, out_b = self.describe(A), self.describe(B)
        if pool == "selfgd":
            assert self.memory is not None and ids is not None
            global_a = gem_pool(out_a["descriptors"].detach().float(), self.conf["neighbours"]["gem_p"])
            extra = self._memory_crops(global_a, ids)
        miner, extra_args = self.miner, {}
        if extra is not None and len(extra[0]):
            crops, e_kp, e_valid, e_ids = extra
            with torch.no_grad(), torch.autocast(images.device.type, enabled=False):
                crops = self.augment(crops)
            extra_args = {
                "extra_desc": self.describe(crops)["descriptors"],
                "extra_keypoints": e_kp,
                "extra_valid": e_valid,
                "extra_image_ids": e_ids,
            }
        elif extra is not None:  # nothing retrieved yet (empty memory): in-batch negatives only
            miner = dataclasses.replace(self.miner, pool="in_batch")
        mined = miner.mine(
            out_a["descriptors"], out_b["descriptors"], pairs["kpA"], pairs["kpB"], valid, pairs["H_AB"],
            image_ids=ids, stride=self.stride, **extra_args,
        )
        reliability = None
        if "reliability" in out_a and isinstance(self.loss_fn, HNDescAPLoss):
            qb, rel_stride = mined["query_pair"], A.shape[-1] // out_a["reliability"].shape[-1]
            r_a = sample_descriptors(out_a["reliability"], pairs["kpA"], normalize=False, stride=rel_stride)[qb, mined["query_index"], 0]
            r_b = sample_descriptors(out_b["reliability"], pairs["kpB"], normalize=False, stride=rel_stride)[qb, mined["query_index"], 0]
            reliability = 0.5 * (r_a + r_b)
        if isinstance(self.loss_fn, HNDescAPLoss):
            res = self.loss_fn(mined["query"], mined["positive"], mined["negatives"], reliability=reliability)
        else:
            res = self.loss_fn(mined["query"], mined["positive"], mined["negatives"])
        out = {"loss": res["loss"], "desc_loss": res["loss"].detach(), "num_queries": torch.tensor(float(len(mined["query"])))}
        if "ap" in res:
            out["ap"] = res["ap"]
        if extra is not None:
            out["neighbour_crops"] = torch.tensor(float(len(extra_args.get("extra_keypoints", ()))))
        if "repeatability" in out_a or "heatmap" in out_a:
            out.update(self._detector_losses(out_a, out_b, pairs, out["loss"]))
        if pool == "selfgd" and self.training:
            self._update_memory(pairs, global_a, ids)
        return out

    def _detector_losses(
        self, out_a: dict[str, torch.Tensor], out_b: dict[str, torch.Tensor], pairs: dict[str, torch.Tensor], loss: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """The total ``loss`` plus the detector terms (see the module docstring), on the valid pairs
        (none: ``loss`` alone, instead of NaN terms)."""
        d = self.conf["detector"]
        ok = pairs["pair_valid"]
        if not bool(ok.any()):
            return {"loss": loss}
        S = pairs["A"].shape[-1]
        grid = homography_grid(pairs["H_AB"][ok].float(), (S, S), (S, S))
        key = "repeatability" if "repeatability" in out_a else "heatmap"
        rep_a, rep_b = out_a[key][ok].float(), out_b[key][ok].float()
        cos = cosim_loss(rep_a, rep_b, grid, d["patch_size"])
        peaky = 0.5 * (peaky_loss(rep_a, d["patch_size"]) + peaky_loss(rep_b, d["patch_size"]))
        total = loss + d["weight_cosim"] * cos + d["weight_peaky"] * peaky
        if key == "repeatability":
            return {"loss": total, "cosim": cos.detach(), "peaky": peaky.detach()}
        kp = reprojection_loss(rep_a, rep_b, pairs["H_AB"][ok], d["num_peaks"], d["nms_radius"], d["refine_radius"], d["temperature"])
        total = total + d["weight_reproj"] * kp["reprojection"] + d["weight_dispersity"] * kp["dispersity"]
        return {
            "loss": total,
            "cosim": cos.detach(),
            "peaky": peaky.detach(),
            "reproj": kp["reprojection"].detach(),
            "dispersity": kp["dispersity"].detach(),
            "kp_points": kp["num_points"],
        }

    @torch.no_grad()
    def _update_memory(self, pairs: dict[str, torch.Tensor], global_a: torch.Tensor, ids: torch.Tensor) -> None:
        """Store this batch's valid A crops; every ``refresh_every`` steps recompute all descriptors."""
        assert self.memory is not None
        ok = pairs["pair_valid"]
        self.memory.push(pairs["A"][ok], global_a[ok], ids[ok])
        every = self.conf["neighbours"]["refresh_every"]
        if every and int(self.memory.pushes) % every == 0:
            was_training = self.net.training
            self.net.eval()
            self.memory.refresh(self.global_descriptors, batch_size=len(ok))
            self.net.train(was_training)
