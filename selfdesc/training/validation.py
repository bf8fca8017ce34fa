"""Periodic validation of any trainable method: MMA@1/3/5 on a held-out synthetic benchmark.

The benchmark is built once (seeded) from a folder of base images the run does not train on,
into ``RUN_DIR/validation-synth``. At each validation the method's network is exported
(``method.export()``) to ``RUN_DIR/validation-model.pt`` and evaluated through the feature
extractor that reads that method's model files, exactly as ``selfdesc eval homography``
would evaluate the final model (MNN matching, D2-Net MMA, full-resolution homography accuracy).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from selfdesc.errors import ConfigError


@dataclass
class ValidationConfig:
    """``images``: base images held out from training (``None``: no validation).

    ``num_images`` base images (sorted, first N) give ``6 * num_images - 2 * num_images`` pairs
    (5 viewpoint or illumination pairs per sequence); ``max_side`` bounds image size;
    ``max_keypoints`` per image; ``score`` is the metric that selects ``best.pt`` (one of
    :data:`SCORES`; ``mma@1+3`` is the mean of MMA@1 and MMA@3).
    """

    images: str | None = None
    num_images: int = 8
    seed: int = 1234
    max_side: int = 480
    max_keypoints: int = 2000
    score: str = "mma@3"


#: metrics that can select ``best.pt``
SCORES = ("mma@1", "mma@3", "mma@5", "ha@3", "mma@1+3")


class SyntheticValidation:
    """``callback(method) -> {"mma@1", "mma@3", "mma@5", "ha@3", "mma@1+3", "num_matches", "score"}`` for the trainer
    (``progress``: show extraction and matching progress bars while it runs)."""

    def __init__(self, conf: ValidationConfig, method_name: str, run_dir: str | Path, device: str = "cpu", progress: bool = False) -> None:
        from selfdesc.datasets.hpatches import load_hpatches
        from selfdesc.datasets.synth import ensure_synthetic

        if conf.images is None:
            raise ConfigError("validation needs val.images (a folder of base images not used for training)")
        if conf.score not in SCORES:
            raise ConfigError(f"unknown validation score '{conf.score}' ({', '.join(SCORES)})")
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
        overall = run_homography_benchmark([str(path)], self.pairs, config, progress=self.progress).results[str(path)]["overall"]
        scores = {f"mma@{t}": float(overall["mma"][t]) for t in ("1", "3", "5")}
        scores["ha@3"] = float(overall["homography_accuracy"]["3"])
        scores["mma@1+3"] = 0.5 * (scores["mma@1"] + scores["mma@3"])
        scores["num_matches"] = float(overall["num_matches"])
        scores["score"] = scores[self.conf.score]
        return scores


__all__ = ["SCORES", "SyntheticValidation", "ValidationConfig"]
