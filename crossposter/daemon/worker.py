"""The one worker thread that publishes, one thread at a time, in the order work was queued.

Every thread goes to the same accounts, so a lock per account would serialise them anyway; one
worker is the simplest way to guarantee "at most one thread per account at a time" and keeps the
order obvious. A thread key is "in flight" from the moment it is queued until its run ends, so a
second job, slot or reload cannot queue it twice.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from crossposter.daemon.policy import WorkReason

log = logging.getLogger("crossposter.daemon")


@dataclass
class Work:
    key: str
    reason: WorkReason
    due: datetime  # when it should have started (for the start-delay log)
    #: only these platforms (the mirror's targets); None: every enabled platform
    platforms: list[str] | None = None


class Worker:
    """Runs `handle(work)` for each queued `Work`, then `finished(work)`, until `stop_event` is set."""

    def __init__(self, handle: Callable[[Work], None], finished: Callable[[Work], None],
                 stop_event: threading.Event) -> None:
        self._handle = handle
        self._finished = finished
        self._stop = stop_event
        self._queue: queue.Queue[Work] = queue.Queue()
        self._in_flight: set[str] = set()
        self._lock = threading.Lock()
        self.thread: threading.Thread | None = None
        #: Why the thread ended, when something escaped the per-work handler.
        self.died: str | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._loop, name="publisher", daemon=True)
        self.thread.start()

    def join(self, timeout: float | None = None) -> None:
        if self.thread is not None:
            self.thread.join(timeout)

    @property
    def stopped(self) -> bool:
        """Its thread was started and has ended (the daemon then publishes nothing)."""
        return self.thread is not None and not self.thread.is_alive()

    def in_flight(self, key: str) -> bool:
        with self._lock:
            return key in self._in_flight

    @property
    def busy(self) -> bool:
        with self._lock:
            return bool(self._in_flight)

    def enqueue(self, key: str, reason: WorkReason, due: datetime, platforms: list[str] | None = None) -> bool:
        """Queue `key` unless it is already queued or running; False when it was."""
        with self._lock:
            if key in self._in_flight:
                return False
            self._in_flight.add(key)
        self._queue.put(Work(key, reason, due, platforms))
        return True

    def _loop(self) -> None:
        try:
            self._loop_inner()
        except BaseException as e:  # only what escapes the per-work handler below: say so in the heartbeat
            self.died = f"{type(e).__name__}: {e}"
            raise

    def _loop_inner(self) -> None:
        while not self._stop.is_set():
            try:
                work = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                if self._stop.is_set():
                    return  # left undone: still due (or stopped) at the next start
                self._handle(work)
            except Exception:
                log.exception("publishing %s failed unexpectedly", work.key, extra={"event": "error"})
            finally:
                with self._lock:
                    self._in_flight.discard(work.key)
                self._finished(work)
