"""hloc-compatible HDF5 files of features and matches, written resumably and crash-safely.

**features.h5** — one group per image, named by the image path relative to the image folder
(POSIX ``/`` separators, so ``a/b.jpg`` is the nested group ``a`` / ``b.jpg``), holding

* ``keypoints`` ``(N, 2)`` float32: ``(x, y)`` in pixels of the *original* image, pixel-centre
  convention (the centre of the top-left pixel is ``(0, 0)``; hloc's convention, COLMAP's
  is this plus 0.5),
* ``scores`` ``(N,)`` float32,
* ``descriptors`` ``(D, N)`` float32 (float16 with ``fp16``), L2-normalised columns (hloc layout),
* ``image_size`` ``(2,)`` int32: ``(W, H)`` of the original image.

**matches.h5** — one group per pair, named by :func:`names_to_pair` (hloc's convention), holding
``matches0`` ``(N0,)`` int32 (index into image 1's keypoints, ``-1`` when unmatched),
``matching_scores0`` ``(N0,)`` float32 and, after geometric verification, ``inliers0``
``(N0,)`` bool (``True`` for a match that is a RANSAC inlier) with the pair's attribute
``model`` (``fundamental`` / ``homography`` / ``essential``) and dataset ``model_matrix`` (3x3).

Both files carry their conventions as file attributes (``format``, ``signature``, ...).

**Resume and crash safety** (:class:`PartedWriter`, used for matches.h5; features.h5 is written
once by :class:`~selfdesc.pipeline.featurestore.FeatureStore`): new groups go to small *part* files in the
folder ``.<out name>.parts`` beside the output; a part is written under a temporary name and
renamed when complete (every ``checkpoint_every`` items), so a killed run loses at most the
items of the part in progress. When all items are done, the output and the parts are merged
into a temporary copy that atomically replaces the output. The output file is therefore always
either absent or complete and valid; a rerun skips what is in the output or in complete parts.
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from selfdesc.errors import ConfigError, DatasetError
from selfdesc.io.atomic import atomic_path

FEATURES_FORMAT = "selfdesc-features/1"
MATCHES_FORMAT = "selfdesc-matches/1"

#: file attributes that document the layout (written into every features file)
FEATURES_CONVENTIONS: dict[str, str] = {
    "keypoints": "(N, 2) float32 (x, y) in original-image pixels, pixel-centre convention: the top-left pixel centre is (0, 0) (hloc; COLMAP adds 0.5)",
    "scores": "(N,) float32, higher is better",
    "descriptors": "(D, N), L2-normalised columns (hloc layout)",
    "image_size": "(W, H) int32 of the original image",
    "group_names": "image paths relative to the image folder, '/'-separated",
}

#: file attributes that document the layout (written into every matches file)
MATCHES_CONVENTIONS: dict[str, str] = {
    "pair_names": "hloc names_to_pair: name0 and name1 with '/' replaced by '-', joined by '/'",
    "matches0": "(N0,) int32 index into image 1's keypoints, -1 when unmatched",
    "matching_scores0": "(N0,) float32 descriptor similarity of the match, 0 when unmatched",
    "inliers0": "(N0,) bool, present after geometric verification: True for RANSAC inliers",
}


def names_to_pair(name0: str, name1: str) -> str:
    """hloc's group name of a pair: ``name0/name1`` with ``/`` inside each name replaced by ``-``."""
    return "/".join((name0.replace("/", "-"), name1.replace("/", "-")))


def _leaf_groups(fd: Any, marker: str) -> list[str]:
    """Paths of the groups of ``fd`` that hold a dataset named ``marker``."""
    import h5py

    found: list[str] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset) and name.rsplit("/", 1)[-1] == marker:
            found.append(name.rsplit("/", 1)[0] if "/" in name else "")

    fd.visititems(visit)
    return sorted(found)


