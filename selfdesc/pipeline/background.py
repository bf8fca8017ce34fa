"""Writing off the critical path: a :class:`PartedWriter` fed by a background thread.

The extraction loop hands each image's CPU prediction to :meth:`BackgroundWriter.add`, which
puts it on a bounded queue (the loop blocks only when ``queue_size`` images are waiting); one
thread converts predictions to features.h5 groups and writes them, so HDF5 writing overlaps
the next batch on the device. Atomicity and resume are those of :class:`PartedWriter`. A
failure in the thread is raised in the caller at its next ``add`` or at ``close`` as one
:class:`~selfdesc.errors.DatasetError` line naming the output; the part in progress is then
discarded (finished parts are kept for a rerun). ``queue_size=0`` writes in the calling thread.
"""
from __future__ import annotations

import queue
import threading
import time

import torch

from selfdesc.errors import DatasetError
from selfdesc.pipeline.h5io import PartedWriter, feature_group

_STOP = object()


class BackgroundWriter:
    """Writes ``(name, prediction, original size)`` items through ``writer`` in a thread.

    Args:
        writer: the resumable writer of the output file.
        fp16: store descriptors as float16 (see :func:`~selfdesc.pipeline.h5io.feature_group`).
        queue_size: images that may wait for the thread (0: write in the calling thread).

    Attributes ``write_seconds`` (time spent converting and writing) and ``wait_seconds``
    (time the caller was blocked on a full queue) are kept for profiling.
    """

    def __init__(self, writer: PartedWriter, fp16: bool = False, queue_size: int = 64) -> None:
        self.writer, self.fp16 = writer, fp16
        self.write_seconds = 0.0
        self.wait_seconds = 0.0
        self._error: BaseException | None = None
        self._queue: queue.Queue | None = None
        self._thread: threading.Thread | None = None
        if queue_size > 0:
            self._queue = queue.Queue(maxsize=queue_size)
            self._thread = threading.Thread(target=self._run, name="features-writer", daemon=True)
            self._thread.start()

    def _write(self, name: str, pred: dict[str, torch.Tensor], size: tuple[int, int]) -> None:
        t0 = time.perf_counter()
        self.writer.add(name, feature_group(pred, size, self.fp16))
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
            raise DatasetError(f"{self.writer.out}: writing features failed ({msg}); finished parts are kept, rerun to resume") from None

    def add(self, name: str, pred: dict[str, torch.Tensor], size: tuple[int, int]) -> None:
        """Queue (or, without a thread, write) the features of image ``name`` of original ``size`` ``(W, H)``."""
        self._raise()
        if self._queue is None:
            try:
                self._write(name, pred, size)
            except Exception as exc:  # noqa: BLE001 - reported as one line
                self._error = exc
                self._raise()
            return
        t0 = time.perf_counter()
        self._queue.put((name, pred, size))
        self.wait_seconds += time.perf_counter() - t0

    def close(self) -> None:
        """Write what is queued, stop the thread and checkpoint; raises the thread's failure, if any."""
        if self._thread is not None and self._thread.is_alive():
            assert self._queue is not None
            self._queue.put(_STOP)
            self._thread.join()
        if self._error is not None:
            self.writer.abort()
            self._raise()
        self.writer.close()


__all__ = ["BackgroundWriter"]
