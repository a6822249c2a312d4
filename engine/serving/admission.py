"""Admission control: a fixed number of requests work, a bounded number wait, the rest are refused.

An engine on 2 cores does best with few requests at once; queueing everything would let a
burst of clients push every caller past its deadline. Excess requests get RESOURCE_EXHAUSTED
at once, so a client can back off or try another replica.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

from engine import errors
from engine.errors import Unavailable


class Busy(errors.Busy):
    """Every worker is busy and the queue is full."""


class Closed(Unavailable):
    """The engine is shutting down and takes no new requests."""


class Admission:
    """``workers`` requests run at once; up to ``queue`` more wait for a worker."""

    def __init__(self, workers: int, queue: int) -> None:
        if workers < 1 or queue < 0:
            raise ValueError(f"need workers >= 1 and queue >= 0, got {workers} and {queue}")
        self.workers, self.queue = workers, queue
        self._admitted = threading.BoundedSemaphore(workers + queue)
        self._working = threading.BoundedSemaphore(workers)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._closed = False
        self._in_flight = 0
        self.active = 0
        self.waiting = 0

    @property
    def in_flight(self) -> int:
        """Requests admitted and not yet finished (working or waiting)."""
        return self._in_flight

    def close(self) -> None:
        """Refuse new requests from now on (Closed); those already admitted go on."""
        with self._lock:
            self._closed = True

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no admitted request is left; False if ``timeout`` passed first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    @contextlib.contextmanager
    def slot(self, still_wanted: Callable[[], bool] = lambda: True) -> Iterator[None]:
        """Hold a worker for the block; Busy if the queue is full. Gives up (Busy) if
        ``still_wanted`` turns false while waiting, e.g. the client went away."""
        with self._lock:
            if self._closed:
                raise Closed("the engine is shutting down; send the request to another engine or retry later")
            self._in_flight += 1
        try:
            if not self._admitted.acquire(blocking=False):
                raise Busy(f"engine busy: {self.workers} requests working and {self.queue} waiting; "
                           "try again shortly")
        except Busy:
            self._leave()
            raise
        try:
            with self._lock:
                self.waiting += 1
            try:
                while not self._working.acquire(timeout=0.05):
                    if not still_wanted():
                        raise Busy("the request was cancelled while it waited for a worker")
            finally:
                with self._lock:
                    self.waiting -= 1
            with self._lock:
                self.active += 1
            try:
                yield
            finally:
                with self._lock:
                    self.active -= 1
                self._working.release()
        finally:
            self._admitted.release()
            self._leave()

    def _leave(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()
