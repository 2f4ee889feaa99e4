"""The daemon's engine: jobs from the archives, queue slots, misfire policy, retries, one worker.

How it is put together, and why:

* **APScheduler 3** (`BackgroundScheduler`, in the configured zone) holds one `DateTrigger`
  job per scheduled thread and one `CronTrigger` job per queue-slot time. Jobs do no work
  themselves: they put the thread on the worker's queue. APScheduler sleeps until the next
  job is due (an `Event.wait` with a timeout), so an idle daemon uses no CPU.
* **One worker thread** publishes, one thread at a time. Every thread goes to the same
  accounts, so a lock per account would serialise them anyway; one worker is the simplest
  way to guarantee "at most one thread per account at a time" and keeps the order obvious.
  The publisher also takes its per-thread file lock, so a manual `post` cannot overlap.
* **The publishing itself** happens in a child process (`ChildPublisher`, below) that is
  started a minute before something is due and stopped when idle, because the platform SDKs
  cost ~55 MB that Python never returns; `daemon.publisher_process: false` keeps it in-process.
  SIGTERM/SIGINT reach the daemon, which forwards a "stop" to the child: the request in flight
  finishes and is recorded, the chain stops, the outcome is stored as "stopped", exit 0.
* **Watching** is polling: every `daemon.watch_interval` seconds the main thread re-expands
  the archive globs and `stat`s each file (mtime, size, inode). That is a handful of syscalls
  a second — no busy loop, no extra dependency, and it works on bind mounts and network
  file systems where inotify (watchfiles) misses changes made from outside the container.
  A changed file is re-read and its jobs are added, moved or dropped.
* **State** the archive cannot hold (missed, failed, retry counts, stopped-by-signal) lives in
  `$state_dir/daemon-state.json`, keyed by archive path and title, with a signature of the
  schedule and the body so that editing or rescheduling a thread makes it eligible again.
  `status` reads it to show missed threads and errors.

Misfire policy: a scheduled thread nobody has started, whose time passed while the daemon
was down (or asleep), goes out if the daemon sees it within `daemon.misfire_grace` seconds
of its time; later than that it is logged as missed, recorded, and left alone. A thread
that was already started (some posts recorded, or stopped by SIGTERM) is always resumed,
because a half-published thread is worse than a late one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crossposter.model import PLATFORMS

if TYPE_CHECKING:
    from crossposter.archive import Archive, Thread
    from crossposter.config import Config
    from crossposter.thread_meta import ThreadMeta

log = logging.getLogger("crossposter.daemon")

STATE_FILE = "daemon-state.json"
HEARTBEAT_FILE = "heartbeat"

#: Terminal outcomes: the daemon leaves the thread alone until its schedule or text changes.
TERMINAL = ("done", "failed", "missed")

#: The longest a retry is put off, whatever reset time a server announced.
MAX_RETRY_WAIT = timedelta(days=30)


def now_utc() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------- what the daemon knows of a thread


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

    @property
    def key(self) -> str:
        return f"{self.archive}::{self.title}"

    @property
    def started(self) -> bool:
        return self.pending or any(self.recorded.values())

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
    h = hashlib.sha256()
    # the instant, not the spelling: PyYAML may hand back a datetime where a string was written; a broken
    # block's raw text is in the signature so that fixing it makes the thread new to the daemon
    raw = repr(sorted(map(str, thread.metadata.items()))) if problems else ""
    h.update(repr((when.isoformat() if when else None, meta.queued, thread.body, raw)).encode())
    skipped = thread.skipped or ("skip: true" if meta.skip else None)
    return ThreadInfo(
        archive=archive_path, title=thread.title, line=thread.line, schedule=when, problems=problems,
        queued=meta.queued, skipped=skipped, recorded={p: len(meta.recorded(p)) for p in PLATFORMS},
        pending=bool(meta.pending), sig=h.hexdigest()[:16], meta=meta,
    )


# --------------------------------------------------------------------------- persisted state


class DaemonState:
    """`daemon-state.json`: outcomes the archive does not hold. Written atomically (temp + rename), mode 0600.

    Its messages come from server answers and exceptions, so every value is redacted before it is
    stored (and again when read: a file written by an older version may hold what it should not).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        #: The file on disk held something redaction removed, or was readable by others.
        self.exposed = False

    @classmethod
    def load(cls, path: Path) -> DaemonState:
        from crossposter.redact import redact_obj

        st = cls(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and isinstance(data.get("threads"), dict):
                # values only: a key is a thread's archive and title, which must stay as they are to match
                st.entries = {k: redact_obj(v) for k, v in data["threads"].items()}
                st.exposed = st.entries != data["threads"] or (path.stat().st_mode & 0o077) != 0
        except (OSError, ValueError):
            pass
        return st

    def get(self, key: str, sig: str | None = None) -> dict[str, Any] | None:
        e = self.entries.get(key)
        if e is None or (sig is not None and e.get("sig") != sig):
            return None
        return e

    def set(self, key: str, **values: Any) -> None:
        from crossposter.redact import redact_obj

        with self._lock:
            entry = {**redact_obj(values), "at": now_utc().isoformat(timespec="seconds")}
            self.entries[key] = entry
            self._save()

    def drop(self, key: str) -> None:
        with self._lock:
            if self.entries.pop(key, None) is not None:
                self._save()

    def scrub(self) -> None:
        """Rewrite the file redacted and private if it was not (the daemon does this when it starts)."""
        with self._lock:
            if self.exposed:
                self._save()
                self.exposed = False

    def _save(self) -> None:
        write_private(self.path, json.dumps({"threads": self.entries}, indent=1, sort_keys=True))


def write_private(path: Path, text: str) -> None:
    """Replace `path` atomically with `text`, readable by the owner only (0600, also when it existed before).

    The temp file is 0600 before anything is written to it, so no other user can open it meanwhile.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)  # an old temp file of the same name keeps its mode through O_CREAT
            with os.fdopen(fd, "w", encoding="utf-8", closefd=False) as f:
                f.write(text)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _state_time(value: Any) -> datetime | None:
    """An aware time read back from the state file, or None when it is not one (the file may be edited)."""
    from crossposter.timeparse import TimeError, check_range

    try:
        dt = datetime.fromisoformat(value) if isinstance(value, str) else None
        return check_range(dt) if dt is not None and dt.tzinfo is not None else None
    except (ValueError, TimeError):
        return None


def write_heartbeat(state_dir: Path, extra: dict[str, Any] | None = None) -> None:
    """The file `crossposter health` looks at; written atomically so a reader never sees half of it."""
    write_private(state_dir / HEARTBEAT_FILE,
                  json.dumps({"time": now_utc().isoformat(), "pid": os.getpid(), **(extra or {})}))


# --------------------------------------------------------------------------- the engine


def _scheduler_class() -> type:
    """APScheduler's BackgroundScheduler, made to tell whether its thread still runs, and why not."""
    from apscheduler.schedulers.background import BackgroundScheduler

    class Scheduler(BackgroundScheduler):  # type: ignore[misc]
        """An exception inside APScheduler's loop ends its thread with a traceback on stderr, while the
        process, its watch loop and its heartbeat carry on: the daemon looked healthy and never posted
        again. The loop is wrapped to record the cause; `alive` is what the heartbeat reports."""

        thread: threading.Thread | None = None
        died: str | None = None

        def start(self, *args: Any, **kwargs: Any) -> None:
            super().start(*args, **kwargs)
            self.thread = getattr(self, "_thread", None)

        def _main_loop(self) -> None:
            try:
                super()._main_loop()
            except BaseException as e:
                self.died = f"{type(e).__name__}: {e}"
                log.critical("the scheduler thread stopped: %s", self.died, exc_info=True,
                             extra={"event": "scheduler_died"})

        @property
        def alive(self) -> bool:
            return self.died is None and (self.thread is None or self.thread.is_alive())

    return Scheduler


PublishFn = Callable[..., Any]


@dataclass
class _Work:
    key: str
    reason: str  # "scheduled", "queued", "misfire", "resume", "retry"
    due: datetime  # when it should have started (for the start-delay log)


@dataclass
class _FileSig:
    mtime_ns: int
    size: int
    ino: int


@dataclass
class Engine:
    """Runs the daemon's jobs. `publish` and `adapters` are injectable for tests and the benchmark."""

    config: Config
    publish: PublishFn | None = None
    adapters: dict[str, Any] | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    #: Called after each thread (tests wait on it).
    on_result: Callable[[str, str], None] | None = None

    def __post_init__(self) -> None:
        from zoneinfo import ZoneInfo

        self.zone = ZoneInfo(self.config.timezone)
        self.state = DaemonState.load(self.config.state_path / STATE_FILE)
        self.scheduler = _scheduler_class()(
            timezone=self.zone,
            job_defaults={"coalesce": True, "max_instances": 1,
                          "misfire_grace_time": max(1, self.config.daemon.misfire_grace)},
        )
        self.threads: dict[str, ThreadInfo] = {}  # every thread of every archive, archive order
        self._by_archive: dict[Path, list[str]] = {}
        self._files: dict[Path, _FileSig] = {}
        self._jobs: dict[str, datetime] = {}  # thread key -> run time of its DateTrigger job
        self._inflight: set[str] = set()
        self._inflight_lock = threading.Lock()
        self._queue: queue.Queue[_Work] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._worker_died: str | None = None
        self._reported: list[str] = []  # vital problems already logged
        self._reload_lock = threading.RLock()
        self.current: str | None = None
        self.child: ChildPublisher | None = None
        if self.publish is None and self.config.daemon.publisher_process:
            self.child = ChildPublisher(self.config)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        from apscheduler.events import EVENT_JOB_MISSED

        self.config.state_path.mkdir(parents=True, exist_ok=True)
        self.scheduler.add_listener(self._job_missed, EVENT_JOB_MISSED)
        self.scheduler.start()
        self._add_slot_jobs()
        self.poll(initial=True)
        self._worker = threading.Thread(target=self._work_loop, name="publisher", daemon=True)
        self._worker.start()
        log.info("daemon started: %d archive(s), %d thread(s), %d job(s), timezone %s",
                 len(self._by_archive), len(self.threads), len(self._jobs), self.config.timezone,
                 extra={"event": "started"})

    def stop(self, timeout: float | None = None) -> None:
        """Stop taking new work, let the current request finish (the publisher sees stop_event)."""
        self.stop_event.set()
        with contextlib.suppress(Exception):
            self.scheduler.shutdown(wait=False)
        if self._worker is not None:
            self._worker.join(timeout)
        if self.child is not None:
            self.child.close()

    def vital_problems(self) -> list[str]:
        """What stops the daemon from doing its work although the process runs (empty: all is well).

        The watch loop shows its own life by beating at all; the scheduler's and the publisher's threads
        can end on their own (an exception inside APScheduler ends its thread with a traceback and
        nothing more), so the beat carries their state and `health` reports it.
        """
        problems = []
        if not self.scheduler.alive:
            problems.append(f"the scheduler thread stopped ({self.scheduler.died or 'it ended'}): scheduled "
                            "threads and queue slots no longer fire; restart the daemon")
        if self._worker is not None and not self._worker.is_alive():
            problems.append(f"the publishing thread stopped ({self._worker_died or 'it ended'}): nothing is "
                            "published; restart the daemon")
        return problems

    def run_forever(self) -> None:
        """The main loop: watch the archives and beat the heart until stop_event is set."""
        interval = self.config.daemon.watch_interval
        beat_every = self.config.daemon.heartbeat_interval
        next_beat = 0.0
        while not self.stop_event.is_set():
            t = time.monotonic()
            if t >= next_beat:
                problems = self.vital_problems()
                if problems != self._reported:
                    for p in problems:
                        log.critical("%s", p, extra={"event": "unhealthy"})
                    self._reported = problems
                write_heartbeat(self.config.state_path, {"current": self.current, "problems": problems})
                next_beat = t + beat_every
            try:
                self.poll()
                self._manage_child()
            except Exception:  # a bad read must never kill the daemon
                log.exception("watching the archives failed", extra={"event": "watch_error"})
            self.stop_event.wait(interval)

    def _manage_child(self) -> None:
        """Start the publisher process shortly before something is due; stop it when idle for a while."""
        if self.child is None or self.stop_event.is_set():
            return
        due = [t for t in (*self._jobs.values(), self.next_slot()) if t is not None]
        soon = bool(due) and (min(due) - now_utc()).total_seconds() <= PREWARM
        with self._inflight_lock:
            working = bool(self._inflight)
        if soon or working:
            self.child.ensure()
        elif self.child.alive and not self.child.busy and time.monotonic() - self.child.idle_since > LINGER:
            self.child.close()

    # ------------------------------------------------------------------ watching

    def poll(self, initial: bool = False) -> None:
        """Re-expand the globs, stat every file, reload what changed."""
        with self._reload_lock:
            paths = self.config.archive_paths()
            seen: set[Path] = set()
            for p in paths:
                seen.add(p)
                try:
                    st = p.stat()
                except OSError:
                    continue
                sig = _FileSig(st.st_mtime_ns, st.st_size, st.st_ino)
                if self._files.get(p) != sig:
                    self._files[p] = sig
                    if not initial:
                        log.info("archive changed: %s", p, extra={"event": "archive_changed", "archive": str(p)})
                    self._load_archive(p)
            for gone in [p for p in self._files if p not in seen]:
                log.info("archive removed: %s", gone, extra={"event": "archive_removed", "archive": str(gone)})
                del self._files[gone]
                for key in self._by_archive.pop(gone, []):
                    self._forget(key)
            if paths != list(self._by_archive):
                # keep the queue order the config's archive order
                self._by_archive = {p: self._by_archive[p] for p in paths if p in self._by_archive}

    def _load_archive(self, path: Path) -> None:
        from crossposter.archive import ArchiveError, read_archive

        try:
            archive = read_archive(path)
        except ArchiveError as e:
            log.error("cannot read archive: %s", e, extra={"event": "archive_error", "archive": str(path)})
            return
        for t in archive.threads:  # what reading found (e.g. a thread hidden by an unclosed comment before it)
            for d in t.errors if not t.skipped else ():
                log.error("%s:%d: %r: %s", path, d.line, t.title, d.message,
                          extra={"event": "thread_error", "archive": str(path), "title": t.title})
        old = set(self._by_archive.get(path, []))
        pairs: dict[str, tuple[ThreadInfo, Thread]] = {}
        for t in archive.threads:
            info = thread_info(path, t, self.config.timezone)
            # a duplicate title: the publisher refuses it and `check` reports it; keep the first
            pairs.setdefault(info.key, (info, t))
        self._by_archive[path] = list(pairs)
        for key in old - set(pairs):
            self._forget(key)
        for key, (info, _t) in pairs.items():
            self.threads[key] = info
        for info, t in pairs.values():
            self._reconcile(info, archive, t)

    def _forget(self, key: str) -> None:
        self.threads.pop(key, None)
        self._drop_job(key)

    # ------------------------------------------------------------------ deciding what a thread needs

    def _reconcile(self, info: ThreadInfo, archive: Archive, thread: Thread) -> None:
        key = info.key
        if info.error:  # nothing in a block that cannot be read is trusted, not even `skip`
            self._drop_job(key)
            log.error("not publishing %r until its crossposter block is fixed: %s", info.title, info.error,
                      extra={"event": "bad_metadata", "title": info.title, "archive": str(info.archive)})
            return
        if info.skipped or (info.schedule is None and not info.queued):
            self._drop_job(key)
            return
        if self._is_inflight(key):
            return
        entry = self.state.get(key, info.sig)
        if entry and entry.get("outcome") in TERMINAL:
            self._drop_job(key)
            return
        now = now_utc()
        if entry and entry.get("outcome") == "stopped":
            self._drop_job(key)
            self._enqueue(key, "resume", now)
            return
        if entry and entry.get("outcome") == "retrying":
            self._set_job(key, max(_state_time(entry.get("retry_at")) or now, now), "retry")
            return
        if info.schedule is None:  # queued only: a slot takes it, unless it was started and interrupted
            self._drop_job(key)
            if info.started and not self._complete(info, archive, thread):
                self._enqueue(key, "resume", now)
            return
        if info.schedule > now:
            self._set_job(key, info.schedule, "scheduled")
            return
        # its time has passed
        self._drop_job(key)
        if info.started:
            if not self._complete(info, archive, thread):
                self._enqueue(key, "resume", info.schedule)
            return
        late = (now - info.schedule).total_seconds()
        if late <= self.config.daemon.misfire_grace:
            log.info("%r was due %s (%.0f s ago, within the %d s grace): publishing now", info.title,
                     info.schedule.astimezone(self.zone).isoformat(timespec="seconds"), late,
                     self.config.daemon.misfire_grace, extra={"event": "misfire_run", "title": info.title})
            self._enqueue(key, "misfire", info.schedule)
        else:
            self._mark_missed(info, late)

    def _complete(self, info: ThreadInfo, archive: Archive, thread: Thread) -> bool:
        """Whether every enabled platform has all its posts recorded (planned offline; done entries cached)."""
        from crossposter.plan import plan_thread

        try:
            plan = plan_thread(archive, thread, self.config, self.config.enabled_platforms())
        except Exception:
            return False
        if plan.errors:
            return False
        done = all(info.recorded.get(p, 0) >= len(pp.posts) for p, pp in plan.platforms.items())
        if done and not info.pending:
            self.state.set(info.key, outcome="done", sig=info.sig, message="all posts recorded")
        return done and not info.pending

    def _mark_missed(self, info: ThreadInfo, late: float) -> None:
        when = info.schedule.astimezone(self.zone).isoformat(timespec="seconds") if info.schedule else "?"
        log.warning("%s:%d: %r was due %s, %.0f s ago, beyond the %d s misfire grace: missed, left alone "
                    "(schedule it again to publish it)", info.archive, info.line, info.title, when, late,
                    self.config.daemon.misfire_grace,
                    extra={"event": "missed", "title": info.title, "archive": str(info.archive)})
        self.state.set(info.key, outcome="missed", sig=info.sig, schedule=when,
                       message=f"missed: due {when}, daemon saw it {late:.0f} s late "
                               f"(grace {self.config.daemon.misfire_grace} s)")

    def _job_missed(self, event: Any) -> None:
        """APScheduler skipped a job whose time passed beyond the grace (the process was asleep)."""
        job_id: str = event.job_id
        if not job_id.startswith("thread:"):
            return
        key = job_id[len("thread:"):]
        self._jobs.pop(key, None)
        info = self.threads.get(key)
        if info is not None:
            self._mark_missed(info, (now_utc() - event.scheduled_run_time).total_seconds())

    # ------------------------------------------------------------------ jobs

    def _set_job(self, key: str, when: datetime, reason: str) -> None:
        if self._jobs.get(key) == when:
            return
        from apscheduler.triggers.date import DateTrigger

        from crossposter.timeparse import TimeError, check_range

        try:
            # Every time is checked where it is read; this is the last line before APScheduler's thread,
            # which an out-of-range time would end (it computes in the configured zone).
            check_range(when)
        except TimeError as e:
            self._drop_job(key)
            log.error("not scheduling %s: %s", key, e, extra={"event": "bad_time"})
            return

        moved = key in self._jobs
        self._jobs[key] = when
        self.scheduler.add_job(self._due, DateTrigger(run_date=when), args=[key, reason, when],
                               id=f"thread:{key}", replace_existing=True, name=key)
        info = self.threads.get(key)
        log.debug("%s %r at %s", "moved" if moved else "scheduled", info.title if info else key,
                  when.astimezone(self.zone).isoformat(timespec="seconds"),
                  extra={"event": "job_moved" if moved else "job_added"})

    def _drop_job(self, key: str) -> None:
        if self._jobs.pop(key, None) is not None:
            with contextlib.suppress(Exception):
                self.scheduler.remove_job(f"thread:{key}")
            log.debug("dropped job of %s", key, extra={"event": "job_dropped"})

    def _add_slot_jobs(self) -> None:
        from crossposter.timeparse import parse_slot, slot_triggers

        for i, text in enumerate(self.config.daemon.queue_slots):
            for j, trig in enumerate(slot_triggers(parse_slot(text), self.config.timezone)):
                self.scheduler.add_job(self._slot, trig, args=[text], id=f"slot:{i}:{j}", name=f"slot {text}",
                                       misfire_grace_time=60)

    def next_slot(self) -> datetime | None:
        times = [j.next_run_time for j in self.scheduler.get_jobs() if j.id.startswith("slot:") and j.next_run_time]
        return min(times) if times else None

    def jobs(self) -> dict[str, datetime]:
        return dict(self._jobs)

    # ------------------------------------------------------------------ firing

    def _due(self, key: str, reason: str, when: datetime) -> None:
        with self._reload_lock:
            if self._jobs.get(key) == when:
                del self._jobs[key]
        self._enqueue(key, reason, when)

    def _slot(self, text: str) -> None:
        fired = now_utc()
        with self._reload_lock:
            for key in [k for keys in self._by_archive.values() for k in keys]:
                info = self.threads.get(key)
                if (info is None or not info.queued or info.schedule is not None or info.skipped or info.started
                        or info.error):
                    continue
                if self.state.get(key, info.sig) or self._is_inflight(key):
                    continue
                log.info("queue slot %r: next queued thread is %r", text, info.title,
                         extra={"event": "slot", "title": info.title, "archive": str(info.archive)})
                self._enqueue(key, "queued", fired)
                return
        log.info("queue slot %r: no queued thread waiting", text, extra={"event": "slot_empty"})

    def _is_inflight(self, key: str) -> bool:
        with self._inflight_lock:
            return key in self._inflight

    def _enqueue(self, key: str, reason: str, due: datetime) -> None:
        with self._inflight_lock:
            if key in self._inflight:
                return
            self._inflight.add(key)
        self._queue.put(_Work(key, reason, due))

    def _work_loop(self) -> None:
        try:
            self._work_loop_inner()
        except BaseException as e:  # only what escapes the per-thread handler below: say so in the heartbeat
            self._worker_died = f"{type(e).__name__}: {e}"
            raise

    def _work_loop_inner(self) -> None:
        while not self.stop_event.is_set():
            try:
                work = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                if self.stop_event.is_set():
                    return  # left undone: still due (or stopped) at the next start
                self._run(work)
            except Exception:
                log.exception("publishing %s failed unexpectedly", work.key, extra={"event": "error"})
            finally:
                with self._inflight_lock:
                    self._inflight.discard(work.key)
                # Edits seen while it was queued or running were not acted on (it was in flight):
                # forget the file's signature so the next poll reconciles its threads again.
                info = self.threads.get(work.key)
                if info is not None:
                    with self._reload_lock:
                        self._files.pop(info.archive, None)

    def _run(self, work: _Work) -> None:
        # Look at the archives once more: an edit made while this waited behind another thread wins.
        try:
            self.poll()
        except Exception:
            log.exception("watching the archives failed", extra={"event": "watch_error"})
        info = self.threads.get(work.key)
        if info is None:
            log.info("%s is gone from the archives; not publishing", work.key, extra={"event": "gone"})
            return
        why_not = self._not_wanted(info, work)
        if why_not:
            log.info("not publishing %r: %s", info.title, why_not, extra={"event": "skipped", "title": info.title})
            return
        start = now_utc()
        delay = (start - work.due).total_seconds()
        log.info("publishing %r (%s, due %s, start delay %.3f s)", info.title, work.reason,
                 work.due.astimezone(self.zone).isoformat(timespec="seconds"), delay,
                 extra={"event": "publish_start", "title": info.title, "archive": str(info.archive),
                        "reason": work.reason, "due": work.due.isoformat(), "delay": round(delay, 6)})
        self.current = work.key
        try:
            outcome = self._publish(info)
        finally:
            self.current = None
        if self.on_result is not None:
            self.on_result(work.key, outcome)

    def _not_wanted(self, info: ThreadInfo, work: _Work) -> str | None:
        """Why a thread taken off the queue should not be published after all (None: go ahead)."""
        if info.error:
            return "its crossposter block has problems"
        if info.skipped:
            return f"skipped ({info.skipped})"
        if work.reason == "queued":
            return None if info.queued and info.schedule is None else "no longer queued"
        if work.reason in ("scheduled", "misfire"):
            if info.schedule is None:
                return "unscheduled"
            if info.schedule > now_utc() + timedelta(seconds=1):
                return "rescheduled to a later time"
        if work.reason == "retry" and info.schedule is None and not info.queued:
            return "unscheduled"
        return None

    def _publish(self, info: ThreadInfo) -> str:
        from crossposter.publish import PreflightError, ThreadLockedError

        publish = self.publish or self.child
        if publish is None:
            from crossposter.publish import publish_thread as publish
        prev = self.state.get(info.key, info.sig) or {}
        attempts = int(prev.get("attempts", 0)) if prev.get("outcome") == "retrying" else 0
        extra = {"title": info.title, "archive": str(info.archive)}
        try:
            result = publish(self.config, info.archive, info.title, adapters=self.adapters,
                             stop_event=self.stop_event, progress=False)
        except PreflightError as e:
            self.state.set(info.key, outcome="failed", sig=info.sig, message="; ".join(e.problems))
            for p in e.problems:
                log.error("not published: %s", p, extra={**extra, "event": "preflight_error"})
            return "failed"
        except ThreadLockedError as e:
            # another run (a manual `post`, or an orphaned publisher finishing) holds it: look again soon
            soon = now_utc() + timedelta(seconds=min(30, self.config.daemon.retry_later_delay))
            return self._retry_later(info, attempts, soon, str(e))
        except Exception as e:  # never loop on a crash: count it as a later attempt
            log.exception("publishing %r failed", info.title, extra={**extra, "event": "error"})
            return self._retry_later(info, attempts, None, f"{type(e).__name__}: {e}")
        summary = "; ".join(f"{p}: {o.state} {o.posted}/{o.total}" + (f" ({o.message})" if o.message else "")
                            for p, o in result.outcomes.items())
        links = {p: o.links for p, o in result.outcomes.items()}
        if result.ok:
            self.state.set(info.key, outcome="done", sig=info.sig, message=summary, links=links)
            log.info("published %r: %s", info.title, summary, extra={**extra, "event": "published", "links": links})
            return "done"
        if self.stop_event.is_set() and result.retryable:
            self.state.set(info.key, outcome="stopped", sig=info.sig, message=summary)
            log.info("stopped %r on shutdown: %s (resumes at the next start)", info.title, summary,
                     extra={**extra, "event": "stopped"})
            return "stopped"
        if result.retryable:
            retry_ats = [o.retry_at for o in result.outcomes.values() if o.retry_at is not None]
            return self._retry_later(info, attempts, max(retry_ats) if retry_ats else None, summary)
        self.state.set(info.key, outcome="failed", sig=info.sig, message=summary)
        log.error("failed %r: %s", info.title, summary, extra={**extra, "event": "failed"})
        return "failed"

    def _retry_later(self, info: ThreadInfo, attempts: int, retry_at: datetime | None, why: str) -> str:
        attempts += 1
        extra = {"title": info.title, "archive": str(info.archive)}
        if attempts > self.config.daemon.retry_later_attempts:
            self.state.set(info.key, outcome="failed", sig=info.sig, attempts=attempts - 1,
                           message=f"gave up after {attempts - 1} later attempt(s): {why}")
            log.error("giving up on %r after %d later attempt(s): %s", info.title, attempts - 1, why,
                      extra={**extra, "event": "failed"})
            return "failed"
        when = retry_at or (now_utc() + timedelta(seconds=self.config.daemon.retry_later_delay))
        # a server's reset time is not trusted to be sane: between now and MAX_RETRY_WAIT from now
        when = min(max(when, now_utc()), now_utc() + MAX_RETRY_WAIT)
        self.state.set(info.key, outcome="retrying", sig=info.sig, attempts=attempts, retry_at=when.isoformat(),
                       message=why)
        log.warning("%r stopped (%s); retry %d/%d at %s", info.title, why, attempts,
                    self.config.daemon.retry_later_attempts, when.astimezone(self.zone).isoformat(timespec="seconds"),
                    extra={**extra, "event": "retry_later", "retry_at": when.isoformat()})
        with self._reload_lock:
            self._set_job(info.key, when, "retry")
        return "retrying"


# --------------------------------------------------------------------------- the publisher child process
#
# The platform SDKs cost about 55 MB of resident memory once imported (atproto alone ~40 MB) and
# Python never gives module memory back. An idle daemon holding them would miss the 80 MB target
# by itself, so publishing happens in a child process: started PREWARM seconds before the next
# job is due (so its imports are done when the time comes), given threads one at a time over a
# pipe, and stopped after LINGER idle seconds with nothing due soon. A parent killed with -9
# closes the pipe; the child then stops after the request in flight, like on SIGTERM.

PREWARM = 60.0
LINGER = 120.0


@dataclass
class _ChildOutcome:
    state: str
    posted: int = 0
    total: int = 0
    links: list[str] = field(default_factory=list)
    message: str = ""
    retry_at: datetime | None = None


@dataclass
class _ChildResult:
    outcomes: dict[str, _ChildOutcome]

    @property
    def ok(self) -> bool:
        return all(o.state == "done" for o in self.outcomes.values())

    @property
    def retryable(self) -> bool:
        return not self.ok and all(o.state in ("done", "rate_limited", "transient", "stopped")
                                   for o in self.outcomes.values())


class ChildPublisher:
    """Callable like `publish_thread`, but runs it in a long-lived child process (see above)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.proc: Any = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._lock = threading.Lock()
        self.busy = False
        self.idle_since = time.monotonic()
        self._seq = 0

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ensure(self) -> None:
        import subprocess
        import sys

        with self._lock:
            if self.alive:
                return
            self._lines = queue.Queue()
            payload = {"config": self.config.model_dump(mode="json"), "base_dir": str(self.config.base_dir)}
            # Logs go where ours go (our stdout); results come back on the child's stdout pipe.
            err = sys.stdout if _has_fileno(sys.stdout) else None
            # the child imports the very package this process runs (not whatever the cwd holds)
            package_root = str(Path(__file__).resolve().parent.parent)
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(
                [package_root, *filter(None, [os.environ.get("PYTHONPATH")])])}
            self.proc = subprocess.Popen(
                [sys.executable, "-P", "-c", "from crossposter.schedule import child_main; child_main()"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True, bufsize=1, env=env,
                cwd=str(self.config.base_dir),
            )
            self.proc.stdin.write(json.dumps(payload) + "\n")
            self.proc.stdin.flush()
            threading.Thread(target=self._read, args=(self.proc, self._lines), name="publisher-reader",
                             daemon=True).start()
            self.idle_since = time.monotonic()
            log.info("publisher process started (pid %d)", self.proc.pid, extra={"event": "publisher_started"})

    @staticmethod
    def _read(proc: Any, lines: queue.Queue[str | None]) -> None:
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    def close(self, timeout: float = 30.0) -> None:
        with self._lock:
            proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError, ValueError):
            proc.stdin.close()  # EOF: the child finishes what it does and exits
        try:
            proc.wait(timeout)
        except Exception:
            proc.kill()
            proc.wait(5)
        log.info("publisher process stopped", extra={"event": "publisher_stopped"})

    def __call__(self, config: Config, archive: Path, title: str, *, adapters: Any = None,
                 stop_event: threading.Event | None = None, progress: bool = False) -> _ChildResult:
        from crossposter.publish import PreflightError, ThreadLockedError
        from crossposter.redact import redact_obj

        self.ensure()
        self.busy = True
        try:
            self._seq += 1
            job = {"op": "publish", "id": self._seq, "archive": str(archive), "title": title}
            proc, lines = self.proc, self._lines
            try:
                proc.stdin.write(json.dumps(job) + "\n")
                proc.stdin.flush()
            except (OSError, ValueError, AttributeError):
                return self._died("the publisher process could not be reached")
            told_stop = False
            while True:
                if stop_event is not None and stop_event.is_set() and not told_stop:
                    with contextlib.suppress(OSError, ValueError):
                        proc.stdin.write(json.dumps({"op": "stop"}) + "\n")
                        proc.stdin.flush()
                    told_stop = True
                try:
                    line = lines.get(timeout=0.2)
                except queue.Empty:
                    continue
                if line is None:
                    return self._died(f"the publisher process exited ({proc.wait()})")
                msg = json.loads(line)
                if msg.get("id") != self._seq:
                    continue  # "ready", or an answer to an older request
                kind = msg["kind"]
                msg = redact_obj(msg)  # the child redacts too; this process may know more secrets
                if kind == "preflight":
                    raise PreflightError(msg["problems"])
                if kind == "locked":
                    raise ThreadLockedError(archive, title, Path(msg["lock"]))
                if kind == "error":
                    return _ChildResult({"publisher": _ChildOutcome("error", message=msg["message"])})
                return _ChildResult({p: _ChildOutcome(
                    o["state"], o["posted"], o["total"], o["links"], o["message"],
                    datetime.fromisoformat(o["retry_at"]) if o.get("retry_at") else None)
                    for p, o in msg["outcomes"].items()})
        finally:
            self.busy = False
            self.idle_since = time.monotonic()

    def _died(self, why: str) -> _ChildResult:
        log.error("%s; the thread will be retried", why, extra={"event": "publisher_died"})
        with self._lock:
            self.proc = None
        return _ChildResult({"publisher": _ChildOutcome("transient", message=why)})


def _has_fileno(stream: Any) -> bool:
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True


def child_main() -> None:
    """The publisher child: read a config, warm the SDK imports, publish threads the daemon sends."""
    import signal
    import sys

    # The daemon decides when to stop (it forwards SIGTERM/SIGINT as a "stop" message), so a
    # Ctrl-C reaching the whole process group must not cut a request short here.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from crossposter.config import Config, secret_values
    from crossposter.logs import setup_logging
    from crossposter.redact import redact_obj

    out = sys.stdout
    sys.stdout = sys.stderr  # nothing but results may reach the pipe
    first = json.loads(sys.stdin.readline())
    config = Config.model_validate({**first["config"], "base_dir": first["base_dir"]})
    setup_logging(config.daemon.log_format, secret_values(), stream=sys.stderr)
    from crossposter.commands.daemon import fake_adapters_from_env
    from crossposter.publish import PreflightError, ThreadLockedError, publish_thread, warm_up

    adapters = fake_adapters_from_env(config)
    # Pay the SDKs' one-time costs now (also with the test fakes, so that memory and timings stay
    # realistic): when the thread is due, the first request goes out at once.
    with contextlib.suppress(Exception):
        warm_up(config.enabled_platforms())
    stop = threading.Event()
    jobs: queue.Queue[dict | None] = queue.Queue()

    def reader() -> None:
        for line in sys.stdin:
            msg = json.loads(line)
            if msg.get("op") == "stop":
                stop.set()
            else:
                jobs.put(msg)
        stop.set()  # the daemon is gone (EOF): finish the request in flight, then exit
        jobs.put(None)

    threading.Thread(target=reader, name="commands", daemon=True).start()

    def send(msg: dict) -> None:
        out.write(json.dumps(redact_obj(msg), default=str) + "\n")
        out.flush()

    send({"kind": "ready", "id": 0})
    while True:
        job = jobs.get()
        if job is None:
            return
        try:
            result = publish_thread(config, Path(job["archive"]), job["title"], adapters=adapters,
                                    stop_event=stop, progress=False)
            send({"id": job["id"], "kind": "result", "outcomes": {
                p: {"state": o.state, "posted": o.posted, "total": o.total, "links": list(o.links),
                    "message": o.message, "retry_at": o.retry_at.isoformat() if o.retry_at else None}
                for p, o in result.outcomes.items()}})
        except PreflightError as e:
            send({"id": job["id"], "kind": "preflight", "problems": e.problems})
        except ThreadLockedError as e:
            send({"id": job["id"], "kind": "locked", "lock": str(e.lock_path)})
        except Exception as e:
            log.exception("publishing %r failed", job["title"], extra={"event": "error"})
            send({"id": job["id"], "kind": "error", "message": f"{type(e).__name__}: {e}"})
        if stop.is_set():
            return
