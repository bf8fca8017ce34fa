"""Periodic validation of any trainable method: MMA@1/3/5 on a held-out synthetic benchmark and,
optionally, relative-pose AUC@5/10/20 on real pairs with ground-truth cameras.

The benchmark is built once (seeded) from a folder of base images the run does not train on,
into ``RUN_DIR/validation-synth``. At each validation the method's network is exported
(``method.export()``) to ``RUN_DIR/validation-model.pt`` and evaluated through the feature
extractor that reads that method's model files, exactly as ``selfdesc eval homography``
would evaluate the final model (MNN matching, D2-Net MMA, full-resolution homography accuracy).
With ``val.pose_root`` the same model file also runs the relative-pose benchmark of
``selfdesc eval pose`` (:func:`selfdesc.eval.pose.run_pose_benchmark`) on those pairs. The pose
pairs and the score are checked when the validation is built, before the first step.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from selfdesc.datasets.scannet_pairs import PosePair
from selfdesc.errors import ConfigError, DatasetError


@dataclass
class ValidationConfig:
    """``images``: base images held out from training (``None``: no validation).

    ``num_images`` base images (sorted, first N) give ``6 * num_images - 2 * num_images`` pairs
    (5 viewpoint or illumination pairs per sequence); ``max_side`` bounds image size;
    ``max_keypoints`` per image; ``score`` is the metric that selects ``best.pt`` (one of
    :data:`SCORES`; ``mma@1+3`` is the mean of MMA@1 and MMA@3; ``mma@1+3+pose_auc@5`` the mean of
    MMA@1, MMA@3 and pose AUC@5).

    Real pairs (``pose_root``: ``None`` = off): a Strecha root or scene folder (``pose_format:
    strecha``, co-visible pairs by the defaults of :mod:`selfdesc.datasets.strecha`; ``pose_scenes``:
    one scene folder name or a list of them, ``None`` = every scene) or a SuperGlue pair list or
    its folder (``pose_format: pairs``); images resized so their longest side is at most
    ``pose_resize_max`` (``None``: full resolution; keypoints and ``K`` stay in original pixels),
    ``pose_max_keypoints`` per image.
    """

    images: str | None = None
    num_images: int = 8
    seed: int = 1234
    max_side: int = 480
    max_keypoints: int = 2000
    score: str = "mma@3"
    pose_root: str | None = None
    pose_format: str = "strecha"
    pose_scenes: str | list[str] | None = None
    pose_resize_max: int | None = 640
    pose_max_keypoints: int = 2048


#: metrics that need real pairs (``val.pose_root``)
POSE_SCORES = ("pose_auc@5", "pose_auc@10", "pose_auc@20", "mma@1+3+pose_auc@5")
#: metrics that can select ``best.pt``
SCORES = ("mma@1", "mma@3", "mma@5", "ha@3", "mma@1+3", *POSE_SCORES)
POSE_FORMATS = ("strecha", "pairs")


def check_score(conf: ValidationConfig) -> None:
    """Raise :class:`ConfigError` for an unknown ``score`` or a pose score without ``pose_root``."""
    if conf.score not in SCORES:
        raise ConfigError(f"unknown validation score '{conf.score}' ({', '.join(SCORES)})")
    if conf.score in POSE_SCORES and conf.pose_root is None:
        raise ConfigError(f"val.score {conf.score} needs real pairs: set val.pose_root (a Strecha folder or a pair list)")


def load_validation_pose_pairs(conf: ValidationConfig) -> list[PosePair]:
    """The real pairs of ``conf`` (``pose_root``, ``pose_format``, ``pose_scenes``); ``[]`` when off.

    Raises:
        ConfigError: an unknown format, or scenes with a pair list.
        DatasetError: a missing folder or scene, malformed cameras or pair list, no co-visible pair.
    """
    from selfdesc.datasets.registry import load_pose_dataset

    if conf.pose_root is None:
        return []
    if conf.pose_format not in POSE_FORMATS:
        raise ConfigError(f"unknown val.pose_format '{conf.pose_format}' ({', '.join(POSE_FORMATS)})")
    root = Path(conf.pose_root)
    if not root.exists():
        raise DatasetError(f"{root}: no such folder or file (val.pose_root)")
    if conf.pose_format == "pairs":
        if conf.pose_scenes is not None:
            raise ConfigError("val.pose_scenes applies to val.pose_format strecha only")
        return load_pose_dataset("pairs", root)[0]
    if conf.pose_scenes is None:
        return load_pose_dataset("strecha", root)[0]
    scenes = [conf.pose_scenes] if isinstance(conf.pose_scenes, str) else list(conf.pose_scenes)
    if not scenes:
        raise ConfigError("val.pose_scenes is empty (null = every scene)")
    for scene in scenes:
        if not (root / scene / "images").is_dir():
            raise DatasetError(f"{root / scene}: no such Strecha scene (val.pose_scenes; a folder with images/ and cameras/)")
    return [pair for scene in scenes for pair in load_pose_dataset("strecha", root / scene)[0]]


def homography_scores(overall: dict[str, Any]) -> dict[str, float]:
    """``mma@1/3/5``, ``ha@3``, ``mma@1+3`` and ``num_matches`` of a homography benchmark's ``overall`` summary."""
    scores = {f"mma@{t}": float(overall["mma"][t]) for t in ("1", "3", "5")}
    scores["ha@3"] = float(overall["homography_accuracy"]["3"])
    scores["mma@1+3"] = 0.5 * (scores["mma@1"] + scores["mma@3"])
    scores["num_matches"] = float(overall["num_matches"])
    return scores


