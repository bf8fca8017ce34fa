"""Read and write D2-Net HPatches result caches (``.npy``), so our runs plot next to published ones.

Layout (d2-net ``hpatches_sequences`` notebook; read with ``np.load(path, allow_pickle=True)``)::

    (i_err, v_err, [seq_type, n_feats, n_matches])                          # D2-Net
    (i_err, v_err, i_err_homo, v_err_homo, [seq_type, n_feats, n_matches])  # ALIKE hseq/eval.py

* ``i_err`` / ``v_err``: dict threshold (int px, 1..15 in D2-Net; 1..5 in recent ALIKE
  caches) -> **sum over the pairs of the split** of the per-pair MMA at that threshold.
* ``i_err_homo`` / ``v_err_homo``: same keys -> number of pairs whose homography corner error is
  ``<= t`` (ALIKE's MHA).
* ``seq_type``: ``(P,)`` str, ``"i"`` or ``"v"`` per pair; ``n_matches``: ``(P,)`` #MNN matches
  per pair; ``n_feats``: #keypoints per *image*, sequence by sequence: the reference image, then
  the target image of each of the sequence's pairs (HPatches: 6 images for 5 pairs).

The notebook divides by ``n_i * 5`` / ``n_v * 5`` with ``n_i = 52``, ``n_v = 56`` hard-coded;
here the pair counts come from ``seq_type`` (same numbers on the official 108-sequence split,
checked with ``expect_official=True``).
"""
from __future__ import annotations

import pickle
from itertools import groupby
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from selfdesc.errors import DatasetError
from selfdesc.eval.aggregate import NAMED_SPLITS, PairRecord, pair_sum, threshold_key
from selfdesc.eval.homography import HOMOGRAPHY_THRESHOLDS, homography_correct
from selfdesc.eval.mma import MMA_THRESHOLDS, EvalAccumulator, pair_mma
from selfdesc.io.atomic import atomic_path

#: Sequences per split in the official D2-Net HPatches subset (108 of 116 sequences).
OFFICIAL_SEQUENCES = {"i": 52, "v": 56}
#: Pairs ``(1, k), k = 2..6`` per HPatches sequence.
PAIRS_PER_SEQUENCE = 5
#: Thresholds stored in the caches we write (as D2-Net: 1..15 px).
CACHE_THRESHOLDS = tuple(range(1, 16))


def _split_tables(tables: list[Any], path: Path, name: str, counts: dict[str, int]) -> dict[str, dict[float, float]]:
    """``{"i": {t: sum}, "v": {t: sum}}`` from the cache's ``(i_table, v_table)``, validated."""
    out = {}
    for split, table in zip(NAMED_SPLITS, tables):
        if not isinstance(table, dict):
            raise DatasetError(f"{path}: {split}_{name} must be a dict threshold -> value, got {type(table).__name__}")
        out[split] = {float(k): float(v) for k, v in table.items()}
        if any(not 0 <= v <= counts[split] + 1e-6 for v in out[split].values()):
            raise DatasetError(f"{path}: {split}_{name} values must be per-pair sums between 0 and {counts[split]}")
    return out


def _rates(
    sums: dict[str, dict[float, float]], splits: tuple[str, ...], counts: dict[str, int], thresholds: Iterable[float]
) -> dict[str, float]:
    """Pair-weighted rate over ``splits`` at each threshold stored for all of them."""
    n = sum(counts[s] for s in splits)
    return {
        threshold_key(t): sum(sums[s][float(t)] for s in splits) / n
        for t in thresholds
        if all(float(t) in sums[s] for s in splits)
    }


