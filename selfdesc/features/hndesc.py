"""Our HNDesc model (R2D2 backbone with self-supervised repeatability / reliability heads).

Registered as ``hndesc`` and as ``hndesc-r2d2`` (the model shipped in ``selfdesc/weights/``; it was
``default`` until HNDesc-lite took that name, RESULTS §19).
Keypoints and descriptors come from the same multi-scale extraction as :mod:`selfdesc.features.r2d2`
(pyramid, 3x3 NMS on the repeatability map, both maps thresholded, score ``R * S``), so the
two differ only in the network weights and the thresholds. ``checkpoint`` selects another
model file (``selfdesc export-weights``) or a training checkpoint ``RUN/checkpoints/last.pt``.
"""
from __future__ import annotations

from typing import Any, ClassVar

from selfdesc.errors import WeightsError
from selfdesc.features.r2d2 import R2D2
from selfdesc.models.backbones import build_backbone
from selfdesc.weights import load_state_checked, package_model, read_model_file

#: the model file shipped with selfdesc
DEFAULT_MODEL = "hndesc_r2d2.pt"


class HNDescFeatures(R2D2):
    """HNDesc-r2d2 features, 128-D; options as :class:`~selfdesc.features.r2d2.R2D2` plus ``checkpoint``."""

    name = "hndesc"
    needs_weights: ClassVar[bool] = False
    default_conf: ClassVar[dict[str, Any]] = {
        **{k: v for k, v in R2D2.default_conf.items() if k != "weights_dir"},
        "checkpoint": None,
    }

    def _init(self, conf: dict[str, Any]) -> None:
        path = conf["checkpoint"] or package_model(DEFAULT_MODEL)
        if conf["checkpoint"] is None and not path.is_file():
            raise WeightsError(f"{path}: the HNDesc-r2d2 model is not installed with this copy of selfdesc")
        model = read_model_file(path, method="hndesc")
        backbone = dict(model["conf"]["backbone"])
        if backbone.pop("name", "r2d2") != "r2d2" or not backbone.get("heads", False):
            raise WeightsError(f"{path}: only HNDesc models with the r2d2 backbone and detection heads extract keypoints")
        self.net = build_backbone({"name": "r2d2", **backbone})
        load_state_checked(self.net, model["state_dict"], path)
        self.net.eval()
        self.meta = model["meta"]
        self._resolve_variant(conf)


__all__ = ["HNDescFeatures", "DEFAULT_MODEL"]
