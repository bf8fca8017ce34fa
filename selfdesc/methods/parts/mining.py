"""Negative pools for a batch of crop pairs (HNDesc hard-negative mining, spec §2.7-§2.8.4).

A batch holds ``B`` pairs of crops ``(A_b, B_b)`` with dense descriptor maps ``(B, D, S, S)``
(one descriptor per crop pixel), keypoints ``kp_a`` in A and their correspondences ``kp_b``
in B (``(B, N, 2)``, ``(x, y)`` pixel centres, padded, with a validity mask) and the
homography ``H_AB`` mapping A pixels to B pixels. Queries are the descriptors of A at
``kp_a``, positives those of B at ``kp_b``; negatives always come from B crops or from
extra "similar image" crops, never from A (HNDesc's loss is not symmetric).

Candidate negatives of a map are sampled at its keypoints (HNDesc: "positives of the other
points") and/or at ``num_candidates`` random or grid pixels. Pools (``Miner.pool``):

* ``in_pair``: candidates of the query's own B crop farther than ``neg_radius`` px from
  the query's true correspondence ``H_AB(kp_a)`` (HNDesc ``APCriterionWithinPair``, with a
  radius instead of only ``j != i`` so that near-duplicate keypoints are not negatives).
* ``in_batch``: candidates of the B crops of the *other* pairs, excluding every pair that
  shares the query's ``image_ids`` entry (HNDesc ``APCriterion``, the released default).
* ``both``: the union of the two.
* ``gd`` / ``selfgd``: ``in_batch`` plus the candidates of caller-provided descriptor maps
  of "similar images" (``extra_desc``), as HNDesc ``APCriterionInBatchGD`` (spec §2.8.3):
  all extra crops of the batch are negatives for every query, except those whose
  ``extra_image_ids`` equal the query's image. The two names mine identically; they differ
  only in how the caller retrieved the similar images (off-the-shelf global descriptors vs.
  the descriptor network's own), which is not done here.

The ``K`` hardest (most similar) allowed candidates are kept per query, padded by repeating
the weakest one when fewer exist; queries with no allowed candidate at all are dropped.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from selfdesc.errors import ConfigError
from selfdesc.geometry.homography import warp_points_torch
from selfdesc.losses.hardest import select_hardest
from selfdesc.models.sampling import SAMPLING, sample_descriptors

POOLS: dict[str, frozenset[str]] = {
    "in_pair": frozenset({"in_pair"}),
    "in_batch": frozenset({"in_batch"}),
    "both": frozenset({"in_pair", "in_batch"}),
    "gd": frozenset({"in_batch", "extra"}),
    "selfgd": frozenset({"in_batch", "extra"}),
}
LAYOUTS = ("random", "grid")


@dataclass(frozen=True)
class Miner:
    """Hard-negative miner configuration; :meth:`mine` does the work.

    Attributes:
        pool: ``in_pair``, ``in_batch`` (HNDesc released default), ``both``, ``gd`` or ``selfgd``.
        num_negatives: ``K`` hardest negatives kept per query (HNDesc: 20).
        neg_radius: in-pair candidates within this many pixels of the true correspondence
            (inclusive) are not negatives.
        use_keypoints: candidates include the valid keypoints of each map.
        num_candidates: extra candidate pixels per map, on top of the keypoints.
        layout: ``random`` (uniform integer pixels, per map) or ``grid`` (the same
            ``ceil(sqrt(n))^2`` evenly spaced pixels on every map).
        sampling: ``bilinear`` or ``nearest`` (see :func:`sample_descriptors`).
        min_keypoints: pairs with fewer valid keypoints give no queries (HNDesc drops crops
            with <= 1).
    """

    pool: str = "in_batch"
    num_negatives: int = 20
    neg_radius: float = 5.0
    use_keypoints: bool = True
    num_candidates: int = 0
    layout: str = "random"
    sampling: str = "bilinear"
    min_keypoints: int = 2

    def __post_init__(self) -> None:
        if self.pool not in POOLS:
            raise ConfigError(f"Miner: unknown pool '{self.pool}' (known: {', '.join(POOLS)})")
        if self.sampling not in SAMPLING:
            raise ConfigError(f"Miner: unknown sampling '{self.sampling}' (known: {', '.join(SAMPLING)})")
        if self.layout not in LAYOUTS:
            raise ConfigError(f"Miner: unknown layout '{self.layout}' (known: {', '.join(LAYOUTS)})")
        if self.num_negatives < 1 or self.neg_radius < 0 or self.num_candidates < 0:
            raise ConfigError(f"Miner: need num_negatives >= 1, neg_radius >= 0, num_candidates >= 0, got {self}")
        if not self.use_keypoints and self.num_candidates == 0:
            raise ConfigError("Miner: no candidates (use_keypoints is False and num_candidates is 0)")

    def candidates(
        self,
        num_maps: int,
        size: tuple[int, int],
        keypoints: torch.Tensor | None = None,
        valid: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Candidate positions of ``num_maps`` maps of ``size = (H, W)``.

        Args:
            keypoints: optional ``(num_maps, N, 2)`` keypoints (used when ``use_keypoints``).
            valid: ``(num_maps, N)`` bool validity of ``keypoints`` (``None`` = all valid).
            generator: random generator for the ``random`` layout.

        Returns:
            ``positions`` ``(num_maps, P, 2)`` float and ``valid`` ``(num_maps, P)`` bool.
        """
        H, W = size
        positions, masks = [], []
        if self.use_keypoints and keypoints is not None:
            positions.append(keypoints.float())
            all_valid = torch.ones(keypoints.shape[:2], dtype=torch.bool, device=device)
            masks.append(all_valid if valid is None else valid.bool())
        if self.num_candidates:
            if self.layout == "grid":
                g = math.ceil(math.sqrt(self.num_candidates))
                ys = torch.linspace(0, H - 1, g).round()
                ys, xs = torch.meshgrid(ys, torch.linspace(0, W - 1, g).round(), indexing="ij")
                extra = torch.stack([xs, ys], dim=-1).reshape(1, -1, 2).expand(num_maps, -1, -1)
            else:
                shape = (num_maps, self.num_candidates)
                xs = torch.randint(0, W, shape, generator=generator)
                ys = torch.randint(0, H, shape, generator=generator)
                extra = torch.stack([xs, ys], dim=-1).float()
            positions.append(extra.to(device))
            masks.append(torch.ones(extra.shape[:2], dtype=torch.bool, device=device))
        if not positions:
            raise ConfigError("Miner: no candidates (use_keypoints needs keypoints, or set num_candidates > 0)")
        return torch.cat(positions, dim=1), torch.cat(masks, dim=1)

    def mine(
        self,
        desc_a: torch.Tensor,
        desc_b: torch.Tensor,
        kp_a: torch.Tensor,
        kp_b: torch.Tensor,
        valid: torch.Tensor,
        H_ab: torch.Tensor,
        image_ids: torch.Tensor | None = None,
        extra_desc: torch.Tensor | None = None,
        extra_keypoints: torch.Tensor | None = None,
        extra_valid: torch.Tensor | None = None,
        extra_image_ids: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        stride: int = 1,
    ) -> dict[str, torch.Tensor]:
        """Queries, positives and the ``K`` hardest negatives of a batch of pairs.

        Args:
            desc_a, desc_b: ``(B, D, S / stride, S / stride)`` dense descriptor maps of crops A and B.
            kp_a, kp_b: ``(B, N, 2)`` corresponding ``(x, y)`` keypoints in A and B.
            valid: ``(B, N)`` bool, non-padding keypoints.
            H_ab: ``(B, 3, 3)`` homographies mapping A pixels to B pixels.
            image_ids: ``(B,)`` source image of each pair (``None``: all different).
            extra_desc: ``(E, D, S' / stride, S' / stride)`` maps of similar-image crops (pools
                ``gd``/``selfgd``); their descriptors carry gradient like the B crops'.
            extra_keypoints, extra_valid: optional ``(E, N', 2)`` / ``(E, N')`` keypoints of
                those crops (candidates when ``use_keypoints``).
            extra_image_ids: optional ``(E,)`` source images of the extra crops; an extra crop
                from the query's own image is not a negative.
            generator: random generator for ``random`` candidates.
            stride: crop pixels per map cell (e.g. 4 for the CAPS fine map); every position
                (keypoints, candidates, ``neg_xy``) is in crop pixels, the candidate area of a
                map is ``stride`` times its size (see :func:`sample_descriptors`).

        Returns:
            With ``M`` kept queries: ``query`` / ``positive`` ``(M, D)``, ``negatives``
            ``(M, K, D)`` (differentiable w.r.t. the maps), ``neg_xy`` ``(M, K, 2)`` positions
            in their map, ``neg_map`` ``(M, K)`` map index (``0..B-1`` = B crops,
            ``B..B+E-1`` = extra crops), ``neg_count`` ``(M,)`` distinct negatives before
            padding, ``query_pair`` / ``query_index`` ``(M,)`` pair and keypoint index,
            ``query_xy``, ``positive_xy``, ``target_xy`` ``(M, 2)`` (``kp_a``, ``kp_b``,
            ``H_ab(kp_a)``).

        Raises:
            ConfigError: a ``gd``/``selfgd`` pool without ``extra_desc``.
        """
        parts = POOLS[self.pool]
        if "extra" in parts and extra_desc is None:
            raise ConfigError(f"Miner: pool '{self.pool}' needs extra_desc (descriptor maps of similar images)")
        B, _, h, w = desc_b.shape
        H, W = h * stride, w * stride
        device = desc_b.device
        valid = valid.bool()
        ids = torch.arange(B, device=device) if image_ids is None else image_ids.to(device)

        qmask = valid & (valid.sum(dim=1) >= self.min_keypoints)[:, None]
        qb, qn = qmask.nonzero(as_tuple=True)
        query = sample_descriptors(desc_a, kp_a, self.sampling, stride=stride)[qb, qn]
        positive = sample_descriptors(desc_b, kp_b, self.sampling, stride=stride)[qb, qn]
        target = warp_points_torch(H_ab.to(kp_a.dtype), kp_a)[qb, qn]

        cand_xy, cand_valid = self.candidates(B, (H, W), kp_b, valid, generator, device)
        allowed = torch.zeros(len(qb), B, cand_xy.shape[1], dtype=torch.bool, device=device)
        if "in_pair" in parts:
            own = torch.arange(B, device=device)[None] == qb[:, None]
            far = (cand_xy[qb] - target[:, None]).norm(dim=-1) > self.neg_radius
            allowed |= own[:, :, None] & far[:, None, :]
        if "in_batch" in parts:
            allowed |= (ids[None] != ids[qb][:, None])[:, :, None]
        allowed &= cand_valid[None]
        pool_desc = [sample_descriptors(desc_b, cand_xy, self.sampling, stride=stride).flatten(0, 1)]
        pool_xy = [cand_xy.flatten(0, 1)]
        pool_map = [torch.arange(B, device=device).repeat_interleave(cand_xy.shape[1])]
        pool_allowed = [allowed.flatten(1)]

        if "extra" in parts:
            E, _, he, we = extra_desc.shape
            ext_xy, ext_valid = self.candidates(E, (he * stride, we * stride), extra_keypoints, extra_valid, generator, device)
            ext_allowed = ext_valid[None].expand(len(qb), -1, -1)
            if extra_image_ids is not None:
                other = extra_image_ids.to(device)[None] != ids[qb][:, None]
                ext_allowed = ext_allowed & other[:, :, None]
            pool_desc.append(sample_descriptors(extra_desc, ext_xy, self.sampling, stride=stride).flatten(0, 1))
            pool_xy.append(ext_xy.flatten(0, 1))
            pool_map.append(B + torch.arange(E, device=device).repeat_interleave(ext_xy.shape[1]))
            pool_allowed.append(ext_allowed.flatten(1))

        pool = torch.cat(pool_desc)
        with torch.no_grad():
            index, count = select_hardest(query @ pool.T, torch.cat(pool_allowed, dim=1), self.num_negatives)
        keep = count > 0
        index = index[keep]
        qb, qn = qb[keep], qn[keep]
        return {
            "query": query[keep],
            "positive": positive[keep],
            "negatives": pool[index],
            "neg_xy": torch.cat(pool_xy)[index],
            "neg_map": torch.cat(pool_map)[index],
            "neg_count": count[keep],
            "query_pair": qb,
            "query_index": qn,
            "query_xy": kp_a[qb, qn],
            "positive_xy": kp_b[qb, qn],
            "target_xy": target[keep],
        }
