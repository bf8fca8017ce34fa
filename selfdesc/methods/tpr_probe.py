"""Probes of what a TPR model has learned (issue 15 diagnosis): are its descriptors spatially discriminative?

On fixed, seeded H-crops pairs (:func:`probe_pairs`) with their dense grid correspondences,
:func:`measure` reports

* ``cos_gt`` / ``cos_2`` / ``cos_4`` / ``cos_8`` / ``cos_rand``: mean cosine of the online
  descriptors (what the extractor outputs) at a cell of view A and at its ground-truth
  correspondence in view B, or that point shifted by 2 / 4 / 8 px in a random direction, or a
  random point of B; ``gap4 = cos_gt - cos_4``;
* ``pred_gt`` / ``pred_4``: the same for the online prediction against the target projection (what
  the loss compares);
* ``nn3`` / ``nn8``: fraction of A cells whose nearest neighbour over all cells of B lies within
  3 / 8 px of the ground truth;
* ``eff_rank``: effective rank of up to 1024 descriptors;
* ``sal_ratio``: the saliency-weighted mean of ``1 - cos_gt`` over its plain mean (below 1: the
  detection scores favour cells whose descriptors already agree, e.g. flat regions);
* ``sal_texture``: correlation over cells between the saliency weight and the local image
  gradient magnitude of view A (does the detector fire on texture?).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from selfdesc.losses.tpr import collapse_metrics, saliency_weights
from selfdesc.methods.parts.hcrops import dense_grid_correspondences, make_pairs, random_textured_points
from selfdesc.methods.tpr import TPR, within_cells
from selfdesc.models.deform import sample_map


def probe_pairs(method: TPR, images: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor]:
    """Fixed pairs (seeded) of ``images`` ``(B, 3, H, W)`` at the method's easy H-crops ranges.

    Returns :func:`~selfdesc.methods.parts.hcrops.make_pairs`' dict plus ``pts`` / ``pts_b`` ``(B, M, 2)``
    (A cells and their B pixels), ``mask`` ``(B, M)`` and ``size`` (crop side).
    """
    g = torch.Generator().manual_seed(seed)
    crops = method.crops_at(0.0)
    kp = random_textured_points(images, 256, generator=g)
    pairs = make_pairs(images, keypoints=kp, config=crops, generator=g)
    bb = method.online.backbone
    pts, pts_b, inside = dense_grid_correspondences(pairs["H_AB"], crops.crop_size, bb.stride, bb.offset)
    mask = inside & within_cells(pts_b, crops.crop_size, bb.stride, bb.offset) & pairs["pair_valid"][:, None]
    pairs.update(pts=pts, pts_b=pts_b, mask=mask, size=crops.crop_size)
    return pairs


@torch.no_grad()
def measure(method: TPR, pairs: dict[str, torch.Tensor], seed: int = 0) -> dict[str, float]:
    """The probe numbers listed in the module docstring, on ``pairs`` from :func:`probe_pairs` (eval mode inside)."""
    was = method.training
    method.eval()
    bb = method.online.backbone
    g = torch.Generator().manual_seed(seed)
    out_a, out_b = method.online(pairs["A"]), method.online(pairs["B"])
    pred_a = F.normalize(method.predictor(out_a["projection"]), dim=1)
    targ_b = F.normalize(method.target(pairs["B"])["projection"], dim=1)
    pts, pts_b, mask = pairs["pts"], pairs["pts_b"], pairs["mask"]
    da = sample_map(out_a["features"], pts, bb.stride, bb.offset, normalize=True)
    pa = sample_map(pred_a, pts, bb.stride, bb.offset, normalize=True)
    res: dict[str, float] = {}
    angle = torch.rand(pts_b.shape[:2], generator=g) * 2 * torch.pi
    direction = torch.stack([angle.cos(), angle.sin()], -1)
    S = pairs["size"]
    for name, shift in (("gt", 0.0), ("2", 2.0), ("4", 4.0), ("8", 8.0)):
        q = (pts_b + shift * direction).clamp(0, S - 1)
        db = sample_map(out_b["features"], q, bb.stride, bb.offset, normalize=True)
        res[f"cos_{name}"] = float(((da * db).sum(-1))[mask].mean())
        if name in ("gt", "4"):
            tb = sample_map(targ_b, q, bb.stride, bb.offset, normalize=True)
            res[f"pred_{name}"] = float(((pa * tb).sum(-1))[mask].mean())
    rnd = torch.rand(pts_b.shape, generator=g) * (S - 1)
    db = sample_map(out_b["features"], rnd, bb.stride, bb.offset, normalize=True)
    res["cos_rand"] = float(((da * db).sum(-1))[mask].mean())
    res["gap4"] = res["cos_gt"] - res["cos_4"]
    # dense nearest neighbour over B's grid (the same grid as A's cells)
    grid = pts[0]
    dgrid = sample_map(out_b["features"], pts, bb.stride, bb.offset, normalize=True)  # (B, M, D) at B's cells
    nn = torch.einsum("bnd,bmd->bnm", da, dgrid).argmax(-1)
    err = (grid[nn] - pts_b).norm(dim=-1)
    res["nn3"] = float((err <= 3.0)[mask].float().mean())
    res["nn8"] = float((err <= 8.0)[mask].float().mean())
    res["eff_rank"] = float(collapse_metrics(da[mask][:1024])["eff_rank"])
    s_a = sample_map(out_a["scores"], pts, bb.score_stride, bb.score_offset)[..., 0]
    s_b = sample_map(out_b["scores"], pts_b, bb.score_stride, bb.score_offset)[..., 0]
    w = saliency_weights(s_a, s_b, mask)
    db = sample_map(out_b["features"], pts_b, bb.stride, bb.offset, normalize=True)
    miss = 1.0 - (da * db).sum(-1)
    res["sal_ratio"] = float((w * miss).sum(1).mean() / (miss[mask].mean()))
    gray = pairs["A"].mean(1, keepdim=True)
    grad = torch.stack(torch.gradient(gray[:, 0], dim=(1, 2))).norm(dim=0)[:, None]
    texture = sample_map(F.avg_pool2d(grad, 5, 1, 2), pts, 1, 0.0)[..., 0]
    res["sal_texture"] = float(torch.corrcoef(torch.stack([w[mask], texture[mask]]))[0, 1])
    method.train(was)
    return res


__all__ = ["measure", "probe_pairs"]
