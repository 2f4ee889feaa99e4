"""One backup pass of one account: read → threads → media → archive → cursor. No printing, no globals.

`crossposter backup` and the mirror bot (which calls `run_backup` every few minutes from the
daemon) share this: progress goes to a `BackupReporter` the caller passes, everything else comes
back as a `BackupOutcome`, and a second call with nothing new writes nothing.

Why the order of things:

* The archives are read before the platform: a thread already recorded in *any* configured
  archive (an earlier backup, `post` itself, a section the person moved to another file) is
  never written again, and a broken archive stops the run before a single request.
* Posts whose ID is recorded are dropped; a new self-reply to a recorded post is appended to the
  section that records its parent (wherever the person keeps it); everything else becomes new
  threads (`build_threads`), oldest first.
* While pages are read, each new thread whose posts stopped changing for a page is rendered and
  parsed by a worker thread (`ArchiveWriter.prepare`): the reading mostly waits for the network, so
  the batches find most of their sections verified already. A guess that turns out wrong (the thread
  grew later) costs only that work: a batch takes a prepared section only if it is exactly the one
  it writes.
* A reader that hands everything over at once (the X archive) leaves no reading time to prepare in:
  when there are many new threads, forked worker processes prepare their sections (`prepare_pool`)
  while the batches fetch media and write, each batch taking the chunks that cover it. The bytes
  written never depend on them: a section they did not prepare is rendered by the batch itself.
* Media are downloaded per batch, before the batch is written, so a section never points at a
  file that is not there. A thread whose media still fail after the retries is held back (not
  written) and reported; the cursor is then not saved, so the next run reads those posts again
  (the IDs recorded in the archive keep everything else from being written twice).
* The cursor is saved last, after every write: a run killed at any point re-reads from the
  previous cursor and writes only what the archive does not record yet. A read stopped by a rate
  limit too far away (or an error) still writes what it read and saves the reader's resumable
  cursor.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from crossposter.backup.source import Reader, ReadResult, Skipped, SourcePost, SourceThread, build_threads
from crossposter.backup.writer import Append, ArchiveWriter, WrittenReplies, WrittenThread, recorded_ids
from crossposter.platforms import registry

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from crossposter.archive import Archive, Thread
    from crossposter.backup.media import MediaStore
    from crossposter.backup.prepare_pool import PreparePool
    from crossposter.config import Config

__all__ = ["ArchiveCache", "BackupOutcome", "BackupReporter", "ThreadAdded", "RepliesAppended", "run_backup", "default_into",
           "media_folder_for"]


ThreadAdded = WrittenThread
RepliesAppended = WrittenReplies


class BackupReporter:
    """Progress of a run; every method is a no-op here. The command draws a bar, the mirror bot logs."""

    def page(self, records: int) -> None:
        """A page of `records` posts was read."""

    def waiting(self, seconds: float, why: str) -> None:
        """The run sleeps `seconds` (a rate limit, a retry)."""

    def media(self, done: int, total: int) -> None:
        """Media files of the current batch handled so far."""

    def threads(self, done: int, total: int) -> None:
        """Threads (new or with appended replies) handled so far."""

    def note(self, message: str) -> None:
        """Something worth a line (a problem as it happens; it is also in the outcome)."""


@dataclass
class ArchiveCache:
    """Archives as parsed by earlier calls, by (real path, platform): reused only for the very same bytes
    (compared, not trusted by size or time), so a file changed in any way is parsed afresh."""

    entries: dict[tuple[Path, str], tuple[bytes, Archive, dict[str, Thread]]] = field(default_factory=dict)


@dataclass
class BackupOutcome:
    platform: str
    into: Path
    dry_run: bool
    threads: list[ThreadAdded] = field(default_factory=list)
    replies: list[RepliesAppended] = field(default_factory=list)
    media_added: int = 0  # downloaded this run
    media_reused: int = 0  # already on disk
    skipped: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    #: what a post written (or, dry run, to be written) this run lost or changed on the way in, `url: note`
    #: (an image not in the X archive kept as its link, an embed this backup does not know...): the post is
    #: written, and the person is told what it does not hold
    notes: list[str] = field(default_factory=list)
    requests: int = 0
    posts_read: int = 0
    #: new threads whose section was rendered and verified while the pages were read
    prepared: int = 0
    #: the read reached the newest post (False: stopped by a rate limit or an error; run again to resume)
    complete: bool = True
    cursor_saved: bool = False

    @property
    def posts_added(self) -> int:
        return sum(len(t.post_ids) for t in self.threads) + sum(len(r.post_ids) for r in self.replies)

    @property
    def ok(self) -> bool:
        return self.complete and not self.problems


def default_into(config: Config, platform: str) -> Path:
    """The config's `backup.into` for `platform`, relative to the config file."""
    return config.resolve(config.backup.into.format(platform=platform))


