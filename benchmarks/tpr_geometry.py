"""Geometry of TPR's dense correspondences on real training pairs (issue 15 diagnosis).

For each backbone's descriptor and score map (stride, offset), on H-crops pairs of photos made
as the loss makes them (curriculum strength 0 and 1):

* ``err_med`` / ``err_max``: distance in source-image pixels between the places shown by an A cell
  and by its B correspondence, read through maps of the cells (a coordinate image warped like the
  photos) — the kept correspondences; ``border_frac`` / ``border_max``: the share of
  correspondences that land in B beyond the last cell centre (dropped by the loss) and their error;
* ``rgb_gt`` / ``rgb_1px``: mean absolute colour difference of the photos at A pixels and at
  their B correspondences, or 1 px off.

    python benchmarks/tpr_geometry.py --images ../shared/data/train/shard-a
"""
from __future__ import annotations

import argparse
import sys

import torch
import torch.nn.functional as F

from selfdesc.methods.parts.hcrops import dense_grid_correspondences, make_pairs, project_points, random_textured_points, warp_crops
from selfdesc.methods.tpr import TPR, within_cells
from selfdesc.models.deform import sample_map
from selfdesc.training.image_folder import ImageFolder

SMALL_SWIN = {"swin": {"embed_dim": 16, "num_heads": [1, 2], "window": 4, "dim": 32}}


def cell_map(crop: torch.Tensor, stride: int, offset: float) -> torch.Tensor:
    """``crop`` ``(B, C, S, S)`` read at the cell centres ``stride * j + offset`` (grid_sample, align_corners=True)."""
    S = crop.shape[-1]
    centres = torch.arange(offset, S - 1 + 1e-9, stride, dtype=crop.dtype)
    gy, gx = torch.meshgrid(centres, centres, indexing="ij")
    grid = torch.stack([gx, gy], -1)[None].expand(len(crop), -1, -1, -1) * (2 / (S - 1)) - 1
    return F.grid_sample(crop, grid, mode="bilinear", align_corners=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", required=True)
    ap.add_argument("--num-images", type=int, default=8)
    ap.add_argument("--crop", type=int, default=192)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    folder = ImageFolder(args.images, size=(480, 360))
    photos = torch.stack([folder[i]["image"] for i in range(args.num_images)]).double()
    n, _, h, w = photos.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    coords = torch.stack([xs, ys])[None].expand(n, -1, -1, -1)
    stacked = torch.cat([photos, coords / 1000.0], 1)  # colours + source coordinates (kept small)
    for name in ("aslfeat", "vgg", "swin"):
        method = TPR({"backbone": {"name": name, **(SMALL_SWIN if name == "swin" else {})}, "hcrops": {"crop_size": args.crop}})
        bb = method.online.backbone
        for strength in (0.0, 1.0):
            g = torch.Generator().manual_seed(0)
            crops = method.crops_at(strength)
            kp = random_textured_points(photos.float(), 256, generator=g).double()
            pairs = make_pairs(photos, keypoints=kp, config=crops, generator=g)
            ca = warp_crops(stacked, pairs["H1"], args.crop)
            cb = warp_crops(stacked, pairs["H2"], args.crop)
            for stride, offset in sorted({(bb.stride, bb.offset), (bb.score_stride, bb.score_offset)}):
                pts, pts_b, inside = dense_grid_correspondences(pairs["H_AB"], args.crop, stride, offset)
                src, _ = project_points(torch.linalg.inv(pairs["H1"]), pts)
                in_image = (src[..., 0] > 2) & (src[..., 0] < w - 3) & (src[..., 1] > 2) & (src[..., 1] < h - 3)
                valid = inside & in_image & pairs["pair_valid"][:, None]
                kept = valid & within_cells(pts_b, args.crop, stride, offset)
                border = valid & ~within_cells(pts_b, args.crop, stride, offset)
                at_a = sample_map(cell_map(ca, stride, offset), pts, stride, offset)
                at_b = sample_map(cell_map(cb, stride, offset), pts_b, stride, offset)
                err = (at_a[..., 3:] - at_b[..., 3:]).norm(dim=-1) * 1000.0
                row = {"backbone": name, "strength": strength, "stride": stride, "offset": offset,
                       "err_med": float(err[kept].median()), "err_max": float(err[kept].max()),
                       "border_frac": float(border.sum() / valid.sum()),
                       "border_max": float(err[border].max()) if border.any() else 0.0}
                if stride == 1 or (stride, offset) == (bb.stride, bb.offset):
                    pix_a = sample_map(ca[:, :3], pts, 1, 0.0)
                    off = (sample_map(cb[:, :3], pts_b + torch.tensor([1.0, 0.0], dtype=pts_b.dtype), 1, 0.0) - pix_a).abs().mean(-1)
                    row.update(rgb_gt=float((sample_map(cb[:, :3], pts_b, 1, 0.0) - pix_a).abs().mean(-1)[kept].mean()), rgb_1px=float(off[kept].mean()))
                print({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
