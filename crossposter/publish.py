"""Publish one thread to every target platform: pre-flight, chains, retries, resume, recording.

The archive is the source of truth, so every decision here is made to keep it
true after any crash:

* nothing is sent before everything that could stop the thread half-way has been
  checked (pre-flight), because a half-posted thread is worse than none;
* each accepted post is written into the thread's metadata block *before* the next
  request, so a rerun knows exactly where to continue;
* every retry (in this run or after a crash) reuses what makes it harmless on that
  platform: the Bluesky rkey/createdAt stored as `pending` before the first attempt,
  Mastodon's content-derived Idempotency-Key, and for X a refusal to guess when the
  server says "duplicate content";
* a run holds an exclusive lock per thread, so two runs can never both post it.

Platforms run concurrently (each SDK is synchronous, so one thread per chain): a
thread reaches all three in about the time of the slowest one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import logging
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crossposter.model import PlatformName, Post, ThreadPlan
from crossposter.outcome import OutcomeState, PlatformOutcome, PublishResult
from crossposter.platforms import registry
from crossposter.platforms.base import (
    Adapter,
    ImageUpload,
    Limits,
    MaybePostedError,
    OutgoingPost,
    PlatformError,
    PostRef,
    RateLimitedError,
    RejectedError,
    TransientError,
    UnauthorizedError,
    UploadedMedia,
)
from crossposter.reporter import Reporter, default_reporter

if TYPE_CHECKING:
    from crossposter.archive import Archive, Thread
    from crossposter.config import Config
    from crossposter.thread_meta import Entry

log = logging.getLogger("crossposter.publish")


Recorder = Callable[[Path, str, Callable[[dict], None]], dict]
#: A prepared image: (path, alt text, byte limit, pixel limit).
_ImageKey = tuple[str, str, int, "int | None"]
Sleep = Callable[[float], None]
Clock = Callable[[], datetime]


# --------------------------------------------------------------------------- errors


class PreflightError(Exception):
    """Everything that stops the thread before the first request; nothing was posted anywhere."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class ThreadLockedError(Exception):
    """Another run holds this thread's lock (it is being posted right now)."""

    def __init__(self, archive: Path, title: str, lock_path: Path) -> None:
        self.archive = archive
        self.title = title
        self.lock_path = lock_path
        super().__init__(f"{archive}: thread {title!r} is being posted by another crossposter run "
                         f"(lock {lock_path}); wait for it to finish, then run again to resume")


class _Stop(Exception):
    """Ends a chain with a given outcome state; raised from deep inside retries."""

    def __init__(self, state: OutcomeState, message: str, retry_at: datetime | None = None) -> None:
        super().__init__(message)
        self.state = state
        self.message = message
        self.retry_at = retry_at


# --------------------------------------------------------------------------- helpers


def text_sha(text: str) -> str:
    """What the archive records to notice a later edit of a published post: 12 hex of sha256(text)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def lock_path_for(config: Config, archive_path: Path, title: str) -> Path:
    key = hashlib.sha256(f"{Path(archive_path).resolve()}\0{title}".encode()).hexdigest()[:32]
    return config.state_path / "locks" / f"{key}.lock"


@contextlib.contextmanager
def thread_lock(config: Config, archive_path: Path, title: str) -> Iterator[Path]:
    """Hold the thread's run lock (non-blocking flock) or raise ThreadLockedError.

    flock dies with the process, so a crashed run never leaves a stale lock behind.
    """
    path = lock_path_for(config, archive_path, title)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as e:
        raise PreflightError([f"{config.state_path}: cannot create the run lock {path.name} in the state "
                              f"directory ({e.strerror or e}); make state_dir writable"]) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ThreadLockedError(Path(archive_path), title, path) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield path
    finally:
        os.close(fd)


def _ref_from_entry(entry: Entry) -> PostRef:
    return PostRef(id=entry.id, url=entry.link, cid=entry.cid)


# --------------------------------------------------------------------------- retries


@dataclass
class _Runtime:
    config: Config
    stop_event: threading.Event
    sleep: Sleep | None
    now: Clock
    rng: random.Random
    reporter: Reporter

    def wait(self, seconds: float) -> None:
        if seconds > 0:
            if self.sleep is not None:
                self.sleep(seconds)
            else:
                self.stop_event.wait(seconds)
        if self.stop_event.is_set():
            raise _Stop(OutcomeState.STOPPED, "stopped on request; run again to resume")

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter: uniform(0, min(max_delay, base·2^(attempt-1)))."""
        r = self.config.retry
        return self.rng.uniform(0, min(r.max_delay, r.base_delay * (2 ** (attempt - 1))))

    def call(self, platform: PlatformName, what: str, fn: Callable[[], Any]) -> Any:
        """Run one request, retrying transient failures and near rate limits; other errors propagate."""
        r = self.config.retry
        attempt = 0
        while True:
            if self.stop_event.is_set():
                raise _Stop(OutcomeState.STOPPED, "stopped on request; run again to resume")
            try:
                return fn()
            except TransientError as e:
                attempt += 1
                if attempt >= r.attempts:
                    retry_at = self.now() + timedelta(seconds=max(r.max_delay, e.retry_after or 0))
                    raise _Stop(OutcomeState.TRANSIENT, f"{what}: gave up after {attempt} attempts: {e.message}",
                                retry_at) from None
                delay = self.backoff(attempt)
                if e.retry_after:
                    delay = max(delay, min(e.retry_after, r.max_rate_limit_wait))
                self.reporter.note(platform, f"{what}: {e.message}; retry {attempt + 1}/{r.attempts} "
                                             f"in {delay:.1f}s")
                self.wait(delay)
            except RateLimitedError as e:
                attempt += 1
                if e.reset_at is None:
                    if attempt >= r.attempts:
                        raise _Stop(OutcomeState.RATE_LIMITED, f"{what}: rate limited ({e.message}), no reset time given",
                                    self.now() + timedelta(seconds=r.max_delay)) from None
                    delay = self.backoff(attempt)
                else:
                    delay = (e.reset_at - self.now()).total_seconds() + 1.0
                    if delay > r.max_rate_limit_wait or attempt >= r.attempts:
                        raise _Stop(OutcomeState.RATE_LIMITED, f"{what}: rate limited until "
                                    f"{e.reset_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC; resume after that",
                                    e.reset_at.astimezone(UTC)) from None
                self.reporter.note(platform, f"{what}: rate limited, waiting {max(delay, 0):.0f}s")
                self.wait(max(delay, 0.0))


