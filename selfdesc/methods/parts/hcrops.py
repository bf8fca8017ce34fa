"""HNDesc's H-crops generator (spec §2.4), batched in torch on any device.

A training pair is two perspective crops ``A`` and ``B`` (``S x S``) of the same image:

* crop 1 is a random quadrilateral ``P1`` of the image (zoom, in-plane rotation, a trapezoid
  distortion of two opposite edges), warped onto the ``S x S`` square;
* crop 2 is drawn the same way (independent zoom, rotation and distortion) around the centre
  of crop 1 shifted by ``center_jitter * S`` along each axis with random signs.

``H1`` / ``H2`` map image pixels to crop pixels; ``H_AB = H2 @ inv(H1)`` maps A pixels to B
pixels. Every point is ``(x, y)``, x right, y down, pixel-centre convention (the centre of the
top-left pixel is ``(0, 0)``; crop corners are ``(0, 0)`` and ``(S - 1, S - 1)``), so a keypoint
projected with ``H1`` lands exactly where its pixel is rendered by :func:`warp_crops`.

Images of different sizes are batched on a zero-padded canvas; ``image_sizes`` ``(B, 2)`` holds
each true ``(W, H)``. Crops that reach beyond an image are black there, as with OpenCV's constant
border in the original.

Deviations from the original (spec §2.12 quirk 3 and 4), all fixed by default:

* the ``num_keypoints`` correspondences are a random subset of the valid ones, not the first
  ones in file order (``first_k_quirk=True`` restores the raster-order bias);
* an item whose crops fail the checks is resampled, and after ``max_attempts`` it is flagged
  ``pair_valid = False`` with no valid correspondence, instead of the original fallback
  (identity homography between crops that do not correspond) or the degenerate ``B := A`` pair
  when no keypoint survives in B (here at least ``min_correspondences`` must survive).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import kornia
import torch
import torch.nn.functional as F

from selfdesc.errors import ConfigError
from selfdesc.methods.parts.rng import uniform


@dataclass(frozen=True)
class HCropsConfig:
    """H-crops generator settings; the defaults are HNDesc's (spec §2.4).

    Attributes:
        crop_size: side ``S`` of the square crops, pixels (192 in HNDesc's Aachen configs).
        min_zoom: smallest zoom ``z``: the crop square spans ``z * S`` image pixels, so ``z < 1``
            magnifies. ``z = min_zoom * u + max_zoom_out * (1 - u)``, ``u ~ U[0, 1)``.
        max_zoom_out: largest zoom; HNDesc uses 1 (no down-scaling). Values above 1 let a crop
            cover more than ``S`` image pixels (down-scaling, as R2D2's ``RandomScale``).
        max_rot_deg: in-plane rotation drawn uniformly in ``[-max_rot_deg, max_rot_deg]``.
        min_distort: smallest shortening factor ``f`` of the two distorted edges,
            ``f = m * u + (1 - u)`` with ``m = min_distort[0]`` when top/bottom edges are
            distorted and ``min_distort[1]`` when left/right edges are (chosen with p = 0.5).
        center_jitter: offset of crop 2's centre from crop 1's, in units of ``S``, per axis, with
            independent random signs (never 0).
        max_attempts: draws per item before it is flagged invalid.
        num_keypoints: correspondences returned per pair ``K`` (padded, with a mask).
        min_texture_std: smallest standard deviation over the pixels of A's channel mean,
            ``[0, 1]`` intensity scale (HNDesc: 20 on the 0-255 scale).
        min_correspondences: fewest keypoints that must land in both A and B.
        min_overlap: the fraction of A's pixel grid landing inside B, and of B's inside A, must
            exceed this. 0 is HNDesc's "not completely outside" test.
        overlap_stride: pixel step of the grid used by the overlap test (HNDesc tests every
            pixel, stride 1; with ``min_overlap = 0`` the correspondence test nearly implies it,
            and a coarser grid is much cheaper).
        num_source_points: textured points drawn per image by :func:`random_textured_points`
            when :func:`make_pairs` gets no keypoints.
        first_k_quirk: keep the first ``num_keypoints`` valid keypoints in input order (HNDesc)
            instead of a random subset.
    """

    crop_size: int = 256
    min_zoom: float = 0.8
    max_zoom_out: float = 1.0
    max_rot_deg: float = 15.0
    min_distort: tuple[float, float] = (0.6, 0.6)
    center_jitter: float = 0.1
    max_attempts: int = 10
    num_keypoints: int = 200
    min_texture_std: float = 20.0 / 255.0
    min_correspondences: int = 1
    min_overlap: float = 0.0
    overlap_stride: int = 8
    num_source_points: int = 2048
    first_k_quirk: bool = False

    def __post_init__(self) -> None:
        problems = []
        if self.crop_size < 2:
            problems.append(f"crop_size must be >= 2, got {self.crop_size}")
        if not 0 < self.min_zoom <= self.max_zoom_out:
            problems.append(f"need 0 < min_zoom <= max_zoom_out, got {self.min_zoom} and {self.max_zoom_out}")
        if not (len(self.min_distort) == 2 and all(0 < m <= 1 for m in self.min_distort)):
            problems.append(f"min_distort must be two values in (0, 1], got {self.min_distort}")
        if not 0 <= self.max_rot_deg <= 180:
            problems.append(f"max_rot_deg must be in [0, 180], got {self.max_rot_deg}")
        if self.max_attempts < 1 or self.num_keypoints < 1 or self.overlap_stride < 1 or self.num_source_points < 1:
            problems.append("max_attempts, num_keypoints, overlap_stride and num_source_points must be >= 1")
        if not 0 <= self.min_overlap < 1:
            problems.append(f"min_overlap must be in [0, 1), got {self.min_overlap}")
        if problems:
            raise ConfigError("HCropsConfig: " + "; ".join(problems))

    @classmethod
    def wide(cls, **overrides: Any) -> HCropsConfig:
        """Wider ranges than HNDesc's, in the spirit of R2D2's synthetic pairs (spec §3.2).

        Zoom in ``[0.5, 2]`` per crop (a scale ratio of up to 4 between A and B, like R2D2's
        ``RandomScale(256, 1024)``), rotation up to 30 degrees, edges shortened down to 0.4
        (R2D2's ``RandomTilting(0.5)`` is stronger still). These values are our choice, not a
        published configuration; any field can be overridden. Down-scaled crops are sampled
        bilinearly without anti-aliasing (so is OpenCV's ``warpPerspective``).
        """
        base = {"min_zoom": 0.5, "max_zoom_out": 2.0, "max_rot_deg": 30.0, "min_distort": (0.4, 0.4)}
        return cls(**{**base, **overrides})


@dataclass
class CropParams:
    """The random parameters of a batch of crops (spec §2.4 steps 1-6), float64 tensors.

    Attributes:
        zoom: ``(B,)`` zoom ``z``.
        angle: ``(B,)`` rotation, radians (positive turns x towards y: clockwise on screen).
        center: ``(B, 2)`` crop centre in image pixels.
        distort: ``(B, 2)`` shortening factors ``(f1, f2)`` of the two distorted edges.
        vertical: ``(B,)`` bool; False: the x extent of the top (f1) and bottom (f2) edges is
            shortened; True: the y extent of the left (f1) and right (f2) edges.
    """

    zoom: torch.Tensor
    angle: torch.Tensor
    center: torch.Tensor
    distort: torch.Tensor
    vertical: torch.Tensor


def sample_crop_params(
    image_sizes: torch.Tensor,
    config: HCropsConfig = HCropsConfig(),
    generator: torch.Generator | None = None,
    center: torch.Tensor | None = None,
) -> CropParams:
    """Draw crop parameters (spec §2.4 steps 1-6) for a batch of images.

    Args:
        image_sizes: ``(B, 2)`` image sizes ``(W, H)``; the result lives on its device.
        config: ranges.
        generator: random source (see :func:`selfdesc.methods.parts.rng.uniform`).
        center: ``(B, 2)`` centres of the first crops; given, this draws the second crops
            around ``center + center_jitter * S * (sx, sy)`` with random signs ``sx, sy``.

    Returns:
        :class:`CropParams` of ``B`` crops.
    """
    sizes = image_sizes.to(torch.float64)
    u = uniform((len(sizes), 7), generator, sizes.device, torch.float64)
    u_s, u_r, u_c, u_p, u_a = u[:, 0], u[:, 1], u[:, 2:4], u[:, 4:6], u[:, 6]
    S = config.crop_size
    zoom = config.min_zoom * u_s + config.max_zoom_out * (1.0 - u_s)
    if center is None:
        rho = (0.5 * math.sqrt(2.0) * S * zoom)[:, None]
        crop_center = rho + u_c * (sizes - 2.0 * rho)
    else:
        signs = torch.where(u_c < 0.5, -1.0, 1.0).to(torch.float64)
        crop_center = center.to(torch.float64) + config.center_jitter * S * signs
    vertical = u_a < 0.5
    m = torch.tensor(config.min_distort, dtype=torch.float64, device=sizes.device)[vertical.long()]
    distort = m[:, None] * u_p + (1.0 - u_p)
    angle = (2.0 * u_r - 1.0) * math.radians(config.max_rot_deg)
    return CropParams(zoom=zoom, angle=angle, center=crop_center, distort=distort, vertical=vertical)


def crop_corners(params: CropParams, crop_size: int) -> torch.Tensor:
    """The image quadrilaterals of a batch of crops (spec §2.4 steps 7-8).

    Returns:
        ``(B, 4, 2)`` float64 image points of the crop corners TL, TR, BL, BR (which
        :func:`crop_homographies` sends to ``(0, 0), (S-1, 0), (0, S-1), (S-1, S-1)``).
    """
    h = (crop_size - 1) / 2.0
    base = torch.tensor([[-h, -h], [h, -h], [-h, h], [h, h]], dtype=torch.float64, device=params.zoom.device)
    f1, f2 = params.distort[:, 0:1], params.distort[:, 1:2]
    ones = torch.ones_like(f1)
    top_bottom = torch.cat([f1, f1, f2, f2], dim=1)  # x factors of TL, TR, BL, BR
    left_right = torch.cat([f1, f2, f1, f2], dim=1)  # y factors of TL, TR, BL, BR
    v = params.vertical[:, None]
    fx = torch.where(v, ones.expand(-1, 4), top_bottom)
    fy = torch.where(v, left_right, ones.expand(-1, 4))
    x = base[:, 0] * params.zoom[:, None] * fx
    y = base[:, 1] * params.zoom[:, None] * fy
    c, s = torch.cos(params.angle)[:, None], torch.sin(params.angle)[:, None]
    return torch.stack([c * x - s * y, s * x + c * y], dim=-1) + params.center[:, None, :]


def homography_from_points(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """Batched 4-point homography (DLT with ``H[2, 2] = 1``, one 8x8 solve per item).

    Args:
        src, dst: ``(B, 4, 2)`` point pairs (no three collinear).

    Returns:
        ``(B, 3, 3)`` float64 ``H`` with ``dst ~ H @ [src, 1]``: ``cv2.getPerspectiveTransform``'s
        matrix times ``±1``, the sign chosen so that the source points map with ``w > 0``
        (which :func:`project_points` reads as "in front").
    """
    src, dst = src.to(torch.float64), dst.to(torch.float64)
    x, y = src[..., 0], src[..., 1]
    u, v = dst[..., 0], dst[..., 1]
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    rows_u = torch.stack([x, y, one, zero, zero, zero, -u * x, -u * y], dim=-1)
    rows_v = torch.stack([zero, zero, zero, x, y, one, -v * x, -v * y], dim=-1)
    A = torch.cat([rows_u, rows_v], dim=1)  # (B, 8, 8)
    b = torch.cat([u, v], dim=1)  # (B, 8)
    h = torch.linalg.solve(A, b)
    H = torch.cat([h, torch.ones_like(h[:, :1])], dim=1).reshape(-1, 3, 3)
    # H and -H are the same map; pick the sign that puts the source points in front (w > 0)
    w = (src @ H[:, 2, :2, None])[..., 0] + H[:, 2:3, 2]
    return H * torch.where(w.sum(1) < 0, -1.0, 1.0).to(H)[:, None, None]


def crop_homographies(params: CropParams, crop_size: int) -> torch.Tensor:
    """``(B, 3, 3)`` float64 image-to-crop homographies of ``params`` (spec §2.4 step 9)."""
    n = crop_size - 1
    square = torch.tensor([[0, 0], [n, 0], [0, n], [n, n]], dtype=torch.float64, device=params.zoom.device)
    corners = crop_corners(params, crop_size)
    return homography_from_points(corners, square.expand_as(corners))


def sample_crop_homographies(
    image_sizes: torch.Tensor,
    config: HCropsConfig = HCropsConfig(),
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw the two crops of a batch of pairs (spec §2.4 steps 1-9 and pair step 2).

    Args:
        image_sizes: ``(B, 2)`` image sizes ``(W, H)`` (any device).
        config: ranges.
        generator: random source.

    Returns:
        ``(H1, H2)``, each ``(B, 3, 3)`` float64, image pixels to crop pixels; crop 2 is centred
        ``config.center_jitter * S`` away from crop 1 along each axis.
    """
    p1 = sample_crop_params(image_sizes, config, generator)
    p2 = sample_crop_params(image_sizes, config, generator, center=p1.center)
    return crop_homographies(p1, config.crop_size), crop_homographies(p2, config.crop_size)


def warp_crops(images: torch.Tensor, H: torch.Tensor, size: int) -> torch.Tensor:
    """Render ``size x size`` crops: ``crop(p) = image(inv(H) p)``, bilinear, zero outside.

    kornia's ``warp_perspective`` with ``align_corners=True`` normalises pixel *centres*
    ``0 .. W-1`` to ``-1 .. 1``, i.e. it follows the pixel-centre convention of ``H``
    (as ``cv2.warpPerspective``).

    Args:
        images: ``(B, C, H, W)`` float.
        H: ``(B, 3, 3)`` image pixels to crop pixels (any float dtype).
        size: crop side.

    Returns:
        ``(B, C, size, size)`` in the dtype of ``images``.
    """
    return kornia.geometry.transform.warp_perspective(
        images, H.to(images.dtype), (size, size), mode="bilinear", padding_mode="zeros", align_corners=True
    )


def project_points(H: torch.Tensor, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply ``(B, 3, 3)`` homographies to ``(B, N, 2)`` points.

    Returns:
        ``(points', in_front)``: ``(B, N, 2)`` in the dtype of ``H`` and ``(B, N)`` bool, False
        where the point is sent to or through the horizon (its coordinates are then meaningless).
    """
    pts = points.to(H.dtype)
    hom = pts @ H[:, :2, :2].transpose(1, 2) + H[:, None, :2, 2]
    w = pts @ H[:, 2, :2, None] + H[:, None, 2:3, 2]
    in_front = w[..., 0] > 1e-12
    return hom / torch.where(in_front[..., None], w, torch.ones_like(w)), in_front


def _inside(points: torch.Tensor, size: int) -> torch.Tensor:
    return ((points >= 0) & (points <= size - 1)).all(dim=-1)


def dense_grid_correspondences(
    H_AB: torch.Tensor, size: int, stride: int = 1, offset: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A regular grid of A pixels and where ``H_AB`` sends them in B.

    Args:
        H_AB: ``(B, 3, 3)`` A pixels to B pixels (both ``size x size``).
        size: crop side ``S``.
        stride: grid step, pixels.
        offset: position of the first grid point on each axis (e.g. ``(stride - 1) / 2`` for
            the centres of ``stride x stride`` cells).

    Returns:
        ``(ptsA, ptsB, inside)``: ``(B, M, 2)``, ``(B, M, 2)`` in the dtype of ``H_AB`` (x varies
        fastest, ``M = m * m`` with ``m`` the number of steps in ``[offset, S - 1]``) and ``(B, M)``
        bool, True where the point lands in B (within ``[0, S-1]^2``, in front of the camera).
    """
    steps = torch.arange(offset, size - 1 + 1e-9, stride, dtype=H_AB.dtype, device=H_AB.device)
    gy, gx = torch.meshgrid(steps, steps, indexing="ij")
    ptsA = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=-1).expand(len(H_AB), -1, -1)
    ptsB, in_front = project_points(H_AB, ptsA)
    return ptsA, ptsB, in_front & _inside(ptsB, size)


def random_textured_points(
    images: torch.Tensor,
    n: int,
    generator: torch.Generator | None = None,
    image_sizes: torch.Tensor | None = None,
    window: int = 5,
    border: int = 4,
) -> torch.Tensor:
    """``n`` distinct random pixels per image, where the local gradient magnitude is high.

    The score of a pixel is its Sobel gradient magnitude (of the gray image) averaged over a
    ``window x window`` neighbourhood, minus the mean score of the image; pixels are drawn
    without replacement with probability proportional to the positive part (Gumbel top-k).
    When an image has fewer than ``n`` such pixels the rest are uniform over the image.

    Args:
        images: ``(B, 3, H, W)`` float in ``[0, 1]`` (a zero-padded canvas is fine).
        n: points per image (at most the number of pixels of the smallest image's interior).
        generator: random source; for large batches use one on the images' device.
        image_sizes: ``(B, 2)`` true ``(W, H)`` of each image on the canvas (default: full canvas).
        window: averaging window of the gradient magnitude, pixels (odd).
        border: pixels next to the image edges that are never drawn.

    Returns:
        ``(B, n, 2)`` float32 integer pixel centres ``(x, y)``.
    """
    B, _, H, W = images.shape
    device = images.device
    gray = kornia.color.rgb_to_grayscale(images) if images.shape[1] == 3 else images.mean(1, keepdim=True)
    magnitude = kornia.filters.sobel(gray, normalized=True)  # (B, 1, H, W)
    score = F.avg_pool2d(magnitude, window, stride=1, padding=window // 2, count_include_pad=False)[:, 0]
    if image_sizes is None:
        image_sizes = torch.tensor([[W, H]], device=device).expand(B, 2)
    sizes = image_sizes.to(device)
    xs = torch.arange(W, device=device)[None, None, :]
    ys = torch.arange(H, device=device)[None, :, None]
    inside = (
        (xs >= border)
        & (xs < sizes[:, 0, None, None] - border)
        & (ys >= border)
        & (ys < sizes[:, 1, None, None] - border)
    )
    available = int(inside.flatten(1).sum(1).min())
    if n > available:
        raise ValueError(
            f"random_textured_points: asked for {n} points, the smallest image has {available} usable pixels"
        )
    mean = (score * inside).flatten(1).sum(1) / inside.flatten(1).sum(1)
    weight = torch.relu(score - mean[:, None, None]) * inside
    u = uniform((B, H * W), generator, device).clamp_min(1e-20)
    gumbel = -torch.log(-torch.log(u))
    w = weight.flatten(1)
    keys = torch.where(w > 0, torch.log(w.clamp_min(1e-30)) + gumbel, gumbel - 1e4)
    keys = keys.masked_fill(~inside.flatten(1), float("-inf"))
    idx = keys.topk(n, dim=1).indices
    return torch.stack([idx % W, idx // W], dim=-1).to(torch.float32)


def _correspondences(
    H1: torch.Tensor, H_AB: torch.Tensor, keypoints: torch.Tensor, mask: torch.Tensor, size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keypoints -> A (``H1``) -> B (``H_AB``); valid where inside both crops (pair steps 4, 7)."""
    kpA, front_a = project_points(H1, keypoints)
    kpB, front_b = project_points(H_AB, kpA)
    valid = mask & front_a & front_b & _inside(kpA, size) & _inside(kpB, size)
    return kpA, kpB, valid


def _overlap_ok(H_AB: torch.Tensor, config: HCropsConfig) -> torch.Tensor:
    """Pair step 5, overlap part: enough of A's grid lands in B and of B's grid in A."""
    S, stride = config.crop_size, config.overlap_stride
    a_in_b = dense_grid_correspondences(H_AB, S, stride)[2].to(H_AB.dtype).mean(1)
    b_in_a = dense_grid_correspondences(torch.linalg.inv(H_AB), S, stride)[2].to(H_AB.dtype).mean(1)
    return (a_in_b > config.min_overlap) & (b_in_a > config.min_overlap)


def _select(
    valid: torch.Tensor, k: int, first_k: bool, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices ``(B, k)`` of up to ``k`` valid entries per row (random or first-k) and their mask."""
    B, N = valid.shape
    if first_k:
        score = -torch.arange(N, device=valid.device, dtype=torch.float32).expand(B, N)
    else:
        score = uniform((B, N), generator, valid.device)
    score = score.masked_fill(~valid, float("-inf"))
    top = score.topk(min(k, N), dim=1)
    idx, keep = top.indices, torch.isfinite(top.values)
    if N < k:
        pad = k - N
        idx = torch.cat([idx, idx.new_zeros(B, pad)], dim=1)
        keep = torch.cat([keep, keep.new_zeros(B, pad)], dim=1)
    return idx, keep


def make_pairs(
    images: torch.Tensor,
    keypoints: torch.Tensor | None = None,
    keypoint_mask: torch.Tensor | None = None,
    config: HCropsConfig = HCropsConfig(),
    generator: torch.Generator | None = None,
    image_sizes: torch.Tensor | None = None,
    images_b: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Generate a batch of H-crops training pairs (spec §2.4 pair generation, quirks fixed).

    Per item, up to ``config.max_attempts`` times: draw ``(H1, H2)``, project the keypoints
    (``H1``, keep those in A; ``H_AB``, keep those in B), and accept when at least
    ``min_correspondences`` survive, the overlap test passes and A is textured (std of its
    channel mean ``>= min_texture_std``). Only the items still pending are redrawn. Items that
    never pass keep their last draw, ``pair_valid = False`` and no valid correspondence.

    Args:
        images: ``(B, 3, H, W)`` float in ``[0, 1]`` (zero-padded canvas for mixed sizes).
        keypoints: ``(B, N, 2)`` image keypoints ``(x, y)`` (e.g. SIFT or SuperPoint); None:
            ``config.num_source_points`` from :func:`random_textured_points`.
        keypoint_mask: ``(B, N)`` bool, False for padding (default: all valid).
        config: generator settings.
        generator: random source.
        image_sizes: ``(B, 2)`` true ``(W, H)`` of each image (default: the canvas size).
        images_b: ``(B, 3, H, W)`` source of crop B (e.g. a stylised copy; default ``images``).

    Returns:
        dict of tensors on the images' device:
            ``A``, ``B``: ``(B, 3, S, S)`` crops (dtype of ``images``);
            ``H_AB``: ``(B, 3, 3)`` A pixels to B pixels; ``H1``, ``H2``: image to A / B pixels
            (dtype of ``images``; computed in float64);
            ``kpA``, ``kpB``: ``(B, K, 2)`` float32 correspondences, ``kpB = H_AB(kpA)``
            (0 where not valid); ``valid``: ``(B, K)`` bool;
            ``pair_valid``: ``(B,)`` bool; ``attempts``: ``(B,)`` int64 draws used.
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"make_pairs: images must be (B, 3, H, W), got {tuple(images.shape)}")
    B, _, Hc, Wc = images.shape
    device, S = images.device, config.crop_size
    if images_b is not None and images_b.shape != images.shape:
        raise ValueError(f"make_pairs: images_b {tuple(images_b.shape)} differs from images {tuple(images.shape)}")
    sizes = (image_sizes if image_sizes is not None else torch.tensor([[Wc, Hc]]).expand(B, 2)).to(device)
    if keypoints is None:
        keypoints = random_textured_points(images, config.num_source_points, generator, sizes)
        keypoint_mask = None
    if keypoints.dim() != 3 or keypoints.shape[0] != B or keypoints.shape[2] != 2:
        raise ValueError(f"make_pairs: keypoints must be (B, N, 2) with B = {B}, got {tuple(keypoints.shape)}")
    kps = keypoints.to(device=device, dtype=torch.float64)
    mask = torch.isfinite(kps).all(-1)
    if keypoint_mask is not None:
        mask &= keypoint_mask.to(device=device, dtype=torch.bool)

    H1 = torch.zeros(B, 3, 3, dtype=torch.float64, device=device)
    H2 = torch.zeros_like(H1)
    crops_a = images.new_zeros(B, 3, S, S)
    has_a = torch.zeros(B, dtype=torch.bool, device=device)
    accepted = torch.zeros_like(has_a)
    attempts = torch.zeros(B, dtype=torch.int64, device=device)
    for _ in range(config.max_attempts):
        todo = (~accepted).nonzero().squeeze(1)
        if todo.numel() == 0:
            break
        h1, h2 = sample_crop_homographies(sizes[todo], config, generator)
        H1[todo], H2[todo] = h1, h2
        has_a[todo] = False
        attempts[todo] += 1
        h_ab = h2 @ torch.linalg.inv(h1)
        valid = _correspondences(h1, h_ab, kps[todo], mask[todo], S)[2]
        ok = (valid.sum(1) >= config.min_correspondences) & _overlap_ok(h_ab, config)
        sel = todo[ok]
        if sel.numel() == 0:
            continue
        a = warp_crops(images[sel], H1[sel], S)
        crops_a[sel], has_a[sel] = a, True
        textured = a.mean(1).flatten(1).std(1, unbiased=False) >= config.min_texture_std
        accepted[sel[textured]] = True

    rest = (~has_a).nonzero().squeeze(1)
    if rest.numel():
        crops_a[rest] = warp_crops(images[rest], H1[rest], S)
    crops_b = warp_crops(images if images_b is None else images_b, H2, S)
    H_AB = H2 @ torch.linalg.inv(H1)
    kpA, kpB, valid = _correspondences(H1, H_AB, kps, mask, S)
    valid &= accepted[:, None]
    idx, keep = _select(valid, config.num_keypoints, config.first_k_quirk, generator)
    gather = idx[..., None].expand(-1, -1, 2)
    kpA = torch.gather(kpA, 1, gather).where(keep[..., None], 0.0).float()
    kpB = torch.gather(kpB, 1, gather).where(keep[..., None], 0.0).float()
    dtype = images.dtype
    return {
        "A": crops_a,
        "B": crops_b,
        "H_AB": H_AB.to(dtype),
        "H1": H1.to(dtype),
        "H2": H2.to(dtype),
        "kpA": kpA,
        "kpB": kpB,
        "valid": keep,
        "pair_valid": accepted,
        "attempts": attempts,
    }
