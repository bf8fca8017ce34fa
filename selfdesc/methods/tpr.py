"""TPR training step (Wang et al., CVPR 2023; spec §6 and §12): BYOL-style learning of dense local
features without negatives, with saliency weighting, soft labels and a curriculum.

Online branch: backbone ``f`` (VGG / ASLFeat / Swin, each with its detector) -> projector
``g_o`` -> predictor ``q``; target branch: backbone + projector ``g_t`` whose parameters are an
EMA of the online ones (:mod:`selfdesc.methods.parts.ema`, updated in :meth:`TPR.after_step`, which
the trainer calls after every optimiser step), evaluated without gradient. Predictor (and the
optional projector) are 1x1-conv MLPs ``C -> hidden -> out`` with BatchNorm + ReLU (BYOL's, made
dense). By default there is no projector (``projector.enabled: false``): the prediction loss acts
on the descriptor map the extractor outputs (issue 15: invariance learned in a projector space
did not reach the descriptors).

One step (``forward``): H-crops pairs (A, B) with photometric augmentation are made on the
device; both views go through both branches; the cells of each view's descriptor map (a dense
grid, warped by the pair homography, kept where it lands between the first and last cell centres
of the other view, :func:`within_cells`) are the correspondences ``c``, in both directions
(A -> B and B -> A). The loss (:mod:`selfdesc.losses.tpr`) compares ``q(g_o(z))`` at ``c`` with
``g_t(z')`` at its correspondence, weighted by the detection scores of both views (detached by
default), with hard labels (1) or soft labels computed from the target features of both views
(the confidence of each positive). The curriculum (``curriculum``) ramps ``alpha`` of the soft
labels and the transformation strength (H-crops ranges from ``hcrops`` to ``hcrops_hard``) over
``schedule_steps``; the step count is the buffer ``num_steps`` (counted in ``forward`` during
training, saved in the checkpoint so a resumed run continues the schedules exactly).

Detector loss (``detector.weight``): ``-sum_c w_c m_c`` with the saliency weights ``w_c`` (with
gradient) and the constant margin ``m_c = <d_c, d'_c> - <d_c, d'_{c + shift}>`` of the online
descriptors: the scores move towards cells whose descriptor is distinctive, instead of towards
cells where the prediction loss is already low (what the saliency gradient of the main loss
rewards: flat regions).

Collapse and locality: the predictor + EMA target are BYOL's guard; the stabiliser
``uniformity_weight *`` :func:`~selfdesc.losses.tpr.local_uniformity` spreads the descriptors of
the cells of each view over the sphere (nothing in a positive-only loss makes neighbouring
locations differ; no correspondence is used as a negative); a variance hinge
``var_weight * mean_d relu(min_std - sqrt(D) std_d)`` and the decorrelation term ``cov_weight *``
:func:`~selfdesc.losses.tpr.covariance_penalty` (off by default: it measured worse, docs/tpr.md);
the logged ``desc_std`` / ``eff_rank`` of the descriptors (:func:`~selfdesc.losses.tpr.collapse_metrics`).

Every choice not on the TPR slides is a reconstruction ([INFER] in spec §6.3), see docs/tpr.md.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from selfdesc.config import merge, to_dataclass
from selfdesc.errors import ConfigError
from selfdesc.losses.tpr import (
    collapse_metrics,
    covariance_penalty,
    local_uniformity,
    ramp,
    saliency_weights,
    soft_labels,
    uniform_weights,
    weighted_loss,
)
from selfdesc.methods.parts.augment import PhotometricAugment, PhotometricConfig
from selfdesc.methods.parts.ema import ema_decay, ema_update_, make_target
from selfdesc.methods.parts.hcrops import HCropsConfig, dense_grid_correspondences, make_pairs, random_textured_points
from selfdesc.models.backbones import backbone_class, build_backbone
from selfdesc.models.deform import sample_map

#: the backbones (:mod:`selfdesc.models.backbones`) TPR trains
BACKBONES = ("vgg", "aslfeat", "swin")

#: H-crops fields the transformation-strength curriculum interpolates
CURRICULUM_FIELDS = ("min_zoom", "max_zoom_out", "max_rot_deg", "min_distort", "center_jitter")


def _random_cells(values: torch.Tensor, mask: torch.Tensor, k: int) -> torch.Tensor:
    """``(B, k', C)``: up to ``k`` random valid rows of ``values`` ``(B, N, C)`` per item (``k'`` = fewest valid, >= 2)."""
    k = max(2, min(k, int(mask.sum(1).min().clamp_min(2))))
    keys = torch.rand(mask.shape, device=values.device) + mask.to(values.dtype)  # valid cells first
    idx = keys.topk(k, dim=1).indices
    return values.gather(1, idx[..., None].expand(-1, -1, values.shape[-1]))


def within_cells(points: torch.Tensor, size: int, stride: int, offset: float) -> torch.Tensor:
    """``(B, N)`` bool: ``points`` ``(B, N, 2)`` lie between the first and last cell centres of a
    ``size x size`` view's map (cell ``j`` at pixel ``stride * j + offset``), where bilinear reads
    are exact; outside that band :func:`~selfdesc.models.deform.sample_map` repeats the border cell."""
    last = offset + stride * math.floor((size - 1 - offset) / stride)
    return ((points >= offset) & (points <= last)).all(dim=-1)


def _mlp(cin: int, hidden: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, hidden, 1), nn.BatchNorm2d(hidden), nn.ReLU(inplace=True), nn.Conv2d(hidden, cout, 1))


class Encoder(nn.Module):
    """Backbone + projector; ``forward(images)`` adds ``"projection"`` (L2-normalised) to the backbone output."""

    def __init__(self, backbone: nn.Module, projector: nn.Module) -> None:
        super().__init__()
        self.backbone, self.projector = backbone, projector

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.backbone(images)
        out["projection"] = self.projector(out["features"])
        return out


class TPR(nn.Module):
    """The TPR method (see the module docstring); ``conf`` merges over :attr:`TPR.default_conf`."""

    default_conf: ClassVar[dict[str, Any]] = {
        "backbone": {"name": "aslfeat", **{name: dict(backbone_class(name).default_conf) for name in BACKBONES}},
        "projector": {"enabled": False, "hidden": None, "out": None},  # None: 2 * dim and dim; disabled: identity
        "predictor": {"hidden": None},  # None: 2 * projector out
        "ema": {"base": 0.99},
        "schedule_steps": 20000,
        "hcrops": {**dataclasses.asdict(HCropsConfig()), "crop_size": 192, "num_keypoints": 16, "min_distort": [0.6, 0.6]},
        "hcrops_hard": {"min_zoom": 0.5, "max_zoom_out": 2.0, "max_rot_deg": 30.0, "min_distort": [0.4, 0.4]},
        "augment": {"enabled": True},
        "loss": {"labels": "soft", "lambda": 1.0, "saliency": True, "detach_saliency": True},
        "detector": {"weight": 1.0, "shift": 8.0},
        "curriculum": {"shape": "linear", "alpha": [0.0, 1.0], "strength": [0.0, 1.0]},
        "collapse": {"var_weight": 1.0, "min_std": 0.5, "cov_weight": 0.0, "uniformity_weight": 0.02, "uniformity_t": 2.0, "uniformity_points": 256, "metrics_points": 1024},
        "keypoints": {"num_source_points": 256},
    }

    def __init__(self, conf: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.conf = c = merge(self.default_conf, conf or {})
        name = c["backbone"]["name"]
        if name not in BACKBONES:
            raise ConfigError(f"TPR: unknown backbone '{name}' (available: {', '.join(BACKBONES)})")
        self.backbone_conf = {"name": name, **c["backbone"][name]}
        backbone = build_backbone(self.backbone_conf)
        dim = int(backbone.dim)
        pc = c["projector"]
        out = int(pc["out"] or dim) if pc["enabled"] else dim
        projector = _mlp(dim, int(pc["hidden"] or 2 * dim), out) if pc["enabled"] else nn.Identity()
        self.online = Encoder(backbone, projector)
        self.predictor = _mlp(out, int(c["predictor"]["hidden"] or 2 * out), out)
        self.target = make_target(self.online)
        self.register_buffer("num_steps", torch.zeros((), dtype=torch.int64))
        self.tau = float(c["ema"]["base"])

        self.crops = to_dataclass(HCropsConfig, c["hcrops"])
        unknown = set(c["hcrops_hard"]) - set(CURRICULUM_FIELDS)
        if unknown:
            raise ConfigError(f"TPR hcrops_hard: unknown field(s) {', '.join(sorted(unknown))} (curriculum fields: {', '.join(CURRICULUM_FIELDS)})")
        self.crops_at(1.0)  # validates the hard end
        self.augment = PhotometricAugment(to_dataclass(PhotometricConfig, c["augment"]))
        lc = c["loss"]
        if lc["labels"] not in ("soft", "hard"):
            raise ConfigError(f"TPR loss.labels: unknown '{lc['labels']}' (soft, hard)")
        for key in ("alpha", "strength"):
            if len(c["curriculum"][key]) != 2:
                raise ConfigError(f"TPR curriculum.{key}: expected [start, end], got {c['curriculum'][key]}")
        ramp(0.0, 0.0, 1.0, c["curriculum"]["shape"])  # validates the shape

    # ------------------------------------------------------------------ schedules
    def progress(self) -> float:
        """Fraction of ``schedule_steps`` done (from the ``num_steps`` buffer), clamped to [0, 1]."""
        return min(1.0, int(self.num_steps) / max(1, int(self.conf["schedule_steps"])))

    def curriculum(self, progress: float) -> tuple[float, float]:
        """``(alpha, strength)`` of the curriculum at ``progress``."""
        cc = self.conf["curriculum"]
        return ramp(progress, *cc["alpha"], cc["shape"]), ramp(progress, *cc["strength"], cc["shape"])

    def crops_at(self, strength: float) -> HCropsConfig:
        """H-crops ranges at transformation ``strength``: ``hcrops`` at 0, ``hcrops_hard`` at 1, linear between."""
        values = {}
        for key, hard in self.conf["hcrops_hard"].items():
            easy = getattr(self.crops, key)
            if isinstance(easy, tuple):
                values[key] = tuple(e + strength * (h - e) for e, h in zip(easy, hard, strict=True))
            else:
                values[key] = easy + strength * (hard - easy)
        return dataclasses.replace(self.crops, **values)

    def after_step(self, step: int) -> None:
        """EMA update of the target branch after optimiser step ``step`` (0-based), ``tau`` by BYOL's schedule."""
        self.tau = ema_decay(step, int(self.conf["schedule_steps"]), float(self.conf["ema"]["base"]))
        ema_update_(self.target, self.online, self.tau)

    # ------------------------------------------------------------------ step
    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        c = self.conf
        images = batch["image"]
        alpha, strength = self.curriculum(self.progress())
        if self.training:
            self.num_steps += 1
        crops = self.crops_at(strength)
        with torch.no_grad(), torch.autocast(images.device.type, enabled=False):
            kp = random_textured_points(images, c["keypoints"]["num_source_points"])
            pairs = make_pairs(images, keypoints=kp, config=crops)
            views = torch.cat([self.augment(pairs["A"]), self.augment(pairs["B"])])
        n = len(images)
        other = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(images.device)  # the other view of each view
        H = pairs["H_AB"].double()
        H = torch.cat([H, torch.linalg.inv(H)]).float()  # view -> other view pixels
        bb = self.online.backbone
        pts, pts_other, inside = dense_grid_correspondences(H, crops.crop_size, bb.stride, bb.offset)
        S = crops.crop_size
        covered = within_cells(pts_other, S, bb.stride, bb.offset) & within_cells(pts_other, S, bb.score_stride, bb.score_offset)
        mask = inside & covered & pairs["pair_valid"].repeat(2)[:, None]

        online = self.online(views)
        prediction = F.normalize(self.predictor(online["projection"]), dim=1)
        with torch.no_grad():
            target = F.normalize(self.target(views)["projection"], dim=1)
        p = sample_map(prediction, pts, bb.stride, bb.offset, normalize=True).float()
        t_other = sample_map(target[other], pts_other, bb.stride, bb.offset, normalize=True).float()

        lc = c["loss"]
        s = sample_map(online["scores"], pts, bb.score_stride, bb.score_offset)[..., 0].float()
        s_other = sample_map(online["scores"][other], pts_other, bb.score_stride, bb.score_offset)[..., 0].float()
        saliency = saliency_weights(s, s_other, mask)
        if lc["saliency"]:
            weights = saliency.detach() if lc["detach_saliency"] else saliency
        else:
            weights = uniform_weights(mask)
        labels = None
        if lc["labels"] == "soft":
            t_self = sample_map(target, pts, bb.stride, bb.offset, normalize=True).float()
            labels = soft_labels(t_self, t_other, alpha, float(lc["lambda"]))
        has = mask.any(1)
        per_pair = weighted_loss(p, t_other, weights, labels)
        loss = per_pair[has].mean() if bool(has.any()) else per_pair.sum() * 0.0

        # collapse guards and metrics on the online descriptors (what the extractor outputs)
        desc_maps = online["features"]
        desc_grid = sample_map(desc_maps, pts, bb.stride, bb.offset, normalize=True).float()
        desc = desc_grid[mask]
        cg = c["collapse"]
        cells = _random_cells(desc_grid[has], mask[has], int(cg["uniformity_points"]))
        uniformity = local_uniformity(cells, float(cg["uniformity_t"])) if len(cells) else desc_grid.sum() * 0.0
        loss = loss + float(cg["uniformity_weight"]) * uniformity
        # detector: saliency (with gradient) towards cells whose descriptor is distinctive, i.e. more
        # similar at the correspondence than ``shift`` px away from it (the margin is a constant here)
        dc = c["detector"]
        with torch.no_grad():
            d_other = sample_map(desc_maps[other], pts_other, bb.stride, bb.offset, normalize=True).float()
            angle = torch.rand(pts_other.shape[:2], device=pts.device) * (2 * torch.pi)
            shifted = pts_other + float(dc["shift"]) * torch.stack([angle.cos(), angle.sin()], -1)
            d_shift = sample_map(desc_maps[other], shifted, bb.stride, bb.offset, normalize=True).float()
            margin = ((d_other - d_shift) * desc_grid).sum(-1)
        det = -(saliency * margin).sum(1)
        det_loss = det[has].mean() if bool(has.any()) else det.sum() * 0.0
        loss = loss + float(dc["weight"]) * det_loss
        std = desc.std(0, unbiased=False) * desc.shape[-1] ** 0.5 if len(desc) > 1 else desc.new_ones(desc.shape[-1])
        guard = F.relu(float(cg["min_std"]) - std).mean()
        loss = loss + float(cg["var_weight"]) * guard
        cov = covariance_penalty(desc) if float(cg["cov_weight"]) > 0 else guard.new_zeros(())
        loss = loss + float(cg["cov_weight"]) * cov
        keep = torch.randperm(len(desc), device=desc.device)[: int(cg["metrics_points"])]
        metrics = collapse_metrics(desc[keep]) if len(keep) > 1 else {}

        with torch.no_grad():
            sim = (p * t_other).sum(-1)
            out = {
                "loss": loss,
                "pred_loss": ((1.0 - sim) * mask).sum() / mask.sum().clamp_min(1),
                "var_guard": guard.detach(),
                "cov_guard": cov.detach(),
                "uniformity": uniformity.detach(),
                "det_loss": det_loss.detach(),
                "margin": (margin * mask).sum() / mask.sum().clamp_min(1),
                "alpha": torch.tensor(alpha),
                "strength": torch.tensor(strength),
                "tau": torch.tensor(self.tau),
                "num_corr": mask.sum(1).float().mean(),
                "valid_pairs": pairs["pair_valid"].float().mean(),
                **metrics,
            }
            if labels is not None:
                out["soft_label"] = (labels * mask).sum() / mask.sum().clamp_min(1)
        return out

    def export(self) -> dict[str, Any]:
        """What the ``tpr`` feature extractor needs: the online backbone (with its detector) only."""
        return {"conf": {"backbone": dict(self.backbone_conf)}, "state_dict": self.online.backbone.state_dict()}


__all__ = ["BACKBONES", "Encoder", "TPR", "within_cells"]