def media_folder_for(config: Config, into: Path, platform: str) -> tuple[Path, str]:
    """The media folder (absolute) and how the archive links it (relative to the archive's folder, `/`)."""
    pattern = Path(config.backup.media.format(platform=platform)).expanduser()
    base = into.parent.resolve()
    folder = pattern if pattern.is_absolute() else base / pattern
    relative = os.path.relpath(folder, base).replace(os.sep, "/")
    return folder, relative


def run_backup(reader: Reader, config: Config, *, account: str, into: Path | None = None,
               since: datetime | None = None, dry_run: bool = False, archives: Sequence[Path] | None = None,
               reporter: BackupReporter | None = None, sleep: Callable[[float], None] = time.sleep,
               batch_threads: int | None = None, cache: ArchiveCache | None = None) -> BackupOutcome:
    """Back up `reader`'s account into `into` (default: the config's `backup.into`); see the module doc.

    `account` names the account for its cursor file in `state_dir` (e.g. the Bluesky handle and
    service, the Mastodon instance and account id, the X account id). `archives` are the files
    checked for already-recorded threads besides `into` (default: the config's `archives`).
    Raises `ArchiveError` when an archive cannot be read or written (nothing of the batch is
    written then, and the cursor is not saved), and the reader's `PlatformError` when the very first
    read fails for good (a refused login, a broken zip); a failure after something was read becomes
    one of `problems`, with what was read written and its resumable cursor saved.

    `cache` (an `ArchiveCache` the caller keeps between calls, as the mirror bot does) spares parsing an
    archive whose bytes have not changed since the last call.
    """
    from crossposter.backup.media import MediaStore

    platform = reader.platform
    reporter = reporter or BackupReporter()
    into = Path(into) if into is not None else default_into(config, platform)
    into = into.absolute()
    outcome = BackupOutcome(platform=platform, into=into, dry_run=dry_run)
    batch = batch_threads or config.backup.batch_threads

    # 1. What the archives already hold (before any request: a broken archive stops here).
    if into.exists() and not into.is_file():  # a FIFO would block the read forever, a device worse
        from crossposter.archive import ArchiveError

        raise ArchiveError(into, None, "not a regular file; give the archive file to write (--into FILE)")
    _check_markdown_name(into)
    cache = cache if cache is not None else ArchiveCache()
    index, parsed_into = _recorded_index(config, into, archives, platform, cache)

    # 2. Read, waiting out what can be waited out; media downloads start as soon as a page names them.
    folder, relative = media_folder_for(config, into, platform)
    store = MediaStore(reader, folder, relative, sleep=sleep)
    try:
        return _run(reader, config, platform, account, into, since, dry_run, reporter, sleep, batch, index,
                    parsed_into, cache, store, outcome)
    finally:
        store.close()


#: what an archive's file name ends with (a backup appends Markdown to it)
MARKDOWN_SUFFIXES = (".md", ".markdown")


def _check_markdown_name(into: Path) -> None:
    """Refuse to append threads to a file that is not named as Markdown, or a link to one that is not.

    A mistyped `--into` (`~/.bashrc`) or a `threads/x.md` that links to some other file would otherwise
    get Markdown appended to it: the backup cannot know what that file is, its name can.
    """
    from crossposter.archive import ArchiveError

    names = [(into, "")]
    if into.is_symlink():
        target = into.resolve()
        names.append((target, f" (it links to {target})"))
    for name, via in names:
        if name.suffix.lower() not in MARKDOWN_SUFFIXES:
            raise ArchiveError(into, None, f"an archive is a Markdown file named *.md, and {name.name!r} is not "
                                           f"one{via}; give the archive to write with --into FILE.md (or "
                                           "backup.into in the config)")


