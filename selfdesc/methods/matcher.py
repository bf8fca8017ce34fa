"""Training the attention matcher without labels (``selfdesc train-matcher``, docs/matcher.md).

Per step, on the device: H-crops pairs of the batch images with wider homographies than for
descriptor training (:attr:`MatcherTraining.default_conf` ``hcrops``), independent photometric augmentation of
the two crops (optionally crop B from a stylized copy), features of both crops from the frozen
extractor (any registered feature or one of our model files; under ``no_grad``, fp32, the
``features.max_keypoints`` strongest, padded with masks), ground-truth labels from ``H_AB``
(:func:`selfdesc.methods.parts.assignment.homography_assignment`) and the negative log-likelihood of
that assignment, averaged over the layers with ``deep_supervision``. With ``val.images`` the run
is validated on a held-out synthetic benchmark matched by the matcher (:class:`MatcherValidation`).

The frozen extractor is not a sub-module: the checkpoint holds only the matcher, and the
extractor is built on first use and moved to the batch's device.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from selfdesc.config import merge, to_dataclass
from selfdesc.errors import ConfigError
from selfdesc.features.base import Extractor
from selfdesc.matching.attention_matcher import AttentionMatcher
from selfdesc.matching.learned import LearnedMatcher
from selfdesc.methods.parts.assignment import assignment_nll, homography_assignment
from selfdesc.methods.parts.augment import PhotometricAugment, PhotometricConfig
from selfdesc.methods.parts.hcrops import HCropsConfig, make_pairs
from selfdesc.training.validation import POSE_SCORES, SyntheticValidation, ValidationConfig, homography_scores


def load_frozen_extractor(features: dict[str, Any], device: str | torch.device = "cpu") -> Extractor:
    """The frozen extractor of ``method.features`` (eval mode, no gradients)."""
    from selfdesc.features import load_extractor

    ext = load_extractor(str(features["name"]), weights_dir=features["weights_dir"], device=str(device), max_keypoints=features["max_keypoints"], **(features["options"] or {}))
    return ext.requires_grad_(False).eval()


def probe_descriptor_dim(extractor: Extractor) -> int:
    """Descriptor dimension of ``extractor`` (runs it once on a small random image)."""
    g = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 128, 128, generator=g).to(extractor.device)
    with torch.no_grad():
        return int(extractor({"image": image})["descriptors"].shape[-1])


@torch.no_grad()
def extract_padded(extractor: Extractor, crops: torch.Tensor, num: int, dim: int, chunk: int = 16) -> dict[str, torch.Tensor]:
    """Features of ``(B, 3, S, S)`` crops, at most ``num`` points each, padded to the largest
    count ``K`` (at least 1): ``keypoints`` ``(B, K, 2)`` pixel ``(x, y)``, ``descriptors``
    ``(B, K, dim)``, ``mask`` ``(B, K)`` (on the crops' device, fp32; extractors that batch
    run ``chunk`` crops per forward, the same features as one at a time)."""
    preds: list[dict[str, torch.Tensor]] = []
    with torch.autocast(crops.device.type, enabled=False):
        for start in range(0, len(crops), chunk):
            preds.extend(extractor.forward_batch(crops[start : start + chunk].float()))
    num = max([1] + [min(num, len(p["keypoints"])) for p in preds])
    out = {
        "keypoints": crops.new_zeros(len(crops), num, 2, dtype=torch.float32),
        "descriptors": crops.new_zeros(len(crops), num, dim, dtype=torch.float32),
        "mask": torch.zeros(len(crops), num, dtype=torch.bool, device=crops.device),
    }
    for b, p in enumerate(preds):
        n = min(num, len(p["keypoints"]))
        out["keypoints"][b, :n] = p["keypoints"][:n].float()
        out["descriptors"][b, :n] = p["descriptors"][:n].float()
        out["mask"][b, :n] = True
    return out


class MatcherValidation(SyntheticValidation):
    """``callback(method) -> {"mma@1", "mma@3", "mma@5", "ha@3", "mma@1+3", "num_matches", "score", "mnn_*"}``:
    the held-out synthetic benchmark of :class:`~selfdesc.training.validation.SyntheticValidation`,
    matched by the matcher being trained (``mnn_*``: the same features with mutual nearest
    neighbours, for reference). The frozen features are extracted once, at the first call."""

    def __init__(self, conf: ValidationConfig, method_name: str, run_dir: str | Path, device: str = "cpu", progress: bool = False) -> None:
        if conf.pose_root is not None or conf.score in POSE_SCORES:
            raise ConfigError("train-matcher validation scores synthetic pairs only: drop val.pose_root and use an MMA val.score")
        super().__init__(conf, method_name, run_dir, device, progress)
        self.features: dict[Path, Any] | None = None
        self.baseline: dict[str, float] = {}

    def _scores(self, method: "MatcherTraining", matcher: LearnedMatcher | None) -> dict[str, float]:
        from selfdesc.eval.runner import HomographyBenchmarkConfig, evaluate_features_on_pairs

        config = HomographyBenchmarkConfig(max_keypoints=self.conf.max_keypoints, device=self.device)
        assert self.features is not None
        return homography_scores(evaluate_features_on_pairs(self.features, self.pairs, config, progress=False, matcher=matcher)[0].summary()["overall"])

    def __call__(self, method: nn.Module) -> dict[str, float]:
        from selfdesc.eval.extraction import extract_all

        assert isinstance(method, MatcherTraining)
        device = next(method.parameters()).device
        if self.features is None:
            extractor = load_frozen_extractor({**method.conf["features"], "max_keypoints": self.conf.max_keypoints}, device)
            images = [p for pair in self.pairs for p in (pair.image0, pair.image1)]
            self.features = extract_all(extractor, images, progress=False)[0]
            self.baseline = {f"mnn_{k}": v for k, v in self._scores(method, None).items()}
        scores = self._scores(method, LearnedMatcher(method.matcher, str(method.conf["features"]["name"]), "training", device))
        return {**scores, "score": scores[self.conf.score], **self.baseline}


class MatcherTraining(nn.Module):
    """The matcher training method (see the module docstring)."""

    default_conf: ClassVar[dict[str, Any]] = {
        # the frozen features: a registered name or a model file; options go to load_extractor;
        # label: the name the exported matcher records for them (default: name), e.g. "default" for a model file shipped as default
        "features": {"name": "default", "label": None, "max_keypoints": 512, "weights_dir": None, "options": {}},
        "descriptor_dim": None,  # None: probed from the extractor (train-matcher writes it in the config)
        "matcher": {k: v for k, v in AttentionMatcher.default_conf.items() if k != "descriptor_dim"},
        # wider than HNDesc's (zoom 0.8-1, 15 degrees, edges down to 0.6): scale ratio up to 4, 45 degrees
        "hcrops": {
            "crop_size": 320, "min_zoom": 0.5, "max_zoom_out": 2.0, "max_rot_deg": 45.0,
            "min_distort": [0.4, 0.4], "center_jitter": 0.15, "min_overlap": 0.25, "num_source_points": 256, "num_keypoints": 16,
        },
        "augment": {"enabled": True},
        "stylize": {"enabled": False, "p": 0.5, "stylizer": "mixed", "style_bank": None},
        "supervision": {"positive_px": 3.0, "negative_px": 5.0, "balance": 0.5, "deep_supervision": True},
    }

    #: the validation ``selfdesc train`` runs with ``val.images`` set
    validation = MatcherValidation

    def __init__(self, conf: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.conf = merge(self.default_conf, conf or {})
        self.hcrops = to_dataclass(HCropsConfig, self.conf["hcrops"], "method.hcrops")
        self.augment = PhotometricAugment(to_dataclass(PhotometricConfig, self.conf["augment"], "method.augment"))
        self._extractor: list[Extractor] = []  # a list keeps it out of the module tree (and the checkpoint)
        dim = self.conf["descriptor_dim"]
        if dim is None:
            dim = probe_descriptor_dim(self.extractor(torch.device("cpu")))
            self.conf["descriptor_dim"] = dim
        self.matcher = AttentionMatcher({**self.conf["matcher"], "descriptor_dim": int(dim)})

    def extractor(self, device: torch.device) -> Extractor:
        """The frozen extractor on ``device`` (built on first use)."""
        if not self._extractor:
            self._extractor.append(load_frozen_extractor(self.conf["features"], device))
        ext = self._extractor[0]
        if getattr(ext, "cpu_only", False) is False and ext.device != device:
            ext.to(device)
        return ext

    def loader_options(self, data: dict[str, Any]) -> dict[str, Any]:
        """:class:`~selfdesc.training.image_folder.ImageFolder` options (size; stylization)."""
        opts: dict[str, Any] = {"size": tuple(data["size"])}
        st = self.conf["stylize"]
        if data.get("stylized_root") and not st["enabled"]:
            raise ConfigError("data.stylized_root is set but method.stylize.enabled is false")
        if data.get("index"):
            raise ConfigError("data.index is not used by the matcher method")
        if st["enabled"]:
            opts.update(style_p=st["p"], stylized_root=data.get("stylized_root"))
            if not data.get("stylized_root"):
                opts.update(stylizer=st["stylizer"], style_bank=st["style_bank"])
        return opts

    def export(self) -> dict[str, Any]:
        """``{"conf": {"matcher", "features", "descriptor_dim"}, "state_dict": matcher weights}``.

        Floating-point weights are stored as float16 (half the file; ``load_matcher`` loads them
        into the float32 model), so a default-size matcher stays well under 16 MiB.
        """
        f = self.conf["features"]
        conf = {"matcher": dict(self.matcher.conf), "features": str(f["label"] or f["name"]), "descriptor_dim": int(self.matcher.conf["descriptor_dim"])}
        state = {k: v.half() if v.is_floating_point() else v for k, v in self.matcher.state_dict().items()}
        return {"conf": conf, "state_dict": state}

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        images = batch["image"]
        if self.conf["stylize"]["enabled"] and "image_b" not in batch:
            raise ConfigError("stylize.enabled: the batch has no 'image_b' (build the ImageFolder with loader_options())")
        num = int(self.conf["features"]["max_keypoints"])
        with torch.no_grad(), torch.autocast(images.device.type, enabled=False):
            pairs = make_pairs(images.float(), config=self.hcrops, images_b=batch.get("image_b"))
            ok = pairs["pair_valid"]
            A, B, H = self.augment(pairs["A"][ok]), self.augment(pairs["B"][ok]), pairs["H_AB"][ok].double()
            dim = int(self.conf["descriptor_dim"])
            f0 = extract_padded(self.extractor(images.device), A, num, dim)
            f1 = extract_padded(self.extractor(images.device), B, num, dim)
            sup = self.conf["supervision"]
            gt0, gt1 = homography_assignment(f0["keypoints"], f1["keypoints"], H, f0["mask"], f1["mask"], sup["positive_px"], sup["negative_px"])
        size = torch.tensor([[A.shape[-1], A.shape[-2]]], device=images.device).expand(len(A), 2)
        data = {
            "keypoints0": f0["keypoints"], "keypoints1": f1["keypoints"],
            "descriptors0": f0["descriptors"], "descriptors1": f1["descriptors"],
            "image_size0": size, "image_size1": size, "mask0": f0["mask"], "mask1": f1["mask"],
        }
        pred = self.matcher(data, all_layers=True)
        layer_losses = [assignment_nll(s, gt0, gt1, sup["balance"]).mean() for s in pred["layer_scores"]]
        final = layer_losses[-1]
        loss = torch.stack(layer_losses).mean() if sup["deep_supervision"] else final
        with torch.no_grad():
            m0, pos = pred["matches0"], gt0 >= 0
            correct = (m0 >= 0) & (m0 == gt0)
            labelled = (m0 >= 0) & (gt0 != -2)
            precision = correct.sum() / labelled.sum().clamp_min(1)
            recall = (correct & pos).sum() / pos.sum().clamp_min(1)
        return {
            "loss": loss,
            "final_nll": final.detach(),
            "precision": precision.float(),
            "recall": recall.float(),
            "gt_matches": pos.sum(1).float().mean() if len(pos) else torch.zeros((), device=images.device),
            "keypoints": f0["mask"].sum(1).float().mean() if len(pos) else torch.zeros((), device=images.device),
            "valid_pairs": ok.float().sum(),
        }
