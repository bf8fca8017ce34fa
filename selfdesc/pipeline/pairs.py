"""Image pairs to match: exhaustive, sequential (video-like order) or by global-descriptor retrieval.

Pair files use hloc's format: one pair ``name0 name1`` per line (image names relative to the
image folder, no whitespace inside a name); lines starting with ``#`` are comments. Every pair is unordered
and listed once.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from selfdesc.errors import ConfigError, DatasetError
from selfdesc.io.atomic import write_text_atomic

MODES = ("exhaustive", "sequential", "retrieval")

Pair = tuple[str, str]


def unique_pairs(pairs: Iterable[Pair]) -> list[Pair]:
    """Drop self-pairs and repeats (``(a, b)`` and ``(b, a)`` count once); first occurrence order."""
    seen: set[frozenset[str]] = set()
    out: list[Pair] = []
    for a, b in pairs:
        key = frozenset((a, b))
        if a != b and key not in seen:
            seen.add(key)
            out.append((a, b))
    return out


def exhaustive_pairs(names: Sequence[str]) -> list[Pair]:
    """Every unordered pair ``(names[i], names[j])``, ``i < j``: ``N (N - 1) / 2`` pairs."""
    return [(names[i], names[j]) for i in range(len(names)) for j in range(i + 1, len(names))]


def sequential_pairs(names: Sequence[str], window: int) -> list[Pair]:
    """Each image with the next ``window`` images in the given order."""
    if window < 1:
        raise ConfigError(f"--window must be at least 1, got {window}")
    return [(names[i], names[j]) for i in range(len(names)) for j in range(i + 1, min(len(names), i + 1 + window))]


def retrieval_pairs(names: Sequence[str], index_names: Sequence[str], neighbours: np.ndarray, restrict: bool = True) -> list[Pair]:
    """Each image with its retrieved neighbours.

    Args:
        names: the images to pair (those with features).
        index_names: the global index's names; ``neighbours`` ``(N_index, k)`` indexes into them.
        restrict: drop index images not in ``names``.
    """
    wanted = set(names)
    pairs = []
    for i, row in enumerate(np.asarray(neighbours, np.int64)):
        a = index_names[i]
        for j in row:
            b = index_names[int(j)]
            if not restrict or (a in wanted and b in wanted):
                pairs.append((a, b))
    return unique_pairs(pairs)


def make_pairs(
    names: Sequence[str],
    mode: str,
    window: int = 5,
    num_neighbours: int = 10,
    index: "object | None" = None,
) -> list[Pair]:
    """Pairs of ``names`` by ``mode`` (:data:`MODES`); retrieval needs a :class:`~selfdesc.retrieval.GlobalIndex`."""
    if mode == "exhaustive":
        return exhaustive_pairs(names)
    if mode == "sequential":
        return sequential_pairs(names, window)
    if mode == "retrieval":
        if index is None:
            raise ConfigError("--mode retrieval needs a global index (--index FILE, or --images DIR to build one)")
        if num_neighbours < 1:
            raise ConfigError(f"--num-neighbours must be at least 1, got {num_neighbours}")
        missing = sorted(set(names) - set(index.names))  # type: ignore[attr-defined]
        if missing:
            raise DatasetError(f"global index has no entry for {len(missing)} image(s), e.g. '{missing[0]}'")
        return retrieval_pairs(names, index.names, index.neighbours(num_neighbours))  # type: ignore[attr-defined]
    raise ConfigError(f"unknown pair mode '{mode}' (known: {', '.join(MODES)})")


def write_pairs(path: str | Path, pairs: Sequence[Pair]) -> Path:
    """Write a pair file atomically."""
    for pair in pairs:
        if any(not n or any(c.isspace() for c in n) for n in pair):
            raise DatasetError(f"{path}: image names in pair files cannot contain whitespace: {pair}")
    return write_text_atomic(path, "".join(f"{a} {b}\n" for a, b in pairs))


def read_pairs(path: str | Path) -> list[Pair]:
    """Read a pair file (extra columns after the two names are ignored, as in hloc).

    Raises:
        DatasetError: missing file, or a line without two names (naming the line).
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such pair file")
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise DatasetError(f"{path}: not a text pair file (expected lines 'name0 name1')") from None
    pairs = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) < 2:
            raise DatasetError(f"{path}:{lineno}: expected 'name0 name1', got '{line}'")
        pairs.append((parts[0], parts[1]))
    return pairs


__all__ = ["MODES", "exhaustive_pairs", "make_pairs", "read_pairs", "retrieval_pairs", "sequential_pairs", "unique_pairs", "write_pairs"]
