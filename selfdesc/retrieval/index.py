"""A global-descriptor index of an image folder: build (VLAD of RootSIFT), save/load, k-NN.

    index = build_index("train/", {"clusters": 64})
    index.save("index.npz")                       # or .h5; holds the vocabulary too
    nn = GlobalIndex.load("index.npz").neighbours(5)   # (N, 5) indices, self excluded

Any ``(N, D)`` unit descriptors can be wrapped in a :class:`GlobalIndex` (e.g. GeM-pooled
network maps, see :func:`~selfdesc.retrieval.gem.gem_pool`); only :meth:`GlobalIndex.encode`
needs the VLAD vocabulary.
"""
from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from tqdm import tqdm

from selfdesc.config import merge
from selfdesc.errors import ConfigError, DatasetError, ImageError
from selfdesc.io.atomic import atomic_path
from selfdesc.io.image import list_images
from selfdesc.retrieval.vlad import ImageLike, VladEncoder, kmeans

FORMAT = "selfdesc-global-index/1"

#: options of :func:`build_index` (the encoder's options plus how the vocabulary is learned)
DEFAULT_CONF: dict[str, Any] = {
    **VladEncoder.default_conf,
    "clusters": 64,  # vocabulary size K; descriptor dim is K * 128
    "sample_images": 500,  # images whose descriptors train the vocabulary
    "kmeans_max_descriptors": 200_000,  # random subsample of those descriptors for k-means
    "kmeans_iters": 25,
    "pca_dim": None,  # PCA-whitening to this many dims (None = off)
    "seed": 0,
}

#: elements of one similarity block in :meth:`GlobalIndex.query` (~128 MiB of float32)
_BLOCK = 1 << 25


