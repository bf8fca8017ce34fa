"""Writing off the critical path: a :class:`FeatureStore` fed by a background thread.

The extraction loop hands each batch (image names and a :class:`~selfdesc.pipeline.packed.PackedBatch`
whose copy to the host may still be under way) to :meth:`BackgroundWriter.add`, which puts it
on a bounded queue (the loop blocks only when ``queue_size`` batches are waiting); one thread
waits for the copy and writes the batch (:meth:`FeatureStore.write`: HDF5 metadata in this
thread, raw bytes in the store's threads), so writing overlaps the next batches on the device.
A failure in the thread is raised in the caller at its next ``add`` or at ``close`` as one
:class:`~selfdesc.errors.DatasetError` line naming the output; images already journaled are
kept for a rerun. ``queue_size=0`` writes in the calling thread.
"""
from __future__ import annotations

import queue
import threading
import time
from typing import Sequence

from selfdesc.errors import DatasetError
from selfdesc.pipeline.featurestore import FeatureStore
from selfdesc.pipeline.packed import PackedBatch

_STOP = object()


class BackgroundWriter:
    """Writes ``(names, packed batch)`` items through ``store`` in a thread.

    Args:
        store: the resumable writer of the output file.
        queue_size: batches that may wait for the thread (0: write in the calling thread).

    Attributes ``write_seconds`` (time spent waiting for the host copy and writing) and
    ``wait_seconds`` (time the caller was blocked on a full queue) are kept for profiling.
    """

    def __init__(self, store: FeatureStore, queue_size: int = 4) -> None:
        self.store = store
        self.write_seconds = 0.0
        self.wait_seconds = 0.0
        self._error: BaseException | None = None
        self._queue: queue.Queue | None = None
        self._thread: threading.Thread | None = None
        if queue_size > 0:
            self._queue = queue.Queue(maxsize=queue_size)
            self._thread = threading.Thread(target=self._run, name="features-writer", daemon=True)
            self._thread.start()

    def _write(self, names: Sequence[str], packed: PackedBatch) -> None:
        t0 = time.perf_counter()
        self.store.write((name, packed.arrays(i)) for i, name in enumerate(names))
        self.write_seconds += time.perf_counter() - t0

    def _run(self) -> None:
        assert self._queue is not None
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if self._error is None:  # after a failure, drain the queue so that the caller never blocks
                try:
                    self._write(*item)
                except Exception as exc:  # noqa: BLE001 - re-raised in the caller
                    self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            exc = self._error
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DatasetError(f"{self.store.out}: writing features failed ({msg}); finished images are kept, rerun to resume") from None

    def add(self, names: Sequence[str], packed: PackedBatch) -> None:
        """Queue (or, without a thread, write) the features of the images ``names`` of ``packed``."""
        self._raise()
        if self._queue is None:
            try:
                self._write(names, packed)
            except Exception as exc:  # noqa: BLE001 - reported as one line
                self._error = exc
                self._raise()
            return
        t0 = time.perf_counter()
        self._queue.put((names, packed))
        self.wait_seconds += time.perf_counter() - t0

    def close(self) -> None:
        """Write what is queued, stop the thread and close the store; raises the thread's failure, if any."""
        if self._thread is not None and self._thread.is_alive():
            assert self._queue is not None
            self._queue.put(_STOP)
            self._thread.join()
        self.store.close()
        self._raise()


__all__ = ["BackgroundWriter"]
