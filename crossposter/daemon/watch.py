"""Watching the archives: which files changed, and each thread as the daemon sees it (a cheap read).

Watching is polling: every `daemon.watch_interval` seconds the main loop re-expands the archive
globs and `stat`s each file (mtime, size, inode). That is a handful of syscalls a second — no busy
loop, no extra dependency, and it works on bind mounts and network file systems where inotify
(watchfiles) misses changes made from outside the container.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from crossposter.platforms import registry

if TYPE_CHECKING:
    from crossposter.archive import Thread
    from crossposter.thread_meta import ThreadMeta


@dataclass
class ThreadInfo:
    """One thread as the daemon sees it, from a cheap read of the archive (no rendering)."""

    archive: Path
    title: str
    line: int
    schedule: datetime | None
    #: why the thread's metadata block cannot be used, as (line, message); such a thread is never published
    problems: list[tuple[int | None, str]]
    queued: bool
    skipped: str | None
    recorded: dict[str, int]
    pending: bool
    sig: str  # changes when the schedule, the queued flag or the text changes
    #: the validated block (empty when `error`)
    meta: ThreadMeta | None = None
    #: the platform a backed-up thread came from (`source:`): published there, never sent there
    source: str | None = None

    @property
    def key(self) -> str:
        return f"{self.archive}::{self.title}"

    @property
    def started(self) -> bool:
        """Whether crossposter began publishing it (a backed-up thread's originals on its source do not count)."""
        return self.pending or any(n for p, n in self.recorded.items() if p != self.source)

    @property
    def error(self) -> str | None:
        """The block's problems as `path:line: message` lines, or None."""
        if not self.problems:
            return None
        return "\n".join(f"{self.archive}:{line}: {message}" if line else f"{self.archive}: {message}"
                         for line, message in self.problems)


def thread_info(archive_path: Path, thread: Thread, timezone: str) -> ThreadInfo:
    """The daemon's view of a thread, through the one validated model of its block (`thread_meta`)."""
    from crossposter.thread_meta import MetadataError, ThreadMeta, of

    problems: list[tuple[int | None, str]] = []
    try:
        meta = of(thread, timezone)
    except MetadataError as e:
        problems = e.problems
        meta = ThreadMeta()
    when = meta.schedule.astimezone(UTC) if meta.schedule else None
    digest = hashlib.sha256()
    # the instant, not the spelling: PyYAML may hand back a datetime where a string was written; a broken
    # block's raw text is in the signature so that fixing it makes the thread new to the daemon
    raw = repr(sorted(map(str, thread.metadata.items()))) if problems else ""
    digest.update(repr((when.isoformat() if when else None, meta.queued, thread.body, raw)).encode())
    skipped = thread.skipped or ("skip: true" if meta.skip else None)
    return ThreadInfo(
        archive=archive_path, title=thread.title, line=thread.line, schedule=when, problems=problems,
        queued=meta.queued, skipped=skipped, recorded={p: len(meta.recorded(p)) for p in registry.names()},
        pending=bool(meta.pending), sig=digest.hexdigest()[:16], meta=meta, source=meta.source,
    )


@dataclass(frozen=True)
class FileSig:
    """What a `stat` tells about a file's content without reading it."""

    mtime_ns: int
    size: int
    ino: int


@dataclass
class Changes:
    changed: list[Path]
    removed: list[Path]


class FileWatcher:
    """Remembers each archive's `FileSig`; `scan` says which files changed or went away since the last scan."""

    def __init__(self) -> None:
        self._files: dict[Path, FileSig] = {}

    def scan(self, paths: Iterable[Path]) -> Changes:
        seen: set[Path] = set()
        changed: list[Path] = []
        for path in paths:
            seen.add(path)
            try:
                st = path.stat()
            except OSError:
                continue
            sig = FileSig(st.st_mtime_ns, st.st_size, st.st_ino)
            if self._files.get(path) != sig:
                self._files[path] = sig
                changed.append(path)
        removed = [p for p in self._files if p not in seen]
        for path in removed:
            del self._files[path]
        return Changes(changed, removed)

    def forget(self, path: Path) -> None:
        """Make the next scan report `path` as changed (its threads are looked at again)."""
        self._files.pop(path, None)