def open_h5(path: str | Path, what: str) -> Any:
    """Open an HDF5 file read-only (an ``h5py.File``), or raise a one-line DatasetError naming it."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such {what} file")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DatasetError(f"{path}: not a readable HDF5 {what} file ({msg})") from None


class FeatureFile:
    """Read access to a features.h5 (use as a context manager).

    ``read(name)`` returns ``keypoints (N, 2)``, ``scores (N,)``, ``descriptors (N, D)`` float32
    (transposed back from the file's ``(D, N)``) and ``image_size (W, H)`` as numpy arrays.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.fd = open_h5(self.path, "features")
        self.attrs = dict(self.fd.attrs)
        self._names: list[str] | None = None

    @property
    def names(self) -> list[str]:
        """Image names in the file, sorted."""
        if self._names is None:
            self._names = _leaf_groups(self.fd, "keypoints")
        return self._names

    def read(self, name: str, descriptors: bool = True) -> dict[str, np.ndarray]:
        if name not in self.fd or "keypoints" not in self.fd[name]:
            raise DatasetError(f"{self.path}: no features for image '{name}'")
        g = self.fd[name]
        out = {
            "keypoints": np.asarray(g["keypoints"], np.float32),
            "scores": np.asarray(g["scores"], np.float32),
            "image_size": np.asarray(g["image_size"], np.int64),
        }
        if descriptors:
            out["descriptors"] = np.ascontiguousarray(np.asarray(g["descriptors"], np.float32).T)
        return out

    def close(self) -> None:
        self.fd.close()

    def __enter__(self) -> "FeatureFile":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def feature_group(pred: dict[str, Any], image_size: tuple[int, int], fp16: bool = False) -> dict[str, np.ndarray]:
    """An extractor's prediction -> the datasets of one features.h5 group (descriptors as ``(D, N)``)."""
    desc = np.asarray(pred["descriptors"], np.float32)
    return {
        "keypoints": np.asarray(pred["keypoints"], np.float32).reshape(-1, 2),
        "scores": np.asarray(pred["scores"], np.float32).reshape(-1),
        "descriptors": np.ascontiguousarray(desc.T, dtype=np.float16 if fp16 else np.float32),
        "image_size": np.asarray(image_size, np.int32).reshape(2),
    }


def read_matches(path: str | Path, name0: str, name1: str, verified: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The matches of a pair from a matches.h5 (either order is looked up).

    Returns:
        ``(K, 2)`` int64 index pairs ``(i0, i1)`` into the keypoints of ``name0`` / ``name1``
        and their ``(K,)`` float32 scores; with ``verified`` and ``inliers0`` stored, only
        the inliers.
    """
    with open_h5(path, "matches") as fd:
        pairs, scores, inliers = pair_matches(fd, name0, name1)
    if verified and inliers is not None:
        return pairs[inliers], scores[inliers]
    return pairs, scores


def pair_matches(fd: Any, name0: str, name1: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """All matches of a pair in an open matches.h5 (stored in either order).

    Returns:
        ``(K, 2)`` int64 ``(i0, i1)`` index pairs, ``(K,)`` float32 scores, and the ``(K,)``
        bool inlier mask (``None`` when the pair was not verified).
    """
    key, swapped = names_to_pair(name0, name1), False
    if key not in fd:
        key, swapped = names_to_pair(name1, name0), True
        if key not in fd:
            raise DatasetError(f"{fd.filename}: no matches for pair '{name0} {name1}'")
    g = fd[key]
    m0 = np.asarray(g["matches0"], np.int64)
    i0 = np.nonzero(m0 >= 0)[0]
    pairs = np.stack([i0, m0[i0]], axis=1)
    scores = np.asarray(g["matching_scores0"], np.float32)[i0]
    inliers = np.asarray(g["inliers0"], bool)[i0] if "inliers0" in g else None
    return (pairs[:, ::-1].copy() if swapped else pairs), scores, inliers


def _read_signature(fd: Any, path: Path, fmt: str) -> str:
    if fd.attrs.get("format") != fmt:
        raise DatasetError(f"{path}: not a selfdesc file of format {fmt} (format attribute {fd.attrs.get('format')!r})")
    return str(fd.attrs.get("signature", ""))


class PartedWriter:
    """Resumable, crash-safe writer of an HDF5 file of groups (see the module docstring).

    Args:
        out: the final file.
        fmt: its ``format`` attribute (:data:`FEATURES_FORMAT` or :data:`MATCHES_FORMAT`).
        marker: the dataset whose presence marks a complete group (``keypoints``, ``matches0``).
        signature: settings that must be the same to resume (JSON-serialisable); a different
            one in the output or a part raises :class:`ConfigError`.
        attrs: extra file attributes written at the merge.
        checkpoint_every: groups per part file.
        rank: writer id (one per process of a multi-GPU run); parts are named by it.
    """

    def __init__(
        self,
        out: str | Path,
        fmt: str,
        marker: str,
        signature: dict[str, Any],
        attrs: dict[str, Any] | None = None,
        checkpoint_every: int = 100,
        rank: int = 0,
    ) -> None:
        self.out = Path(out)
        self.fmt, self.marker = fmt, marker
        self.signature = json.dumps(signature, sort_keys=True)
        self.attrs = dict(attrs or {})
        self.every = max(1, int(checkpoint_every))
        self.rank = rank
        self.parts_dir = self.out.parent / f".{self.out.name}.parts"
        self._part: Any = None
        self._part_tmp: Path | None = None
        self._in_part_names: list[str] = []  # the groups of the part in progress
        for stale in self.parts_dir.glob(f"part-r{rank}-*.tmp"):  # a killed run's unfinished part
            stale.unlink()
        self.done: set[str] = set()
        if self.out.exists():
            self.done.update(self._scan(self.out))
        for part in self._parts():
            self.done.update(self._scan(part))

    def _parts(self) -> list[Path]:
        return sorted(self.parts_dir.glob("part-*.h5")) if self.parts_dir.is_dir() else []

    def _scan(self, path: Path) -> list[str]:
        with open_h5(path, "output") as fd:
            found = _read_signature(fd, path, self.fmt)
            if found != self.signature:
                where = f"the unfinished run in {self.parts_dir}" if path.parent == self.parts_dir else str(path)
                raise ConfigError(
                    f"{where} was written with other settings ({found}, now {self.signature}); "
                    f"use another output file or delete {path if path == self.out else self.parts_dir}"
                )
            return _leaf_groups(fd, self.marker)

    def add(self, name: str, datasets: dict[str, np.ndarray], attrs: dict[str, Any] | None = None) -> None:
        """Write the group ``name`` (skipped if already done); checkpoints every ``checkpoint_every``."""
        if name in self.done:
            return
        if self._part is None:
            import h5py

            self.parts_dir.mkdir(parents=True, exist_ok=True)
            self._part_tmp = self.parts_dir / f"part-r{self.rank}-{uuid.uuid4().hex[:12]}.h5.tmp"
            # parts are internal: the newest HDF5 format writes a group ~3x faster (the merged output keeps the default format)
            self._part = h5py.File(self._part_tmp, "w", libver="latest")
            self._part.attrs["format"] = self.fmt
            self._part.attrs["signature"] = self.signature
        g = self._part.create_group(name)
        for key, value in datasets.items():
            g.create_dataset(key, data=value)
        for key, value in (attrs or {}).items():
            g.attrs[key] = value
        self.done.add(name)
        self._in_part_names.append(name)
        if len(self._in_part_names) >= self.every:
            self.checkpoint()

    def checkpoint(self) -> None:
        """Close the part in progress and make it permanent (an atomic rename)."""
        if self._part is None:
            return
        self._part.close()
        assert self._part_tmp is not None
        os.replace(self._part_tmp, self._part_tmp.with_suffix(""))
        self._part, self._part_tmp, self._in_part_names = None, None, []

    def finalize(self) -> bool:
        """Checkpoint, then merge the output and all parts into the output (atomically).

        Call from one process only (rank 0, after the others have checkpointed). Returns
        ``True`` when the output was (re)written.
        """
        self.checkpoint()
        parts = self._parts()
        if self.out.exists() and not parts:
            return False
        import h5py

        with atomic_path(self.out) as tmp:
            if self.out.exists():
                shutil.copyfile(self.out, tmp)
            with h5py.File(tmp, "a") as dst:
                present = set(_leaf_groups(dst, self.marker))
                for part in parts:
                    with h5py.File(part, "r") as src:
                        for name in _leaf_groups(src, self.marker):
                            if name not in present:
                                src.copy(src[name], dst, name=name)
                                present.add(name)
                dst.attrs["format"] = self.fmt
                dst.attrs["signature"] = self.signature
                for key, value in self.attrs.items():
                    dst.attrs[key] = value
        shutil.rmtree(self.parts_dir, ignore_errors=True)
        return True

    def close(self) -> None:
        """Checkpoint what is in progress (use on errors: nothing finished is lost)."""
        self.checkpoint()

    def abort(self) -> None:
        """Discard the part in progress (after a failed write: it may hold an incomplete group)."""
        if self._part is None:
            return
        try:
            self._part.close()
        finally:
            assert self._part_tmp is not None
            self._part_tmp.unlink(missing_ok=True)
            for name in self._in_part_names:
                self.done.discard(name)
            self._part, self._part_tmp, self._in_part_names = None, None, []


def check_names(names: Iterable[str]) -> None:
    """Names must be usable as HDF5 group paths and pair-file tokens."""
    for name in names:
        if not name or any(c.isspace() for c in name) or name.startswith("/") or "//" in name:
            raise DatasetError(f"image name '{name}' cannot be stored (no whitespace, leading '/' or empty parts)")


__all__ = [
    "FEATURES_CONVENTIONS",
    "FEATURES_FORMAT",
    "FeatureFile",
    "MATCHES_CONVENTIONS",
    "MATCHES_FORMAT",
    "PartedWriter",
    "check_names",
    "feature_group",
    "names_to_pair",
    "open_h5",
    "pair_matches",
    "read_matches",
]
