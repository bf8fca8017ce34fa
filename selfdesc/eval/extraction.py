"""Extract features for every image of a benchmark once, with timing.

Used by all benchmark runners; images are decoded with :func:`selfdesc.io.load_image`
and keypoints are reported in original-image pixels.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import torch
from tqdm import tqdm

from selfdesc.device import sync_device
from selfdesc.features.base import Extractor
from selfdesc.io.image import load_image
from selfdesc.matching import match_mnn
from selfdesc.matching.learned import LearnedMatcher, load_matcher


@dataclass
class ImageFeatures:
    """Features of one image, in original pixels (pixel-centre convention).

    Attributes:
        keypoints: ``N x 2`` float32; scores: ``N`` float32; descriptors: ``N x D`` float32.
        image_size: ``(W, H)`` of the original image.
    """

    keypoints: np.ndarray
    scores: np.ndarray
    descriptors: np.ndarray
    image_size: tuple[int, int]

    def as_dict(self) -> dict[str, np.ndarray]:
        """``keypoints``, ``descriptors`` and ``image_size`` ``(W, H)``, as ``extract()`` gives them."""
        return {"keypoints": self.keypoints, "descriptors": self.descriptors, "image_size": np.asarray(self.image_size)}


def match_features(f0: ImageFeatures, f1: ImageFeatures, device: str, matcher: LearnedMatcher | None = None) -> np.ndarray:
    """``(K, 2)`` int64 matches of two images: mutual nearest neighbours, or ``matcher``'s."""
    if matcher is None:
        return match_mnn(f0.descriptors, f1.descriptors, device=device)[0]
    return matcher.match(f0.as_dict(), f1.as_dict())[0]


def matcher_variants(feature: str, matchers: Mapping[str, str], device: str) -> list[tuple[str, LearnedMatcher | None]]:
    """What a benchmark evaluates for ``feature``: ``(feature, None)`` (mutual nearest neighbours)
    and, when ``matchers`` names one for it, ``(feature + "+matcher", the loaded matcher)``."""
    variants: list[tuple[str, LearnedMatcher | None]] = [(feature, None)]
    if feature in matchers:
        matcher = load_matcher(matchers[feature], device=device)
        matcher.check_features(feature)
        variants.append((f"{feature}+matcher", matcher))
    return variants


@dataclass
class Timing:
    """Extraction time per image, excluding decoding; the first image is a warm-up."""

    device: str
    seconds_per_image: float
    num_images: int

    def as_dict(self) -> dict[str, float | int | str]:
        return {"device": self.device, "seconds_per_image": self.seconds_per_image, "num_images": self.num_images}


def extract_all(
    extractor: Extractor,
    images: Iterable[Path],
    resize_max: int | None = None,
    progress: bool = True,
    desc: str = "extract",
) -> tuple[dict[Path, ImageFeatures], Timing]:
    """Run ``extractor`` on each image once.

    Returns:
        features by image path, and the mean extraction time per image (the first image
        is excluded from the mean when there are more than one, to leave out warm-up).
    """
    paths = list(dict.fromkeys(images))
    out: dict[Path, ImageFeatures] = {}
    times: list[float] = []
    for path in tqdm(paths, desc=desc, disable=not progress, leave=False, unit="img"):
        loaded = load_image(path, resize_max=resize_max)
        sync_device(extractor.device)
        t0 = time.perf_counter()
        pred = extractor.extract(loaded)
        sync_device(extractor.device)
        times.append(time.perf_counter() - t0)
        out[path] = ImageFeatures(
            keypoints=pred["keypoints"].numpy().astype(np.float32),
            scores=pred["scores"].numpy().astype(np.float32),
            descriptors=pred["descriptors"].numpy().astype(np.float32),
            image_size=loaded.original_size,
        )
    timed = times[1:] if len(times) > 1 else times
    device = "cpu" if extractor.cpu_only else str(extractor.device)
    timing = Timing(device, float(np.mean(timed)) if timed else float("nan"), len(paths))
    return out, timing
