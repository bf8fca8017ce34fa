"""Extract features for a folder of images into an hloc-compatible features.h5, at scale.

* images are decoded (and resized) by ``num_workers`` DataLoader workers ahead of the model
  (pinned memory on CUDA), or, with ``decode="gpu"`` (or ``auto`` where torchvision and CUDA
  are there; experimental, not the default), the workers read JPEG bytes and nvJPEG decodes a batch on the device
  (:mod:`selfdesc.pipeline.decode`); a file that cannot be decoded is reported at the end
  (:attr:`ExtractSummary.failed`) and does not stop the other images;
* images of one size (after resizing) go through the extractor ``batch_size`` at a time
  (:meth:`~selfdesc.features.base.Extractor.forward_batch`: network and keypoint selection on
  the device; extractors that cannot batch, like OpenCV's, run one image at a time);
* a batch's features are laid out as the file's bytes on the device and copied to the host at
  once (:func:`~selfdesc.pipeline.packed.pack_batch`, non-blocking), then written by a
  background thread behind a bounded queue (:class:`~selfdesc.pipeline.background.BackgroundWriter`)
  into the file that becomes the output (:class:`~selfdesc.pipeline.featurestore.FeatureStore`:
  every byte written once, resumable, replaced atomically): images already in the file, or in
  the journal of an interrupted run, are skipped;
* under ``torchrun`` (``WORLD_SIZE > 1``) each rank extracts every ``WORLD_SIZE``-th remaining
  image on ``cuda:LOCAL_RANK`` into its own run file, and rank 0 adds them to its own at the end.

Keypoints are stored in original-image pixels (pixel-centre convention) whatever ``resize_max``.
Batching does not change the features beyond float rounding (tested to 1e-4 in fp32).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from selfdesc.device import sync_device
from selfdesc.distributed import all_gather, barrier, dist_info, process_cores
from selfdesc.errors import ConfigError, ImageError
from selfdesc.features.base import PRECISIONS, Extractor
from selfdesc.io.image import list_images, load_image, target_size
from selfdesc.pipeline.background import BackgroundWriter
from selfdesc.pipeline.chunks import pack_chunk, unpack_chunk
from selfdesc.pipeline.decode import decode_jpegs, gpu_jpeg_size, resolve_decode
from selfdesc.pipeline.featurestore import FeatureStore
from selfdesc.pipeline.h5io import FEATURES_CONVENTIONS, check_names
from selfdesc.pipeline.packed import pack_batch


#: images a decoding worker hands over at once (:mod:`selfdesc.pipeline.chunks`)
CHUNK = 4

#: images per network batch when not given: measured, see docs/extract_speed.md
DEFAULT_BATCH_SIZE = {"cuda": 16, "cpu": 1}


def default_batch_size(device: torch.device | str) -> int:
    """The default ``batch_size`` on ``device`` (CUDA or CPU)."""
    return DEFAULT_BATCH_SIZE["cuda" if torch.device(device).type == "cuda" else "cpu"]


def default_num_workers() -> int:
    """Decoding workers per process: the cores of this process's share of the host less two
    (the main thread and the pin-memory / writer threads), between 1 and 12."""
    return max(1, min(12, process_cores() - 2))


def default_cpu_threads(num_workers: int) -> int:
    """Torch intra-op threads for extraction on the CPU: the cores the decoding workers leave, at least 1.

    More threads than free cores makes every operation wait for a busy core: on this project's
    2-core machine a small network ran ~10x slower with 2 threads than with 1 next to a worker.
    """
    return max(1, process_cores() - num_workers)


@dataclass
class ExtractConfig:
    """Options of :func:`extract_features`.

    ``resize_max`` bounds the longest side (never upscales); ``size`` forces ``(W, H)``
    (benchmarks); ``batch_size``: images of one size per network batch (``None``:
    :func:`default_batch_size`); ``num_workers``: decoding processes (``None``:
    :func:`default_num_workers`; 0 decodes in the main process); ``precision``: ``fp32`` or
    ``bf16`` (autocast on the device; recorded in the file's settings); ``threads``: torch
    intra-op threads while extracting on the CPU (``None``: :func:`default_cpu_threads`; the
    previous setting is restored afterwards); ``write_queue``: images
    that may wait for the writer thread (0: write in the main thread); ``decode``: ``auto``,
    ``cpu`` or ``gpu`` (:mod:`selfdesc.pipeline.decode`); ``write_threads``: threads writing the
    raw bytes of the file (:class:`~selfdesc.pipeline.featurestore.FeatureStore`);
    ``checkpoint_every``: images between journal writes, at most (at most that many, plus the
    batches waiting for the writer, are recomputed after a kill); ``profile``:
    synchronise the device between steps and time each (:attr:`ExtractSummary.stages`; slower).
    """

    resize_max: int | None = None
    size: tuple[int, int] | None = None
    fp16: bool = False
    batch_size: int | None = None
    num_workers: int | None = None
    precision: str = "fp32"
    threads: int | None = None
    write_queue: int = 64
    decode: str = "cpu"
    write_threads: int = 4
    checkpoint_every: int = 100
    progress: bool = True
    profile: bool = False


@dataclass
class ExtractSummary:
    """What a run did: images in the folder, already done before, extracted now (all ranks).

    ``failed``: one line per image that could not be decoded (not written; a rerun retries
    them). ``stages``: with ``profile``, seconds per step summed over ranks — ``decode``
    (worker CPU time), ``wait_decode`` (main thread waiting for decoded images), ``h2d``,
    ``network``, ``select`` (keypoint selection: the extractor's batch step less the network
    timed alone on the same batch), ``d2h``, ``write`` (writer thread), ``wait_write``
    (main thread blocked on a full writer queue) and ``total`` (the extraction loop).
    """

    num_images: int
    num_skipped: int
    num_extracted: int
    seconds: float
    images_per_second: float
    written: bool
    failed: list[str] = field(default_factory=list)
    stages: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def raise_failed(self, out: str | Path) -> None:
        """Raise one :class:`~selfdesc.errors.ImageError` line when some images could not be decoded."""
        if self.failed:
            more = f" (and {len(self.failed) - 1} more, each named above)" if len(self.failed) > 1 else ""
            raise ImageError(f"{len(self.failed)} image(s) could not be read and were skipped, the others are in {out}: {self.failed[0]}{more}")


class ImageFolderDataset(Dataset):
    """Decodes ``root / name`` in a worker: ``{"name", "image" (C, H, W) float, "shape",
    "original_size", "scale", "decode_s"}``, or ``{"name", "error"}`` (one line naming the file)
    when it cannot be read. With ``gpu_jpeg``, a file the GPU can decode
    (:func:`~selfdesc.pipeline.decode.gpu_jpeg_size`) comes as its file bytes ``"jpeg"``
    instead of ``"image"`` (a uint8 tensor once :func:`~selfdesc.pipeline.chunks.unpack_chunk` is through), ``"shape"`` being the ``(C, H, W)`` it will have once decoded and resized."""

    def __init__(self, root: Path, names: Sequence[str], resize_max: int | None, size: tuple[int, int] | None, gpu_jpeg: bool = False) -> None:
        self.root, self.names, self.resize_max, self.size, self.gpu_jpeg = root, list(names), resize_max, size, gpu_jpeg

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> dict[str, Any]:
        name = self.names[i]
        t0 = time.perf_counter()
        found = gpu_jpeg_size(self.root / name, self.resize_max, self.size) if self.gpu_jpeg else None
        if found is not None:
            w, h = found
            new_w, new_h = target_size(w, h, self.resize_max, self.size)
            return {"name": name, "jpeg": (self.root / name).read_bytes(), "shape": (3, new_h, new_w), "original_size": (w, h), "scale": (w / new_w, h / new_h), "decode_s": time.perf_counter() - t0}
        try:
            item = self.load(name)
        except ImageError as exc:
            return {"name": name, "error": str(exc)}
        item["decode_s"] = time.perf_counter() - t0
        return item

    def load(self, name: str) -> dict[str, Any]:
        """``root / name`` decoded on the CPU: ``{"name", "image", "shape", "original_size", "scale"}``."""
        loaded = load_image(self.root / name, resize_max=self.resize_max, size=self.size)
        image = torch.from_numpy(loaded.image.transpose(2, 0, 1).copy())
        return {"name": name, "image": image, "shape": tuple(image.shape), "original_size": loaded.original_size, "scale": loaded.scale}


def device_images(extractor: Extractor, batch: list[dict[str, Any]], dataset: ImageFolderDataset, failed: list[str]) -> tuple[list[dict[str, Any]], torch.Tensor]:
    """The images of ``batch`` (same ``"shape"``) as one ``(B, C, H, W)`` float tensor on the
    extractor's device: decoded ones copied, ``"jpeg"`` ones decoded there; a JPEG the GPU
    cannot decode is decoded on the CPU, and one nobody can decode is appended to ``failed``
    and left out of the returned items."""
    jpegs = [item for item in batch if "jpeg" in item]
    if not jpegs:
        return batch, extractor.to_device([item["image"] for item in batch])
    for item, image in zip(jpegs, decode_jpegs(jpegs, extractor.device)):
        if image is None:
            try:
                item.update(dataset.load(item["name"]))
            except ImageError as exc:
                failed.append(str(exc))
                item["failed"] = True
                continue
        item["device_image"] = image
    kept = [item for item in batch if not item.get("failed")]
    host = [item["image"] for item in kept if item.get("device_image") is None]
    moved = iter(list(extractor.to_device(host)) if host else [])
    images = [item.pop("device_image") if item.get("device_image") is not None else next(moved) for item in kept]
    return kept, torch.stack(images) if images else torch.zeros(0)


def size_batches(items: Iterable[dict[str, Any]], batch_size: int) -> Iterator[list[dict[str, Any]]]:
    """Group decoded images by their ``"shape"`` ``(C, H, W)`` into batches of ``batch_size``.

    A batch is yielded as soon as it is full; when more than ``2 * batch_size`` images wait in
    partial batches (many sizes), the fullest partial batch goes as it is; the rest at the end.
    """
    pending: dict[tuple[int, ...], list[dict[str, Any]]] = {}
    waiting = 0
    for item in items:
        key = tuple(item["shape"])
        pending.setdefault(key, []).append(item)
        waiting += 1
        if len(pending[key]) < batch_size and waiting <= 2 * batch_size:
            continue
        if len(pending[key]) < batch_size:
            key = max(pending, key=lambda k: len(pending[k]))
        batch = pending.pop(key)
        waiting -= len(batch)
        yield batch
    yield from pending.values()


def image_names(root: str | Path, image_list: Sequence[str] | None = None) -> list[str]:
    """Image paths relative to ``root`` (POSIX), from a folder listing or a given list."""
    root = Path(root)
    names = list(image_list) if image_list is not None else [p.relative_to(root).as_posix() for p in list_images(root)]
    check_names(names)
    return names


def signature(feature: str, extractor: Extractor, config: ExtractConfig) -> dict[str, Any]:
    """The settings a resumed run must share with the file (feature, its options, resize, fp16, precision)."""
    conf = {k: v for k, v in extractor.conf.items() if k != "weights_dir"}
    sig = {
        "features": feature,
        "conf": json.loads(json.dumps(conf, default=str)),
        "resize_max": config.resize_max,
        "size": list(config.size) if config.size else None,
        "fp16": config.fp16,
    }
    if config.precision != "fp32":  # fp32 files keep the signature they had before this option
        sig["precision"] = config.precision
    return sig


class _Clock:
    """Seconds per pipeline step; when enabled, the device is synchronised before each reading."""

    def __init__(self, device: torch.device, enabled: bool) -> None:
        self.enabled = enabled
        self.device = device
        self.seconds: dict[str, float] = {}
        self._t = time.perf_counter()

    def start(self) -> None:
        if self.enabled:
            sync_device(self.device)
            self._t = time.perf_counter()

    def lap(self, step: str | None = None) -> float:
        """The time since the last ``start`` / ``lap``, added to ``step`` when given."""
        if not self.enabled:
            return 0.0
        sync_device(self.device)
        now = time.perf_counter()
        dt, self._t = now - self._t, now
        if step is not None:
            self.add(step, dt)
        return dt

    def add(self, step: str, seconds: float) -> None:
        if self.enabled:
            self.seconds[step] = self.seconds.get(step, 0.0) + seconds


def _decoded(loader: Iterable[dict[str, Any]], failed: list[str], clock: _Clock) -> Iterator[dict[str, Any]]:
    """The decoded images of ``loader``; unreadable ones are appended to ``failed`` and skipped."""
    chunks = iter(loader)
    while True:
        t0 = time.perf_counter()
        chunk = next(chunks, None)
        clock.add("wait_decode", time.perf_counter() - t0)
        if chunk is None:
            return
        for item in unpack_chunk(chunk):
            if "error" in item:
                failed.append(item["error"])
                continue
            clock.add("decode", item.pop("decode_s"))
            yield item


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

    Returns:
        The summary; images that could not be decoded are listed in ``failed`` (the output
        holds all the others, and a rerun retries only the failed ones).

    Raises:
        ConfigError: ``out`` holds features of other settings.
        DatasetError: the features could not be written (journaled images are kept for a rerun).
    """
    config = config or ExtractConfig()
    if config.precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got '{config.precision}'")
    root, out = Path(root), Path(out)
    rank, world, _ = dist_info()
    all_names = image_names(root, names)
    sig = signature(feature, extractor, config)
    attrs = {**FEATURES_CONVENTIONS, "features": feature, "conf": json.dumps(sig), "image_root": str(root.resolve())}
    attrs["descriptors"] = attrs["descriptors"] + (", float16" if config.fp16 else ", float32")
    store = FeatureStore(out, sig, attrs, rank=rank, threads=config.write_threads, checkpoint_every=config.checkpoint_every)
    barrier()  # every rank has scanned the output before any writes a run file
    todo = [n for n in all_names if n not in store.done]
    mine = todo[rank::world]
    batch_size = max(1, config.batch_size or default_batch_size(extractor.device))
    workers = default_num_workers() if config.num_workers is None else config.num_workers
    workers = workers if len(mine) > 1 else 0
    decode = resolve_decode(config.decode, extractor.device)
    dataset = ImageFolderDataset(root, mine, config.resize_max, config.size, gpu_jpeg=decode == "gpu")
    loader = DataLoader(
        dataset,
        batch_size=CHUNK,
        num_workers=workers,
        collate_fn=pack_chunk,
        pin_memory=extractor.device.type == "cuda",
        prefetch_factor=max(1, math.ceil(2 * batch_size / CHUNK / workers)) if workers > 0 else None,  # two batches in flight
    )
    clock = _Clock(extractor.device, config.profile)
    failed: list[str] = []
    threads_before = torch.get_num_threads()
    if extractor.device.type == "cpu":
        torch.set_num_threads(config.threads or default_cpu_threads(workers))
    writer = BackgroundWriter(store, math.ceil(config.write_queue / batch_size))
    t_start, t_first, done, warmup = time.time(), None, 0, 0
    bar = tqdm(total=len(mine), desc=f"extract {feature}" + (f" [rank {rank}/{world}]" if world > 1 else ""), unit="img", disable=not config.progress or rank != 0)
    try:
        with torch.no_grad():
            for batch in size_batches(_decoded(loader, failed, clock), batch_size):
                clock.start()
                batch, images = device_images(extractor, batch, dataset, failed)
                clock.lap("h2d")
                if not batch:
                    continue
                if clock.enabled:
                    extractor.network(images, config.precision)
                    network = clock.lap("network")
                preds = extractor.forward_batch(images, config.precision)
                if clock.enabled:
                    clock.add("select", max(0.0, clock.lap() - network))
                packed = pack_batch(preds, [item["scale"] for item in batch], [item["original_size"] for item in batch], config.fp16)
                if clock.enabled:
                    packed.wait()
                    clock.lap("d2h")
                writer.add([item["name"] for item in batch], packed)
                done += len(batch)
                if t_first is None:  # the first batch is warm-up
                    t_first, warmup = time.time(), len(batch)
                bar.update(len(batch))
    finally:
        bar.close()
        torch.set_num_threads(threads_before)
        writer.close()
    t_end = time.time()
    clock.add("write", writer.write_seconds)
    clock.add("wait_write", writer.wait_seconds)
    clock.add("total", t_end - t_start)
    stats = all_gather({"n": done, "warmup": warmup, "t_first": t_first or t_end, "t_start": t_start, "failed": failed, "stages": clock.seconds})
    barrier()
    written = store.finalize() if rank == 0 else False
    barrier()  # the output is complete for every rank once this returns
    t_done = time.time()  # rates include finishing the file: the user waits for it
    total = sum(s["n"] for s in stats)
    span = t_done - min(s["t_first"] for s in stats)
    steady = total - sum(s["warmup"] for s in stats)
    rate = steady / span if span > 0 and steady > 0 else float("nan")
    seconds = t_done - min(s["t_start"] for s in stats)
    stages: dict[str, float] = {}
    for s in stats:
        for step, value in s["stages"].items():
            stages[step] = stages.get(step, 0.0) + value
    if clock.enabled:
        stages["finalize"] = t_done - t_end
        stages["total"] += t_done - t_end
    all_failed = sorted(msg for s in stats for msg in s["failed"])
    return ExtractSummary(len(all_names), len(all_names) - len(todo), total, seconds, rate, written, all_failed, stages)


__all__ = [
    "DEFAULT_BATCH_SIZE",
    "ExtractConfig",
    "ExtractSummary",
    "ImageFolderDataset",
    "default_batch_size",
    "default_cpu_threads",
    "default_num_workers",
    "extract_features",
    "image_names",
    "signature",
    "size_batches",
]
