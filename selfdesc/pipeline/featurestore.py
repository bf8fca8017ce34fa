"""The writer of features.h5: every byte written once, resumable after a kill, replaced atomically.

Each process (rank) writes a *run file* ``.<out name>.parts/run-r<rank>-<id>.h5``, an HDF5 file
that becomes the output. Per image, one thread creates the group and its four datasets
(HDF5 metadata only, contiguous layout, space allocated at creation) and a small pool of
threads writes the raw bytes of the datasets straight into the file at the datasets' offsets
(``os.pwrite`` releases the GIL, so bytes are written in parallel; HDF5 never writes raw data
of this file, so no HDF5 cache can overwrite them). Once an image's bytes are written, a line
``{"name", "datasets": {key: [offset, shape, dtype]}}`` is appended to the run's *journal*
(``run-....journal``, first line: format and signature).

* **Finish**: the run file is closed (HDF5 writes its metadata), rank 0 adds the images of the
  other ranks' journals, sets the file attributes and renames it over the output. An existing
  output is the starting point of rank 0's run file (a kernel-side file copy, no HDF5 work).
* **Kill**: the output is untouched; a run file of a killed process may be an invalid HDF5
  file, but its journal says where each finished image's bytes are. A rerun counts those
  images as done and, when it finishes, copies their bytes from the old run file into its own
  (``os.pread`` at the recorded offsets; the old file is never opened as HDF5), then deletes
  the old run. A journal line is written only after its image's bytes are in the file (in the
  kernel's page cache: safe against a killed process, not against a power failure).
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from selfdesc.errors import ConfigError
from selfdesc.pipeline.h5io import FEATURES_FORMAT, _leaf_groups, _read_signature, open_h5

#: HDF5 format of the output: readable by HDF5 >= 1.10 (h5py >= 2.7, 2017), cheaper metadata than the oldest format
LIBVER = ("v110", "v110")


def _journal_lines(path: Path) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The header and the complete image lines of a journal (a torn last line is ignored)."""
    header, images = None, []
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            break
        if header is None:
            header = entry
        else:
            images.append(entry)
    return header, images


