"""TPR features (``--features tpr``): a trained TPR backbone as a detector + descriptor.

Pipeline: the image (RGB in ``[0, 1]``) goes through the backbone (VGG / ASLFeat / Swin, see
:mod:`selfdesc.models.backbones`), which returns dense descriptors and a detection score map
(D2-Net soft detection for VGG, ASLFeat peakiness for ASLFeat and Swin). Keypoints are the
local maxima of the score map (:func:`~selfdesc.features.nms.dense_nms_mask`, window
``2 * nms_radius + 1``; for VGG, ``detection: hard`` uses D2-Net's hard detection instead)
with a score ``>= score_threshold``, optionally passing the Hessian edge test
(``edge_threshold``; ASLFeat: 10 with step 3 on the score map), at least ``border`` pixels
inside the image. A score-map cell ``j`` is the image pixel ``score_stride * j +
score_offset`` (pixel-centre convention); descriptors are read bilinearly from the descriptor
map at the keypoints and L2-normalised. The ``max_keypoints`` best by score are kept.

``checkpoint``: a model file written by ``selfdesc export-weights`` or a training checkpoint
(``RUN/checkpoints/last.pt``); default: ``selfdesc/weights/tpr.pt`` shipped with the package.
``vgg_dense`` switches a VGG model to D2-Net's stride-4 test-time network (same weights).
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch

from selfdesc.errors import ConfigError, WeightsError
from selfdesc.features.base import Extractor
from selfdesc.features.nms import dense_nms_mask
from selfdesc.models.backbones import build_backbone
from selfdesc.weights import load_state_checked, package_model, read_model_file

#: the model file shipped in ``selfdesc/weights/``
DEFAULT_MODEL = "tpr.pt"


class TPRFeatures(Extractor):
    """TPR detector + descriptor (see the module docstring for the options)."""

    name = "tpr"
    default_conf: ClassVar[dict[str, Any]] = {
        "checkpoint": None,
        "max_keypoints": 5000,
        "detection": "nms",
        "nms_radius": 1,
        "score_threshold": 0.0,
        "edge_threshold": None,
        "edge_step": 3,
        "border": 4,
        "vgg_dense": True,
    }

    def _init(self, conf: dict[str, Any]) -> None:
        path = conf["checkpoint"]
        if path is None:
            path = package_model(DEFAULT_MODEL)
            if not path.is_file():
                raise WeightsError(f"{path}: the TPR model is not shipped yet; pass checkpoint=FILE (a model file from 'selfdesc export-weights' or RUN/checkpoints/last.pt)")
        data = read_model_file(path, "tpr")
        backbone_conf = dict(data["conf"]["backbone"])
        is_vgg = backbone_conf["name"] == "vgg"
        if is_vgg:
            backbone_conf["dense"] = bool(conf["vgg_dense"])
        if conf["detection"] not in ("nms", "hard") or (conf["detection"] == "hard" and not is_vgg):
            raise ConfigError(f"feature 'tpr': detection must be 'nms' (any backbone) or 'hard' (vgg only), got '{conf['detection']}' for a {backbone_conf['name']} model")
        self.net = build_backbone(backbone_conf)
        load_state_checked(self.net, data["state_dict"], path)
        self.net.eval()

    def _extract(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        from selfdesc.models.deform import sample_map
        from selfdesc.models.vgg import edge_mask, hard_detection

        c, net = self.conf, self.net
        H, W = image.shape[-2:]
        out = net(image)
        scores = out["scores"].float()
        if c["detection"] == "hard":
            peaks = hard_detection(out["features"].float())
        else:
            peaks = dense_nms_mask(scores, radius=int(c["nms_radius"]))
        peaks &= scores >= float(c["score_threshold"])
        if c["edge_threshold"] is not None:
            peaks &= edge_mask(scores, float(c["edge_threshold"]), int(c["edge_step"]))
        y, x = torch.nonzero(peaks[0, 0], as_tuple=True)
        xy = torch.stack([x, y], dim=1).to(scores.dtype) * net.score_stride + net.score_offset
        b = float(c["border"])
        inside = (xy[:, 0] >= b) & (xy[:, 0] <= W - 1 - b) & (xy[:, 1] >= b) & (xy[:, 1] <= H - 1 - b)
        xy, y, x = xy[inside], y[inside], x[inside]
        desc = sample_map(out["features"].float(), xy[None], net.stride, net.offset, normalize=True)[0]
        return {"keypoints": xy, "scores": scores[0, 0, y, x], "descriptors": desc}


__all__ = ["DEFAULT_MODEL", "TPRFeatures"]
