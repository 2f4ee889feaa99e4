"""New sections prepared by forked worker processes while the batches are written (the second core).

A reader that hands every post over at once (the X archive) leaves no reading time for `run._Ahead`
to prepare sections in: rendering and parsing thousands of sections (markdown-it, YAML both ways, all
pure Python) would then be the batches' own work, on one core. Here, once the threads are known, a
few processes are forked; each prepares every `workers`-th chunk of consecutive threads with
`ArchiveWriter.prepare_many` (one parse per chunk) and sends the `Prepared` sections back through a
pipe, in order, while the parent fetches media and writes the batches (a thread of the parent takes
them off the pipes as they come). Before a batch, the parent takes the chunks that cover it; the batch
then uses a prepared section exactly as one `prepare` made in-process: only when it is the very same
section (same post objects, media paths, heading, line endings), and it compares the section's parse
(made by the worker from exactly the bytes it sent) with the title, IDs and post breaks it expects,
computed in the parent. A section they did not prepare (a worker that failed, was killed, or is not
there) is rendered and checked by the batch itself, as without them: the bytes written are the same.

Why fork, and why it is safe here: the children inherit the threads and the writer (nothing to
pickle on the way in), start in milliseconds, and only render and parse their own copy of the data
and write to their pipe; they take no lock another thread of the parent could hold (no logging, no
I/O but the pipe), and ignore Ctrl-C (the parent stops them). They cannot outlive their work: they
have no input to wait for, and a pipe whose reader is gone ends them at their next send. `close`
(always called, `with`) kills and reaps those still running. Results carry no `SourcePost`s (the
parent puts its own objects back, which `_reusable` compares by identity) and no tokens. The parent's
objects are frozen out of the garbage collector while forking (`gc.freeze`): a collection in a child
would otherwise touch every object, and so copy every page, of the parent's heap.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import multiprocessing
import os
import signal
import threading
from collections import deque
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

from crossposter.backup.source import SourcePost, SourceThread
from crossposter.backup.writer import ArchiveWriter, Prepared

log = logging.getLogger(__name__)

__all__ = ["PreparePool", "MIN_THREADS", "CHUNK"]

#: fewer new threads than this are prepared by the batches themselves (forking would not pay)
MIN_THREADS = 400
#: threads per chunk: one parse each, and what a batch waits for at most beyond its own threads
CHUNK = 150
#: seconds a batch waits for a chunk (≈ 0.1 s of work) before doing it itself: a worker that hangs (a lock
#: some thread of the parent held when it forked) must not hang the backup
WAIT = 60.0


class PreparePool:
    """Worker processes preparing `threads` (in chunks of `chunk`) for `writer`; a context manager.

    A thread of the parent receives what the workers send as soon as they send it (a worker waiting for
    its pipe to be read would otherwise idle while the parent writes a batch); `take` hands it over.
    """

    def __init__(self, writer: ArchiveWriter, threads: Sequence[SourceThread],
                 media_path: Callable[[SourcePost, int], str | None], *, workers: int = 2,
                 chunk: int | None = None) -> None:
        chunk = chunk or CHUNK
        self.writer = writer
        self.threads = list(threads)
        self.chunks = [(i, min(i + chunk, len(self.threads))) for i in range(0, len(self.threads), chunk)]
        self.taken = 0  # chunks taken so far (in order)
        self.failed = 0  # chunks no worker delivered (the batches prepare those themselves)
        self._procs: list[tuple[Any, Connection]] = []
        self._todo: dict[Connection, deque[int]] = {}  # the chunks each worker's pipe still owes, in order
        self._results: dict[int, list[Prepared | None] | None] = {}  # by chunk; None: not coming
        self._arrived = threading.Condition()
        ctx = multiprocessing.get_context("fork")
        self._receiver: threading.Thread | None = None
        # One section prepared here first: the children then inherit every import and cache it needs (each
        # would otherwise import PyYAML and build the parsers itself, ~0.1 s apiece).
        for prep in writer.prepare_many(self.threads[:1], media_path):
            if prep is not None:
                writer.keep(prep)
        try:
            gc.freeze()
            try:
                self._start(ctx, media_path, min(workers, len(self.chunks)))
            finally:
                gc.unfreeze()
            if self._todo:
                self._receiver = threading.Thread(target=self._receive, name="crossposter-prepared", daemon=True)
                self._receiver.start()
        except BaseException:  # (a Ctrl-C here: the caller never gets the pool to close)
            self.close()
            raise

    def _start(self, ctx: Any, media_path: Callable[[SourcePost, int], str | None], workers: int) -> None:
        for w in range(workers):
            mine = list(range(w, len(self.chunks), workers))
            recv, send = ctx.Pipe(duplex=False)
            # (the child closes the reading ends it inherits, so that a parent gone ends it at its next send)
            theirs = [recv, *self._todo]
            proc = ctx.Process(target=_work, args=(self.writer, self.threads, [self.chunks[k] for k in mine],
                                                   media_path, send, theirs),
                               name=f"crossposter-prepare-{w}", daemon=True)
            try:
                proc.start()
            except OSError as e:  # (no fork: too many processes, no memory) the batches prepare these themselves
                log.debug("no worker process for preparing sections: %s", e)
                recv.close()
                send.close()
                self._results.update((k, None) for k in mine)
                continue
            self._procs.append((proc, recv))
            self._todo[recv] = deque(mine)
            send.close()  # (the child's copy is the only writer: its end of the pipe ends with it)
        if not self._procs:
            self._results.update((k, None) for k in range(len(self.chunks)))

    def __enter__(self) -> PreparePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _receive(self) -> None:
        """(The receiving thread.) Each worker's chunks as they come; a worker's end marks the rest not coming."""
        from multiprocessing.connection import wait

        todo = self._todo
        while todo:
            for conn in wait(list(todo)):
                owed = todo[conn]  # type: ignore[index]
                try:
                    results = conn.recv()  # type: ignore[union-attr]
                except Exception as e:  # noqa: BLE001 - EOFError: the worker died; the batches do its chunks
                    log.debug("a worker preparing sections stopped: %r", e)
                    arrived = {k: None for k in owed}
                    owed.clear()
                else:
                    arrived = {owed.popleft(): results}
                with self._arrived:
                    self._results.update(arrived)
                    self._arrived.notify_all()
                if not owed:
                    del todo[conn]  # type: ignore[arg-type]
                    conn.close()  # type: ignore[union-attr]

    def take(self, upto: int) -> None:
        """Hand the writer every section of the chunks that start before thread `upto` (waiting for them)."""
        while self.taken < len(self.chunks) and self.chunks[self.taken][0] < upto:
            k = self.taken
            self.taken += 1
            with self._arrived:
                self._arrived.wait_for(lambda k=k: k in self._results, timeout=WAIT)
                results = self._results.pop(k, None)  # (not there in time: late, it is never used)
            if results is None:
                self.failed += 1
                continue
            start, stop = self.chunks[k]
            for thread, prep in zip(self.threads[start:stop], results, strict=True):
                if prep is not None:
                    self.writer.keep(dataclasses.replace(prep, posts=tuple(thread.posts)))

    def close(self) -> None:
        """Stop and reap every worker (those still working are killed: their sections are not needed)."""
        procs, self._procs = self._procs, []
        for proc, _ in procs:
            if proc.exitcode is None:
                proc.kill()
        for proc, _ in procs:
            proc.join()
        if self._receiver is not None and self._receiver.is_alive():
            self._receiver.join()  # (every pipe has ended with its worker; it closes them)
        elif self._receiver is None:
            for conn in self._todo:
                conn.close()
        for proc, _ in procs:
            proc.close()


def _work(writer: ArchiveWriter, threads: list[SourceThread], chunks: list[tuple[int, int]],
          media_path: Callable[[SourcePost, int], str | None], conn: Connection, theirs: list[Connection]) -> None:
    """A worker: prepare its chunks in order, send each as a list (None where a section was not kept)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # (Ctrl-C is the parent's to handle: it kills the workers)
    try:
        for c in theirs:
            c.close()
        for start, stop in chunks:
            prepared = writer.prepare_many(threads[start:stop], media_path)
            conn.send([None if p is None else dataclasses.replace(p, posts=()) for p in prepared])
        conn.close()
    except BaseException:  # noqa: BLE001 - the parent sees the pipe end and prepares the rest itself
        os._exit(1)
    os._exit(0)  # (no atexit handlers, no flushing of the parent's inherited buffers)