# --------------------------------------------------------------------------- recording


class _GroupRecorder:
    """Serialises metadata writes from the platform threads and merges those that arrive together.

    Each chain must see its post recorded before its next request, but three chains finishing a
    post at about the same time need not pay for three lock/parse/fsync rounds: whoever finds no
    write in progress becomes the writer and applies every update queued so far in one atomic
    write (group commit); the others wait for it. An update that raises fails alone.
    """

    def __init__(self, update: Recorder, archive_path: Path, title: str) -> None:
        self._update = update
        self._path = archive_path
        self._title = title
        self._cond = threading.Condition()
        self._queue: list[_Ticket] = []
        self._writing = False
        self.writes = 0

    def __call__(self, fn: Callable[[dict], None]) -> None:
        ticket = _Ticket(fn)
        with self._cond:
            self._queue.append(ticket)
            while not ticket.done and self._writing:
                self._cond.wait()
            if ticket.done:
                if ticket.error is not None:
                    raise ticket.error
                return
            self._writing = True
            batch, self._queue = self._queue, []
        error: BaseException | None = None
        try:
            self._update(self._path, self._title, lambda meta: [t.apply(meta) for t in batch])
            self.writes += 1
        except BaseException as e:  # the write itself failed: every update in it failed
            error = e
        with self._cond:
            for t in batch:
                t.done = True
                if error is not None and t.error is None:
                    t.error = error
            self._writing = False
            self._cond.notify_all()
        if ticket.error is not None:
            raise ticket.error


class _Ticket:
    def __init__(self, fn: Callable[[dict], None]) -> None:
        self.fn = fn
        self.done = False
        self.error: BaseException | None = None

    def apply(self, meta: dict) -> None:
        # An update checks before it mutates (see _Chain._apply), so a failing one leaves meta as it was.
        try:
            self.fn(meta)
        except Exception as e:
            self.error = e


def _default_recorder() -> Recorder:
    from crossposter.metadata import update_thread_metadata

    return update_thread_metadata


# --------------------------------------------------------------------------- one chain


