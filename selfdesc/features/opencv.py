"""OpenCV hand-crafted features: SIFT, RootSIFT and ORB.

Keypoint convention (checked in ``tests/features/test_opencv.py``):

* SIFT: OpenCV's default 2x up-sampling of the first octave (``INTER_LINEAR``, half-pixel
  centres) is inconsistent with the way keypoints are mapped back (``x / 2``), which shifts
  every keypoint by about +0.25 px in x and y. We create SIFT with
  ``enable_precise_upscale=True`` (``precise_upscale`` option, default on), which maps
  pixel ``x`` to ``2x``; keypoints are then exactly in the pixel-centre convention (a
  Gaussian blob centred on pixel (60, 50) is detected at (60.00, 50.00)).
* ORB: pyramid level ``l`` is the image resized (``INTER_LINEAR``, half-pixel centres) to
  ``round(W / s), round(H / s)`` with ``s = scale_factor ** l``, but OpenCV reports a level
  point ``p`` as ``p * s``. We map it to ``(p + 0.5) * (W / W_l) - 0.5`` instead, the
  pixel-centre convention, which makes ORB keypoints exactly flip-equivariant.

Descriptors are returned as L2-normalised float32:

* SIFT: the 128-D OpenCV descriptor, L2-normalised.
* RootSIFT: L1-normalise, element-wise square root (its L2 norm is then 1).
* ORB: the 256 bits unpacked to ``+-1`` and divided by 16, so that
  ``<d0, d1> = 1 - 2 * hamming(d0, d1) / 256``: a dot-product mutual-NN on these vectors
  is the Hamming mutual-NN of the binary descriptors.
"""
from __future__ import annotations

from typing import Any, ClassVar

import cv2
import numpy as np
import torch

from selfdesc.features.base import Extractor, to_uint8_gray
from selfdesc.features.nms import apply_radius_nms


def _as_pred(points: np.ndarray, scores: np.ndarray, descriptors: np.ndarray, dim: int) -> dict[str, torch.Tensor]:
    """numpy ``(N, 2)``, ``(N,)``, ``(N, D)`` -> float32 tensors (empty shapes when N = 0)."""
    n = len(points)
    return {
        "keypoints": torch.from_numpy(np.asarray(points, np.float32).reshape(n, 2)),
        "scores": torch.from_numpy(np.asarray(scores, np.float32).reshape(n)),
        "descriptors": torch.from_numpy(np.asarray(descriptors, np.float32).reshape(n, dim)),
    }


def _l2_normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def binary_to_float(descriptors: np.ndarray) -> np.ndarray:
    """``(N, B)`` uint8 binary descriptors -> ``(N, 8B)`` float32 ``+-1/sqrt(8B)`` (unit L2 norm).

    The dot product of two outputs is ``1 - 2 * hamming / (8B)``, so nearest neighbours by
    dot product are nearest neighbours by Hamming distance.
    """
    bits = np.unpackbits(np.asarray(descriptors, np.uint8), axis=1).astype(np.float32)
    return (2.0 * bits - 1.0) / np.sqrt(bits.shape[1], dtype=np.float32)


