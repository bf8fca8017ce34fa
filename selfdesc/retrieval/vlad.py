"""VLAD global descriptors of RootSIFT features, with a vocabulary learned on the images themselves.

Pipeline (Jegou et al. 2010; Arandjelovic & Zisserman 2013, "All about VLAD"):

1. RootSIFT local descriptors ``(N, 128)`` of an image (:mod:`selfdesc.features.opencv`);
2. a k-means vocabulary ``(K, 128)`` (:func:`kmeans`, k-means++ seeding) trained on a sample;
3. :func:`vlad_aggregate`: for each centroid, the sum of the residuals ``x - c`` of the
   descriptors assigned to it; intra-normalisation (each ``128``-block L2-normalised), signed
   power normalisation ``sign(v) |v| ** power`` (``0.5``: signed square root), global L2;
4. optionally PCA-whitening learned on the VLADs of the same set (:func:`learn_whitening`),
   followed by L2 again.

The result is one unit float32 vector per image (``K * 128`` dims, or ``pca_dim``); cosine
similarity (dot product) ranks similar images.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from selfdesc.config import merge
from selfdesc.errors import ConfigError
from selfdesc.io.image import LoadedImage

#: rows per chunk of a distance matrix (bounds memory for large descriptor sets)
_CHUNK = 65536

ImageLike = str | Path | np.ndarray | LoadedImage


def _sq_distances(x: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """``(N, D)``, ``(K, D)`` -> ``(N, K)`` squared Euclidean distances (clamped at 0)."""
    d = (x * x).sum(1, keepdim=True) - 2.0 * x @ centroids.T + (centroids * centroids).sum(1)[None]
    return d.clamp_(min=0.0)


def assign(x: torch.Tensor, centroids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest centroid of each row: ``(N, D)``, ``(K, D)`` -> indices ``(N,)`` long, squared distances ``(N,)``."""
    idx, dist = [], []
    for start in range(0, max(len(x), 1), _CHUNK):
        d = _sq_distances(x[start : start + _CHUNK], centroids)
        m = d.min(dim=1)
        idx.append(m.indices)
        dist.append(m.values)
    return torch.cat(idx), torch.cat(dist)