@dataclass
class _Chain:
    platform: PlatformName
    adapter: Adapter
    posts: list[Post]
    recorded: list[Entry]  # from the validated block (crossposter.thread_meta)
    pending: dict | None
    prepared: dict[_ImageKey, ImageUpload]
    max_image_bytes: int
    write: Callable[[Callable[[dict], None]], None]
    thread_key: str
    language: str
    runtime: _Runtime
    upload_ahead: bool = True
    max_image_pixels: int | None = None

    def outcome(self, state: OutcomeState, posted: int, message: str = "", retry_at: datetime | None = None,
                links: list[str] | None = None) -> PlatformOutcome:
        return PlatformOutcome(self.platform, state, posted, len(self.posts), links or [], message, retry_at)

    def _upload(self, index: int) -> list[UploadedMedia]:
        out = []
        for img in self.posts[index].images:
            data = self.prepared[(str(img.path), img.alt, self.max_image_bytes, self.max_image_pixels)]
            out.append(self.runtime.call(self.platform, f"post {index + 1}: upload {img.src}",
                                    lambda d=data: self.adapter.upload_image(d)))
        return out

    def _pending_for(self, index: int) -> dict | None:
        """The `pending` entry of post `index`: what its adapter fixes before the first attempt (see
        `Adapter.prepare_attempt`), or None when the platform needs nothing fixed."""
        fixed = self.adapter.prepare_attempt(self.runtime.now())
        if fixed is None:
            return None
        return {"index": index, **fixed, "sha": text_sha(self.posts[index].text)}

    def run(self) -> PlatformOutcome:
        outcome = self._run()
        self.runtime.reporter.chain_ended(outcome)
        return outcome

    def _record(self, update: Callable[[dict], None]) -> None:
        """Write `update` into the thread's block (grouped with the other chains' writes) and report the wait."""
        started = time.perf_counter()
        self.write(update)
        self.runtime.reporter.recorded(self.platform, time.perf_counter() - started)

    def _run(self) -> PlatformOutcome:
        p = self.platform
        total = len(self.posts)
        links = [e.link for e in self.recorded]
        start = len(self.recorded)
        self.runtime.reporter.start(p, start, total)
        if start >= total:
            return self.outcome(OutcomeState.DONE, start, "already posted", links=links)
        parent = _ref_from_entry(self.recorded[-1]) if self.recorded else None
        root = _ref_from_entry(self.recorded[0]) if self.recorded else None
        # Two upload lanes, one post ahead: the next post's images go up while this one is posted, and at
        # the start the first two posts' images go up side by side. One lane fell behind on X, where an
        # image is two requests (upload, then alt text) while a post is one.
        pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix=f"upload-{p}") if self.upload_ahead else None
        futures: dict[int, Future[list[UploadedMedia]]] = {}

        def ahead(i: int) -> None:
            for j in (i, i + 1):
                if pool is not None and j < total and j not in futures and self.posts[j].images:
                    futures[j] = pool.submit(self._upload, j)

        def media_for(i: int) -> list[UploadedMedia]:
            if pool is None:
                return self._upload(i)
            ahead(i)
            return futures.pop(i).result() if i in futures else []

        posted = start
        try:
            if self.adapter.replies_need_cid:
                parent, root = self._complete_refs(parent, root)
            # The first post's images are on the wire while its pending entry is written (an upload
            # is not a post: the pending entry only has to be durable before the request).
            ahead(start)
            if not (self.pending and self.pending.get("index") == start and self.pending.get("rkey")):
                self.pending = self._pending_for(start)
                if self.pending is not None:
                    pend = dict(self.pending)
                    self._record(lambda meta: meta.setdefault("pending", {}).__setitem__(p, pend))
            for i in range(start, total):
                if self.runtime.stop_event.is_set():
                    raise _Stop(OutcomeState.STOPPED, "stopped on request; run again to resume")
                post = self.posts[i]
                sha = text_sha(post.text)
                media = media_for(i)
                out = OutgoingPost(text=post.text, index=i, thread_key=self.thread_key, facets=list(post.facets),
                                   media=media, language=self.language)
                if self.pending is not None:  # fixed before the first attempt (Adapter.prepare_attempt)
                    out.rkey = str(self.pending["rkey"])
                    out.created_at = str(self.pending["created_at"])
                try:
                    ref = self.runtime.call(p, f"post {i + 1}",
                                       lambda o=out, par=parent, r=root: self.adapter.publish(o, par, r))
                except MaybePostedError as e:
                    ref = self._settle_maybe_posted(i, parent, e)
                entry: dict[str, Any] = {"id": ref.id, "url": ref.url}
                if ref.cid:
                    entry["cid"] = ref.cid
                entry["sha"] = sha
                next_pending = self._pending_for(i + 1) if i + 1 < total else None
                try:
                    self._record(lambda meta, k=i, e=entry, n=next_pending: self._apply(meta, k, e, n))
                except Exception as err:  # the post is out but not recorded: say exactly what to write by hand
                    raise _Stop(OutcomeState.ERROR, f"post {i + 1} was published ({ref.url}) but could not be recorded in "
                                         f"the archive: {err}. Add `- {{id: \"{ref.id}\"}}` as entry {i + 1} under "
                                         f"`{p}:` in the thread's crossposter block before running again.") from None
                self.pending = next_pending
                posted = i + 1
                links.append(ref.url)
                parent = ref
                root = root or ref
                self.runtime.reporter.posted(p, posted, total, ref.url)
            return self.outcome(OutcomeState.DONE, posted, links=links)
        except _Stop as s:
            return self.outcome(s.state, posted, s.message, s.retry_at, links)
        except RejectedError as e:
            return self.outcome(OutcomeState.REJECTED, posted, f"post {posted + 1} (line {self.posts[posted].line}) was "
                                                    f"rejected: {e.message}", links=links)
        except UnauthorizedError as e:
            return self.outcome(OutcomeState.UNAUTHORIZED, posted, f"{e.message} (check the credentials, then run again)",
                                links=links)
        except MaybePostedError as e:
            return self.outcome(OutcomeState.MAYBE_POSTED, posted, self._maybe_posted_message(posted, e), links=links)
        except PlatformError as e:
            return self.outcome(OutcomeState.ERROR, posted, e.message, links=links)
        except Exception as e:  # an adapter bug must not take the other platforms down
            log.exception("%s: unexpected error", p)
            return self.outcome(OutcomeState.ERROR, posted, f"unexpected {type(e).__name__}: {e}", links=links)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def _complete_refs(self, parent: PostRef | None, root: PostRef | None) -> tuple[PostRef | None, PostRef | None]:
        """A Bluesky reply needs the cid of root and parent; an ID recorded by hand lacks it: look it up."""
        fixed = []
        for ref in (parent, root):
            if ref is not None and not ref.cid:
                found = self.runtime.call(self.platform, "look up recorded post", lambda r=ref: self.adapter.lookup(r.id))
                if found is None or not found.ref.cid:
                    raise _Stop(OutcomeState.ERROR, f"the recorded post {ref.id} no longer exists on {self.platform}; remove it from "
                                         "the thread's crossposter block to post the rest as a new thread")
                ref = PostRef(id=ref.id, url=ref.url, cid=found.ref.cid)
            fixed.append(ref)
        return fixed[0], fixed[1]

    def _apply(self, meta: dict, index: int, entry: dict, next_pending: dict | None) -> None:
        lst = meta.get(self.platform)
        if not isinstance(lst, list):
            lst = []
        if len(lst) != index:
            raise RuntimeError(f"the archive holds {len(lst)} {self.platform} posts, expected {index} "
                               "(was the block edited while posting?)")
        lst.append(entry)
        meta[self.platform] = lst
        pending = meta.get("pending") if isinstance(meta.get("pending"), dict) else {}
        pending.pop(self.platform, None)
        if next_pending is not None:
            pending[self.platform] = next_pending
        if pending:
            meta["pending"] = pending
        else:
            meta.pop("pending", None)

    def _settle_maybe_posted(self, index: int, parent: PostRef | None, e: MaybePostedError) -> PostRef:
        """X refused the text as a duplicate: an earlier attempt (lost answer, crash) probably got through.

        The adapter's `find_recent` (Adapter protocol) looks for that post among the account's recent
        ones so it can be recorded; without a match we stop and ask the user, never post again blindly.
        """
        text = self.posts[index].text
        try:
            found = self.runtime.call(self.platform, f"post {index + 1}: look for an earlier attempt",
                                      lambda: self.adapter.find_recent(text, parent))
        except PlatformError as err:
            log.warning("%s: could not look for an earlier attempt of post %d: %s", self.platform, index + 1,
                        err.message)
            found = None
        if found is not None:
            self.runtime.reporter.note(self.platform, f"post {index + 1} was already published by an earlier "
                                                      f"attempt: {found.url}")
            return found
        raise _Stop(OutcomeState.MAYBE_POSTED, self._maybe_posted_message(index, e))

    def _maybe_posted_message(self, index: int, e: PlatformError) -> str:
        post = self.posts[index]
        return (f"post {index + 1} (line {post.line}) may already be on {self.platform}: {e.message}. "
                f"Check the account. If the post is there, record it by adding "
                f"`- {{id: \"<its id>\", url: \"<its link>\", sha: {text_sha(post.text)}}}` as entry {index + 1} "
                f"under `{self.platform}:` in the thread's crossposter block, then run post again to continue; "
                "if it is not there, edit the post's text (the platform refuses an identical one) and run again.")


