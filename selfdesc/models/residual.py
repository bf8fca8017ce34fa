"""The trainable part of residual descriptors (methods.md §7, §12; Shrestha et al. 2023).

A handcrafted detector + descriptor ``g`` (SIFT, see :mod:`selfdesc.features.residual`) gives
keypoints and descriptors; this module holds the two learned functions:

* ``h``: a trimmed SuperPoint CNN (:class:`~selfdesc.models.superpoint.SuperPointNet` without
  the point decoder, RGB input, ``dim``-channel descriptor map at stride ``s``, L2-normalised)
  sampled at ``g``'s keypoints;
* ``f``: the "Refine" MLP on ``g``'s descriptor, ``in_dim -> hidden -> hidden -> out_dim``
  with ReLU after the hidden layers (and after the last one with ``final_relu``).

Modes (``mode``): ``concat`` (the paper's model) returns ``L2norm([f(g), h])``;
``cnn`` (ablation "CNN only") returns ``L2norm(h)``, the whole descriptor from the CNN;
``refine`` (ablation "f(g) only") returns ``L2norm(f(g))``. ``g``'s descriptors are inputs
and are detached: no gradient ever reaches them.
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from selfdesc.config import merge
from selfdesc.errors import ConfigError
from selfdesc.models.sampling import sample_descriptors
from selfdesc.models.superpoint import SuperPointNet

MODES = ("concat", "cnn", "refine")


class RefineMLP(nn.Module):
    """``f``: ``(..., in_dim) -> (..., out_dim)``, three linear layers with ReLUs between."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, final_relu: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(in_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_dim)]
        if final_relu:
            layers.append(nn.ReLU(inplace=True))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class ResidualNet(nn.Module):
    """``f`` and ``h`` of the residual descriptor; ``default_conf`` lists the options.

    Options: ``mode`` (see the module docstring); ``in_dim`` (``g``'s descriptor size);
    ``refine`` (``hidden``, ``out_dim``, ``final_relu`` of ``f``); ``cnn`` (``channels`` of the
    encoder stages and ``dim`` of the descriptor map, see ``SuperPointNet``);
    ``normalize_branches`` (L2-normalise ``f(g)`` before the concatenation, so both branches
    weigh the same; ``h`` is always unit-norm).
    """

    default_conf: ClassVar[dict[str, Any]] = {
        "mode": "concat",
        "in_dim": 128,
        "refine": {"hidden": 256, "out_dim": 128, "final_relu": False},
        "cnn": {"channels": [64, 64, 128, 128], "dim": 128},
        "normalize_branches": False,
    }

    def __init__(self, conf: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.conf = merge(self.default_conf, conf or {}, "model")
        mode = self.conf["mode"]
        if mode not in MODES:
            raise ConfigError(f"model.mode: unknown mode '{mode}' (known: {', '.join(MODES)})")
        r, c = self.conf["refine"], self.conf["cnn"]
        self.refine = RefineMLP(int(self.conf["in_dim"]), int(r["hidden"]), int(r["out_dim"]), bool(r["final_relu"])) if mode != "cnn" else None
        self.cnn = (
            SuperPointNet({"channels": tuple(c["channels"]), "dim": int(c["dim"]), "detector": False, "gray": False}) if mode != "refine" else None
        )

    @property
    def descriptor_dim(self) -> int:
        """Size of the output descriptor."""
        refine = self.conf["refine"]["out_dim"] if self.refine is not None else 0
        cnn = self.conf["cnn"]["dim"] if self.cnn is not None else 0
        return int(refine + cnn)

    def forward(self, data: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Fused descriptors at ``g``'s keypoints.

        Args:
            data: ``image`` ``(B, 3, H, W)`` in [0, 1] (unused in ``refine`` mode);
                ``keypoints`` ``(B, N, 2)`` ``(x, y)`` pixel centres; ``handcrafted``
                ``(B, N, in_dim)`` descriptors of ``g`` at those keypoints (unused in ``cnn`` mode).

        Returns:
            ``descriptors`` ``(B, N, descriptor_dim)``, unit L2 norm.
        """
        parts = []
        if self.refine is not None:
            refined = self.refine(data["handcrafted"].detach().to(torch.float32))
            parts.append(F.normalize(refined, dim=-1) if self.conf["normalize_branches"] else refined)
        if self.cnn is not None:
            maps = self.cnn({"image": data["image"]})["descriptors"]
            parts.append(sample_descriptors(maps, data["keypoints"], stride=self.cnn.stride).to(parts[0].dtype if parts else maps.dtype))
        return {"descriptors": F.normalize(torch.cat(parts, dim=-1), dim=-1)}


__all__ = ["MODES", "RefineMLP", "ResidualNet"]