def _run(reader: Reader, config: Config, platform: str, account: str, into: Path, since: datetime | None,
         dry_run: bool, reporter: BackupReporter, sleep: Callable[[float], None], batch: int,
         index: dict[str, tuple[Path, Thread]], parsed_into: tuple[bytes, Archive, dict[str, Thread]] | None,
         cache: ArchiveCache, store: MediaStore, outcome: BackupOutcome) -> BackupOutcome:
    from crossposter.publish import text_sha

    title = f"{registry.display(platform)} threads"
    writers: dict[Path, ArchiveWriter] = {}
    extra_args: dict[str, Callable[[list[SourcePost]], None]] = {}
    ahead: _Ahead | None = None
    if not dry_run and "on_posts" in inspect.signature(reader.read).parameters:
        def stored_path(post: SourcePost, i: int) -> str | None:
            return store.path_of(post.media[i])  # (where the download goes: a failed one holds its thread back)

        writer = writers[into] = ArchiveWriter(into, platform, timezone=config.timezone, title=title,
                                               media_path=stored_path, sha=text_sha)
        if parsed_into is not None:
            writer.known(*parsed_into)
        ahead = _Ahead(writer, index, stored_path)

        def on_posts(posts: list[SourcePost], ahead: _Ahead = ahead) -> None:
            # only what can be written: not reposts, replies to others or posts an archive records
            store.prefetch(p for p in posts if p.media and not p.repost and p.id not in index
                           and (p.reply_to is None or p.reply_to_self))
            ahead.add(posts)

        extra_args["on_posts"] = on_posts
    stack = contextlib.ExitStack()  # (the worker processes preparing sections, when there are any)
    try:
        return _read_and_write(reader, config, platform, account, into, since, dry_run, reporter, sleep, batch,
                               index, parsed_into, cache, store, outcome, extra_args, ahead, writers, title, stack)
    finally:
        if ahead is not None:
            ahead.stop()
        stack.close()