# --------------------------------------------------------------------------- pre-flight


def warm_up(platforms: list[PlatformName]) -> None:
    """Pay a fresh process's one-time costs now, offline, instead of inside the first publication.

    Planning's own lazy imports and first use here; each platform's (its SDK, an HTTP stack, models
    completed on first use) in its adapter module's `warm_up`. A process started ahead of a due thread
    (the daemon's publisher) calls this while it waits; nothing here touches the network.
    """
    import importlib

    # The publication's own lazy imports: planning (render/split/counting, ~70 ms) and Pillow's codecs.
    with contextlib.suppress(Exception):
        importlib.import_module("crossposter.plan")
        importlib.import_module("crossposter.images")
        from PIL import Image

        Image.init()
    # Planning's first use compiles each platform's URL patterns (~12 ms for X's): plan a tiny thread.
    with contextlib.suppress(Exception):
        from crossposter.archive import parse_archive
        from crossposter.plan import PlanOptions, plan_thread

        sample = parse_archive("## Warm-up\n\nA post with https://example.com/a?b=1, #tag and @someone.example.\n",
                               Path(tempfile.gettempdir()) / "crossposter-warm-up.md")
        plan_thread(sample, sample.threads[0], PlanOptions(decode_images=False), list(registry.names()))
    for p in platforms:
        with contextlib.suppress(Exception):
            registry.get(p).adapter_module().warm_up()


