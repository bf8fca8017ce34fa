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
        h, w = images.shape[-2:]
        heat, dense = self._network(images)
        heat, dense = heat[..., :h, :w], dense[..., :h, :w]
        found, counts = disk_peaks(heat, c["num_keypoints"], int(c["window_size"]), float(c["score_threshold"]))
        image, ys, xs = found[:, 0], torch.div(found[:, 1], w, rounding_mode="trunc"), found[:, 1] % w
        xy = torch.stack([xs, ys], dim=-1).to(torch.promote_types(heat.dtype, torch.float32)).split(counts)
        scores = heat[:, 0].reshape(heat.shape[0], -1)[image, found[:, 1]].split(counts)
        desc = F.normalize(dense.permute(0, 2, 3, 1)[image, ys, xs], dim=-1).split(counts)
        return [self._finish(*f) for f in zip(xy, scores, desc)]


def disk_peaks(heat: torch.Tensor, n: int | None, window_size: int, threshold: float) -> tuple[torch.Tensor, list[int]]:
    """kornia's ``heatmap_to_keypoints`` for a whole batch with two host synchronisations: the
    strict local maxima of ``(B, 1, H, W)`` logits above ``threshold``, at most ``n`` per image (the
    strongest; maxima tied at the ``n``-th score taken in raster order). Returns ``(M, 2)``
    ``(image, flat index)`` rows in raster order per image and the count of each image."""
    B = heat.shape[0]
    flat = heat[:, 0].reshape(B, -1)
    mask = (nms2d(heat, (window_size, window_size), mask_only=True)[:, 0] & (heat[:, 0] > threshold)).reshape(B, -1)
    if n is not None and n < flat.shape[1]:
        count = mask.sum(dim=1, keepdim=True)
        if n > 0:
            kth = torch.topk(flat.masked_fill(~mask, float("-inf")), n, dim=1).values[:, -1:]
            above, tied = mask & (flat > kth), mask & (flat == kth)
            limited = above | (tied & (torch.cumsum(tied, dim=1) <= n - above.sum(dim=1, keepdim=True)))
        else:
            limited = torch.zeros_like(mask)
        mask = torch.where(count > n, limited, mask)
    return mask.nonzero(), mask.sum(dim=1).tolist()


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
        """kornia's ``ALIKED.forward`` (its DKD, then SDDH), step by step on the whole batch with
        one host synchronisation (kornia loops over images, with several each)."""
        fmap, smap = self.net.extract_dense_map(images)
        _, _, h, w = smap.shape
        idx, counts = aliked_peaks(self.net.dkd, smap)
        xy, scores = aliked_subpixel(self.net.dkd, smap, idx)
        desc = aliked_descriptors(self.net.desc_head, fmap, xy)
        kpts = torch.stack([(w - 1) * (xy[..., 0] + 1) / 2.0, (h - 1) * (xy[..., 1] + 1) / 2.0], dim=-1)
        return [self._finish(kpts[b, :n], scores[b, :n], desc[b, :n]) for b, n in enumerate(counts)]