def _read_and_write(reader: Reader, config: Config, platform: str, account: str, into: Path,
                    since: datetime | None, dry_run: bool, reporter: BackupReporter, sleep: Callable[[float], None],
                    batch: int, index: dict[str, tuple[Path, Thread]],
                    parsed_into: tuple[bytes, Archive, dict[str, Thread]] | None, cache: ArchiveCache,
                    store: MediaStore, outcome: BackupOutcome, extra_args: dict[str, Callable[[list[SourcePost]], None]],
                    ahead: _Ahead | None, writers: dict[Path, ArchiveWriter], title: str,
                    stack: contextlib.ExitStack) -> BackupOutcome:
    from crossposter.backup.state import BackupState
    from crossposter.platforms.base import PlatformError, RateLimitedError, TransientError
    from crossposter.publish import text_sha

    state = BackupState.load(config.state_path, platform, account)
    cursor = state.cursor
    posts: list[SourcePost] = []
    skipped = Skipped()
    failures = 0
    while True:
        try:
            result = reader.read(cursor=cursor, since=since, on_page=reporter.page, **extra_args)
        except ValueError as e:
            if cursor is None or cursor != state.cursor:
                raise
            # a stored cursor the reader refuses (damaged, or from an older version): read everything; the
            # IDs in the archive keep what is already there from being written again
            problem = f"the stored cursor was not usable ({e}); read the whole account instead"
            reporter.note(problem)
            cursor = None
            continue
        except PlatformError as e:
            partial: ReadResult | None = getattr(e, "partial", None)
            if partial is not None:
                _merge(partial, posts, skipped, outcome)
                cursor = partial.cursor  # (failures are not forgiven for it: a reader failing after every page
                # would otherwise be retried for ever)
            wait = _wait_for(e, failures, config)
            if wait is not None and isinstance(e, RateLimitedError | TransientError):
                failures += 1
                reporter.waiting(wait, e.message)
                sleep(wait)
                continue
            if not posts and partial is None and not outcome.requests:
                raise  # nothing read at all (refused login, no such account, a broken zip): an error, not a summary
            outcome.complete = False
            problem = f"reading stopped: {e.message}" + (
                "; what was read is kept and the next run continues from there" if partial is not None else "")
            outcome.problems.append(problem)
            reporter.note(problem)
            break
        _merge(result, posts, skipped, outcome)
        cursor = result.cursor
        break
    for reason, n in skipped.counts.items():
        outcome.skipped[reason] = outcome.skipped.get(reason, 0) + n
    if ahead is not None:
        ahead.stop()  # (what it has not prepared yet, the batches do: the CPU is theirs now)

    # 3. Threads and appends.
    threads, appends = _plan(posts, index, outcome)
    held_back = False
    if not outcome.complete:
        # A read stopped half-way (newest first: Mastodon, X's API) can hold self-replies whose thread
        # starts in the part not read yet; written now, they would make a thread of their own. They wait
        # (and so does the cursor) until a read reaches their first post.
        orphans = [t for t in threads if t.root.reply_to is not None]
        if orphans:
            held_back = True
            threads = [t for t in threads if t.root.reply_to is None]
            problem = (f"{len(orphans)} thread(s) whose first post was not read yet are left for the next run "
                       f"(e.g. {orphans[0].root.url})")
            outcome.problems.append(problem)
            reporter.note(problem)

    # 4. Media and writes, batch by batch (the new sections prepared meanwhile by other processes, if it pays).
    pool = _pool(threads, into, platform, config, title, text_sha, store, writers, parsed_into, dry_run, stack)
    total = len(threads) + len(appends)
    done = 0
    first = True
    for start in range(0, max(len(threads), 1), batch):
        chunk = threads[start:start + batch]
        extra = appends if first else []
        first = False
        if not chunk and not extra:
            continue
        chunk_posts = [p for t in chunk for p in t.posts] + [p for _, a in extra for p in a.posts]
        media_total = sum(len(p.media) for p in chunk_posts)
        counter = [0]

        def on_file(total: int = media_total, counter: list[int] = counter) -> None:
            counter[0] += 1
            reporter.media(counter[0], total)

        problems_before = len(store.problems)
        paths = store.fetch_all(chunk_posts, dry_run=dry_run, on_file=on_file)
        if not dry_run:
            # the next batch's media are fetched while this one is written (a reader that hands nothing over
            # while reading, as the X archive's, would otherwise copy and sync them between the writes)
            store.prefetch(p for t in threads[start + batch:start + 2 * batch] for p in t.posts if p.media)
        failed = {pr.post.id for pr in store.problems[problems_before:]}
        for pr in store.problems[problems_before:]:
            problem = f"{pr.post.url}: media {pr.index + 1}: {pr.message}; the post is not written this time " \
                      "(the next run tries again)"
            outcome.problems.append(problem)
            reporter.note(problem)
        if failed:
            held_back = True
            chunk = [t for t in chunk if not any(p.id in failed for p in t.posts)]
            extra = [(path, a) for path, a in extra if not any(p.id in failed for p in a.posts)]

        def media_path(post: SourcePost, i: int, paths: dict[tuple[str, int], str] = paths) -> str | None:
            return paths.get((post.id, i))

        by_file: dict[Path, list[Append]] = {}
        for path, a in extra:
            by_file.setdefault(path, []).append(a)
        targets = [into, *(p for p in by_file if p != into)]
        for path in targets:
            writer = writers.get(path)
            if writer is None:
                writer = writers[path] = ArchiveWriter(path, platform, timezone=config.timezone, title=title,
                                                       media_path=media_path, sha=text_sha)
                if path is into and parsed_into is not None:
                    writer.known(*parsed_into)
            if pool is not None and path == into:
                pool.take(start + batch)
            res = writer.write(chunk if path == into else [], by_file.get(path, []), dry_run=dry_run,
                               media_path=media_path)
            outcome.threads.extend(res.threads)
            outcome.replies.extend(res.replies)
            outcome.prepared += res.prepared
            if res.already:
                outcome.skipped["already in an archive"] = outcome.skipped.get("already in an archive", 0) \
                    + res.already
            for a in res.unplaced:
                held_back = True
                problem = f"{path}: the section holding {a.anchor} is gone (moved or deleted during the backup); " \
                          f"the replies {', '.join(p.id for p in a.posts)} are written by the next run"
                outcome.problems.append(problem)
                reporter.note(problem)
        done += len(chunk) + len(extra)
        reporter.threads(done, total)
    for path, writer in writers.items():
        if writer.last is not None:
            cache.entries[(path.resolve(), platform)] = writer.last
    outcome.media_added = store.downloaded
    outcome.media_reused = store.reused
    outcome.notes.extend(_notes_of(posts, outcome))

    # 5. The cursor, last.
    if not dry_run and not held_back and (cursor != state.cursor or state.last_run is None or outcome.posts_added):
        state.save(cursor)
        outcome.cursor_saved = True
    return outcome


