"""H-crops generator: geometry, conventions, ranges, validity and the OpenCV reference."""
from __future__ import annotations

import importlib.util
import math
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from selfdesc.errors import ConfigError
from selfdesc.methods.parts.hcrops import (
    HCropsConfig,
    crop_corners,
    crop_homographies,
    dense_grid_correspondences,
    homography_from_points,
    make_pairs,
    project_points,
    random_textured_points,
    sample_crop_homographies,
    sample_crop_params,
    warp_crops,
)

# the per-image OpenCV reference lives with the benchmark that times it (it is not package code)
_spec = importlib.util.spec_from_file_location("hcrops_cv", Path(__file__).resolve().parents[3] / "benchmarks" / "hcrops_cv.py")
hcrops_cv = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hcrops_cv)
crop_homography_cv, make_pair_cv = hcrops_cv.crop_homography_cv, hcrops_cv.make_pair_cv

S = 256


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def smooth_texture(batch: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """Smooth random colour texture in [0, 1] (well above the texture threshold)."""
    low = torch.rand(batch, 3, height // 12, width // 12, generator=gen(seed))
    return F.interpolate(low, size=(height, width), mode="bicubic", align_corners=False).clamp(0, 1)


def square_points(H: torch.Tensor) -> torch.Tensor:
    """Image points of the crop corners TL, TR, BL, BR under ``inv(H)``."""
    n = S - 1
    sq = torch.tensor([[0, 0], [n, 0], [0, n], [n, n]], dtype=torch.float64).expand(len(H), 4, 2)
    return project_points(torch.linalg.inv(H.double()), sq)[0]


# --- homography solve and warping conventions ------------------------------------------------


def test_homography_from_points_matches_cv2_and_maps_the_points():
    rng = np.random.default_rng(0)
    square = np.array([[0, 0], [300, 0], [0, 300], [300, 300]], np.float64)
    src = square + rng.uniform(-60, 60, size=(6, 4, 2))
    dst = 200 - 0.8 * square + rng.uniform(-60, 60, size=(6, 4, 2))  # rotated by 180 degrees
    # a crop quad (trapezoid far from the origin) whose cv2 matrix maps it with w < 0
    src[5] = [[387.27, 191.82], [608.61, 209.72], [354.31, 323.05], [557.85, 411.85]]
    dst[5] = [[0, 0], [255, 0], [0, 255], [255, 255]]
    H = homography_from_points(torch.from_numpy(src), torch.from_numpy(dst))
    mapped = project_points(H, torch.from_numpy(src))[0].numpy()
    assert np.abs(mapped - dst).max() < 1e-8
    for i in range(6):
        ref = cv2.getPerspectiveTransform(src[i].astype(np.float32), dst[i].astype(np.float32))
        sign = np.sign(H[i, 2, 2].item())  # H is cv2's matrix up to the sign that keeps w > 0
        assert np.allclose(sign * H[i].numpy(), ref, rtol=1e-3, atol=1e-5)
    w = (torch.from_numpy(src) @ H[:, 2, :2, None])[..., 0] + H[:, 2:3, 2]
    assert (w > 0).all()


def test_warp_crops_integer_shift_is_exact():
    img = torch.rand(1, 3, 40, 50, generator=gen())
    H = torch.tensor([[[1.0, 0, -7], [0, 1, -5], [0, 0, 1]]])  # image (x, y) -> crop (x - 7, y - 5)
    crop = warp_crops(img, H, 20)
    assert torch.allclose(crop[0], img[0, :, 5:25, 7:27], atol=1e-5)


def test_warp_crops_uses_pixel_centres():
    """x_crop = 2 x_img: with pixel centres crop[2k] = img[k] and crop[2k+1] = mean(img[k], img[k+1]);
    the half-pixel (corner) convention would give different values."""
    img = torch.rand(1, 1, 1, 12, generator=gen()).expand(1, 3, 12, 12).contiguous()
    H = torch.tensor([[[2.0, 0, 0], [0, 2.0, 0], [0, 0, 1]]])
    crop = warp_crops(img, H, 22)
    row = img[0, 0, 0]
    assert torch.allclose(crop[0, 0, 0, 0::2], row[:11], atol=1e-6)
    assert torch.allclose(crop[0, 0, 0, 1::2], 0.5 * (row[:11] + row[1:12]), atol=1e-6)


def test_warp_crops_agrees_with_cv2_warp_perspective():
    img = smooth_texture(1, 200, 240)
    H1, _ = sample_crop_homographies(torch.tensor([[240, 200]]), replace(HCropsConfig(), crop_size=96), gen(3))
    ours = warp_crops(img, H1, 96)[0].permute(1, 2, 0).numpy()
    ref = cv2.warpPerspective(img[0].permute(1, 2, 0).numpy(), H1[0].numpy(), (96, 96), flags=cv2.INTER_LINEAR)
    # OpenCV quantises the sampling positions to 1/32 px: small differences only
    assert np.abs(ours - ref).mean() < 2e-3 and np.abs(ours - ref).max() < 0.02


# --- sampling ranges -------------------------------------------------------------------------


def recover_zoom_angle(corners: torch.Tensor, vertical: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Zoom and angle of crops from their image corners TL, TR, BL, BR (undistorted edges)."""
    tl, tr, bl, br = corners.unbind(1)
    # undistorted pair of opposite edges: left/right when top/bottom are shortened, and vice versa
    mid_a = torch.where(vertical[:, None], 0.5 * (tl + bl), 0.5 * (tl + tr))
    mid_b = torch.where(vertical[:, None], 0.5 * (tr + br), 0.5 * (bl + br))
    zoom = (mid_b - mid_a).norm(dim=1) / (S - 1)
    d = mid_b - mid_a  # along x (vertical) or y (not vertical) before rotation
    angle = torch.where(vertical, torch.atan2(d[:, 1], d[:, 0]), torch.atan2(-d[:, 0], d[:, 1]))
    return zoom, angle


@pytest.mark.parametrize(
    "config, zoom_range, max_rot",
    [(HCropsConfig(), (0.8, 1.0), 15.0), (HCropsConfig.wide(), (0.5, 2.0), 30.0)],
)
def test_zoom_rotation_and_distortion_ranges(config, zoom_range, max_rot):
    n = 4000
    sizes = torch.tensor([[640, 480]]).expand(n, 2)
    p = sample_crop_params(sizes, config, gen(1))
    H = crop_homographies(p, S)
    corners = square_points(H)
    assert torch.allclose(corners, crop_corners(p, S), atol=1e-6)
    zoom, angle = recover_zoom_angle(corners, p.vertical)
    assert torch.allclose(zoom, p.zoom, atol=1e-9) and torch.allclose(angle, p.angle, atol=1e-9)
    lo, hi = zoom_range
    assert zoom.min() >= lo and zoom.max() <= hi
    assert zoom.min() < lo + 0.01 * (hi - lo) and zoom.max() > hi - 0.01 * (hi - lo)  # the range is used
    deg = torch.rad2deg(angle)
    assert deg.abs().max() <= max_rot and deg.min() < -0.98 * max_rot and deg.max() > 0.98 * max_rot
    m = config.min_distort[0]
    assert p.distort.min() >= m and p.distort.max() <= 1.0 and p.distort.min() < m + 0.01
    assert 0.45 < p.vertical.double().mean() < 0.55
    if hi > 1:  # down-scaling: some crops span more than S image pixels
        assert (zoom > 1.5).any()


def test_second_crop_centre_offset_is_exactly_a_tenth_of_the_crop():
    n = 500
    H1, H2 = sample_crop_homographies(torch.tensor([[640, 480]]).expand(n, 2), HCropsConfig(), gen(2))
    # the mean of a crop's four image corners is its centre (spec step 8)
    offset = square_points(H2).mean(1) - square_points(H1).mean(1)
    assert torch.allclose(offset.abs(), torch.full_like(offset, 0.1 * S), atol=1e-6)
    for axis in range(2):
        frac = (offset[:, axis] > 0).double().mean()
        assert 0.4 < frac < 0.6


def test_first_crop_centre_follows_the_spec_formula():
    sizes = torch.tensor([[640, 480], [300, 900]])
    p = sample_crop_params(sizes, HCropsConfig(), gen(5))
    u = torch.rand(2, 7, generator=gen(5), dtype=torch.float64)  # the same draws
    rho = 0.5 * math.sqrt(2) * S * (0.8 * u[:, 0] + (1 - u[:, 0]))
    expected = rho[:, None] + u[:, 2:4] * (sizes.double() - 2 * rho[:, None])
    assert torch.allclose(p.center, expected, atol=1e-9)


# --- pairs -----------------------------------------------------------------------------------


def grid_keypoints(batch: int, width: int, height: int, step: int, margin: int) -> torch.Tensor:
    ys, xs = torch.meshgrid(
        torch.arange(margin, height - margin, step), torch.arange(margin, width - margin, step), indexing="ij"
    )
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], -1).float().expand(batch, -1, -1).contiguous()


def test_pairs_correspondences_reproject_exactly():
    imgs = smooth_texture(4, 360, 480)
    kps = grid_keypoints(4, 480, 360, 7, 3)
    out = make_pairs(imgs, kps, config=HCropsConfig(), generator=gen(0))
    assert out["A"].shape == (4, 3, S, S) and out["kpA"].shape == (4, 200, 2)
    assert out["pair_valid"].all() and (out["valid"].sum(1) == 200).all()
    v = out["valid"]
    kpA, kpB = out["kpA"].double(), out["kpB"].double()
    H1, H2, H_AB = out["H1"].double(), out["H2"].double(), out["H_AB"].double()
    assert (project_points(H_AB, kpA)[0] - kpB).norm(dim=-1)[v].max() < 0.01
    assert torch.allclose(H_AB, H2 @ torch.linalg.inv(H1), atol=1e-4)
    # kpA are source keypoints seen through H1: back-projected they fall on the keypoint grid
    back = project_points(torch.linalg.inv(H1), kpA)[0]
    assert ((back - 3) / 7 - ((back - 3) / 7).round()).abs()[v].max() < 1e-3
    assert ((kpA >= 0) & (kpA <= S - 1)).all() and ((kpB >= 0) & (kpB <= S - 1)).all()
    # the crops show the same content at corresponding points
    def sample(img, pts):
        grid = pts / (S - 1) * 2 - 1
        return F.grid_sample(img, grid[:, None].float(), align_corners=True)[:, :, 0]

    diff = (sample(out["A"], kpA) - sample(out["B"], kpB)).abs().permute(0, 2, 1)[v]
    assert diff.mean() < 0.01


def test_rendered_dots_appear_at_the_keypoints():
    B, W, H = 3, 480, 360
    kps = grid_keypoints(B, W, H, 24, 12)
    ys, xs = torch.meshgrid(torch.arange(H).float(), torch.arange(W).float(), indexing="ij")
    dots = torch.zeros(H, W)
    for x, y in kps[0].tolist():  # the test image: one Gaussian dot per keypoint
        dots += torch.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * 1.5**2))
    imgs = dots.clamp(0, 1).expand(B, 3, H, W).contiguous()
    out = make_pairs(imgs, kps, config=replace(HCropsConfig(), min_texture_std=0.0), generator=gen(4))
    checked = 0
    r = 7
    offs = torch.arange(-r, r + 1).float()
    for crop_key, kp_key in (("A", "kpA"), ("B", "kpB")):
        for b in range(B):
            img = out[crop_key][b, 0]
            for x, y in out[kp_key][b][out["valid"][b]].tolist():
                cx, cy = round(x), round(y)
                if not (r <= cx < S - r and r <= cy < S - r):
                    continue
                win = img[cy - r : cy + r + 1, cx - r : cx + r + 1]
                wy, wx = win.sum(1), win.sum(0)
                centroid = torch.tensor([cx + (wx * offs).sum() / wx.sum(), cy + (wy * offs).sum() / wy.sum()])
                assert (centroid - torch.tensor([x, y])).norm() < 0.5
                checked += 1
    assert checked > 200


def test_pairs_are_deterministic_with_a_seeded_generator():
    imgs = smooth_texture(3, 300, 400)
    a = make_pairs(imgs, config=HCropsConfig(num_source_points=512), generator=gen(7))
    b = make_pairs(imgs, config=HCropsConfig(num_source_points=512), generator=gen(7))
    c = make_pairs(imgs, config=HCropsConfig(num_source_points=512), generator=gen(8))
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert not torch.equal(a["H1"], c["H1"])


def test_padded_canvas_with_image_sizes_equals_the_bare_image():
    img = smooth_texture(1, 300, 400)
    canvas = torch.zeros(1, 3, 480, 640)
    canvas[..., :300, :400] = img
    kps = grid_keypoints(1, 400, 300, 9, 4)
    bare = make_pairs(img, kps, generator=gen(2))
    padded = make_pairs(canvas, kps, generator=gen(2), image_sizes=torch.tensor([[400, 300]]))
    for key in bare:
        assert torch.allclose(bare[key].float(), padded[key].float(), atol=2e-4), key  # float32 grid rounding


def test_crop_b_comes_from_images_b():
    imgs = smooth_texture(2, 300, 400)
    kps = grid_keypoints(2, 400, 300, 9, 4)
    out = make_pairs(imgs, kps, generator=gen(3), images_b=0.5 * imgs)
    assert torch.allclose(out["B"], 0.5 * warp_crops(imgs, out["H2"], S), atol=1e-5)
    assert torch.allclose(out["A"], warp_crops(imgs, out["H1"], S), atol=1e-5)


def test_flat_images_are_flagged_invalid_after_max_attempts():
    imgs = torch.cat([torch.full((1, 3, 300, 400), 0.5), smooth_texture(1, 300, 400)])
    kps = grid_keypoints(2, 400, 300, 9, 4)
    out = make_pairs(imgs, kps, config=HCropsConfig(max_attempts=4), generator=gen(0))
    assert out["pair_valid"].tolist() == [False, True]
    assert out["attempts"][0] == 4 and not out["valid"][0].any()
    assert (out["kpA"][0] == 0).all()
    # accepted A crops are textured
    assert out["A"][1].mean(0).std(unbiased=False) >= 20 / 255


def test_items_without_keypoints_in_the_crops_are_invalid():
    imgs = smooth_texture(2, 300, 400)
    kps = torch.tensor([[[-50.0, -50.0]], [[float("nan"), 3.0]]])
    out = make_pairs(imgs, kps, config=HCropsConfig(max_attempts=2), generator=gen(0))
    assert not out["pair_valid"].any() and not out["valid"].any()


def test_first_k_quirk_keeps_input_order_and_default_is_a_random_subset():
    imgs = smooth_texture(2, 300, 400)
    kps = grid_keypoints(2, 400, 300, 5, 2)  # raster order
    cfg = HCropsConfig(num_keypoints=50)
    quirk = make_pairs(imgs, kps, config=replace(cfg, first_k_quirk=True), generator=gen(0))
    fixed = make_pairs(imgs, kps, config=cfg, generator=gen(0))
    assert torch.equal(quirk["H1"], fixed["H1"])  # same crops, only the selection differs
    for out, raster in ((quirk, True), (fixed, False)):
        back = project_points(torch.linalg.inv(out["H1"].double()), out["kpA"].double())[0]
        row_major = back[..., 1].round() * 1000 + back[..., 0].round()
        increasing = bool((row_major.diff(dim=1) > 0).all())
        assert increasing == raster


def test_random_textured_points_land_on_texture_inside_the_image():
    img = torch.full((2, 3, 120, 160), 0.3)
    img[:, :, 40:80, 60:110] = torch.rand(2, 3, 40, 50, generator=gen())
    sizes = torch.tensor([[160, 120], [100, 120]])  # second image: only 100 px wide on the canvas
    img[1, :, :, 100:] = 0
    pts = random_textured_points(img, 300, gen(1), sizes, window=5)
    assert pts.shape == (2, 300, 2) and torch.equal(pts, pts.round())
    # textured square, grown by the averaging window (2 px) and the Sobel support (1 px)
    assert ((pts[..., 0] >= 57) & (pts[..., 0] <= 112) & (pts[..., 1] >= 37) & (pts[..., 1] <= 82)).all()
    assert (pts[1, :, 0] < 100 - 4).all()
    for b in range(2):
        assert len(set(map(tuple, pts[b].tolist()))) == 300
    with pytest.raises(ValueError, match="usable pixels"):
        random_textured_points(img, 10**6, gen(1), sizes)


def test_dense_grid_correspondences_known_answers():
    eye = torch.eye(3, dtype=torch.float64)[None]
    ptsA, ptsB, inside = dense_grid_correspondences(eye, S, stride=8, offset=3.5)
    assert ptsA.shape == (1, 32 * 32, 2) and inside.all() and torch.equal(ptsA, ptsB)
    assert ptsA[0, 0].tolist() == [3.5, 3.5] and ptsA[0, 1].tolist() == [11.5, 3.5]
    shift = torch.tensor([[[1.0, 0, 128], [0, 1, 0], [0, 0, 1]]], dtype=torch.float64)
    assert dense_grid_correspondences(shift, S)[2].double().mean() == 0.5


def test_config_errors():
    with pytest.raises(ConfigError, match="min_zoom"):
        HCropsConfig(min_zoom=1.2)
    with pytest.raises(ConfigError, match="min_distort"):
        HCropsConfig(min_distort=(0.0, 0.5))
    assert HCropsConfig.wide(max_rot_deg=45.0).max_rot_deg == 45.0


# --- OpenCV reference ------------------------------------------------------------------------


def test_cv2_reference_agrees_with_torch_for_the_same_parameters():
    sizes = torch.tensor([[480, 360]]).expand(6, 2)
    p = sample_crop_params(sizes, HCropsConfig(), gen(9))
    H = crop_homographies(p, S)
    img = smooth_texture(1, 360, 480)
    crops = warp_crops(img.expand(6, -1, -1, -1), H, S)
    kps = grid_keypoints(1, 480, 360, 11, 5)[0].double()
    img_np = img[0].permute(1, 2, 0).numpy()
    for i in range(6):
        H_cv = crop_homography_cv(
            float(p.zoom[i]), float(p.angle[i]), p.center[i].numpy(), p.distort[i].numpy(), bool(p.vertical[i]), S
        )
        pts_cv = cv2.perspectiveTransform(kps.numpy()[None], H_cv)[0]
        pts_t = project_points(H[i : i + 1], kps[None])[0][0].numpy()
        assert np.abs(pts_cv - pts_t).max() < 0.01  # cv2 solves from float32 corners
        crop_cv = cv2.warpPerspective(img_np, H_cv, (S, S), flags=cv2.INTER_LINEAR)
        assert np.abs(crop_cv - crops[i].permute(1, 2, 0).numpy()).mean() < 2e-3


def test_make_pair_cv_outputs_consistent_pairs():
    img = (smooth_texture(1, 360, 480)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    kps = grid_keypoints(1, 480, 360, 7, 3)[0].numpy()
    rng = np.random.default_rng(0)
    out = make_pair_cv(img, kps, HCropsConfig(), rng)
    assert out["pair_valid"] and out["A"].shape == (S, S, 3) and out["A"].dtype == np.uint8
    v = out["valid"]
    assert v.sum() == 200
    proj = cv2.perspectiveTransform(out["kpA"][v][None].astype(np.float64), out["H_AB"])[0]
    assert np.abs(proj - out["kpB"][v]).max() < 0.01
    flat = np.full((300, 400, 3), 128, np.uint8)
    bad = make_pair_cv(flat, kps, HCropsConfig(max_attempts=3), rng)
    assert not bad["pair_valid"] and not bad["valid"].any() and bad["attempts"] == 3
