"""Geometry helpers (homographies; numpy and torch)."""
from selfdesc.geometry.homography import (
    corner_error,
    image_corners,
    scale_homography,
    warp_points,
    warp_points_torch,
)

__all__ = ["corner_error", "image_corners", "scale_homography", "warp_points", "warp_points_torch"]