def _where(path: Path, line: int | None, platform: PlatformName | None, message: str) -> str:
    loc = f"{path}:{line}" if line else str(path)
    return f"{loc}: [{platform}] {message}" if platform else f"{loc}: {message}"


def _state_dir_problems(config: Config) -> list[str]:
    """What `thread_lock` would meet in state_dir, found without creating anything (for the dry run)."""
    folder = config.state_path / "locks"
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.is_dir() and os.access(probe, os.W_OK | os.X_OK):
        return []
    return [f"{config.state_path}: cannot create the run lock in the state directory ({probe} is not a writable "
            "folder); make state_dir writable"]


def _credential_problems(config: Config, targets: list[str], path: Path, line: int) -> list[str]:
    """Missing secrets and settings of the target platforms, as a real run's adapters would find them."""
    from crossposter.config import ConfigError, missing_settings, platform_secrets

    found: list[str] = []
    for p in targets:
        try:
            platform_secrets(p)
        except ConfigError as e:
            found += [m for m in e.problems if m not in found]
    found += [m for m in missing_settings(config)
              if m not in found and any(m.startswith(f"platforms.{p}") for p in targets)]
    return [_where(path, line, None, m) for m in found]


def _writeback_problems(thread: Thread, path: Path) -> list[str]:
    """Whether the block can be written back as it is read: every post is recorded by rewriting it."""
    from crossposter.metadata import render_block

    try:
        render_block(dict(thread.metadata))
    except ValueError as e:
        return [_where(path, thread.block_line or thread.line, None, f"the crossposter block of {thread.title!r} "
                                                                    f"cannot be written back: {e}")]
    return []


def _plan_problems(plan: ThreadPlan, path: Path) -> list[str]:
    return [_where(path, d.line, d.platform, d.message) for d in plan.errors]


def _writable_problems(path: Path, line: int) -> list[str]:
    problems = []
    # os.access says yes to root even for a read-only file; the mode bits say what the owner meant.
    if not os.access(path, os.W_OK) or not path.stat().st_mode & 0o222:
        problems.append(_where(path, line, None, "the archive is not writable; crossposter records each post's ID "
                                                 "in it (fix its permissions)"))
    if not os.access(path.parent, os.W_OK | os.X_OK):
        problems.append(_where(path, line, None, f"the folder {path.parent} is not writable; the archive is "
                                                 "rewritten through a temp file there (fix its permissions)"))
    return problems


def _image_problems(plan: ThreadPlan, path: Path, platforms: list[PlatformName], starts: dict[str, int]) -> list[str]:
    """Existence and folder checks need no network: run them before any login (once per file)."""
    from crossposter.images import check_image

    folder = path.parent.resolve()
    problems: list[str] = []
    reported = {d.line for d in plan.errors}  # the planner may already have said it
    seen: set[str] = set()
    for p in platforms:
        for post in plan.platforms[p].posts[starts.get(p, 0):]:
            for img in post.images:
                if str(img.path) in seen or img.line in reported:
                    continue
                seen.add(str(img.path))
                resolved = Path(img.path).resolve()
                if not resolved.is_relative_to(folder):
                    problems.append(_where(path, img.line, None, f"image {img.src} is outside the archive's "
                                                                 f"folder {folder}; move it inside"))
                    continue
                problem = check_image(resolved)
                if problem:
                    problems.append(_where(path, img.line, None, f"image {img.src}: {problem}"))
    return problems


