"""SuperPoint-style HPatches protocol: homography correctness, matching score, repeatability.

Variant implemented (see the spec, anchors §A2 and methods §8 E3/E4; always print it):

* Both images are resized to a fixed ``(W, H)`` — **aspect not preserved** (HNDesc E3),
  and the ground truth becomes ``H' = S1^-1 H S0`` in pixel-centre coordinates
  (:func:`selfdesc.geometry.scale_homography`).
* Features are extracted on the resized images (keypoints in resized pixels). Each image
  keeps only its *shared* points — those whose ground-truth warp lands inside the other
  image, ``0 <= x < W, 0 <= y < H`` as in rpautrat's ``keep_shared_points`` — then the
  ``num_points`` best by score. All three metrics use these shared points.
* Homography correctness: mutual-NN matches, ``cv2.findHomography`` RANSAC; correct at
  ``eps`` if the mean error of the 4 pixel-centre corners of image 0 is ``<= eps``.
* Matching score (LF-Net definition, HNDesc E4): plain NN both ways, a match is correct if
  the reprojection error is ``< threshold``; divided by the number of points visible in the
  other image; mean of the two directions.
* Repeatability (rpautrat ``compute_repeatability``): a point is repeated if some point of
  the other image lies within ``<= threshold`` pixels after warping;
  ``(#repeated0 + #repeated1) / (N0 + N1)``.

Pairs are aggregated pair-weighted per split (``overall`` always, ``i``/``v`` when present).
Coordinates are ``(x, y)`` pixel centres; ``H`` maps image 0 to image 1.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch
from tqdm import tqdm

from selfdesc.datasets.base import HomographyPair
from selfdesc.errors import ConfigError, DatasetError
from selfdesc.eval.aggregate import NAMED_SPLITS, threshold_key
from selfdesc.eval.extraction import ExtractorSettings
from selfdesc.eval.homography import ransac_homography
from selfdesc.features.base import Extractor, to_tensor
from selfdesc.geometry.homography import corner_error, scale_homography, warp_points
from selfdesc.io.image import load_image
from selfdesc.matching.nearest_neighbor import match_mnn

RESIZE_MODE = "aspect not preserved"

#: SuperPoint paper conventions, named ``<H>x<W>`` as in the paper.
PRESETS: dict[str, dict[str, Any]] = {
    "240x320": {"size": (320, 240), "num_points": 300},
    "480x640": {"size": (640, 480), "num_points": 1000},
}


@dataclass(frozen=True)
class SuperPointProtocolConfig:
    """Settings of the protocol.

    Attributes:
        size: ``(W, H)`` both images are resized to (aspect not preserved).
        num_points: keep at most this many shared points per image (best scores).
        ransac_threshold: RANSAC reprojection threshold in pixels.
        max_iters: RANSAC iterations.
        correctness_thresholds: corner-error thresholds ``eps`` in pixels.
        matching_threshold: a NN match is correct if its reprojection error is ``<`` this.
        repeatability_threshold: a point is repeated within ``<=`` this distance.
    """

    size: tuple[int, int] = (640, 480)
    num_points: int = 1000
    ransac_threshold: float = 3.0
    max_iters: int = 5000
    ransac_confidence: float = 0.995  # OpenCV default, as the SuperPoint evaluation code uses
    correctness_thresholds: tuple[float, ...] = (1.0, 3.0, 5.0)
    matching_threshold: float = 3.0
    repeatability_threshold: float = 3.0

    def __post_init__(self) -> None:
        if len(self.size) != 2 or min(self.size) < 2:
            raise ConfigError(f"superpoint protocol: size must be (W, H) with both >= 2, got {self.size}")
        if self.num_points < 1 or self.max_iters < 1:
            raise ConfigError("superpoint protocol: num_points and max_iters must be positive")
        object.__setattr__(self, "size", (int(self.size[0]), int(self.size[1])))
        object.__setattr__(self, "correctness_thresholds", tuple(float(t) for t in self.correctness_thresholds))

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> SuperPointProtocolConfig:
        """The named preset (``"240x320"`` or ``"480x640"``), optionally overridden."""
        if name not in PRESETS:
            raise ConfigError(f"unknown superpoint protocol preset '{name}' (available: {', '.join(PRESETS)})")
        return cls(**{**PRESETS[name], **overrides})

    @property
    def resolution(self) -> str:
        """``"<W>x<H>"``."""
        return f"{self.size[0]}x{self.size[1]}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly settings, including the resize mode."""
        out = asdict(self)
        out["size"] = list(self.size)
        out["correctness_thresholds"] = list(self.correctness_thresholds)
        out["resolution"] = self.resolution
        out["resize"] = RESIZE_MODE
        return out


