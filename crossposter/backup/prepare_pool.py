"""New sections prepared by forked worker processes while the batches are written (the second core).

A reader that hands every post over at once (the X archive) leaves no reading time for `run._Ahead`
to prepare sections in: rendering and parsing thousands of sections (markdown-it, YAML both ways, all
pure Python) would then be the batches' own work, on one core. Here, once the threads are known, a
few processes are forked; each prepares every `workers`-th chunk of consecutive threads with
`ArchiveWriter.prepare_many` (one parse per chunk) and sends the `Prepared` sections back through a
pipe, in order, while the parent fetches media and writes the batches. Before a batch, the parent
takes the chunks that cover it; the batch then uses a prepared section exactly as one `prepare` made
in-process: only when it is the very same section, checked again against the parse (see `writer`).
The archive's bytes therefore never depend on the workers: a section they did not prepare (a worker
that failed, was killed, or is not there) is rendered and checked by the batch itself, as without them.

Why fork, and why it is safe here: the children inherit the threads and the writer (nothing to
pickle on the way in), start in milliseconds, and only render and parse their own copy of the data
and write to their pipe; they take no lock another thread of the parent could hold (no logging, no
I/O but the pipe), and ignore Ctrl-C (the parent stops them). They cannot outlive their work: they
have no input to wait for, and a pipe whose reader is gone ends them at their next send. `close`
(always called, `with`) kills and reaps those still running. Results carry no `SourcePost`s (the
parent puts its own objects back, which `_reusable` compares by identity) and no tokens.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import multiprocessing
import os
import signal
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

from crossposter.backup.source import SourcePost, SourceThread
from crossposter.backup.writer import ArchiveWriter

log = logging.getLogger(__name__)

__all__ = ["PreparePool", "MIN_THREADS", "CHUNK"]

#: fewer new threads than this are prepared by the batches themselves (forking would not pay)
MIN_THREADS = 400
#: threads per chunk: one parse each, and what a batch waits for at most beyond its own threads
CHUNK = 150


class PreparePool:
    """Worker processes preparing `threads` (in chunks of `chunk`) for `writer`; a context manager."""

    def __init__(self, writer: ArchiveWriter, threads: Sequence[SourceThread],
                 media_path: Callable[[SourcePost, int], str | None], *, workers: int = 2,
                 chunk: int | None = None) -> None:
        chunk = chunk or CHUNK
        self.writer = writer
        self.threads = list(threads)
        self.chunks = [(i, min(i + chunk, len(self.threads))) for i in range(0, len(self.threads), chunk)]
        self.taken = 0  # chunks taken so far (in order)
        self.failed = 0  # chunks no worker delivered (the batches prepare those themselves)
        self._procs: list[tuple[Any, Connection | None]] = []
        ctx = multiprocessing.get_context("fork")
        # (the objects there are now are the children's only to read: frozen, a collection in a child does
        # not walk them, which would write to every page of the parent's heap and so copy it, at a high cost)
        gc.freeze()
        try:
            self._start(ctx, writer, media_path, workers)
        finally:
            gc.unfreeze()

    def _start(self, ctx: Any, writer: ArchiveWriter, media_path: Callable[[SourcePost, int], str | None],
               workers: int) -> None:
        for w in range(min(workers, len(self.chunks))):
            recv, send = ctx.Pipe(duplex=False)
            # (the child closes the reading ends it inherits, so that a parent gone ends it at its next send)
            theirs = [recv, *(c for _, c in self._procs if c is not None)]
            proc = ctx.Process(target=_work, args=(writer, self.threads, self.chunks[w::workers], media_path, send,
                                                   theirs), name=f"crossposter-prepare-{w}", daemon=True)
            try:
                proc.start()
            except OSError as e:  # (no fork: too many processes, no memory) the batches do it all themselves
                log.debug("no worker process for preparing sections: %s", e)
                recv.close()
                send.close()
                break
            send.close()  # (the child's copy is the only writer: its end of the pipe ends with it)
            self._procs.append((proc, recv))

    def __enter__(self) -> PreparePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def take(self, upto: int) -> None:
        """Hand the writer every section of the chunks that start before thread `upto` (waiting for them)."""
        while self.taken < len(self.chunks) and self.chunks[self.taken][0] < upto:
            k = self.taken
            self.taken += 1
            if not self._procs:
                self.failed += 1
                continue
            proc, conn = self._procs[k % len(self._procs)]
            results = None
            if conn is not None:
                try:
                    results = conn.recv()
                except (EOFError, OSError):  # the worker died: the batches prepare the rest of its chunks
                    log.debug("worker %s stopped (exit code %s)", proc.name, proc.exitcode)
                    conn.close()
                    self._procs[k % len(self._procs)] = (proc, None)
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
        for proc, conn in procs:
            if conn is not None:
                conn.close()
            if proc.exitcode is None:
                proc.kill()
            proc.join()
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