class _Ahead:
    """New threads handed to `ArchiveWriter.prepare` on a worker thread while the pages are still read.

    A thread is handed over once its first post is known and a whole page went by without adding to
    it: readers list newest first (Mastodon: the first post comes last) or oldest first (Bluesky: the
    replies follow within a page or two), and preparing a thread that is still growing would be work
    thrown away. `add` is called by the reader (from its own thread), once per page.
    """

    def __init__(self, writer: ArchiveWriter, index: dict[str, tuple[Path, Thread]],
                 media_path: Callable[[SourcePost, int], str | None]) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.writer = writer
        self.media_path = media_path
        self.index = index
        self.posts: dict[str, SourcePost] = {}
        self.children: dict[str, list[SourcePost]] = {}
        self.changed: set[str] = set()  # first posts of threads that grew during the last page
        self.lock = threading.Lock()
        self.pool: ThreadPoolExecutor | None = ThreadPoolExecutor(max_workers=1, thread_name_prefix="backup-prepare")

    def add(self, posts: list[SourcePost]) -> None:
        with self.lock:
            if self.pool is None:
                return
            changed: set[str] = set()
            for p in posts:
                if p.repost or p.id in self.index or p.id in self.posts or (
                        p.reply_to is not None and not p.reply_to_self):
                    continue
                self.posts[p.id] = p
                if p.reply_to is not None:
                    self.children.setdefault(p.reply_to, []).append(p)
                root = self._root(p)
                if root is not None:
                    changed.add(root)
            ready, self.changed = self.changed - changed, changed
            for root in ready:
                self.pool.submit(self._prepare, self._thread(self.posts[root]))

    def stop(self) -> None:
        """No more preparing: what is queued is dropped, what runs is waited for."""
        with self.lock:
            pool, self.pool = self.pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _root(self, post: SourcePost) -> str | None:
        """The thread's first post, if it is known yet (the posts above `post` may come in a later page)."""
        seen = 0
        while post.reply_to is not None:
            parent = self.posts.get(post.reply_to)
            seen += 1
            if parent is None or seen > len(self.posts):  # (a cycle of forged replies ends here too)
                return None
            post = parent
        return post.id

    def _thread(self, root: SourcePost) -> SourceThread:
        """As `build_threads` makes it: the first post, then every self-reply below it by time."""
        rest: list[SourcePost] = []
        todo = list(self.children.get(root.id, ()))
        while todo:
            p = todo.pop()
            rest.append(p)
            todo.extend(self.children.get(p.id, ()))
        rest.sort(key=lambda q: (q.created_at, q.id))
        return SourceThread([root, *rest])

    def _prepare(self, thread: SourceThread) -> None:
        try:
            self.writer.prepare(thread, self.media_path)
        except Exception:  # noqa: BLE001 - a bug here must not stop the backup: the batch renders it as usual
            log.debug("preparing %s failed", thread.root.url, exc_info=True)


def _pool(threads: list[SourceThread], into: Path, platform: str, config: Config, title: str,
          text_sha: Callable[[str], str], store: MediaStore, writers: dict[Path, ArchiveWriter],
          parsed_into: tuple[bytes, Archive, dict[str, Thread]] | None, dry_run: bool,
          stack: contextlib.ExitStack) -> PreparePool | None:
    """Worker processes preparing the new sections while the batches are written, when that pays.

    Only for many threads not prepared yet (a reader handing everything over at once, as the X
    archive's), with a second CPU and `fork`, into a file with `\n` line endings (the prepared sections
    have those). Everything else is prepared by the batches themselves, as before.
    """
    from crossposter.backup.prepare_pool import MIN_THREADS, PreparePool
    from crossposter.metadata import default_eol

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if dry_run or into in writers or cpus < 2 or len(threads) < MIN_THREADS or not hasattr(os, "fork") \
            or (parsed_into is not None and default_eol(parsed_into[0]) != b"\n"):
        return None  # (a writer already there is `_Ahead`'s: it prepared the sections while reading)
    writer = writers[into] = ArchiveWriter(into, platform, timezone=config.timezone, title=title,
                                           media_path=lambda post, i: None, sha=text_sha)
    if parsed_into is not None:
        writer.known(*parsed_into)

    def stored_path(post: SourcePost, i: int) -> str | None:
        return store.path_of(post.media[i])

    return stack.enter_context(PreparePool(writer, threads, stored_path, workers=min(cpus, 2)))


