"""The skeleton every benchmark shares: extractor settings, extraction with timing, the per-feature loop.

:class:`ExtractorSettings` says how each feature's extractor is built (keypoint budget, resizing,
device, weights, per-feature options); :func:`extract_all` runs one extractor on every image once
(decoded with :func:`selfdesc.io.load_image`, keypoints in original-image pixels) and times it;
:func:`evaluate_features` is the loop "for each feature: extract once, then evaluate with mutual
nearest neighbours and with each trained matcher asked for".
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence, TypeVar

import numpy as np
from tqdm import tqdm

from selfdesc.device import sync_device
from selfdesc.features import load_extractor
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


@dataclass
class ExtractorSettings:
    """How a benchmark builds each feature's extractor (:meth:`load`) and runs it.

    ``max_keypoints`` per image (best by score); ``resize_max`` bounds the longest image side
    (keypoints stay in original pixels); ``weights_dir`` holds peer weight files;
    ``extractor_options``: feature -> extra extractor options.
    """

    max_keypoints: int | None = None
    resize_max: int | None = None
    device: str = "cpu"
    weights_dir: str | Path | None = None
    extractor_options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def load(self, feature: str) -> Extractor:
        """The extractor of ``feature`` (a registered name or a model file) with these settings."""
        return load_extractor(
            feature, weights_dir=self.weights_dir, device=self.device, max_keypoints=self.max_keypoints, **self.extractor_options.get(feature, {})
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly settings (the fields of this class and of a subclass)."""
        d = dict(self.__dict__)
        d["weights_dir"] = None if self.weights_dir is None else str(self.weights_dir)
        return d


@dataclass
class MatchedBenchmarkSettings(ExtractorSettings):
    """:class:`ExtractorSettings` of a benchmark that matches features: mutual nearest neighbours,
    and for the features named in ``matchers`` (feature -> trained matcher name or file) also the
    trained matcher, reported as ``FEATURE+matcher``."""

    matchers: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = super().as_dict()
        d["matcher"] = "mutual nearest neighbour (no ratio test, no threshold); FEATURE+matcher: the trained matcher of 'matchers'"
        return d


Result = TypeVar("Result")


def evaluate_features(
    features: Sequence[str],
    images: Sequence[Path],
    settings: MatchedBenchmarkSettings,
    evaluate: Callable[[str, dict[Path, ImageFeatures], LearnedMatcher | None], Result],
    progress: bool = True,
) -> tuple[dict[str, Result], dict[str, Timing]]:
    """The per-feature loop of every matching benchmark.

    Each feature's extractor is built (:meth:`ExtractorSettings.load`), run once on ``images``
    (:func:`extract_all`) and freed; then ``evaluate(label, features_by_image, matcher)`` runs
    for each of its variants (:func:`matcher_variants`: ``FEATURE`` with mutual nearest
    neighbours, ``FEATURE+matcher`` with a trained matcher).

    Returns:
        ``evaluate``'s result and the extraction timing, per label.
    """
    results: dict[str, Result] = {}
    timings: dict[str, Timing] = {}
    for name in features:
        extractor = settings.load(name)
        feats, timing = extract_all(extractor, images, resize_max=settings.resize_max, progress=progress, desc=f"extract {name}")
        del extractor
        for label, matcher in matcher_variants(name, settings.matchers, settings.device):
            results[label], timings[label] = evaluate(label, feats, matcher), timing
    return results, timings
