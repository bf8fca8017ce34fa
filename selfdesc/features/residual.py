"""Residual descriptors at test time (methods.md §7.4): ``g`` keypoints, ``L2norm([f(g), h])`` descriptors.

``g`` (:class:`Handcrafted`) is an OpenCV detector + descriptor on the CPU: SIFT or RootSIFT
(:mod:`selfdesc.features.opencv`, optionally upright: every orientation set to 0 before the
descriptors are computed), or extended 128-D SURF when the installed OpenCV has the non-free
``cv2.xfeatures2d`` module. The learned ``f`` and ``h`` (:class:`~selfdesc.models.residual.ResidualNet`)
come from a model file (option ``checkpoint``: a file written by ``selfdesc export-weights`` or
a training checkpoint ``RUN/checkpoints/last.pt``; default: the file shipped in
``selfdesc/weights/``). Keypoints and scores are exactly ``g``'s; descriptors are the network's.

Features: ``residual-sift`` (model trained on SIFT) and ``residual-rootsift-upright`` (trained
on upright RootSIFT) with default model files; ``residual`` runs any residual model file (option
``checkpoint`` required) with the ``g`` it records. The model file records which ``g`` it was
trained with; loading it under the other named feature is a :class:`~selfdesc.errors.WeightsError`.
The ablation models (``cnn``/``refine`` modes) load through the same features with ``checkpoint=``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import torch

from selfdesc.config import merge
from selfdesc.errors import ConfigError, WeightsError
from selfdesc.features.base import Extractor, select_top_k, to_uint8_gray
from selfdesc.features.nms import apply_radius_nms
from selfdesc.features.opencv import SIFT, RootSIFT
from selfdesc.models.residual import ResidualNet
from selfdesc.weights import load_state_checked, package_model, read_model_file

#: handcrafted descriptors usable as ``g``
HANDCRAFTED = ("sift", "rootsift", "surf")
#: :class:`Handcrafted` options that tune its detector (the residual extractors take them too)
DETECTOR_OPTIONS = ("contrast_threshold", "edge_threshold", "n_octave_layers", "sigma", "hessian_threshold", "nms_radius")


class Handcrafted:
    """``g``: non-differentiable keypoints + 128-D descriptors (L2-normalised), on the CPU.

    Options (``default_conf``): ``name`` (sift, rootsift, surf), ``upright``, the SIFT detector
    settings ``contrast_threshold``, ``edge_threshold``, ``n_octave_layers``, ``sigma``, SURF's
    ``hessian_threshold``, ``nms_radius`` (pixels, 0 = off) and ``max_keypoints`` (best by
    detector response; None = all).
    """

    default_conf: ClassVar[dict[str, Any]] = {
        "name": "sift",
        "upright": False,
        "contrast_threshold": 0.04,
        "edge_threshold": 10,
        "n_octave_layers": 3,
        "sigma": 1.6,
        "hessian_threshold": 100.0,
        "nms_radius": 0,
        "max_keypoints": None,
    }
    dim: ClassVar[int] = 128

    def __init__(self, conf: dict[str, Any] | None = None) -> None:
        self.conf = merge(self.default_conf, conf or {}, "handcrafted")
        c = self.conf
        if c["name"] not in HANDCRAFTED:
            raise ConfigError(f"handcrafted.name: unknown descriptor '{c['name']}' (known: {', '.join(HANDCRAFTED)})")
        if c["name"] == "surf":
            self._surf = _surf_factory(float(c["hessian_threshold"]), bool(c["upright"]))
        else:
            keys = ("upright", "contrast_threshold", "edge_threshold", "n_octave_layers", "sigma", "nms_radius", "max_keypoints")
            self._sift = (RootSIFT if c["name"] == "rootsift" else SIFT)({k: c[k] for k in keys})

    def __call__(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """``image`` ``(1, C, H, W)`` in [0, 1] -> CPU float32 ``keypoints`` ``(N, 2)`` (pixel
        centres), ``scores`` ``(N,)`` (detector responses), ``descriptors`` ``(N, 128)``."""
        image = image.detach().float().cpu()
        if self.conf["name"] != "surf":
            return self._sift({"image": image})
        kps, desc = self._surf().detectAndCompute(to_uint8_gray(image), None)
        n = len(kps) if desc is not None else 0
        desc = np.zeros((0, self.dim), np.float32) if n == 0 else desc.astype(np.float32)
        desc /= np.maximum(np.linalg.norm(desc, axis=1, keepdims=True), 1e-12)
        pred = {
            "keypoints": torch.tensor([k.pt for k in kps[:n]], dtype=torch.float32).reshape(n, 2),
            "scores": torch.tensor([k.response for k in kps[:n]], dtype=torch.float32).reshape(n),
            "descriptors": torch.from_numpy(desc),
        }
        return select_top_k(apply_radius_nms(pred, float(self.conf["nms_radius"])), self.conf["max_keypoints"])

    def batch(self, images: torch.Tensor, threads: int = 1) -> dict[str, torch.Tensor]:
        """Run ``g`` on every image of a batch and pad to the largest keypoint count.

        Args:
            images: ``(B, C, H, W)`` in [0, 1], any device.
            threads: parallel OpenCV calls (OpenCV releases the GIL).

        Returns:
            On the images' device: ``keypoints`` ``(B, N, 2)``, ``descriptors`` ``(B, N, 128)``,
            ``scores`` ``(B, N)`` (zeros where padded) and ``mask`` ``(B, N)`` bool.
        """
        cpu = images.detach().float().cpu()
        singles = [cpu[i : i + 1] for i in range(len(cpu))]
        if threads > 1 and len(singles) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(min(threads, len(singles))) as pool:
                preds = list(pool.map(self, singles))
        else:
            preds = [self(x) for x in singles]
        n = max([len(p["keypoints"]) for p in preds] + [1])
        out = {
            "keypoints": torch.zeros(len(preds), n, 2),
            "descriptors": torch.zeros(len(preds), n, self.dim),
            "scores": torch.zeros(len(preds), n),
            "mask": torch.zeros(len(preds), n, dtype=torch.bool),
        }
        for i, p in enumerate(preds):
            k = len(p["keypoints"])
            out["keypoints"][i, :k], out["descriptors"][i, :k], out["scores"][i, :k] = p["keypoints"], p["descriptors"], p["scores"]
            out["mask"][i, :k] = True
        return {key: v.to(images.device) for key, v in out.items()}


def _surf_factory(hessian_threshold: float, upright: bool):
    """A callable creating extended (128-D) SURF, or a ConfigError when this OpenCV lacks it."""
    create = getattr(getattr(cv2, "xfeatures2d", None), "SURF_create", None)
    if create is None:
        raise ConfigError(
            f"handcrafted.name 'surf' needs OpenCV's non-free contrib module (cv2.xfeatures2d.SURF_create), "
            f"which this OpenCV {cv2.__version__} lacks; use sift or rootsift"
        )
    try:
        create(hessianThreshold=hessian_threshold, extended=True, upright=upright)
    except cv2.error:
        raise ConfigError(f"handcrafted.name 'surf': this OpenCV {cv2.__version__} was built without the non-free algorithms (OPENCV_ENABLE_NONFREE)") from None
    return lambda: create(hessianThreshold=hessian_threshold, extended=True, upright=upright)


def describe_handcrafted(conf: dict[str, Any]) -> str:
    """``"rootsift-upright"`` style name of a ``g`` configuration."""
    return str(conf["name"]) + ("-upright" if conf.get("upright") else "")


class ResidualFeatures(Extractor):
    """``g`` keypoints with the residual descriptor (256-D by default); see the module docstring.

    Feature ``residual`` takes the ``g`` recorded in the model file and needs ``checkpoint``;
    the subclasses fix ``g`` and have a default model file. Options: ``checkpoint`` and the
    detector settings of :class:`Handcrafted` (``contrast_threshold``, ``edge_threshold``,
    ``n_octave_layers``, ``sigma``, ``hessian_threshold``, ``nms_radius``); ``max_keypoints``
    keeps the strongest ``g`` keypoints.
    """

    name = "residual"
    #: default model file in ``selfdesc/weights/`` (None: ``checkpoint`` is required)
    model_file: ClassVar[str | None] = None
    #: the ``g`` the model must have been trained with (None: any)
    handcrafted: ClassVar[dict[str, Any] | None] = None
    default_conf: ClassVar[dict[str, Any]] = {"checkpoint": None, **{k: Handcrafted.default_conf[k] for k in DETECTOR_OPTIONS}}

    def _init(self, conf: dict[str, Any]) -> None:
        path = self._model_path(conf["checkpoint"])
        data = read_model_file(path, method="residual")
        try:
            trained, net_conf = {k: data["conf"]["handcrafted"][k] for k in ("name", "upright")}, data["conf"]["model"]
        except (KeyError, TypeError):
            raise WeightsError(f"{path}: residual model file without 'handcrafted' and 'model' entries in its conf") from None
        if self.handcrafted is not None and describe_handcrafted(trained) != describe_handcrafted(self.handcrafted):
            raise WeightsError(
                f"{path}: model trained on {describe_handcrafted(trained)} descriptors, "
                f"but feature '{self.name}' uses {describe_handcrafted(self.handcrafted)} (use feature 'residual')"
            )
        self.net = ResidualNet(net_conf)
        load_state_checked(self.net, data["state_dict"], path)
        detector = {k: conf[k] for k in DETECTOR_OPTIONS}
        self.g = Handcrafted({**detector, **trained, "max_keypoints": conf["max_keypoints"]})

    def _model_path(self, checkpoint: str | None) -> Path:
        if checkpoint:
            return Path(checkpoint)
        if self.model_file is None:
            raise WeightsError(f"feature '{self.name}' needs the option checkpoint (a residual model file or RUN/checkpoints/last.pt)")
        path = package_model(self.model_file)
        if not path.is_file():
            raise WeightsError(
                f"{path}: the {self.name} model is not shipped yet; train one (configs/residual_*.yaml) "
                "and pass the option checkpoint=RUN/checkpoints/last.pt"
            )
        return path

    def _extract(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        pred = {k: v.to(image.device) for k, v in self.g(image).items()}
        data = {"image": image, "keypoints": pred["keypoints"][None], "handcrafted": pred["descriptors"][None]}
        pred["descriptors"] = self.net(data)["descriptors"][0].float()
        return pred


class ResidualSIFT(ResidualFeatures):
    """SIFT keypoints with the residual descriptor trained on SIFT."""

    name = "residual-sift"
    model_file = "residual_sift.pt"
    handcrafted = {"name": "sift", "upright": False}


class ResidualRootSIFTUpright(ResidualFeatures):
    """Upright RootSIFT keypoints with the residual descriptor (the paper's best IMC model)."""

    name = "residual-rootsift-upright"
    model_file = "residual_rootsift_upright.pt"
    handcrafted = {"name": "rootsift", "upright": True}


__all__ = ["HANDCRAFTED", "Handcrafted", "ResidualFeatures", "ResidualRootSIFTUpright", "ResidualSIFT", "describe_handcrafted"]