# ---------------------------------------------------------------------------------------------
# Pure metric functions (numpy)
# ---------------------------------------------------------------------------------------------


def inside_image(points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``N`` bool: ``0 <= x < W`` and ``0 <= y < H`` for ``N x 2`` points, ``size = (W, H)``."""
    p = np.asarray(points, np.float64).reshape(-1, 2)
    return (p[:, 0] >= 0) & (p[:, 0] < size[0]) & (p[:, 1] >= 0) & (p[:, 1] < size[1])


def keep_shared_points(
    keypoints: np.ndarray,
    scores: np.ndarray,
    H: np.ndarray,
    size_other: tuple[int, int],
    k: int | None,
) -> np.ndarray:
    """Indices of the ``k`` best points whose warp by ``H`` lands inside the other image.

    Args:
        keypoints: ``N x 2`` points of this image; scores: ``N`` (higher is better).
        H: ``3 x 3`` homography from this image to the other one.
        size_other: ``(W, H)`` of the other image.
        k: how many to keep (all when ``None``).

    Returns:
        int64 indices into ``keypoints``, best score first.
    """
    idx = np.nonzero(inside_image(warp_points(H, keypoints), size_other))[0]
    order = np.argsort(-np.asarray(scores, np.float64)[idx], kind="stable")
    return idx[order][:k].astype(np.int64)


def repeatability(
    kpts0: np.ndarray,
    kpts1: np.ndarray,
    H: np.ndarray,
    size0: tuple[int, int],
    size1: tuple[int, int],
    threshold: float = 3.0,
) -> tuple[float, float, int, int]:
    """Repeatability of two point sets (rpautrat ``compute_repeatability``).

    Points of image 0 are warped by ``H`` and kept if inside image 1; points of image 1 are
    kept if their inverse warp is inside image 0 (rank and truncate the sets beforehand).

    Returns:
        ``(rep, loc_error, N0, N1)``: ``rep = (#0 within <= threshold of some 1 + #1 within
        <= threshold of some 0) / (N0 + N1)`` (0 when there is no point), the mean distance
        of the repeated points (``nan`` when none), and the visible point counts.
    """
    warped0 = warp_points(H, kpts0)
    warped0 = warped0[inside_image(warped0, size1)]
    p1 = np.asarray(kpts1, np.float64).reshape(-1, 2)
    p1 = p1[inside_image(warp_points(np.linalg.inv(H), p1), size0)]
    n0, n1 = len(warped0), len(p1)
    if n0 == 0 or n1 == 0:
        return 0.0, float("nan"), n0, n1
    dist = np.linalg.norm(warped0[:, None] - p1[None], axis=2)
    min0, min1 = dist.min(axis=1), dist.min(axis=0)
    rep0, rep1 = min0[min0 <= threshold], min1[min1 <= threshold]
    count = len(rep0) + len(rep1)
    loc = float((rep0.sum() + rep1.sum()) / count) if count else float("nan")
    return count / (n0 + n1), loc, n0, n1


def _nn_directional_score(
    kpts_a: np.ndarray,
    desc_a: np.ndarray,
    kpts_b: np.ndarray,
    desc_b: np.ndarray,
    H_ab: np.ndarray,
    size_b: tuple[int, int],
    threshold: float,
) -> float:
    """Fraction of A's points visible in B whose descriptor NN in B reprojects within ``< threshold``."""
    visible = inside_image(warp_points(H_ab, kpts_a), size_b)
    if not visible.any() or len(kpts_b) == 0:
        return 0.0
    nn = np.argmax(np.asarray(desc_a, np.float32)[visible] @ np.asarray(desc_b, np.float32).T, axis=1)
    back = warp_points(np.linalg.inv(H_ab), np.asarray(kpts_b, np.float64)[nn])
    err = np.linalg.norm(back - np.asarray(kpts_a, np.float64)[visible], axis=1)
    return float(np.mean(err < threshold))


def matching_score(
    kpts0: np.ndarray,
    desc0: np.ndarray,
    kpts1: np.ndarray,
    desc1: np.ndarray,
    H: np.ndarray,
    size0: tuple[int, int],
    size1: tuple[int, int],
    threshold: float = 3.0,
) -> float:
    """Matching score (LF-Net definition as implemented by HNDesc E4).

    For each point of image 0 visible in image 1, its plain descriptor nearest neighbour in
    image 1 (``N x D`` L2-normalised descriptors, no cross-check) is projected back with
    ``H^-1``; the fraction with error ``< threshold`` is the 0->1 score (0 when no point is
    visible). Same from 1 to 0 with ``H``. Returns the mean of both directions.
    """
    s01 = _nn_directional_score(kpts0, desc0, kpts1, desc1, H, size1, threshold)
    s10 = _nn_directional_score(kpts1, desc1, kpts0, desc0, np.linalg.inv(H), size0, threshold)
    return 0.5 * (s01 + s10)


def evaluate_pair(
    feats0: Mapping[str, np.ndarray],
    feats1: Mapping[str, np.ndarray],
    H: np.ndarray,
    config: SuperPointProtocolConfig,
) -> dict[str, Any]:
    """All metrics of one pair from features already in the resized images' pixels.

    Args:
        feats0, feats1: ``keypoints`` ``N x 2``, ``scores`` ``N``, ``descriptors`` ``N x D``
            (L2-normalised), in pixels of images of size ``config.size``.
        H: ``3 x 3`` ground truth between the resized images (0 -> 1).
        config: protocol settings.

    Returns:
        ``corner_error`` (``inf`` on failure), ``correct`` (threshold key -> bool),
        ``num_matches``, ``num_inliers``, ``matching_score``, ``repeatability``,
        ``localization_error`` (``nan`` when nothing is repeated), ``num_points0/1``.
    """
    size = config.size
    i0 = keep_shared_points(feats0["keypoints"], feats0["scores"], H, size, config.num_points)
    i1 = keep_shared_points(feats1["keypoints"], feats1["scores"], np.linalg.inv(H), size, config.num_points)
    k0, d0 = np.asarray(feats0["keypoints"], np.float64)[i0], np.asarray(feats0["descriptors"], np.float32)[i0]
    k1, d1 = np.asarray(feats1["keypoints"], np.float64)[i1], np.asarray(feats1["descriptors"], np.float32)[i1]

    matches, _ = match_mnn(d0, d1)
    H_est, inlier_mask = ransac_homography(k0[matches[:, 0]], k1[matches[:, 1]], config.ransac_threshold, config.max_iters, config.ransac_confidence)
    inliers = int(inlier_mask.sum())
    err = corner_error(H_est, H, *size)
    rep, loc, _, _ = repeatability(k0, k1, H, size, size, config.repeatability_threshold)
    return {
        "corner_error": err,
        "correct": {threshold_key(t): bool(err <= t) for t in config.correctness_thresholds},
        "num_matches": int(len(matches)),
        "num_inliers": inliers,
        "matching_score": matching_score(k0, d0, k1, d1, H, size, size, config.matching_threshold),
        "repeatability": rep,
        "localization_error": loc,
        "num_points0": int(len(i0)),
        "num_points1": int(len(i1)),
    }


def aggregate(per_pair: Sequence[Mapping[str, Any]], thresholds: Iterable[float]) -> dict[str, Any]:
    """Pair-weighted means of :func:`evaluate_pair` records (all of them count, failures included)."""
    locs = [p["localization_error"] for p in per_pair if not math.isnan(p["localization_error"])]
    return {
        "homography_correct": {
            threshold_key(t): float(np.mean([p["correct"][threshold_key(t)] for p in per_pair])) for t in thresholds
        },
        "matching_score": float(np.mean([p["matching_score"] for p in per_pair])),
        "repeatability": float(np.mean([p["repeatability"] for p in per_pair])),
        "localization_error": float(np.mean(locs)) if locs else None,
        "num_pairs": len(per_pair),
        "num_points": float(np.mean([0.5 * (p["num_points0"] + p["num_points1"]) for p in per_pair])),
        "num_matches": float(np.mean([p["num_matches"] for p in per_pair])),
    }


# ---------------------------------------------------------------------------------------------
# The loop: load, extract, evaluate
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def _extract_resized(extractor: Extractor, path: Path, size: tuple[int, int]) -> tuple[dict[str, np.ndarray], tuple[float, float]]:
    """Features of ``path`` resized to ``size`` (keypoints in resized pixels) and its scale."""
    loaded = load_image(path, size=size)
    pred = extractor({"image": to_tensor(loaded.image).to(extractor.device)})
    feats = {k: pred[k].detach().float().cpu().numpy() for k in ("keypoints", "scores", "descriptors")}
    return feats, loaded.scale


def evaluate_superpoint_protocol(
    extractor: Extractor,
    pairs: Sequence[HomographyPair],
    config: SuperPointProtocolConfig | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the protocol on homography pairs.

    Each image is loaded once at ``config.size`` (aspect not preserved) and passed to
    ``extractor({"image": ...})``; the extractor should return at least
    ``config.num_points`` keypoints (set its ``max_keypoints`` to ``None`` or larger).

    Returns:
        ``{split: {"homography_correct": {"1": x, "3": x, "5": x}, "matching_score": x,
        "repeatability": x, "localization_error": x, "num_pairs": n, "num_points": mean,
        "num_matches": mean}}`` for ``overall`` and ``i`` / ``v`` when present, plus
        ``"config"`` (settings, resolution, resize mode, feature name) and ``"pairs"``
        (``name -> evaluate_pair record`` plus its ``split``).

    Raises:
        DatasetError: ``pairs`` is empty.
    """
    config = config or SuperPointProtocolConfig()
    pairs = list(pairs)
    if not pairs:
        raise DatasetError("superpoint protocol: no pairs to evaluate")
    cache: dict[Path, tuple[dict[str, np.ndarray], tuple[float, float]]] = {}
    records: dict[str, dict[str, Any]] = {}
    for pair in tqdm(pairs, desc=f"superpoint protocol {config.resolution}", disable=not progress, leave=False, unit="pair"):
        for path in (pair.image0, pair.image1):
            if path not in cache:
                cache[path] = _extract_resized(extractor, path, config.size)
        (f0, s0), (f1, s1) = cache[pair.image0], cache[pair.image1]
        H = scale_homography(pair.H, s0, s1)
        records[pair.name] = {"split": pair.split, **evaluate_pair(f0, f1, H, config)}

    results: dict[str, Any] = {"overall": aggregate(list(records.values()), config.correctness_thresholds)}
    for split in NAMED_SPLITS:
        subset = [r for r in records.values() if r["split"] == split]
        if subset:
            results[split] = aggregate(subset, config.correctness_thresholds)
    results["config"] = {
        **config.as_dict(),
        "feature": extractor.name,
        "max_keypoints": extractor.conf.get("max_keypoints"),
        "protocol": "superpoint (HNDesc E3/E4 variant)",
    }
    results["pairs"] = records
    return results


def run_superpoint_benchmark(
    features: Sequence[str],
    pairs: Sequence[HomographyPair],
    presets: Sequence[str],
    settings: ExtractorSettings,
    progress: bool = True,
) -> dict[str, dict[str, Any]]:
    """Every feature under every preset (:data:`PRESETS`): ``feature -> preset -> result`` of
    :func:`evaluate_superpoint_protocol`, without its per-pair records."""
    configs = {p: SuperPointProtocolConfig.preset(p) for p in presets}
    results: dict[str, dict[str, Any]] = {}
    for name in features:
        extractor = settings.load(name)
        results[name] = {}
        for preset, cfg in configs.items():
            res = evaluate_superpoint_protocol(extractor, pairs, cfg, progress=progress)
            res.pop("pairs", None)
            results[name][preset] = res
    return results


def superpoint_markdown(results_by_feature: Mapping[str, Mapping[str, Mapping[str, Any]]], split: str = "overall") -> str:
    """A markdown table: one row per feature x preset.

    Args:
        results_by_feature: ``feature -> preset label -> evaluate_superpoint_protocol output``.
        split: which split to show (``"overall"``, ``"i"``, ``"v"``); rows lacking it are skipped.

    Returns:
        Columns feature, preset, resolution, points, Cor-<eps> ..., MS, Rep, pairs.
    """
    rows: list[tuple[str, str, Mapping[str, Any]]] = [
        (feature, label, res) for feature, by_preset in results_by_feature.items() for label, res in by_preset.items() if split in res
    ]
    keys: list[str] = list(dict.fromkeys(k for _, _, r in rows for k in r[split]["homography_correct"]))
    header = ["feature", "preset", "resolution", "points", *[f"Cor-{k}" for k in keys], "MS", "Rep", "pairs"]
    lines = [f"HPatches, SuperPoint protocol, split: {split}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for feature, label, res in rows:
        cfg, m = res.get("config", {}), res[split]
        cor = [f"{m['homography_correct'][k]:.3f}" if k in m["homography_correct"] else "–" for k in keys]
        resolution = f"{cfg.get('resolution', '?')}, {cfg.get('resize', RESIZE_MODE)}"
        cells = [feature, label, resolution, str(cfg.get("num_points", "?")), *cor,
                 f"{m['matching_score']:.3f}", f"{m['repeatability']:.3f}", str(m["num_pairs"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
