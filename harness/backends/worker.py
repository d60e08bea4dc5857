"""A backend's request queue and worker thread: submit, cancel and stop, shared by the in-process backends."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence

from harness.types import GenerationRequest

__all__ = ["Job", "RequestQueue"]

Job = Sequence[GenerationRequest]


class RequestQueue:
    """Requests waiting for one worker thread; `None` on the queue tells the worker to finish."""

    def __init__(self, name: str, stop_timeout_s: float = 5.0) -> None:
        self.name = name
        self.stop_timeout_s = stop_timeout_s
        self.jobs: queue.Queue[Job | None] = queue.Queue()
        self.cancelled = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, work: Callable[[], None]) -> None:
        """Run `work` (which reads `jobs`) on a daemon thread."""
        self._thread = threading.Thread(target=work, name=self.name, daemon=True)
        self._thread.start()

    def put(self, requests: Sequence[GenerationRequest]) -> None:
        """Queue requests for the worker."""
        self.jobs.put(requests)

    def cancel(self) -> None:
        """Mark queued work as cancelled (the worker fails it)."""
        self.cancelled.set()

    def stop(self) -> None:
        """Ask the worker to finish and wait for it (bounded). Idempotent."""
        if self._thread is not None:
            self.jobs.put(None)
            self._thread.join(timeout=self.stop_timeout_s)
            self._thread = None