def cluster_sums(x: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """Per-cluster sums of the rows of ``x`` ``(N, D)`` with ``labels`` ``(N,)`` in ``[0, k)`` -> ``(k, D)``.

    A one-hot matrix product in chunks: unlike ``index_add_`` it stays fast when the CPU is
    oversubscribed.
    """
    out = x.new_zeros(k, x.shape[1])
    for start in range(0, len(x), _CHUNK):
        onehot = F.one_hot(labels[start : start + _CHUNK], k).to(x.dtype)
        out += onehot.T @ x[start : start + _CHUNK]
    return out


def kmeans_pp_init(x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++ seeding: ``(N, D)`` points -> ``(k, D)`` initial centroids (rows of ``x``)."""
    n = len(x)
    first = int(torch.randint(n, (1,), generator=generator))
    chosen = [first]
    d2 = ((x - x[first]) ** 2).sum(1)
    for _ in range(1, k):
        total = float(d2.sum())
        if total > 0:
            nxt = int(torch.multinomial(d2 / total, 1, generator=generator))
        else:  # fewer distinct points than k: any point
            nxt = int(torch.randint(n, (1,), generator=generator))
        chosen.append(nxt)
        d2 = torch.minimum(d2, ((x - x[nxt]) ** 2).sum(1))
    return x[chosen].clone()


def kmeans(x: torch.Tensor | np.ndarray, k: int, iters: int = 25, seed: int = 0, tol: float = 1e-6) -> torch.Tensor:
    """Lloyd's k-means with k-means++ seeding, deterministic for a given ``seed``.

    Args:
        x: ``(N, D)`` points, ``N >= k``.
        k: number of clusters.
        iters: at most this many Lloyd iterations (stops earlier when no centroid moves by
            more than ``tol`` in squared distance).
        seed: seeds the k-means++ draws.

    Returns:
        ``(k, D)`` float32 centroids. A cluster that becomes empty is re-seeded at the point
        farthest from its centroid.
    """
    x = torch.as_tensor(x, dtype=torch.float32)
    if x.ndim != 2 or len(x) < k or k < 1:
        raise ConfigError(f"k-means: need at least k={k} points of shape (N, D), got {tuple(x.shape)}")
    g = torch.Generator().manual_seed(int(seed))
    centroids = kmeans_pp_init(x, k, g)
    for _ in range(iters):
        labels, dist = assign(x, centroids)
        counts = torch.bincount(labels, minlength=k)
        sums = cluster_sums(x, labels, k)
        new = sums / counts.clamp(min=1)[:, None].to(x.dtype)
        for c in torch.nonzero(counts == 0).flatten().tolist():
            far = int(dist.argmax())
            new[c] = x[far]
            dist[far] = 0.0
        shift = float(((new - centroids) ** 2).sum(1).max())
        centroids = new
        if shift <= tol:
            break
    return centroids


def vlad_aggregate(descriptors: torch.Tensor | np.ndarray, centroids: torch.Tensor, power: float = 0.5) -> torch.Tensor:
    """VLAD of one image: ``(N, D)`` local descriptors, ``(K, D)`` centroids -> ``(K * D,)`` unit vector.

    Residual sums per nearest centroid, intra-normalisation, signed power normalisation
    ``sign(v) |v| ** power`` (``1`` = off), global L2. Invariant to the order of the local
    descriptors. An image without local descriptors gives the zero vector.
    """
    x = torch.as_tensor(descriptors, dtype=torch.float32).reshape(-1, centroids.shape[1])
    k, d = centroids.shape
    if len(x) == 0:
        return torch.zeros(k * d)
    labels, _ = assign(x, centroids)
    v = cluster_sums(x - centroids[labels], labels, k)
    v = F.normalize(v, dim=1)
    v = v.sign() * v.abs().pow(power)
    return F.normalize(v.flatten(), dim=0)


def learn_whitening(x: torch.Tensor | np.ndarray, dim: int, eps: float = 1e-9) -> tuple[torch.Tensor, torch.Tensor]:
    """PCA-whitening learned on ``(N, E)`` vectors: returns ``mean (E,)`` and ``proj (E, dim)``.

    ``(v - mean) @ proj`` has unit variance along the top ``dim`` principal axes of ``x``;
    ``dim`` must be at most ``min(N - 1, E)``. Computed in float64, through the smaller of
    the ``N x N`` Gram matrix and the ``E x E`` covariance.
    """
    x = torch.as_tensor(x).double()
    n, e = x.shape
    if not 1 <= dim <= min(n - 1, e):
        raise ConfigError(f"pca_dim={dim}: must be between 1 and min(images - 1, {e}) = {min(n - 1, e)}")
    mean = x.mean(0)
    xc = x - mean
    if n <= e:
        lam, u = torch.linalg.eigh(xc @ xc.T)
        lam, u = lam.flip(0)[:dim], u.flip(1)[:, :dim]
        vecs = xc.T @ u / lam.clamp(min=eps).sqrt()  # unit eigenvectors of the covariance
    else:
        lam, v = torch.linalg.eigh(xc.T @ xc)
        lam, vecs = lam.flip(0)[:dim], v.flip(1)[:, :dim]
    proj = vecs / (lam.clamp(min=eps) / n).sqrt()
    return mean.float(), proj.float()


class VladEncoder:
    """Images -> unit VLAD vectors with a fixed vocabulary (and optional PCA-whitening).

    Options (``default_conf``): ``max_keypoints`` (RootSIFT budget per image), ``resize_max``
    (longest image side before extraction, ``None`` = full size), ``power`` (signed power
    normalisation exponent).
    """

    default_conf: ClassVar[dict[str, Any]] = {"max_keypoints": 1000, "resize_max": 640, "power": 0.5}

    def __init__(
        self,
        conf: dict[str, Any],
        centroids: torch.Tensor | np.ndarray,
        pca_mean: torch.Tensor | np.ndarray | None = None,
        pca_proj: torch.Tensor | np.ndarray | None = None,
    ) -> None:
        """``centroids`` ``(K, 128)``; ``pca_mean`` ``(K * 128,)`` and ``pca_proj`` ``(K * 128, P)`` or both ``None``."""
        self.conf = merge(self.default_conf, conf, owner="VLAD encoder")
        self.centroids = torch.as_tensor(np.asarray(centroids), dtype=torch.float32)
        self.pca_mean = None if pca_mean is None else torch.as_tensor(np.asarray(pca_mean), dtype=torch.float32)
        self.pca_proj = None if pca_proj is None else torch.as_tensor(np.asarray(pca_proj), dtype=torch.float32)
        self._extractor: Any = None

    @property
    def dim(self) -> int:
        """Length of the final descriptor."""
        return int(self.pca_proj.shape[1]) if self.pca_proj is not None else int(self.centroids.numel())

    def local_descriptors(self, image: ImageLike) -> np.ndarray:
        """RootSIFT descriptors ``(N, 128)`` float32 of an image file, ``H x W [x 3]`` array or LoadedImage.

        Raises:
            ImageError: the file cannot be read.
        """
        if self._extractor is None:
            from selfdesc.features import load_extractor

            self._extractor = load_extractor(
                "rootsift", max_keypoints=self.conf["max_keypoints"], resize_max=self.conf["resize_max"]
            )
        return self._extractor.extract(image)["descriptors"].numpy()

    def aggregate(self, descriptors: np.ndarray | torch.Tensor) -> torch.Tensor:
        """``(N, 128)`` local descriptors -> ``(K * 128,)`` VLAD before whitening."""
        return vlad_aggregate(descriptors, self.centroids, float(self.conf["power"]))

    def fit_whitening(self, vlads: torch.Tensor | np.ndarray, dim: int) -> None:
        """Learn PCA-whitening to ``dim`` dimensions on ``(N, K * 128)`` VLADs."""
        self.pca_mean, self.pca_proj = learn_whitening(vlads, dim)

    def whiten(self, vlads: torch.Tensor | np.ndarray) -> torch.Tensor:
        """``(N, K * 128)`` VLADs -> ``(N, dim)`` unit rows (whitened when whitening is learned)."""
        v = torch.as_tensor(np.asarray(vlads), dtype=torch.float32)
        if self.pca_proj is not None:
            v = F.normalize((v - self.pca_mean) @ self.pca_proj, dim=1)
        return v

    def encode(self, images: Sequence[ImageLike]) -> np.ndarray:
        """Images -> ``(M, dim)`` float32 descriptors (unit rows; zero rows for images without features)."""
        raw = [self.aggregate(self.local_descriptors(im)) for im in images]
        if not raw:
            return np.zeros((0, self.dim), np.float32)
        return self.whiten(torch.stack(raw)).numpy()

    def to_arrays(self) -> dict[str, np.ndarray]:
        """What :meth:`from_arrays` needs, as numpy arrays (keys ``centroids``, optionally ``pca_mean``, ``pca_proj``)."""
        out = {"centroids": self.centroids.numpy()}
        if self.pca_proj is not None:
            out["pca_mean"] = self.pca_mean.numpy()
            out["pca_proj"] = self.pca_proj.numpy()
        return out

    @classmethod
    def from_arrays(cls, conf: dict[str, Any], arrays: dict[str, np.ndarray]) -> "VladEncoder":
        """Rebuild from ``conf`` and :meth:`to_arrays` output."""
        return cls(conf, arrays["centroids"], arrays.get("pca_mean"), arrays.get("pca_proj"))


__all__ = ["VladEncoder", "assign", "cluster_sums", "kmeans", "kmeans_pp_init", "learn_whitening", "vlad_aggregate"]