def _prepare_images(plan: ThreadPlan, path: Path, platform: PlatformName, start: int, limits: Limits,
                    cache: dict[_ImageKey, ImageUpload], lock: threading.Lock) -> list[str]:
    """Every image still to upload to `platform`, within its byte and pixel limits, into `cache`.

    Run inside `images.shared_work()`: platforms with the same limits get the same bytes, and any
    limit reuses the file's one decode and every encoding another limit already made.
    """
    from crossposter.images import ImageError, prepare_image

    problems = []
    max_bytes, max_pixels = limits.max_image_bytes, limits.max_image_pixels
    for post in plan.platforms[platform].posts[start:]:
        for img in post.images:
            key = (str(img.path), img.alt, max_bytes, max_pixels)
            with lock:
                if key in cache:
                    continue
            try:
                prepared = prepare_image(Path(img.path), img.alt, max_bytes, max_pixels)
            except ImageError as e:
                problems.append(_where(path, img.line, platform, f"image {img.src}: {e.problem}"))
                continue
            except OSError as e:
                problems.append(_where(path, img.line, platform, f"image {img.src}: {e}"))
                continue
            with lock:
                cache[key] = prepared
    return problems


def _images_to_upload(plan: ThreadPlan, platforms: list[PlatformName], starts: dict[str, int]) -> list[Path]:
    """Each distinct image file some platform still has to upload, in thread order."""
    seen: dict[str, Path] = {}
    for p in platforms:
        for post in plan.platforms[p].posts[starts.get(p, 0):]:
            for img in post.images:
                seen.setdefault(str(img.path), Path(img.path))
    return list(seen.values())


def _warm_images(paths: list[Path]) -> None:
    from crossposter.images import warm

    for path in paths:
        warm(path)


def _check_recorded(plan: ThreadPlan, platform: PlatformName, recorded: list[Entry]) -> str | None:
    """Why the published part of the thread no longer matches the archive, or None."""
    posts = plan.platforms[platform].posts
    if len(recorded) > len(posts):
        return (f"{len(recorded)} posts are already published on {platform}, but the thread now splits into "
                f"only {len(posts)}; restore the text, or remove the `{platform}:` entries from the block to post "
                "it again as a new thread")
    for i, entry in enumerate(recorded):
        if entry.sha and entry.sha != text_sha(posts[i].text):
            return (f"post {i + 1} (line {posts[i].line}) was edited after it was published on {platform} "
                    f"({entry.link}); restore its text, or remove the `{platform}:` entries from the block to "
                    "post the thread again as a new thread")
    return None


# --------------------------------------------------------------------------- the engine


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class PublishOptions:
    """How one run publishes, beyond the thread itself: what tests, the dry run and benchmarks change."""

    #: the platforms to publish to (default: every enabled one)
    platforms: list[PlatformName] | None = None
    #: adapters to use instead of building them from the config (fakes, test doubles)
    adapters: dict[str, Adapter] | None = None
    #: set to stop after the request in flight (SIGTERM in the daemon, Ctrl-C in `post`)
    stop_event: threading.Event = field(default_factory=threading.Event)
    #: progress goes here; None: rich bars when `progress`, log lines otherwise (made after pre-flight)
    reporter: Reporter | None = None
    progress: bool = False
    #: the clock (tests): `sleep` replaces waiting on `stop_event`, `now` the time
    sleep: Sleep | None = None
    now: Clock = _utc_now
    #: writes the thread's block (`metadata.update_thread_metadata`, or a dry run's copy)
    recorder: Recorder | None = None
    dry_run: bool = False
    #: upload the next post's images while this one is posted
    upload_ahead: bool = True
    rng: random.Random = field(default_factory=random.Random)


def publish_thread(config: Config, archive_path: Path, title: str, platforms: list[PlatformName] | None = None, *,
                   adapters: dict[str, Adapter] | None = None, stop_event: threading.Event | None = None,
                   progress: bool | None = None, sleep: Sleep | None = None, now: Clock | None = None,
                   recorder: Recorder | None = None, dry_run: bool = False, upload_ahead: bool = True,
                   rng: random.Random | None = None, reporter: Reporter | None = None) -> PublishResult:
    """Publish (or resume) one thread; see the module docstring for the guarantees.

    Extra keywords beyond the contract exist for tests, benchmarks and the dry run (see `PublishOptions`):
    `sleep`/`now` replace the real clock, `recorder` replaces `metadata.update_thread_metadata`, `reporter`
    receives the progress, `dry_run` uses in-process fakes (unless `adapters` are given) and records into a
    temp copy whose bytes come back as `archive_after`.
    Raises PreflightError (nothing posted) or ThreadLockedError (another run is posting it).
    """
    options = PublishOptions(
        platforms=platforms, adapters=adapters, stop_event=stop_event or threading.Event(), reporter=reporter,
        progress=sys.stdout.isatty() if progress is None else progress, sleep=sleep, now=now or _utc_now,
        recorder=recorder, dry_run=dry_run, upload_ahead=upload_ahead, rng=rng or random.Random())
    return publish_with(config, archive_path, title, options)


