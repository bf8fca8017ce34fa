"""Resolve ``--dataset hpatches|pairs|synth --root PATH`` to homography pairs."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfdesc.datasets.base import HomographyPair
from selfdesc.errors import ConfigError, DatasetError

DATASET_KINDS = ("hpatches", "pairs", "synth")


@dataclass
class HomographyDataset:
    """Pairs plus how to label them in reports."""

    kind: str
    root: Path
    pairs: list[HomographyPair]
    synthetic: bool

    @property
    def record(self) -> dict[str, Any]:
        """What reports record of the dataset: kind, root, whether it is synthetic, number of pairs."""
        return {"kind": self.kind, "root": str(self.root), "synthetic": self.synthetic, "num_pairs": len(self.pairs)}

    @property
    def label(self) -> str:
        tag = "synthetic HPatches-style benchmark" if self.synthetic else self.kind
        return f"{tag} ({self.root}, {len(self.pairs)} pairs)"


def load_homography_dataset(
    kind: str,
    root: str | Path,
    split_list: str = "d2net",
    synth_build_dir: str | Path | None = None,
    seed: int = 0,
) -> HomographyDataset:
    """Load a homography benchmark.

    Args:
        kind: ``"hpatches"`` (HPatches layout), ``"pairs"`` (a pair-list text file) or
            ``"synth"`` (a built synthetic benchmark, or a folder of base images from which
            one is built into ``synth_build_dir`` with ``seed``).
        root: dataset folder or pair-list file.
        split_list: HPatches sequence list, ``"d2net"`` (108 sequences) or ``"all"``.
    """
    from selfdesc.datasets.hpatches import load_hpatches
    from selfdesc.datasets.pairs import load_pair_list
    from selfdesc.datasets.synth import ensure_synthetic, is_synthetic

    root = Path(root)
    if kind == "hpatches":
        return HomographyDataset(kind, root, load_hpatches(root, split_list=split_list), is_synthetic(root))
    if kind == "pairs":
        return HomographyDataset(kind, root, load_pair_list(root), False)
    if kind == "synth":
        if not root.is_dir():
            raise DatasetError(f"{root}: no such folder (expected a synthetic benchmark or a folder of base images)")
        if not is_synthetic(root):
            if synth_build_dir is None:
                raise DatasetError(f"{root}: not a synthetic benchmark (build one with `selfdesc data synth`)")
            root = ensure_synthetic(root, synth_build_dir, seed=seed, verbose=True)
        return HomographyDataset(kind, root, load_hpatches(root, split_list="all"), True)
    raise DatasetError(f"unknown dataset kind '{kind}' (choose from {', '.join(DATASET_KINDS)})")


def load_pose_dataset(
    fmt: str, root: str | Path, min_overlap: float | None = None, max_angle: float | None = None
) -> tuple[list[Any], dict[str, Any]]:
    """Relative-pose pairs and how they were chosen (for ``run.json``).

    Args:
        fmt: ``"strecha"`` (co-visible pairs of the scenes under ``root``, by ``min_overlap`` and
            ``max_angle``, defaults of :mod:`selfdesc.datasets.strecha`) or ``"pairs"`` (a
            SuperGlue pair list, which takes neither).

    Raises:
        DatasetError: no co-visible pair.
        ConfigError: ``min_overlap`` / ``max_angle`` with a pair list.
    """
    from selfdesc.datasets.scannet_pairs import load_pose_pairs
    from selfdesc.datasets.strecha import DEFAULT_MAX_ANGLE, DEFAULT_MIN_OVERLAP, covisible_pairs, load_scenes

    if fmt == "strecha":
        min_overlap = DEFAULT_MIN_OVERLAP if min_overlap is None else min_overlap
        max_angle = DEFAULT_MAX_ANGLE if max_angle is None else max_angle
        pairs = [p for scene in load_scenes(root) for p in covisible_pairs(scene, min_overlap, max_angle)]
        if not pairs:
            raise DatasetError(f"{root}: no co-visible pairs (--min-overlap {min_overlap}, --max-angle {max_angle})")
        return pairs, {"pairs": "co-visible Strecha pairs", "min_overlap": min_overlap, "max_angle": max_angle}
    if min_overlap is not None or max_angle is not None:
        raise ConfigError("--min-overlap / --max-angle apply to --format strecha only")
    return load_pose_pairs(root), {"pairs": "SuperGlue pair list"}