class FeatureStore:
    """Resumable single-copy writer of a features.h5 (see the module docstring).

    Args:
        out: the final file.
        signature: settings that must be the same to resume (JSON-serialisable).
        attrs: file attributes written when finishing.
        rank: writer id (one per process of a multi-GPU run).
        threads: threads writing raw bytes.
        checkpoint_every: images between journal writes, at most (each :meth:`write` call ends with one).

    ``done``: the images already in the output or in a journal (skip them).
    """

    def __init__(
        self,
        out: str | Path,
        signature: dict[str, Any],
        attrs: dict[str, Any] | None = None,
        rank: int = 0,
        threads: int = 4,
        checkpoint_every: int = 100,
    ) -> None:
        self.out = Path(out)
        self.signature = json.dumps(signature, sort_keys=True)
        self.attrs = dict(attrs or {})
        self.rank = rank
        self.threads = max(1, threads)
        self.every = max(1, int(checkpoint_every))
        self.parts_dir = self.out.parent / f".{self.out.name}.parts"
        self.done: set[str] = set()
        self._out_names: set[str] = set()
        if self.out.exists():
            with open_h5(self.out, "output") as fd:
                self._check(_read_signature(fd, self.out, FEATURES_FORMAT), self.out)
                self._out_names.update(_leaf_groups(fd, "keypoints"))
        self.done.update(self._out_names)
        for journal in self._journals():
            header, images = _journal_lines(journal)
            self._check(str((header or {}).get("signature")), journal)
            self.done.update(entry["name"] for entry in images)
        self._in_file: set[str] = set()  # in this run's file: the output's (rank 0 starts from a copy) and those written
        self._h5: Any = None
        self._fd: int | None = None
        self._journal: int | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._plists: tuple[Any, Any] | None = None  # dataset and link creation property lists (h5py)
        self._types: dict[np.dtype, Any] = {}  # HDF5 types by numpy dtype
        self.path: Path | None = None

    def _journals(self) -> list[Path]:
        """The journals of unfinished runs (one whose run file is gone was renamed over the output
        just before a kill: its images are in the output)."""
        if not self.parts_dir.is_dir():
            return []
        return sorted(j for j in self.parts_dir.glob("run-*.journal") if j.with_suffix(".h5").is_file())

    def _check(self, found: str, where: Path) -> None:
        if found != self.signature:
            what = f"the unfinished run in {self.parts_dir}" if where.parent == self.parts_dir else str(where)
            raise ConfigError(
                f"{what} was written with other settings ({found}, now {self.signature}); "
                f"use another output file or delete {where if where == self.out else self.parts_dir}"
            )

    def _open(self) -> None:
        """Start this run's file, or reopen it after :meth:`close`."""
        import h5py

        new = self.path is None
        if new:
            self.parts_dir.mkdir(parents=True, exist_ok=True)
            self.path = self.parts_dir / f"run-r{self.rank}-{uuid.uuid4().hex[:12]}.h5"
            if self.rank == 0 and self.out.exists():
                shutil.copyfile(self.out, self.path)
                self._in_file = set(self._out_names)
        assert self.path is not None
        self._h5 = h5py.File(self.path, "a" if self.path.exists() else "w", libver=LIBVER)
        self._h5.attrs["format"] = FEATURES_FORMAT
        self._h5.attrs["signature"] = self.signature
        self._fd = os.open(self.path, os.O_WRONLY)
        self._journal = os.open(self.path.with_suffix(".journal"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if new:
            os.write(self._journal, (json.dumps({"format": FEATURES_FORMAT, "signature": self.signature}) + "\n").encode())
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="features-bytes")

    def _create(self, name: str, arrays: dict[str, np.ndarray]) -> tuple[dict[str, list[Any]], list[tuple[int, np.ndarray]]]:
        """Group ``name`` (and its missing parents) with empty datasets shaped like ``arrays``:
        the journal entry and the byte writes to do. Low-level h5py calls with property lists and
        types made once: this runs once per image in the writer thread, holding the GIL."""
        import h5py

        if self._plists is None:
            dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            dcpl.set_layout(h5py.h5d.CONTIGUOUS)
            dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
            dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
            lcpl = h5py.h5p.create(h5py.h5p.LINK_CREATE)
            lcpl.set_create_intermediate_group(True)
            self._plists = (dcpl, lcpl)
        dcpl, lcpl = self._plists
        group = h5py.h5g.create(self._h5.id, name.encode(), lcpl=lcpl)
        entry, writes = {}, []
        for key, value in arrays.items():
            if value.dtype not in self._types:
                self._types[value.dtype] = h5py.h5t.py_create(value.dtype)
            ds = h5py.h5d.create(group, key.encode(), self._types[value.dtype], h5py.h5s.create_simple(value.shape), dcpl=dcpl)
            offset = ds.get_offset()
            entry[key] = [offset, list(value.shape), value.dtype.str]
            if value.nbytes:
                writes.append((offset, value))
        return entry, writes

    def _pwrite(self, offset: int, value: np.ndarray) -> None:
        assert self._fd is not None
        view = memoryview(np.ascontiguousarray(value)).cast("B")
        while view:
            n = os.pwrite(self._fd, view, offset)
            view, offset = view[n:], offset + n

    def _pwrite_all(self, writes: list[tuple[int, np.ndarray]]) -> None:
        """One image's datasets (one task per image: fewer tasks for the writer thread to hand out)."""
        for offset, value in writes:
            self._pwrite(offset, value)

    def write(self, items: Iterable[tuple[str, dict[str, np.ndarray]]]) -> None:
        """Write images ``(name, datasets)`` (``keypoints`` (N, 2), ``scores`` (N,),
        ``descriptors`` (D, N), ``image_size`` (2,)); those in the file are skipped. When this
        returns, they are in the journal."""
        if self._h5 is None:
            self._open()
        assert self._pool is not None
        entries: list[dict[str, Any]] = []
        futures: list[Any] = []
        for name, arrays in items:
            if name in self._in_file:
                continue
            entry, writes = self._create(name, arrays)
            entries.append({"name": name, "datasets": entry})
            futures.append(self._pool.submit(self._pwrite_all, writes))
            if len(entries) >= self.every:
                self._checkpoint(entries, futures)
                entries, futures = [], []
        self._checkpoint(entries, futures)

    def _checkpoint(self, entries: list[dict[str, Any]], futures: list[Any]) -> None:
        """Wait for the bytes of ``entries``, then journal them."""
        for future in futures:
            future.result()
        if entries:
            assert self._journal is not None
            os.write(self._journal, "".join(json.dumps(e) + "\n" for e in entries).encode())
            self._in_file.update(e["name"] for e in entries)
            self.done.update(e["name"] for e in entries)

    def close(self) -> None:
        """Close the run file (it keeps its journal: a rerun or :meth:`finalize` uses it)."""
        if self._pool is not None:
            self._pool.shutdown()
        for fd in (self._fd, self._journal):
            if fd is not None:
                os.close(fd)
        if self._h5 is not None:
            self._h5.close()
        self._h5, self._fd, self._journal, self._pool = None, None, None, None

    def _adopt(self, journal: Path) -> None:
        """Copy the images of another run (its journal and run file) into this run."""
        _, images = _journal_lines(journal)
        source = os.open(journal.with_suffix(".h5"), os.O_RDONLY)
        try:
            for entry in images:
                arrays = {}
                for key, (offset, shape, dtype) in entry["datasets"].items():
                    dt = np.dtype(dtype)
                    nbytes = int(np.prod(shape)) * dt.itemsize
                    data = os.pread(source, nbytes, offset) if nbytes else b""
                    if len(data) != nbytes:
                        raise OSError(f"{journal.with_suffix('.h5')}: truncated")
                    arrays[key] = np.frombuffer(data, dt).reshape(shape)
                self.write([(entry["name"], arrays)])
        finally:
            os.close(source)

    def finalize(self) -> bool:
        """Finish: add the other runs' images, set the attributes, replace the output atomically.

        Call from one process only (rank 0, after the others have closed). Returns ``True`` when
        the output was (re)written.
        """
        own = self.path.with_suffix(".journal") if self.path is not None else None
        others = [j for j in self._journals() if j != own]
        if self.path is None and not others:
            shutil.rmtree(self.parts_dir, ignore_errors=True)
            return False
        if self._h5 is None:
            self._open()
        for journal in others:
            self._adopt(journal)
        for key, value in self.attrs.items():
            self._h5.attrs[key] = value
        path = self.path
        self.close()
        assert path is not None
        os.replace(path, self.out)
        shutil.rmtree(self.parts_dir, ignore_errors=True)
        return True


__all__ = ["FeatureStore", "LIBVER"]
