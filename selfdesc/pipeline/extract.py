"""Extract features for a folder of images into an hloc-compatible features.h5, at scale.

* images are decoded (and resized) by ``num_workers`` DataLoader workers ahead of the model;
* the output is resumable and crash-safe (:class:`~selfdesc.pipeline.h5io.PartedWriter`):
  images already in the file, or in a finished part of an interrupted run, are skipped;
* under ``torchrun`` (``WORLD_SIZE > 1``) each rank extracts every ``WORLD_SIZE``-th remaining
  image on ``cuda:LOCAL_RANK`` into its own part files, and rank 0 merges them at the end.

Keypoints are stored in original-image pixels (pixel-centre convention) whatever ``resize_max``.
"""
from __future__ import annotations

import datetime
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from selfdesc.errors import ImageError
from selfdesc.features.base import Extractor
from selfdesc.io.image import LoadedImage, list_images, load_image
from selfdesc.pipeline.h5io import FEATURES_CONVENTIONS, FEATURES_FORMAT, PartedWriter, check_names, feature_group


def dist_info() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from torchrun's environment (``(0, 1, 0)`` without it)."""
    env = os.environ
    return int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0))


def _process_group() -> bool:
    """Join torchrun's process group (gloo: only barriers and small objects) when ``WORLD_SIZE > 1``."""
    if dist_info()[1] <= 1:
        return False
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo", timeout=datetime.timedelta(hours=12))
    return True


def barrier() -> None:
    if _process_group():
        import torch.distributed as dist

        dist.barrier()


