"""Sub-pixel refinement of heatmap peaks.

A peak is an integer pixel ``(x, y)`` of a dense ``(B, 1, H, W)`` heatmap (e.g. from
:func:`selfdesc.features.nms.top_k_peaks`); map pixel ``(x, y)`` is the image pixel centre
``(x, y)`` (pixel-centre convention), so refined positions are image pixels too. Two refiners:

* :func:`softargmax_refine` — the expectation of the offsets in a ``(2r+1)^2`` window around
  the peak under ``softmax(v / temperature)`` with ``v`` the window's values divided by their
  maximum (so the result does not depend on the heatmap's scale); differentiable in the heatmap
  (the training losses use it), offsets within ``[-r, r]`` by construction. Pixels outside the
  map get no weight.
* :func:`quadratic_refine` — per axis, the vertex of the parabola through the log-heatmap at
  the peak and its two neighbours (exact for a Gaussian blob), offsets clipped to ``[-0.5, 0.5]``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from selfdesc.errors import ConfigError

#: refinement modes of :func:`refine_peaks`
REFINEMENTS = ("softargmax", "quadratic", "none")


def window_offsets(radius: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``((2r+1)^2, 2)`` ``(dx, dy)`` offsets of a window, row-major (dy outer, dx inner)."""
    r = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    dy, dx = torch.meshgrid(r, r, indexing="ij")
    return torch.stack([dx.flatten(), dy.flatten()], dim=-1)


def window_values(heatmap: torch.Tensor, centers: torch.Tensor, radius: int, fill: float = float("-inf")) -> torch.Tensor:
    """Heatmap values in the ``(2r+1)^2`` window around each centre.

    Args:
        heatmap: ``(B, 1, H, W)``.
        centers: ``(B, N, 2)`` integer ``(x, y)`` pixels (any integer-valued dtype or float);
            centres outside the map are clamped into it.
        radius: window half size ``r``.
        fill: value of window pixels outside the map.

    Returns:
        ``(B, N, (2r+1)^2)`` values, window order of :func:`window_offsets`.
    """
    B, _, H, W = heatmap.shape
    padded = F.pad(heatmap[:, 0], (radius, radius, radius, radius), value=fill)  # (B, H+2r, W+2r)
    c = centers.round().long()
    cx, cy = c[..., 0].clamp(0, W - 1), c[..., 1].clamp(0, H - 1)
    off = window_offsets(radius, heatmap.device, torch.int64)
    x = cx[..., None] + off[:, 0] + radius
    y = cy[..., None] + off[:, 1] + radius
    index = (y * (W + 2 * radius) + x).flatten(1)  # (B, N*K)
    return padded.flatten(1).gather(1, index).view(B, c.shape[1], off.shape[0])


def softargmax_refine(
    heatmap: torch.Tensor, centers: torch.Tensor, radius: int = 2, temperature: float = 0.1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft-argmax positions of heatmap windows (differentiable in ``heatmap``).

    Args:
        heatmap: ``(B, 1, H, W)``.
        centers: ``(B, N, 2)`` integer ``(x, y)`` window centres.
        radius: window half size ``r``.
        temperature: softmax temperature on the window values relative to the window maximum
            (non-negative heatmaps; smaller: closer to the argmax).

    Returns:
        ``xy`` ``(B, N, 2)`` float positions ``centre + E[offset]`` and ``dispersion`` ``(B, N)``,
        the expected squared distance of the window pixels from that position (0 for a
        one-pixel peak; small means peaky).
    """
    if radius < 1 or temperature <= 0:
        raise ConfigError(f"softargmax_refine: need radius >= 1 and temperature > 0, got {radius}, {temperature}")
    values = window_values(heatmap.float(), centers, radius)
    peak = values.detach().amax(-1, keepdim=True).clamp_min(1e-12)  # the scale, a constant
    weights = torch.softmax(values / (temperature * peak), dim=-1)  # (B, N, K)
    off = window_offsets(radius, heatmap.device)
    mean = weights @ off  # (B, N, 2)
    spread = ((off[None, None] - mean[..., None, :]) ** 2).sum(-1)  # (B, N, K)
    dispersion = (weights * spread).sum(-1)
    return centers.round().float() + mean, dispersion


def quadratic_refine(heatmap: torch.Tensor, centers: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Per-axis log-parabola vertex around each peak.

    With ``l = log(max(heatmap, eps))`` at the peak ``l0`` and its neighbours ``l-``, ``l+`` along
    one axis, the offset is ``(l- - l+) / (2 (l- - 2 l0 + l+))``, used only where the parabola
    opens downwards (else 0) and clipped to ``[-0.5, 0.5]``; neighbours outside the map give 0.

    Args:
        heatmap: ``(B, 1, H, W)`` non-negative scores.
        centers: ``(B, N, 2)`` integer ``(x, y)`` peaks.

    Returns:
        ``(B, N, 2)`` float positions.
    """
    values = window_values(heatmap.float().clamp_min(eps).log(), centers, 1, fill=float("nan"))
    left, right, up, down, mid = values[..., 3], values[..., 5], values[..., 1], values[..., 7], values[..., 4]

    def vertex(minus: torch.Tensor, plus: torch.Tensor) -> torch.Tensor:
        curv = minus - 2 * mid + plus
        ok = torch.isfinite(curv) & (curv < 0)
        return torch.where(ok, 0.5 * (minus - plus) / torch.where(ok, curv, -1.0), 0.0).clamp(-0.5, 0.5)

    return centers.round().float() + torch.stack([vertex(left, right), vertex(up, down)], dim=-1)


def refine_peaks(heatmap: torch.Tensor, centers: torch.Tensor, mode: str, radius: int = 2, temperature: float = 0.1) -> torch.Tensor:
    """``(B, N, 2)`` positions of the peaks ``centers`` refined by ``mode`` (one of :data:`REFINEMENTS`)."""
    if mode == "softargmax":
        return softargmax_refine(heatmap, centers, radius, temperature)[0]
    if mode == "quadratic":
        return quadratic_refine(heatmap, centers)
    if mode == "none":
        return centers.round().float()
    raise ConfigError(f"unknown sub-pixel refinement '{mode}' (known: {', '.join(REFINEMENTS)})")


__all__ = ["REFINEMENTS", "quadratic_refine", "refine_peaks", "softargmax_refine", "window_offsets", "window_values"]