def _recorded_index(config: Config, into: Path, archives: Sequence[Path] | None, platform: str,
                    cache: ArchiveCache) -> tuple[dict[str, tuple[Path, Thread]],
                                          tuple[bytes, Archive, dict[str, Thread]] | None]:
    """Every recorded ID → (archive, thread); and `into` as read and parsed, for its writer to start from."""
    from crossposter.archive import ArchiveError, decode_archive, parse_archive

    files = list(archives) if archives is not None else config.archive_paths()
    seen: dict[Path, None] = {}
    for f in [into, *files]:
        seen.setdefault(Path(f).resolve(), None)
    index: dict[str, tuple[Path, Thread]] = {}
    parsed_into = None
    for f in seen:
        if not f.exists():
            continue
        try:
            data = f.read_bytes()
        except OSError as e:
            raise ArchiveError(f, None, f"cannot read the archive: {e.strerror or e}") from None
        known = cache.entries.get((f, platform))
        if known is not None and known[0] == data:
            _, archive, ids = known
        else:
            archive = parse_archive(decode_archive(data, f), f)  # ArchiveError: to fix before anything is written
            ids = recorded_ids(archive, platform)
            cache.entries[(f, platform)] = (data, archive, ids)
        target = into if f == into.resolve() else f
        if target is into:
            parsed_into = (data, archive, ids)
        for post_id, thread in ids.items():
            index.setdefault(post_id, (target, thread))
    return index, parsed_into


def _notes_of(posts: list[SourcePost], outcome: BackupOutcome) -> Iterator[str]:
    """The readers' notes of the posts this run wrote, in archive order (a post read but not written has none)."""
    by_id = {p.id: p for p in posts if p.notes}
    if not by_id:
        return
    for written in [*outcome.threads, *outcome.replies]:
        for post_id in written.post_ids:
            post = by_id.get(post_id)
            for note in post.notes if post is not None else ():
                yield f"{post.url or post_id}: {note}"


def _merge(result: ReadResult, posts: list[SourcePost], skipped: Skipped, outcome: BackupOutcome) -> None:
    posts.extend(result.posts)
    for reason, n in result.skipped.counts.items():
        skipped.add(reason, n)
    outcome.requests += result.requests
    outcome.posts_read += len(result.posts)


def _wait_for(error: Exception, failures: int, config: Config) -> float | None:
    """Seconds to wait before reading again, or None to stop (see `retry` in the config)."""
    from crossposter.platforms.base import RateLimitedError, TransientError

    if failures >= config.retry.attempts:
        return None
    if isinstance(error, RateLimitedError):
        if error.reset_at is None:
            wait = min(config.retry.max_delay, config.retry.base_delay * 2 ** failures)
        else:
            wait = (error.reset_at - datetime.now(UTC)).total_seconds() + 1
        return max(0.0, wait) if wait <= config.retry.max_rate_limit_wait else None
    if isinstance(error, TransientError):
        hinted = getattr(error, "retry_after", None)
        delay = hinted if hinted is not None else random.uniform(0, config.retry.base_delay * 2 ** failures)
        return min(delay, config.retry.max_delay)
    return None


def _plan(posts: list[SourcePost], index: dict[str, tuple[Path, Thread]],
          outcome: BackupOutcome) -> tuple[list[SourceThread], list[tuple[Path, Append]]]:
    """New threads, and replies to recorded posts, one `Append` per section (with the archive that has it)."""
    unique: dict[str, SourcePost] = {}
    already = 0
    for p in posts:
        if p.id in index:
            already += 1
        else:
            unique.setdefault(p.id, p)
    if already:
        outcome.skipped["already in an archive"] = outcome.skipped.get("already in an archive", 0) + already
    # A self-reply to a recorded post (or to one being appended) goes to that post's section.
    home: dict[str, tuple[Path, str, Thread]] = {}  # post id -> (archive, anchor, section)
    ordered = sorted(unique.values(), key=lambda q: (q.created_at, q.id))
    changed = True
    while changed:
        changed = False
        for p in ordered:
            if p.id in home or p.repost or not p.reply_to_self or p.reply_to is None:
                continue
            if p.reply_to in index:
                path, section = index[p.reply_to]
                home[p.id] = (path, p.reply_to, section)
                changed = True
            elif p.reply_to in home:
                home[p.id] = home[p.reply_to]
                changed = True
    groups: dict[tuple[Path, int], tuple[Path, Append]] = {}
    for p in ordered:
        if p.id in home:
            path, anchor, section = home[p.id]
            key = (path, id(section))
            if key not in groups:
                groups[key] = (path, Append(anchor, []))
            groups[key][1].posts.append(p)
    skipped = Skipped()
    threads = build_threads((p for p in ordered if p.id not in home), skipped)
    for reason, n in skipped.counts.items():
        outcome.skipped[reason] = outcome.skipped.get(reason, 0) + n
    return threads, list(groups.values())
