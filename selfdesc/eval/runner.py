"""Homography benchmarks end to end: extract -> MNN match (or a trained matcher) -> MMA + homography accuracy.

One call evaluates several features on the same pairs so that numbers sit side by side.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from tqdm import tqdm

from selfdesc.datasets.base import HomographyPair
from selfdesc.errors import DatasetError
from selfdesc.eval.extraction import ImageFeatures, MatchedBenchmarkSettings, Timing, evaluate_features, match_features
from selfdesc.eval.homography import estimate_homography, homography_error
from selfdesc.eval.mma import EvalAccumulator, match_errors, pair_mma
from selfdesc.matching.learned import LearnedMatcher


@dataclass
class HomographyBenchmarkConfig(MatchedBenchmarkSettings):
    """Settings of a homography benchmark run (defaults: D2-Net MMA + full-res MHA): the extractor
    and matcher settings plus RANSAC's and which image's ``corners`` measure the homography error."""

    ransac_threshold: float = 3.0
    ransac_iters: int = 5000
    ransac_confidence: float = 0.9995
    corners: str = "reference"

    def as_dict(self) -> dict[str, Any]:
        d = super().as_dict()
        d["keypoint_convention"] = "pixel centres, original resolution"
        return d


@dataclass
class BenchmarkRun:
    """Everything one benchmark run produced.

    Attributes:
        results: the CLI contract ``{feature: {split: {mma, homography_accuracy, ...}}}``.
        timings: extraction time per image, per feature.
        accumulators: per-feature pair records (for D2-Net caches).
        per_pair: per-feature list of per-pair details (see :func:`evaluate_features_on_pairs`).
    """

    results: dict[str, dict[str, Any]]
    timings: dict[str, Timing]
    accumulators: dict[str, EvalAccumulator]
    per_pair: dict[str, list[dict[str, Any]]]


def evaluate_features_on_pairs(
    features: dict[Path, ImageFeatures],
    pairs: Sequence[HomographyPair],
    config: HomographyBenchmarkConfig,
    progress: bool = True,
    matcher: LearnedMatcher | None = None,
) -> tuple[EvalAccumulator, list[dict[str, Any]]]:
    """Match every pair (MNN, or ``matcher``) and record reprojection and homography errors.

    Returns:
        the accumulator and one dict per pair (name, split, #matches, MMA@1/3/5, corner error).
    """
    acc = EvalAccumulator()
    details: list[dict[str, Any]] = []
    for pair in tqdm(pairs, desc="match", disable=not progress, leave=False, unit="pair"):
        f0, f1 = features[pair.image0], features[pair.image1]
        matches = match_features(f0, f1, config.device, matcher)
        errors = match_errors(f0.keypoints, f1.keypoints, matches, pair.H)
        H_est = estimate_homography(
            f0.keypoints,
            f1.keypoints,
            matches,
            threshold=config.ransac_threshold,
            max_iters=config.ransac_iters,
            confidence=config.ransac_confidence,
        )
        h_err = homography_error(H_est, pair.H, f0.image_size, f1.image_size, corners=config.corners)
        acc.add_pair(
            pair.split,
            errors,
            (len(f0.keypoints), len(f1.keypoints)),
            homography_error=h_err,
            image_ids=(str(pair.image0), str(pair.image1)),
        )
        details.append(
            {
                "pair": pair.name,
                "split": pair.split,
                "num_matches": int(len(matches)),
                "mma": dict(zip(("1", "3", "5"), map(float, pair_mma(errors, (1, 3, 5))))),
                "homography_error": h_err if np.isfinite(h_err) else None,
            }
        )
    return acc, details


def run_homography_benchmark(
    feature_names: Sequence[str],
    pairs: Sequence[HomographyPair],
    config: HomographyBenchmarkConfig,
    progress: bool = True,
) -> "BenchmarkRun":
    """Evaluate each feature on ``pairs`` (see :class:`BenchmarkRun` for the output)."""
    if not pairs:
        raise DatasetError("no image pairs to evaluate")
    images = [p for pair in pairs for p in (pair.image0, pair.image1)]

    def evaluate(label: str, feats: dict[Path, ImageFeatures], matcher: LearnedMatcher | None) -> tuple[EvalAccumulator, list[dict[str, Any]]]:
        return evaluate_features_on_pairs(feats, pairs, config, progress=progress, matcher=matcher)

    evaluated, timings = evaluate_features(feature_names, images, config, evaluate, progress)
    accumulators = {label: acc for label, (acc, _) in evaluated.items()}
    per_pair = {label: details for label, (_, details) in evaluated.items()}
    return BenchmarkRun({label: acc.summary() for label, acc in accumulators.items()}, timings, accumulators, per_pair)