def _image_splits(seq_type: np.ndarray, n_images: int, path: Path) -> np.ndarray:
    """Split of every entry of ``n_feats`` from the sequence layout (1 reference + k targets)."""
    n_pairs = len(seq_type)
    n_sequences = n_images - n_pairs
    if n_sequences <= 0 or n_pairs % n_sequences:
        raise DatasetError(f"{path}: {n_images} feature counts for {n_pairs} pairs is not a sequence layout")
    blocks = seq_type.reshape(n_sequences, n_pairs // n_sequences)
    if np.any(blocks != blocks[:, :1]):
        raise DatasetError(f"{path}: a sequence mixes 'i' and 'v' pairs")
    return np.repeat(blocks[:, 0], n_pairs // n_sequences + 1)


def _is_stats(item: Any) -> bool:
    return isinstance(item, (list, tuple)) and len(item) == 3


def _load(path: Path) -> tuple[list[Any], np.ndarray, np.ndarray, np.ndarray]:
    if not path.is_file():
        raise DatasetError(f"{path}: no such D2-Net cache file")
    try:
        data = np.load(path, allow_pickle=True)
    except (OSError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        raise DatasetError(f"{path}: not a readable .npy file ({exc})") from exc
    if data.dtype != object or data.ndim != 1 or len(data) not in (3, 5) or not _is_stats(data[-1]):
        raise DatasetError(f"{path}: not a D2-Net cache (expected (i_err, v_err[, i_homo, v_homo], stats))")
    seq_type, n_feats, n_matches = (np.asarray(x) for x in data[-1])
    seq_type = seq_type.astype(str)
    if len(n_matches) != len(seq_type) or not set(seq_type) <= set(NAMED_SPLITS) or len(seq_type) == 0:
        raise DatasetError(f"{path}: seq_type must list 'i'/'v' for each of the n_matches pairs")
    return list(data[:-1]), seq_type, n_feats.astype(np.float64), n_matches.astype(np.float64)


def read_d2net_cache(
    path: str | Path,
    thresholds: Iterable[float] = MMA_THRESHOLDS,
    homography_thresholds: Iterable[float] = HOMOGRAPHY_THRESHOLDS,
    expect_official: bool = False,
) -> dict[str, dict[str, Any]]:
    """Summary of a D2-Net cache, in the structure of :meth:`EvalAccumulator.summary`.

    ``MMA_split(t) = err_split[t] / #pairs_split``; ``overall = (err_i[t] + err_v[t]) / #pairs``
    (pair-weighted, as the notebook). Thresholds absent from the cache are left out (recent
    ALIKE caches stop at 5 px). ``homography_accuracy`` is present for ALIKE 5-tuples only.

    Args:
        path: the ``.npy`` file.
        thresholds: MMA thresholds to report; homography_thresholds: the same for MHA.
        expect_official: require the official split (52 i + 56 v sequences, 5 pairs each).

    Raises:
        DatasetError: missing/unreadable file, unexpected layout, or (with
            ``expect_official``) pair counts other than 260 i / 280 v.
    """
    path = Path(path)
    tables, seq_type, n_feats, n_matches = _load(path)
    counts = {s: int(np.sum(seq_type == s)) for s in NAMED_SPLITS}
    official = {s: n * PAIRS_PER_SEQUENCE for s, n in OFFICIAL_SEQUENCES.items()}
    if expect_official and counts != official:
        raise DatasetError(f"{path}: pair counts {counts} are not the official HPatches split {official}")
    mma_sums = _split_tables(tables[:2], path, "err", counts)
    homography_sums = _split_tables(tables[2:], path, "err_homo", counts) if len(tables) == 4 else None
    image_split = _image_splits(seq_type, len(n_feats), path)

    out: dict[str, dict[str, Any]] = {}
    present = tuple(s for s in NAMED_SPLITS if counts[s])
    for split, members in [("overall", present)] + [(s, (s,)) for s in present]:
        entry: dict[str, Any] = {"mma": _rates(mma_sums, members, counts, thresholds)}
        if homography_sums is not None:
            entry["homography_accuracy"] = _rates(homography_sums, members, counts, homography_thresholds)
        entry["num_features"] = float(np.mean(n_feats[np.isin(image_split, members)]))
        entry["num_matches"] = float(np.mean(n_matches[np.isin(seq_type, members)]))
        entry["num_pairs"] = sum(counts[s] for s in members)
        out[split] = entry
    return out


def _sequences(records: list[PairRecord]) -> list[list[PairRecord]]:
    """Consecutive pairs sharing their image 0 (same split), if all such groups have one size.

    Otherwise every pair is its own sequence (its image 0 then counts once per pair in
    ``n_feats``).
    """
    groups = [
        list(g) for _, g in groupby(records, key=lambda r: (r.split, r.image_ids[0]) if r.image_ids else id(r))
    ]
    if len({len(g) for g in groups}) == 1:
        return groups
    return [[r] for r in records]


def write_d2net_cache(
    path: str | Path,
    accumulator: EvalAccumulator,
    thresholds: Iterable[float] = CACHE_THRESHOLDS,
    with_homography: bool = False,
) -> Path:
    """Write ``accumulator``'s pairs as a D2-Net cache (atomically).

    Args:
        path: output ``.npy`` file.
        accumulator: pairs labelled ``"i"`` or ``"v"``. Pairs recorded consecutively with the
            same ``image_ids[0]`` form a sequence (HPatches: 5 pairs per reference image).
        thresholds: integer px thresholds to store (D2-Net: 1..15).
        with_homography: write ALIKE's 5-tuple with homography counts (the D2-Net notebook
            unpacks 3-tuples only, so the default is the plain D2-Net layout).

    Returns:
        ``path``. :func:`read_d2net_cache` gives back ``accumulator.summary()`` exactly when
        shared images are the image 0 of equally long runs of consecutive pairs.

    Raises:
        DatasetError: a pair's split is not ``"i"``/``"v"`` (the format has no other split).
        ValueError: no pairs, or ``with_homography`` without homography errors.
    """
    path = Path(path)
    records = accumulator.records
    if not records:
        raise ValueError("no pairs to write")
    other = sorted({r.split for r in records} - set(NAMED_SPLITS))
    if other:
        raise DatasetError(f"{path}: a D2-Net cache holds only 'i'/'v' pairs, got split(s) {', '.join(other)}")
    if with_homography and any(r.homography_error is None for r in records):
        raise ValueError("with_homography=True needs a homography error for every pair")
    thresholds = list(thresholds)
    if any(float(t) != int(t) for t in thresholds):
        raise ValueError(f"D2-Net caches key thresholds by integer px, got {thresholds}")
    thresholds = [int(t) for t in thresholds]

    def mma(r: PairRecord) -> np.ndarray:
        return pair_mma(r.errors, thresholds)

    def correct(r: PairRecord) -> np.ndarray:
        return homography_correct(r.homography_error, thresholds)

    per_pair = [mma, correct] if with_homography else [mma]
    tables = [
        dict(zip(thresholds, pair_sum([r for r in records if r.split == s], fn, len(thresholds)).tolist()))
        for fn in per_pair
        for s in NAMED_SPLITS
    ]
    n_feats = [n for seq in _sequences(records) for n in [seq[0].num_features[0]] + [r.num_features[1] for r in seq]]
    stats = [
        np.array([r.split for r in records]),
        np.array(n_feats, np.int64),
        np.array([r.num_matches for r in records], np.int64),
    ]
    data = np.empty(len(tables) + 1, dtype=object)
    for i, item in enumerate(tables + [stats]):
        data[i] = item
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, data, allow_pickle=True)
    return path