class SyntheticValidation:
    """``callback(method) -> {"mma@1", "mma@3", "mma@5", "ha@3", "mma@1+3", "num_matches", "score"}`` for the trainer
    (``progress``: show extraction and matching progress bars while it runs); with ``pose_root``
    also ``"pose_auc@5"``, ``"pose_auc@10"``, ``"pose_auc@20"``, ``"mma@1+3+pose_auc@5"`` and
    ``"pose_num_matches"`` (mean MNN matches per real pair)."""

    def __init__(self, conf: ValidationConfig, method_name: str, run_dir: str | Path, device: str = "cpu", progress: bool = False) -> None:
        from selfdesc.datasets.hpatches import load_hpatches
        from selfdesc.datasets.synth import ensure_synthetic

        if conf.images is None:
            raise ConfigError("validation needs val.images (a folder of base images not used for training)")
        check_score(conf)
        self.pose_pairs = load_validation_pose_pairs(conf)
        self.conf, self.method_name, self.device, self.progress = conf, method_name, device, progress
        self.run_dir = Path(run_dir)
        bench = ensure_synthetic(conf.images, self.run_dir / "validation-synth", seed=conf.seed, num_images=conf.num_images, max_side=conf.max_side)
        self.pairs = load_hpatches(bench, split_list="all")

    def __call__(self, method: nn.Module) -> dict[str, float]:
        from selfdesc.eval.runner import HomographyBenchmarkConfig, run_homography_benchmark
        from selfdesc.weights import save_model_file

        path = self.run_dir / "validation-model.pt"
        exported = method.export()
        save_model_file(path, method=self.method_name, conf=exported["conf"], state_dict=exported["state_dict"], meta={"purpose": "validation"})
        config = HomographyBenchmarkConfig(max_keypoints=self.conf.max_keypoints, device=self.device)
        scores = homography_scores(run_homography_benchmark([str(path)], self.pairs, config, progress=self.progress).results[str(path)]["overall"])
        if self.pose_pairs:
            scores.update(self._pose_scores(str(path)))
            scores["mma@1+3+pose_auc@5"] = (scores["mma@1"] + scores["mma@3"] + scores["pose_auc@5"]) / 3.0
        scores["score"] = scores[self.conf.score]
        return scores

    def _pose_scores(self, model_file: str) -> dict[str, float]:
        """Relative-pose AUC of ``model_file`` on the real pairs, as ``selfdesc eval pose`` computes it."""
        from selfdesc.eval.pose import PoseBenchmarkConfig, run_pose_benchmark

        config = PoseBenchmarkConfig(max_keypoints=self.conf.pose_max_keypoints, resize_max=self.conf.pose_resize_max, device=self.device)
        overall = run_pose_benchmark([model_file], self.pose_pairs, config, progress=self.progress)[0][model_file]["overall"]
        scores = {f"pose_auc@{t}": float(overall["auc"][t]) for t in ("5", "10", "20")}
        scores["pose_num_matches"] = float(overall["mean_matches"])
        return scores


__all__ = [
    "POSE_SCORES", "SCORES", "SyntheticValidation", "ValidationConfig", "check_score", "homography_scores", "load_validation_pose_pairs",
]
