"""SfM summary figure: a top-down view of 3D points and camera centres (reconstructed vs GT).

"Top-down" projects onto the plane orthogonal to a given up direction (e.g. the mean ``-y``
camera axis), with the first in-plane axis along the largest spread of the cameras.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from selfdesc.io.atomic import atomic_path

_STYLES = [("tab:red", "o"), ("tab:blue", "^"), ("tab:green", "s"), ("tab:purple", "D")]


def topdown_basis(up: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """``2 x 3`` orthonormal rows spanning the plane orthogonal to ``up``; the first along the
    largest spread of ``centres`` ``(N, 3)`` within that plane."""
    up = np.asarray(up, np.float64)
    up = up / np.linalg.norm(up)
    P = np.eye(3) - np.outer(up, up)
    c = (np.asarray(centres, np.float64) - np.mean(centres, axis=0)) @ P
    if len(c) >= 2 and np.linalg.norm(c) > 0:
        e1 = np.linalg.svd(c, full_matrices=False)[2][0]
    else:
        e1 = P @ (np.array([1.0, 0, 0]) if abs(up[0]) < 0.9 else np.array([0, 1.0, 0]))
    e1 = e1 - up * (e1 @ up)
    e1 /= np.linalg.norm(e1)
    return np.stack([e1, np.cross(up, e1)])


def plot_sfm_topdown(
    path: str | Path,
    points: np.ndarray,
    centres: Mapping[str, np.ndarray],
    up: np.ndarray,
    title: str = "",
    max_points: int = 20000,
) -> Path:
    """Write a PNG of the 3D points (grey) and camera-centre sets (coloured, one per label).

    Args:
        points: ``(P, 3)``; a random subset of ``max_points`` is drawn.
        centres: label (e.g. ``"reconstructed (aligned)"``, ``"ground truth"``) -> ``(N, 3)``.
        up: ``(3,)`` world up direction.
    """
    all_centres = np.concatenate([np.asarray(c).reshape(-1, 3) for c in centres.values()]) if centres else np.zeros((0, 3))
    basis = topdown_basis(up, all_centres if len(all_centres) else np.asarray(points).reshape(-1, 3))
    fig = Figure(figsize=(7, 6), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    pts = np.asarray(points, np.float64).reshape(-1, 3)
    if len(pts) > max_points:
        pts = pts[np.random.default_rng(0).choice(len(pts), max_points, replace=False)]
    if len(pts):
        p2 = pts @ basis.T
        ax.scatter(p2[:, 0], p2[:, 1], s=0.3, c="0.6", alpha=0.5, linewidths=0, label=f"3D points ({len(points)})")
    for (label, c), (colour, marker) in zip(centres.items(), _STYLES):
        c2 = np.asarray(c).reshape(-1, 3) @ basis.T
        ax.scatter(c2[:, 0], c2[:, 1], s=30, c=colour, marker=marker, label=f"{label} ({len(c2)})", zorder=3)
    if len(all_centres):  # cameras and the bulk of the points in view, far-away outlier points cut
        c2 = all_centres @ basis.T
        if len(pts):
            c2 = np.concatenate([c2, np.percentile(pts @ basis.T, [5, 95], axis=0)])
        mid = (c2.min(0) + c2.max(0)) / 2
        half = 1.1 * max(float((c2.max(0) - c2.min(0)).max()), 1e-6)
        ax.set_xlim(mid[0] - half, mid[0] + half)
        ax.set_ylim(mid[1] - half, mid[1] + half)
    ax.set_aspect("equal", adjustable="box")
    ax.set_title(title or "SfM, top-down view")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path
