"""Media of backed-up posts: downloaded once, as the platform served them, beside the archive.

Files go to a folder next to the archive (`media/{platform}/` by default) under the name the
reader chose (stable per post and position), so a second run finds what it already has and
downloads nothing. A download is written to a temp file and renamed, so a killed run never
leaves half a picture under the real name; each file is fsynced by the worker that wrote it (in
parallel, mostly while the account is still being read), and the media folder once per batch, before
the archive names the files. (A whole-system `sync` per batch, as before, also flushed every other
program's dirty pages: 2–3 s per run on a busy machine.) A transient failure is retried with backoff;
a rate limit close enough is waited out; what still fails is returned as a problem, never
skipped without a word (the caller keeps the post's thread out of the archive and its cursor
where it was, so the next run tries again).
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from crossposter.atomic import fsync_folder, write_atomic
from crossposter.backup.source import Reader, SourceMedia, SourcePost
from crossposter.platforms.base import PlatformError, RateLimitedError, TransientError

__all__ = ["MediaStore", "MediaProblem", "safe_name"]

_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def safe_name(name: str) -> str | None:
    """`name` when it is a plain file name (no folder, no leading dot), else None: readers are not trusted."""
    return name if _SAFE.fullmatch(name) and ".." not in name else None


@dataclass(frozen=True)
class MediaProblem:
    post: SourcePost
    index: int
    message: str


@dataclass
class MediaStore:
    """Where one archive's media of one platform live, and the downloads into it."""

    reader: Reader
    folder: Path  # absolute
    relative: str  # the folder as written in the archive, relative to the archive's folder
    attempts: int = 4
    base_delay: float = 0.5
    max_wait: float = 120.0  # longest rate-limit wait before giving up for this run
    concurrency: int = 6
    sleep: Callable[[float], None] = time.sleep
    downloaded: int = 0
    reused: int = 0
    bytes: int = 0
    problems: list[MediaProblem] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _pool: ThreadPoolExecutor | None = field(default=None, repr=False)
    #: downloads `prefetch` started, by (post id, index), until `fetch_all` takes them
    _started: dict[tuple[str, int], Future[MediaProblem | None]] = field(default_factory=dict, repr=False)
    _unsynced: bool = False
    _closed: bool = False

    def path_of(self, media: SourceMedia) -> str | None:
        name = safe_name(media.filename)
        return None if name is None else f"{self.relative}/{name}"

    def prefetch(self, posts: Iterable[SourcePost]) -> None:
        """Start downloading `posts`' media in the background (at most `concurrency` at a time).

        Called while the account is still being read (a page names its media long before the batch
        that writes them), so downloads overlap the reading instead of following it. Safe from any
        thread; a later `fetch_all` waits for what was started here and reports its problems then.
        A file downloaded for a post that is finally not written (held back, or below a reply to
        another account) stays in the media folder; the next run finds it instead of downloading it.
        """
        with self._lock:
            if self._closed:
                return
            for post in posts:
                for i, media in enumerate(post.media):
                    rel = self.path_of(media)
                    if rel is not None and (post.id, i) not in self._started:
                        self._started[(post.id, i)] = self._submit((post, i, media, rel))

    def fetch_all(self, posts: Iterable[SourcePost], dry_run: bool = False,
                  on_file: Callable[[], None] | None = None) -> dict[tuple[str, int], str]:
        """Every post's media on disk; returns (post id, index) → archive-relative path for those that are.

        What `prefetch` started is waited for, the rest is downloaded now; problems are added to
        `problems` here, in the caller's thread. With `dry_run` nothing is downloaded: paths are
        returned as they would be.
        """
        waits: list[tuple[SourcePost, int, str, Future[MediaProblem | None]]] = []
        paths: dict[tuple[str, int], str] = {}
        for post in posts:
            for i, media in enumerate(post.media):
                rel = self.path_of(media)
                if rel is None:
                    self.problems.append(MediaProblem(post, i, f"the platform named a file {media.filename!r} "
                                                               "that is not a plain file name; not downloaded"))
                    continue
                if dry_run:
                    paths[(post.id, i)] = rel
                    continue
                with self._lock:
                    future = self._started.pop((post.id, i), None)
                    if future is None:
                        future = self._submit((post, i, media, rel))
                waits.append((post, i, rel, future))
        for post, i, rel, future in waits:
            problem = future.result()
            if problem is None:
                paths[(post.id, i)] = rel
            else:
                self.problems.append(problem)
            if on_file is not None:
                on_file()
        with self._lock:
            unsynced, self._unsynced = self._unsynced, False
        if unsynced or waits:  # (a file found on disk may come from a run killed before its folder's fsync)
            # every file was fsynced before its rename; this makes the renames durable, before the archive
            # names the files and the cursor moves past them
            fsync_folder(self.folder)
        return paths

    def close(self) -> None:
        """Stop: downloads not started are dropped, running ones are waited for (no write after return)."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
            self._started.clear()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _submit(self, item: tuple[SourcePost, int, SourceMedia, str]) -> Future[MediaProblem | None]:
        """(under `_lock`)"""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=max(1, self.concurrency), thread_name_prefix="media")
        return self._pool.submit(self._one, item)

    def _one(self, item: tuple[SourcePost, int, SourceMedia, str]) -> MediaProblem | None:
        post, i, media, rel = item
        target = self.folder / rel.rsplit("/", 1)[-1]
        try:
            if self._have(target, media):
                with self._lock:
                    self.reused += 1
                return None
            data = self._download(media)
            self.folder.mkdir(parents=True, exist_ok=True)
            # the file's fsync here, in parallel; the folder's once for the batch, in fetch_all
            write_atomic(target, data, 0o644, sync_folder=False)
            with self._lock:
                self.downloaded += 1
                self.bytes += len(data)
                self._unsynced = True
            return None
        except PlatformError as e:
            return MediaProblem(post, i, f"{media.kind} {media.filename}: {e.message}")
        except OSError as e:
            return MediaProblem(post, i, f"{media.kind} {media.filename}: cannot write {target}: {e.strerror or e}")

    @staticmethod
    def _have(target: Path, media: SourceMedia) -> bool:
        try:
            st = target.stat()
        except OSError:
            return False
        return st.st_size > 0 and (media.size is None or st.st_size == media.size)

    def _download(self, media: SourceMedia) -> bytes:
        attempt = 0
        rng = random.Random()
        while True:
            try:
                return self.reader.fetch_media(media)
            except TransientError:
                attempt += 1
                if attempt >= self.attempts:
                    raise
                self.sleep(rng.uniform(0, self.base_delay * 2 ** attempt))
            except RateLimitedError as e:
                attempt += 1
                wait = (e.reset_at - datetime.now(UTC)).total_seconds() + 1 if e.reset_at else self.base_delay * 4
                if attempt >= self.attempts or wait > self.max_wait:
                    raise
                self.sleep(max(0.0, wait))