def aliked_peaks(dkd: nn.Module, smap: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    """kornia DKD's keypoints of ``(B, 1, H, W)`` score maps: ``(B, K)`` flat indices, the valid
    ones first, in kornia's order (top-k mode, ``detection_threshold`` 0: decreasing score;
    threshold mode: raster order, or decreasing score when more than ``dkd.n_limit`` were found),
    and the number of valid ones per image (one host synchronisation)."""
    B, _, h, w = smap.shape
    s = smap.detach()
    r = dkd.radius
    is_max = nms2d(s, (dkd.kernel_size, dkd.kernel_size), mask_only=True)
    is_max[:, :, :r, :] = False
    is_max[:, :, :, :r] = False
    is_max[:, :, -r:, :] = False
    is_max[:, :, :, -r:] = False
    if dkd.top_k > 0:
        top = torch.topk(s.masked_fill(~is_max, float("-inf")).reshape(B, -1), min(dkd.top_k, h * w), dim=1)
        counts = torch.isfinite(top.values).sum(dim=1).tolist()
        return top.indices[:, : max(counts, default=0)], counts
    mean = s.reshape(B, -1).mean(dim=1).reshape(B, 1, 1, 1)
    masks = is_max & (s > mean)
    if dkd.scores_th > 0:
        above = is_max & (s > dkd.scores_th)
        masks = torch.where(above.reshape(B, -1).any(dim=1).reshape(B, 1, 1, 1), above, masks)
    masks = masks.reshape(B, -1)
    top = torch.topk(s.reshape(B, -1).masked_fill(~masks, float("-inf")), min(dkd.n_limit, h * w), dim=1)
    valid = torch.isfinite(top.values)
    few = (masks.sum(dim=1) <= dkd.n_limit)[:, None]  # these keep kornia's raster order, the others score order
    rank = torch.arange(top.indices.shape[1], device=s.device).expand_as(top.indices)
    key = torch.where(few, torch.where(valid, top.indices, h * w), rank)
    idx = torch.gather(top.indices, 1, key.argsort(dim=1))
    counts = valid.sum(dim=1).tolist()
    return idx[:, : max(counts, default=0)], counts


def aliked_subpixel(dkd: nn.Module, smap: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """kornia DKD's soft-argmax refinement of the peaks ``idx`` ``(B, K)``: positions ``(B, K, 2)``
    normalised to [-1, 1] (``align_corners=True``) and their bilinear scores ``(B, K)``."""
    _, _, h, w = smap.shape
    patches = dkd.unfold(smap).transpose(1, 2)  # (B, H*W, k*k)
    patch = torch.gather(patches, 1, idx[..., None].expand(-1, -1, patches.shape[-1]))
    xy_nms = torch.stack([idx % w, torch.div(idx, w, rounding_mode="trunc")], dim=-1)
    x_exp = ((patch - patch.max(dim=-1).values.detach()[..., None]) / dkd.temperature).exp()
    residual = x_exp @ dkd.hw_grid / x_exp.sum(dim=-1, keepdim=True)
    coord_dtype = torch.promote_types(smap.dtype, torch.float32)
    xy = xy_nms.to(coord_dtype) + residual
    xy = torch.stack([xy[..., 0] / float(w - 1), xy[..., 1] / float(h - 1)], dim=-1) * 2 - 1
    scores = F.grid_sample(smap, xy[:, None].to(smap.dtype), mode="bilinear", align_corners=True)[:, 0, 0, :]
    return xy, scores


def aliked_descriptors(sddh: nn.Module, fmap: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
    """kornia's SDDH (deformable descriptor head) on ``(B, C, H, W)`` features at ``(B, K, 2)``
    positions in [-1, 1]: ``(B, K, D)`` L2-normalised descriptors."""
    B, c, h, w = fmap.shape
    K, ps = xy.shape[1], sddh.kernel_size
    px = torch.stack([(xy[..., 0] / 2 + 0.5) * float(w - 1), (xy[..., 1] / 2 + 0.5) * float(h - 1)], dim=-1).reshape(B * K, 2)
    if ps > 1:  # kornia's get_patches: the ps x ps patch whose corner is (p - ps / 2 + 1), clamped inside
        corner = (px.long() - ps / 2 + 1).long()
        cx, cy = corner[:, 0].clamp(min=0, max=w - 1 - ps), corner[:, 1].clamp(min=0, max=h - 1 - ps)
    else:
        cx, cy = px[:, 0].long(), px[:, 1].long()
    steps = torch.arange(ps, device=fmap.device)
    ys, xs = cy[:, None, None] + steps[None, :, None], cx[:, None, None] + steps[None, None, :]
    image = torch.arange(B, device=fmap.device).repeat_interleave(K)[:, None, None]
    patch = fmap.permute(0, 2, 3, 1)[image, ys, xs].permute(0, 3, 1, 2)  # (B*K, C, ps, ps)
    offset = sddh.offset_conv(patch).clamp(-max(h, w) / 4.0, max(h, w) / 4.0)[:, :, 0, 0]
    if sddh.mask:
        offset = offset.view(B * K, 3, sddh.n_pos).permute(0, 2, 1)
        mask_w, offset = torch.sigmoid(offset[:, :, -1]), offset[:, :, :-1]
    else:
        offset, mask_w = offset.view(B * K, 2, sddh.n_pos).permute(0, 2, 1), None
    pos = px[:, None, :] + offset
    pos = torch.stack([pos[..., 0] / float(w - 1), pos[..., 1] / float(h - 1)], dim=-1) * 2.0 - 1
    grid = pos.reshape(B, K * sddh.n_pos, 1, 2).to(fmap.dtype)
    feats = F.grid_sample(fmap, grid, mode="bilinear", align_corners=True).reshape(B, c, K, sddh.n_pos, 1)
    feats = feats.permute(0, 2, 1, 3, 4).reshape(B * K, c, sddh.n_pos, 1)
    if mask_w is not None:
        feats = torch.einsum("ncpo,np->ncpo", feats, mask_w)
    feats = torch.selu_(sddh.sf_conv(feats)).squeeze(-1)
    if not sddh.conv2d:
        desc = torch.einsum("ncp,pcd->nd", feats, sddh.agg_weights)
    else:
        desc = sddh.convM(feats.reshape(B * K, -1)[:, :, None, None]).squeeze(-1).squeeze(-1)
    return F.normalize(desc, p=2.0, dim=1).reshape(B, K, desc.shape[-1])


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


__all__ = ["DISK", "ALIKED", "XFeat", "aliked_descriptors", "disk_peaks", "aliked_peaks", "aliked_subpixel", "load_weights", "padded_peaks", "sample_at"]
