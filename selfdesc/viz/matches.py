"""Match visualisation: two images side by side, inlier matches green, outliers red."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from selfdesc.errors import SelfdescError
from selfdesc.io.atomic import atomic_path


def _to_bgr_uint8(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        arr = np.clip(np.round(arr * 255.0), 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    return np.ascontiguousarray(arr[:, :, ::-1])


def draw_matches(
    image0: np.ndarray,
    image1: np.ndarray,
    keypoints0: np.ndarray,
    keypoints1: np.ndarray,
    matches: np.ndarray,
    inliers: np.ndarray | None = None,
    max_draw: int = 250,
    title: str | None = None,
) -> np.ndarray:
    """Render matches between two images.

    Args:
        image0, image1: ``H x W x 3`` RGB (float in [0, 1] or uint8) or ``H x W`` gray.
        keypoints0, keypoints1: ``N x 2`` / ``M x 2`` pixel-centre ``(x, y)`` in those images.
        matches: ``K x 2`` index pairs.
        inliers: optional ``K`` bool mask; inliers are drawn green, outliers red
            (all green when ``None``).
        max_draw: at most this many lines (evenly sub-sampled, outliers kept in proportion).
        title: optional text drawn in a white banner above the images.

    Returns:
        ``H x (W0 + W1) x 3`` uint8 RGB canvas (``H + 28`` rows with a title).
    """
    a, b = _to_bgr_uint8(image0), _to_bgr_uint8(image1)
    h = max(a.shape[0], b.shape[0])
    canvas = np.zeros((h, a.shape[1] + b.shape[1], 3), np.uint8)
    canvas[: a.shape[0], : a.shape[1]] = a
    canvas[: b.shape[0], a.shape[1] :] = b
    matches = np.asarray(matches, dtype=np.int64).reshape(-1, 2)
    mask = np.ones(len(matches), bool) if inliers is None else np.asarray(inliers, bool)
    order = np.arange(len(matches))
    if len(order) > max_draw:
        order = np.linspace(0, len(matches) - 1, max_draw).astype(np.int64)
    offset = np.array([a.shape[1], 0.0])
    for k in order:
        p0 = np.round(keypoints0[matches[k, 0]]).astype(int)
        p1 = np.round(keypoints1[matches[k, 1]] + offset).astype(int)
        color = (0, 200, 0) if mask[k] else (0, 0, 230)
        cv2.line(canvas, tuple(map(int, p0)), tuple(map(int, p1)), color, 1, cv2.LINE_AA)
        cv2.circle(canvas, tuple(map(int, p0)), 2, color, -1, cv2.LINE_AA)
        cv2.circle(canvas, tuple(map(int, p1)), 2, color, -1, cv2.LINE_AA)
    if title:
        banner = np.full((28, canvas.shape[1], 3), 255, np.uint8)
        cv2.putText(banner, title, (8, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        canvas = np.concatenate([banner, canvas], axis=0)
    return canvas[:, :, ::-1].copy()


def save_png(image: np.ndarray, path: str | Path) -> Path:
    """Write an RGB uint8 array as PNG, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), np.ascontiguousarray(image[:, :, ::-1])):
            raise SelfdescError(f"{path}: could not write PNG")
    return path


def visualize_pairs(
    features: str | Path,
    matches: str | Path,
    image_root: str | Path,
    out_dir: str | Path,
    pairs: list[tuple[str, str]],
    max_side: int = 1024,
) -> list[Path]:
    """Draw the matches of ``pairs`` from a features.h5 / matches.h5, one PNG per pair.

    Verified matches (``inliers0`` stored) are drawn green for inliers and red for outliers;
    without verification every match is green. Images are shown with their longest side at
    most ``max_side``. Files are named ``<name0>__<name1>.png`` ('/' in names -> '-').

    Returns:
        The written paths.
    """
    from selfdesc.io.image import load_image
    from selfdesc.pipeline.h5io import FeatureFile, open_h5, pair_matches

    out_dir = Path(out_dir)
    written = []
    with FeatureFile(features) as ff, open_h5(matches, "matches") as fm:
        for name0, name1 in pairs:
            shown, kps = [], []
            for name in (name0, name1):
                loaded = load_image(Path(image_root) / name, resize_max=max_side)
                sx, sy = loaded.scale
                # original-image pixel-centre coordinates -> the shown (resized) image
                kps.append((ff.read(name, descriptors=False)["keypoints"] + 0.5) / np.array([sx, sy]) - 0.5)
                shown.append(loaded.image)
            all_matches, _, inliers = pair_matches(fm, name0, name1)
            title = f"{name0} - {name1}: {len(all_matches)} matches" + (f", {int(inliers.sum())} inliers" if inliers is not None else "")
            canvas = draw_matches(shown[0], shown[1], kps[0], kps[1], all_matches, inliers, title=title)
            written.append(save_png(canvas, out_dir / f"{name0.replace('/', '-')}__{name1.replace('/', '-')}.png"))
    return written
