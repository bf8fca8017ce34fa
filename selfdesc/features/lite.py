"""HNDesc-lite: one forward pass of :class:`~selfdesc.models.litenet.LiteNet`, sub-pixel keypoints.

Registered as ``hndesc-lite`` and as ``default`` (the shipped model, docs/default_model.md).
Extraction (single scale, no pyramid; a batch of same-size images at once):

1. the network gives a full-resolution ``heatmap``, a 1/8 ``reliability`` map and a descriptor map;
2. the score map is ``heatmap * reliability`` (reliability up-sampled bilinearly, cell centres
   at pixel ``8j + 3.5``); keypoints are its local maxima in a ``(2 nms_radius + 1)^2`` window
   with score ``>= detection_threshold``, at least ``border`` pixels from the image edges, the
   ``max_keypoints`` best;
3. each peak is refined on the heatmap (``refine``: ``softargmax`` in the window the model was
   trained with, default; ``quadratic``; ``none``), see :mod:`selfdesc.features.subpixel`;
4. descriptors are sampled bilinearly at the refined positions and L2-normalised (the 1x1
   descriptor head runs on the sampled features only, :meth:`~selfdesc.models.litenet.LiteNet.describe_at`).

Keypoints are ``(x, y)`` pixels of the input image, pixel-centre convention. ``checkpoint``
selects a model file (``selfdesc export-weights``) or a training checkpoint; the default is the
shipped ``selfdesc/weights/hndesc_lite.pt``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from selfdesc.errors import ConfigError, WeightsError
from selfdesc.features.base import Extractor
from selfdesc.features.nms import top_k_peaks
from selfdesc.features.subpixel import REFINEMENTS, refine_peaks
from selfdesc.models.backbones import build_backbone
from selfdesc.models.litenet import CELL
from selfdesc.weights import load_state_checked, package_model, read_model_file

#: the model file shipped with selfdesc
DEFAULT_MODEL = "hndesc_lite.pt"


def backbone_conf(conf: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """The :class:`~selfdesc.models.litenet.LiteNet` options of a model file's ``conf`` (files
    written before ``kp_head`` existed hold ``cell`` models).

    Raises:
        WeightsError: the file is not an HNDesc model with the lite backbone.
    """
    backbone = dict(conf.get("backbone") or {})
    if backbone.pop("name", None) != "lite":
        raise WeightsError(f"{path}: not an HNDesc model with the lite backbone")
    backbone.setdefault("kp_head", "cell")
    return backbone


class HNDescLite(Extractor):
    """HNDesc with the lite backbone; options in ``default_conf`` (see the module docstring)."""

    name = "hndesc-lite"
    default_conf: ClassVar[dict[str, Any]] = {
        "checkpoint": None,
        "max_keypoints": 2048,
        "detection_threshold": 0.005,
        "nms_radius": 2,
        "border": 4,
        "refine": "softargmax",
    }

    def _init(self, conf: dict[str, Any]) -> None:
        if conf["refine"] not in REFINEMENTS:
            raise ConfigError(f"feature '{self.name}': unknown refine '{conf['refine']}' (known: {', '.join(REFINEMENTS)})")
        if int(conf["nms_radius"]) < 0:
            raise ConfigError(f"feature '{self.name}': nms_radius must be >= 0, got {conf['nms_radius']}")
        path = conf["checkpoint"] or package_model(DEFAULT_MODEL)
        if conf["checkpoint"] is None and not path.is_file():
            raise WeightsError(f"{path}: the HNDesc-lite model is not installed with this copy of selfdesc")
        model = read_model_file(path, method="hndesc")
        self.net = build_backbone({"name": "lite", **backbone_conf(model["conf"], path)})
        load_state_checked(self.net, model["state_dict"], path)
        # channels-last: the thin full-resolution convs run about 1.3-1.5x faster on a CPU (same outputs)
        self.net.fuse_batchnorm().to(memory_format=torch.channels_last)
        self.meta = model["meta"]

    def _network(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.net({"image": images.contiguous(memory_format=torch.channels_last)}, dense=False)

    def _extract_batch(self, images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        c, net = self.conf, self.net
        H, W = images.shape[-2:]
        out = self._network(images)
        heat = out["heatmap"].float().contiguous()
        rel = F.interpolate(out["reliability"].float(), scale_factor=CELL, mode="bilinear", align_corners=False)[..., :H, :W]
        num = int(c["max_keypoints"]) if c["max_keypoints"] else H * W
        peaks, scores, valid = top_k_peaks(heat * rel, num, int(c["nms_radius"]), int(c["border"]), float(c["detection_threshold"]))
        # every peak slot of the batch is refined and described at once (each independently of the
        # others); the missing ones (valid False) are dropped per image afterwards
        xy = refine_peaks(heat, peaks, c["refine"], int(net.conf["refine_radius"]), float(net.conf["refine_temperature"]))
        desc = net.describe_at(out["features"].float(), xy)
        return [{"keypoints": xy[i][valid[i]], "scores": scores[i][valid[i]], "descriptors": desc[i][valid[i]]} for i in range(images.shape[0])]


__all__ = ["DEFAULT_MODEL", "HNDescLite", "backbone_conf"]