@dataclass
class GlobalIndex:
    """Global descriptors of a set of images.

    Attributes:
        names: image paths relative to the indexed root (POSIX separators), length ``N``.
        descriptors: ``(N, D)`` float32, unit rows (a zero row only for an encoded image
            without any local feature).
        meta: JSON-serialisable information (``conf``, ``root``, ``skipped``, ``seconds``, ...).
        encoder: the VLAD vocabulary that produced ``descriptors`` (``None`` for descriptors
            from elsewhere, e.g. GeM of a network); needed by :meth:`encode` only.
    """

    names: list[str]
    descriptors: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    encoder: VladEncoder | None = None

    def __post_init__(self) -> None:
        self.descriptors = np.ascontiguousarray(self.descriptors, dtype=np.float32)
        if self.descriptors.ndim != 2 or len(self.descriptors) != len(self.names):
            raise DatasetError(f"global index: {len(self.names)} names but descriptors of shape {self.descriptors.shape}")

    def __len__(self) -> int:
        return len(self.names)

    @property
    def dim(self) -> int:
        return int(self.descriptors.shape[1])

    def query(self, descriptors: np.ndarray | torch.Tensor, k: int, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most similar indexed images (cosine) of each query descriptor.

        Args:
            descriptors: ``(M, D)`` query descriptors (unit rows for cosine similarity).
            k: neighbours per query; clipped to the number of candidates.
            exclude: optional ``(M,)`` index into this index to leave out per query (-1: none).

        Returns:
            ``indices (M, k')`` int64 and ``similarities (M, k')`` float32, best first,
            ``k' = min(k, N)`` (``N - 1`` with ``exclude``). Computed in row blocks, so
            ``N = 100k`` fits in memory.
        """
        q = torch.as_tensor(np.asarray(descriptors), dtype=torch.float32).reshape(-1, self.dim)
        db = torch.from_numpy(self.descriptors)
        k = max(0, min(int(k), len(self) - (exclude is not None)))
        rows = max(1, _BLOCK // max(len(self), 1))
        idx, sim = [], []
        for start in range(0, len(q), rows):
            s = q[start : start + rows] @ db.T
            if exclude is not None:
                ex = torch.as_tensor(np.asarray(exclude[start : start + rows]), dtype=torch.long)
                hit = ex >= 0
                s[torch.nonzero(hit).flatten(), ex[hit]] = -float("inf")
            top = torch.topk(s, k, dim=1)
            idx.append(top.indices)
            sim.append(top.values)
        if not idx:
            return np.zeros((0, k), np.int64), np.zeros((0, k), np.float32)
        return torch.cat(idx).numpy().astype(np.int64), torch.cat(sim).numpy()

    def neighbours(self, k: int, exclude_self: bool = True) -> np.ndarray:
        """``(N, k')`` int64: the ``k`` nearest indexed images of every indexed image, best first.

        ``k' = min(k, N - 1)`` with ``exclude_self`` (the image itself is never listed, even
        when duplicates tie with it), else ``min(k, N)``.
        """
        exclude = np.arange(len(self)) if exclude_self else None
        return self.query(self.descriptors, k, exclude=exclude)[0]

    def neighbour_names(self, k: int) -> dict[str, list[str]]:
        """``{name: [names of its k nearest other images]}``, the kNN-list format of the gd pipeline."""
        nn = self.neighbours(k)
        return {name: [self.names[j] for j in row] for name, row in zip(self.names, nn)}

    def encode(self, images: Sequence[ImageLike]) -> np.ndarray:
        """Describe new images (files, ``H x W [x 3]`` arrays) with this index's vocabulary: ``(M, D)`` float32."""
        if self.encoder is None:
            raise DatasetError("global index: no VLAD vocabulary stored, cannot encode new images")
        return self.encoder.encode(images)

    def save(self, path: str | Path) -> Path:
        """Write to ``path`` (``.npz`` or ``.h5``/``.hdf5``) atomically, vocabulary included."""
        path = Path(path)
        arrays: dict[str, np.ndarray] = {
            "format": np.array(FORMAT),
            "names": np.array(self.names, dtype=str),
            "descriptors": self.descriptors,
            "meta_json": np.array(json.dumps(self.meta)),
        }
        if self.encoder is not None:
            arrays["encoder_conf_json"] = np.array(json.dumps(self.encoder.conf))
            arrays.update({f"encoder_{k}": v for k, v in self.encoder.to_arrays().items()})
        kind = _kind(path)
        with atomic_path(path) as tmp:
            if kind == "npz":
                with open(tmp, "wb") as f:
                    np.savez(f, **arrays)
            else:
                import h5py

                with h5py.File(tmp, "w") as f:
                    for key, value in arrays.items():
                        if value.dtype.kind == "U":
                            f.create_dataset(key, data=value.astype(object), dtype=h5py.string_dtype())
                        else:
                            f.create_dataset(key, data=value)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "GlobalIndex":
        """Read a file written by :meth:`save`.

        Raises:
            DatasetError: missing file, wrong format or inconsistent content (one line, naming the file).
        """
        path = Path(path)
        if not path.is_file():
            raise DatasetError(f"{path}: no such index file")
        kind = _kind(path)
        try:
            arrays = _read_npz(path) if kind == "npz" else _read_h5(path)
        except DatasetError:
            raise
        except Exception as exc:  # any reader failure means the file is not a readable index
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DatasetError(f"{path}: not a readable {kind} index file ({msg})") from None
        if str(arrays.get("format", "")) != FORMAT:
            raise DatasetError(f"{path}: not a selfdesc global index (format {str(arrays.get('format', 'missing'))!r}, expected {FORMAT!r})")
        try:
            names = [str(n) for n in np.atleast_1d(arrays["names"]).tolist()] if arrays["names"].size else []
            meta = json.loads(str(arrays["meta_json"]))
            encoder = None
            if "encoder_conf_json" in arrays:
                enc_arrays = {k[len("encoder_"):]: v for k, v in arrays.items() if k.startswith("encoder_") and k != "encoder_conf_json"}
                encoder = VladEncoder.from_arrays(json.loads(str(arrays["encoder_conf_json"])), enc_arrays)
            return cls(names=names, descriptors=arrays["descriptors"].reshape(len(names), -1), meta=meta, encoder=encoder)
        except (KeyError, ValueError, ConfigError) as exc:
            raise DatasetError(f"{path}: malformed index file ({exc})") from None


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return "npz"
    if suffix in (".h5", ".hdf5"):
        return "h5"
    raise DatasetError(f"{path}: index files must end in .npz, .h5 or .hdf5")


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _read_h5(path: Path) -> dict[str, np.ndarray]:
    import h5py

    out: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        for key, ds in f.items():
            if h5py.check_string_dtype(ds.dtype) is not None:
                out[key] = np.array(ds.asstr()[()], dtype=str)
            else:
                out[key] = ds[()]
    return out


def build_index(root: str | Path, conf: dict[str, Any] | None = None, progress: bool = True) -> GlobalIndex:
    """VLAD-index every image under ``root`` (recursive) with a vocabulary learned on them.

    1. RootSIFT descriptors of ``sample_images`` randomly chosen images (seeded) train a
       k-means vocabulary of ``clusters`` words (on at most ``kmeans_max_descriptors`` of them);
    2. every image is VLAD-encoded (the sample's descriptors are reused, not re-extracted);
    3. with ``pca_dim``, PCA-whitening is learned on all the VLADs and applied.

    Unreadable images, and images without any local feature, are skipped with a warning and
    listed in ``meta["skipped"]``. See :data:`DEFAULT_CONF` for the options.

    Raises:
        DatasetError: ``root`` is missing or holds no readable image with features.
        ConfigError: unknown option, or too few descriptors for the vocabulary.
    """
    t0 = time.perf_counter()
    conf = merge(DEFAULT_CONF, conf or {}, "index")
    root = Path(root)
    files = list_images(root)
    names = [p.relative_to(root).as_posix() for p in files]
    # the encoder extracts the local descriptors; its vocabulary is set once k-means has run
    encoder = VladEncoder({k: conf[k] for k in VladEncoder.default_conf}, np.zeros((0, 128), np.float32))
    skipped: dict[int, str] = {}

    def describe(i: int) -> np.ndarray | None:
        try:
            desc = encoder.local_descriptors(files[i])
        except ImageError as exc:
            skipped[i] = str(exc)
            warnings.warn(f"skipping unreadable image: {exc}", stacklevel=3)
            return None
        if len(desc) == 0:
            skipped[i] = f"{files[i]}: no local features"
            warnings.warn(f"skipping image without local features: {files[i]}", stacklevel=3)
            return None
        return desc

    rng = np.random.default_rng(int(conf["seed"]))
    n_sample = min(int(conf["sample_images"]), len(files))
    sample = sorted(rng.choice(len(files), n_sample, replace=False).tolist())
    cache: dict[int, np.ndarray] = {}
    for i in tqdm(sample, desc="vocabulary images", disable=not progress, unit="img"):
        desc = describe(i)
        if desc is not None:
            cache[i] = desc.astype(np.float16)  # half the memory; RootSIFT values lie in [0, 1]
    pool = np.concatenate(list(cache.values())) if cache else np.zeros((0, 128), np.float16)
    k = int(conf["clusters"])
    if len(pool) < k:
        if not cache and len(skipped) == len(files):
            raise DatasetError(f"{root}: none of the {len(files)} images could be read or has local features")
        raise ConfigError(f"index: only {len(pool)} local descriptors in {len(cache)} sample images, fewer than clusters={k}")
    limit = int(conf["kmeans_max_descriptors"])
    if len(pool) > limit:
        pool = pool[np.sort(rng.choice(len(pool), limit, replace=False))]
    encoder.centroids = kmeans(pool.astype(np.float32), k, iters=int(conf["kmeans_iters"]), seed=int(conf["seed"]))

    kept, vlads = [], []
    for i in tqdm(range(len(files)), desc="VLAD", disable=not progress, unit="img"):
        if i in skipped:
            continue
        desc = cache.pop(i) if i in cache else describe(i)
        if desc is None:
            continue
        kept.append(i)
        vlads.append(encoder.aggregate(desc.astype(np.float32)))
    if not kept:
        raise DatasetError(f"{root}: none of the {len(files)} images could be read or has local features")
    raw = torch.stack(vlads)
    if conf["pca_dim"]:
        encoder.fit_whitening(raw, int(conf["pca_dim"]))
    descriptors = encoder.whiten(raw).numpy()
    meta = {
        "method": "vlad-rootsift",
        "root": str(root),
        "conf": conf,
        "num_images": len(kept),
        "num_skipped": len(skipped),
        "skipped": [names[i] for i in sorted(skipped)],
        "vocabulary_images": len(sample),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return GlobalIndex(names=[names[i] for i in kept], descriptors=descriptors, meta=meta, encoder=encoder)


__all__ = ["DEFAULT_CONF", "GlobalIndex", "build_index"]