def publish_with(config: Config, archive_path: Path, title: str, options: PublishOptions) -> PublishResult:
    """`publish_thread` with its options in one object."""
    archive_path = Path(archive_path).resolve()
    if options.dry_run:
        tmpdir = Path(tempfile.mkdtemp(prefix="crossposter-dry-run-"))
        try:
            copy = tmpdir / archive_path.name
            shutil.copyfile(archive_path, copy)
            base = options.recorder or _default_recorder()

            def dry_recorder(_path: Path, t: str, fn: Callable[[dict], None]) -> dict:
                return base(copy, t, fn)

            adapters = options.adapters
            if adapters is None:
                from crossposter.platforms.fakes import fake_adapters

                adapters = dict(fake_adapters(options.platforms or config.enabled_platforms(), config=config,
                                              strict=False))
            result = _publish(config, archive_path, title,
                              dataclasses.replace(options, adapters=adapters, recorder=dry_recorder))
            result.archive_after = copy.read_bytes()
            return result
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)
    # The lock is named after the canonical heading, so `--thread "mixtral of experts"` and the exact title
    # cannot take two different locks for the same thread.
    from crossposter.archive import ArchiveError, read_archive

    try:
        canonical = read_archive(archive_path).find(title).title
    except ArchiveError as e:
        raise PreflightError([str(e)]) from None
    with thread_lock(config, archive_path, canonical):
        return _publish(config, archive_path, title,
                        dataclasses.replace(options, recorder=options.recorder or _default_recorder()))