def all_gather(obj: Any) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` (``[obj]`` without torchrun)."""
    if not _process_group():
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * dist_info()[1]
    dist.all_gather_object(out, obj)
    return out


@dataclass
class ExtractConfig:
    """Options of :func:`extract_features`.

    ``resize_max`` bounds the longest side (never upscales); ``size`` forces ``(W, H)``
    (benchmarks); ``batch_size`` is the number of images each loader worker decodes per
    batch (the extractor itself processes one image at a time); ``checkpoint_every``: images
    per part file (at most that many are recomputed after a kill); ``skip_unreadable``: an image
    that cannot be read is left out and reported in :attr:`ExtractSummary.unreadable` instead of
    stopping the run.
    """

    resize_max: int | None = None
    size: tuple[int, int] | None = None
    fp16: bool = False
    batch_size: int = 4
    num_workers: int = 2
    checkpoint_every: int = 100
    progress: bool = True
    skip_unreadable: bool = False


@dataclass
class ExtractSummary:
    """What a run did: images in the folder, already done before, extracted now (all ranks),
    and the one-line errors of the images left out (``skip_unreadable``)."""

    num_images: int
    num_skipped: int
    num_extracted: int
    seconds: float
    images_per_second: float
    written: bool
    unreadable: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class ImageFolderDataset(Dataset):
    """Decodes ``root / name`` in a worker: ``{"name", "image" (C, H, W) float, "original_size", "scale"}``.

    A file that cannot be read gives ``{"name", "error"}`` (raised in the main process, so the
    message stays one line).
    """

    def __init__(self, root: Path, names: Sequence[str], resize_max: int | None, size: tuple[int, int] | None) -> None:
        self.root, self.names, self.resize_max, self.size = root, list(names), resize_max, size

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> dict[str, Any]:
        name = self.names[i]
        try:
            loaded = load_image(self.root / name, resize_max=self.resize_max, size=self.size)
        except ImageError as exc:
            return {"name": name, "error": str(exc)}
        image = torch.from_numpy(loaded.image.transpose(2, 0, 1).copy())
        return {"name": name, "image": image, "original_size": loaded.original_size, "scale": loaded.scale}


def _as_list(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return batch


def image_names(root: str | Path, image_list: Sequence[str] | None = None) -> list[str]:
    """Image paths relative to ``root`` (POSIX), from a folder listing or a given list."""
    root = Path(root)
    names = list(image_list) if image_list is not None else [p.relative_to(root).as_posix() for p in list_images(root)]
    check_names(names)
    return names


def signature(feature: str, extractor: Extractor, config: ExtractConfig) -> dict[str, Any]:
    """The settings a resumed run must share with the file (feature, its options, resize, fp16)."""
    conf = {k: v for k, v in extractor.conf.items() if k != "weights_dir"}
    return {
        "features": feature,
        "conf": json.loads(json.dumps(conf, default=str)),
        "resize_max": config.resize_max,
        "size": list(config.size) if config.size else None,
        "fp16": config.fp16,
    }


def extract_features(
    extractor: Extractor,
    feature: str,
    root: str | Path,
    out: str | Path,
    config: ExtractConfig | None = None,
    names: Sequence[str] | None = None,
) -> ExtractSummary:
    """Extract ``extractor`` features of the images under ``root`` into ``out`` (features.h5).

    Args:
        extractor: built and placed on its device (``cuda:LOCAL_RANK`` under torchrun).
        feature: its name (or model file) as recorded in the file.
        root: image folder; group names are paths relative to it.
        out: the features.h5 to create or complete.
        config: see :class:`ExtractConfig`.
        names: optional subset of image names (default: every image under ``root``).

    Raises:
        ImageError: an unreadable image, unless ``config.skip_unreadable`` (the images finished
            before it are kept for a rerun).
        ConfigError: ``out`` holds features of other settings.
    """
    config = config or ExtractConfig()
    root, out = Path(root), Path(out)
    rank, world, _ = dist_info()
    all_names = image_names(root, names)
    sig = signature(feature, extractor, config)
    attrs = {**FEATURES_CONVENTIONS, "features": feature, "conf": json.dumps(sig), "image_root": str(root.resolve())}
    attrs["descriptors"] = attrs["descriptors"] + (", float16" if config.fp16 else ", float32")
    writer = PartedWriter(out, FEATURES_FORMAT, "keypoints", sig, attrs, config.checkpoint_every, rank=rank)
    barrier()  # every rank has scanned the output before any writes a part
    todo = [n for n in all_names if n not in writer.done]
    mine = todo[rank::world]
    dataset = ImageFolderDataset(root, mine, config.resize_max, config.size)
    use_cuda = extractor.device.type == "cuda"
    loader = DataLoader(
        dataset,
        batch_size=max(1, config.batch_size),
        num_workers=config.num_workers if len(mine) > 1 else 0,
        collate_fn=_as_list,
        pin_memory=use_cuda,
        prefetch_factor=4 if config.num_workers > 0 and len(mine) > 1 else None,
    )
    t_start, t_first, done, unreadable = time.time(), None, 0, []
    bar = tqdm(total=len(mine), desc=f"extract {feature}" + (f" [rank {rank}/{world}]" if world > 1 else ""), unit="img", disable=not config.progress or rank != 0)
    try:
        for batch in loader:
            for item in batch:
                if "error" in item:
                    if not config.skip_unreadable:
                        raise ImageError(item["error"])
                    unreadable.append(item["error"])
                    bar.update(1)
                    continue
                # the (C, H, W) tensor (pinned for CUDA) goes to the extractor as is
                loaded = LoadedImage(image=item["image"], original_size=item["original_size"], scale=item["scale"])
                pred = extractor.extract(loaded)  # type: ignore[arg-type]
                writer.add(item["name"], feature_group(pred, item["original_size"], config.fp16))
                done += 1
                if t_first is None:
                    t_first = time.time()
                bar.update(1)
    finally:
        bar.close()
        writer.close()
    t_end = time.time()
    stats = all_gather({"n": done, "t_first": t_first or t_end, "t_end": t_end, "t_start": t_start, "unreadable": unreadable})
    barrier()
    written = writer.finalize() if rank == 0 else False
    barrier()  # the merged file exists for every rank once this returns
    total = sum(s["n"] for s in stats)
    span = max(s["t_end"] for s in stats) - min(s["t_first"] for s in stats)
    steady = total - sum(1 for s in stats if s["n"] > 0)  # the first image of each rank is warm-up
    rate = steady / span if span > 0 and steady > 0 else float("nan")
    seconds = max(s["t_end"] for s in stats) - min(s["t_start"] for s in stats)
    skipped = [msg for s in stats for msg in s["unreadable"]]
    return ExtractSummary(len(all_names), len(all_names) - len(todo), total, seconds, rate, written, skipped)


__all__ = ["dist_info", "ExtractConfig", "ExtractSummary", "ImageFolderDataset", "extract_features", "image_names", "signature"]