class _OpenCVExtractor(Extractor):
    """Shared part: uint8 gray image in, keypoint NMS (``nms_radius``) out."""

    grayscale = True
    cpu_only = True

    def _init(self, conf: dict[str, Any]) -> None:
        """Nothing to build: the OpenCV detector is created per call from ``self.conf``."""

    def _detect_and_describe(self, gray: np.ndarray) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _budget(self) -> int:
        """The detector's own keypoint budget: ``max_keypoints`` unless NMS runs afterwards (0 = no limit)."""
        k = self.conf["max_keypoints"]
        return int(k) if k and k > 0 and self.conf["nms_radius"] <= 0 else 0

    def _extract(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        pred = self._detect_and_describe(to_uint8_gray(image))
        pred = apply_radius_nms(pred, float(self.conf["nms_radius"]))
        return {k: v.to(image.device) for k, v in pred.items()}


class SIFT(_OpenCVExtractor):
    """OpenCV SIFT (128-D, L2-normalised); ``scores`` are the DoG responses.

    Options: ``contrast_threshold`` (0.04), ``edge_threshold`` (10), ``n_octave_layers`` (3),
    ``sigma`` (1.6), ``upright`` (orientation 0 for every keypoint, duplicates from
    multiple orientations merged), ``precise_upscale`` (see the module docstring),
    ``nms_radius`` (greedy radius NMS in pixels, 0 = off), ``max_keypoints``.
    """

    name = "sift"
    default_conf: ClassVar[dict[str, Any]] = {
        "contrast_threshold": 0.04,
        "edge_threshold": 10,
        "n_octave_layers": 3,
        "sigma": 1.6,
        "upright": False,
        "precise_upscale": True,
        "nms_radius": 0,
    }
    #: RootSIFT mapping of the descriptors.
    root: ClassVar[bool] = False

    def _create(self, nfeatures: int) -> cv2.SIFT:
        c = self.conf
        return cv2.SIFT_create(
            nfeatures=nfeatures,
            nOctaveLayers=int(c["n_octave_layers"]),
            contrastThreshold=float(c["contrast_threshold"]),
            edgeThreshold=float(c["edge_threshold"]),
            sigma=float(c["sigma"]),
            enable_precise_upscale=bool(c["precise_upscale"]),
        )

    def _detect_and_describe(self, gray: np.ndarray) -> dict[str, torch.Tensor]:
        upright = bool(self.conf["upright"])
        # an upright detector merges orientation duplicates afterwards, so it cannot cap the count itself
        sift = self._create(0 if upright else self._budget())
        if upright:
            kps = sift.detect(gray, None)
            kps = _unique_upright(kps)
            kps, desc = sift.compute(gray, kps)
        else:
            kps, desc = sift.detectAndCompute(gray, None)
        if not kps or desc is None:
            return _as_pred(np.zeros((0, 2)), np.zeros(0), np.zeros((0, 128)), 128)
        desc = desc.astype(np.float32)
        if self.root:
            desc = np.sqrt(desc / np.maximum(desc.sum(axis=1, keepdims=True), 1e-12))
        return _as_pred(np.array([k.pt for k in kps]), np.array([k.response for k in kps]), _l2_normalise(desc), 128)


def _unique_upright(kps: tuple[cv2.KeyPoint, ...]) -> list[cv2.KeyPoint]:
    """One keypoint per ``(x, y, size, octave)`` with orientation 0."""
    seen: set[tuple[float, float, float, int]] = set()
    out: list[cv2.KeyPoint] = []
    for k in kps:
        key = (k.pt[0], k.pt[1], k.size, k.octave)
        if key not in seen:
            seen.add(key)
            out.append(cv2.KeyPoint(k.pt[0], k.pt[1], k.size, 0.0, k.response, k.octave, k.class_id))
    return out


class RootSIFT(SIFT):
    """SIFT with RootSIFT descriptors (Arandjelovic & Zisserman 2012): L1-normalise, square root."""

    name = "rootsift"
    root = True


class ORB(_OpenCVExtractor):
    """OpenCV ORB with 256-bit descriptors mapped to unit float vectors (see the module docstring).

    Options: ``n_features`` (5000; OpenCV's 500 is too few for a fair benchmark),
    ``scale_factor`` (1.2), ``n_levels`` (8), ``edge_threshold`` (31), ``fast_threshold`` (20),
    ``nms_radius`` (0 = off). ``scores`` are the Harris responses. A given ``max_keypoints``
    replaces ``n_features`` as ORB's budget (unless ``nms_radius`` is on), so OpenCV spreads the
    keypoints over the pyramid levels itself instead of a global top-k by response.
    """

    name = "orb"
    default_conf: ClassVar[dict[str, Any]] = {
        "n_features": 5000,
        "scale_factor": 1.2,
        "n_levels": 8,
        "edge_threshold": 31,
        "fast_threshold": 20,
        "nms_radius": 0,
    }

    def _detect_and_describe(self, gray: np.ndarray) -> dict[str, torch.Tensor]:
        c = self.conf
        orb = cv2.ORB_create(
            nfeatures=self._budget() or int(c["n_features"]),
            scaleFactor=float(c["scale_factor"]),
            nlevels=int(c["n_levels"]),
            edgeThreshold=int(c["edge_threshold"]),
            fastThreshold=int(c["fast_threshold"]),
        )
        kps, desc = orb.detectAndCompute(gray, None)
        if not kps or desc is None:
            return _as_pred(np.zeros((0, 2)), np.zeros(0), np.zeros((0, 256)), 256)
        pts = np.array([k.pt for k in kps], np.float64)
        level = np.array([k.octave for k in kps], np.float64)[:, None]
        s = float(c["scale_factor"]) ** level
        h, w = gray.shape
        # true per-axis resize factor of each level (OpenCV rounds the level size)
        sxy = np.concatenate([w / np.round(w / s), h / np.round(h / s)], axis=1)
        pts = (pts / s + 0.5) * sxy - 0.5
        return _as_pred(pts, np.array([k.response for k in kps]), binary_to_float(desc), 256)


__all__ = ["SIFT", "RootSIFT", "ORB", "binary_to_float"]