def _publish(config: Config, archive_path: Path, title: str, options: PublishOptions) -> PublishResult:
    """The run itself, under the thread's lock (or on a dry run's copy): pre-flight, log-ins, chains."""
    platforms, dry_run = options.platforms, options.dry_run
    assert options.recorder is not None  # publish_with sets it
    from crossposter.archive import ArchiveError, read_archive
    from crossposter.config import ConfigError, platform_secrets
    from crossposter.plan import plan_thread

    # 1. the archive and the thread (read under the run lock: nobody else writes its block now)
    try:
        archive: Archive = read_archive(archive_path)
        thread: Thread = archive.find(title)
    except ArchiveError as e:
        raise PreflightError([str(e)]) from None
    if thread.skipped:
        raise PreflightError([_where(archive_path, thread.line, None,
                                     f"thread {title!r} is not postable ({thread.skipped})")])
    targets = list(dict.fromkeys(platforms or config.enabled_platforms()))
    problems: list[str] = []
    unknown = [p for p in targets if p not in registry.names()]
    if unknown:
        raise PreflightError([f"unknown platform(s) {', '.join(unknown)} (use {', '.join(registry.names())})"])
    if not targets:
        raise PreflightError(["no platform is enabled in the config (platforms.<name>.enabled: true)"])

    # The block, through the one validated model every command reads it with: a value that is not a post ID
    # never becomes a reply target, and a block that could not be written back stops the thread now, before
    # its first post (recording is what makes a rerun safe).
    from crossposter.thread_meta import MetadataError, ThreadMeta, Where

    try:
        block = ThreadMeta.parse(thread.metadata, Where.of(thread), config.timezone)
    except MetadataError as e:
        raise PreflightError(e.messages()) from None  # not knowing what was published, nothing else counts
    # A backed-up thread already lives on its source platform (`source:`): never sent there again.
    asked = targets
    from_source: dict[str, PlatformOutcome] = {}
    if block.source in targets:
        originals = block.recorded(block.source)
        from_source[block.source] = PlatformOutcome(
            block.source, "done", len(originals), len(originals), [e.link for e in originals],
            f"backed up from {block.source}: these are its original posts, never sent there again")
        targets = block.sent_to(targets)
        if not targets:
            return PublishResult(archive=archive_path, title=title, outcomes=from_source)
    problems += _writeback_problems(thread, archive_path)
    recorded = {p: list(block.recorded(p)) for p in targets}
    #: what stops a real run but not a dry run (which writes a copy, with fakes): a dry run reports them
    refusals: list[str] = []

    # Pre-flight decodes every image (the planner's check); inside this scope that decode, and every
    # encoding, serves all platforms' limits. It ends before the chains: they only need the bytes.
    from crossposter.images import shared_work

    image_work = contextlib.ExitStack()
    with image_work:
        image_work.enter_context(shared_work())
        starts = {p: len(recorded[p]) for p in targets}

        # 2. plan at the default/config limits: errors here need no network to find
        plan = plan_thread(archive, thread, config, targets)
        problems += _plan_problems(plan, archive_path)
        if dry_run:
            refusals += _writable_problems(archive_path, thread.line)
            refusals += _state_dir_problems(config)
            refusals += _credential_problems(config, targets, archive_path, thread.line)
        else:
            problems += _writable_problems(archive_path, thread.line)
        problems += _image_problems(plan, archive_path, targets, starts)

        # 3. adapters (credentials are read here)
        given = dict(options.adapters or {})
        built: dict[str, Adapter] = {}
        for p in targets:
            if p in given:
                built[p] = given[p]
                continue
            try:
                platform_secrets(p)
                from crossposter.platforms import load_adapter

                built[p] = load_adapter(p, config)
            except ConfigError as e:
                problems += [_where(archive_path, thread.line, p, m) for m in e.problems]
            except PlatformError as e:
                problems.append(_where(archive_path, thread.line, p, e.message))
        if problems:
            raise PreflightError(problems + refusals)

        reporter = options.reporter or default_reporter(options.progress)
        runtime = _Runtime(config, options.stop_event, options.sleep, options.now, options.rng, reporter)
        outcomes: dict[str, PlatformOutcome] = {}

        with reporter:
            # 4. log in everywhere at once; learn the real limits
            prepared: dict[_ImageKey, ImageUpload] = {}
            cache_lock = threading.Lock()

            def login(p: str) -> Any:
                try:
                    runtime.call(p, "log in", built[p].login)
                    lim = runtime.call(p, "read limits", built[p].limits)
                    # Prepare images now, while the other platforms still wait for their servers; problems are
                    # reported by the pass over the final plan below (which then only hits this cache).
                    _prepare_images(plan, archive_path, p, starts[p], lim, prepared, cache_lock)
                    return lim
                except _Stop as s:
                    return s
                except PlatformError as e:
                    return e

            with ThreadPoolExecutor(max_workers=len(targets) + 1, thread_name_prefix="login") as pool:
                logging_in = {p: pool.submit(login, p) for p in targets}
                # While the log-ins are on the wire, decode and make the encodings every limit starts with.
                to_warm = _images_to_upload(plan, targets, starts)
                if to_warm:
                    pool.submit(_warm_images, to_warm)
                answers = {p: f.result() for p, f in logging_in.items()}
            limits: dict[str, Limits] = {}
            for p, a in answers.items():
                total = len(plan.platforms[p].posts)
                if isinstance(a, _Stop):  # the platform is down: the others still go out
                    outcomes[p] = PlatformOutcome(p, a.state, len(recorded[p]), total, [], a.message, a.retry_at)
                elif isinstance(a, PlatformError):
                    problems.append(_where(archive_path, thread.line, p, f"cannot log in: {a.message}"))
                else:
                    limits[p] = a
            if problems:
                raise PreflightError(problems + refusals)

            # 5. the server's own limit (a Mastodon instance's) decides how the thread splits there
            told = {p: lim.max_characters for p, lim in limits.items()
                    if registry.get(p).limit_from_server and lim.max_characters != plan.platforms[p].limit}
            if told:
                plan = plan_thread(archive, thread, config, targets, limits=told)
                problems += _plan_problems(plan, archive_path)

            # 6. prepare every image still to upload, at each platform's limits
            for p, lim in limits.items():
                problems += _prepare_images(plan, archive_path, p, len(recorded[p]), lim, prepared, cache_lock)
            if problems:
                raise PreflightError(problems + refusals)
            image_work.close()  # the decoded images are dropped here: the chains upload `prepared`

            # 7. the chains, one thread per platform
            chains: dict[str, _Chain] = {}
            group = _GroupRecorder(options.recorder, archive_path, title)
            for p in limits:
                why = _check_recorded(plan, p, recorded[p])
                if why:
                    outcome = PlatformOutcome(p, OutcomeState.CHANGED, len(recorded[p]), len(plan.platforms[p].posts),
                                              [e.link for e in recorded[p]], why)
                    reporter.start(p, outcome.posted, outcome.total)
                    outcomes[p] = outcome
                    continue
                pend = block.pending[p].as_dict() if p in block.pending else None
                chains[p] = _Chain(platform=p, adapter=built[p], posts=plan.platforms[p].posts,
                                   recorded=recorded[p], pending=pend, prepared=prepared,
                                   max_image_bytes=limits[p].max_image_bytes,
                                   max_image_pixels=limits[p].max_image_pixels, write=group,
                                   thread_key=thread.key, language=config.language, runtime=runtime,
                                   upload_ahead=options.upload_ahead)
            if chains:
                with ThreadPoolExecutor(max_workers=len(chains), thread_name_prefix="chain") as pool:
                    running = {p: pool.submit(c.run) for p, c in chains.items()}
                    for p, fut in running.items():
                        outcomes[p] = fut.result()
            for p in targets:
                if p in outcomes:
                    reporter.finish(outcomes[p])
    outcomes.update(from_source)
    return PublishResult(archive=archive_path, title=title, outcomes={p: outcomes[p] for p in asked if p in outcomes},
                         plan=plan, refusals=refusals)
