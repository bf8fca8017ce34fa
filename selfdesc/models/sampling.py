"""Sampling dense descriptor maps at keypoints (one convention for every model and loss)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from selfdesc.errors import ConfigError

#: sampling modes of :func:`sample_descriptors`
SAMPLING = ("bilinear", "nearest")


def sample_descriptors(
    maps: torch.Tensor, points: torch.Tensor, mode: str = "bilinear", normalize: bool = True, stride: int = 1
) -> torch.Tensor:
    """Descriptors of dense maps at sub-pixel positions.

    With ``stride`` ``s``, map cell ``(i, j)`` covers image pixels ``s*j .. s*j + s - 1`` and holds
    the descriptor of its centre, pixel ``s*j + (s - 1) / 2``; a point ``p`` (pixel-centre
    convention) is at map coordinate ``(p - (s - 1) / 2) / s``. For ``s = 1`` map pixel ``(x, y)``
    is image pixel centre ``(x, y)``. ``bilinear``
    interpolates between the 4 neighbouring pixel centres (``grid_sample`` with
    ``align_corners=True``: centres ``0 .. W-1`` map to ``-1 .. 1``; positions outside are
    clamped to the border); ``nearest`` takes the pixel at ``round(p)`` (HNDesc-r2d2 training,
    spec §2.12 quirk 1).

    Args:
        maps: ``(B, D, H, W)`` descriptor maps.
        points: ``(B, N, 2)`` ``(x, y)`` positions in image pixels.
        mode: ``"bilinear"`` or ``"nearest"``.
        normalize: L2-normalise the sampled descriptors.
        stride: image pixels per map cell (1 for full-resolution maps).

    Returns:
        ``(B, N, D)`` descriptors.
    """
    B, D, H, W = maps.shape
    if stride != 1:
        points = (points - (stride - 1) / 2) / stride
    if mode == "bilinear":
        scale = points.new_tensor([2.0 / max(W - 1, 1), 2.0 / max(H - 1, 1)])
        grid = (points * scale - 1)[:, None].to(maps.dtype)  # (B, 1, N, 2)
        out = F.grid_sample(maps, grid, mode="bilinear", padding_mode="border", align_corners=True)[:, :, 0]
    elif mode == "nearest":
        x = points[..., 0].round().long().clamp(0, W - 1)
        y = points[..., 1].round().long().clamp(0, H - 1)
        out = maps.flatten(2).gather(2, (y * W + x)[:, None].expand(-1, D, -1))
    else:
        raise ConfigError(f"sample_descriptors: unknown mode '{mode}' (known: {', '.join(SAMPLING)})")
    out = out.transpose(1, 2)
    return F.normalize(out, p=2, dim=-1) if normalize else out
