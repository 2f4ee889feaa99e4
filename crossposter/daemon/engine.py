"""The daemon's engine: puts the parts of `crossposter.daemon` together and runs them.

* `watch` finds changed archives and reads each thread's schedule, queue flag and progress;
* `policy` decides what each thread needs (a job, a run now, missed, nothing);
* `jobs` keeps one APScheduler job per scheduled thread and one per queue-slot time;
* `worker` publishes one thread at a time, each through `attempt`, whose outcome `state` keeps;
* `child` runs the publishing in a child process started shortly before something is due.

The main thread runs `run_forever`: poll the archives, beat the heart, start or stop the child.
Extra periodic work (say, the mirror loop) is one more job on `Engine.scheduler` (APScheduler 3's
`add_job`, with an id prefix of its own), added after `start()`; it must not publish from the
scheduler's thread: hand anything long to a thread of its own.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crossposter.daemon import child as child_process
from crossposter.daemon import jobs as jobs_mod
from crossposter.daemon.attempt import Publisher, attempt
from crossposter.daemon.policy import Action, WorkReason, decide, next_for_slot, not_wanted, publisher_wanted
from crossposter.daemon.state import STATE_FILE, DaemonState, ThreadOutcome, now_utc, write_heartbeat
from crossposter.daemon.watch import FileWatcher, ThreadInfo, thread_info
from crossposter.daemon.worker import Work, Worker

if TYPE_CHECKING:
    from crossposter.archive import Archive, Thread
    from crossposter.config import Config
    from crossposter.platforms.fakes import JournalFakes

log = logging.getLogger("crossposter.daemon")


@dataclass
class Engine:
    """Runs the daemon's jobs. `publish` and `adapters` are injectable for tests and the benchmark;
    `fakes` (journal fakes, chosen by the command) reach the publisher child as well."""

    config: Config
    publish: Publisher | None = None
    adapters: dict[str, Any] | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    #: Called after each thread (tests wait on it).
    on_result: Callable[[str, str], None] | None = None
    fakes: JournalFakes | None = None

    def __post_init__(self) -> None:
        from zoneinfo import ZoneInfo

        self.zone = ZoneInfo(self.config.timezone)
        if self.adapters is None and self.fakes is not None:
            self.adapters = dict(self.fakes.adapters(self.config.enabled_platforms()))
        self.state = DaemonState.load(self.config.state_path / STATE_FILE)
        self.scheduler = jobs_mod.new_scheduler(self.zone, self.config.daemon.misfire_grace)
        self.thread_jobs = jobs_mod.ThreadJobs(self.scheduler, self.zone, self._due, self._describe)
        self.threads: dict[str, ThreadInfo] = {}  # every thread of every archive, archive order
        self._by_archive: dict[Path, list[str]] = {}
        self._watcher = FileWatcher()
        self.worker = Worker(self._run, self._finished, self.stop_event)
        self._reported: list[str] = []  # vital problems already logged
        self._reload_lock = threading.RLock()
        self.current: str | None = None
        #: when other parts of the daemon (the mirror) expect to publish next: the publisher is started before
        self.wakeups: list[Callable[[], datetime | None]] = []
        self.child: child_process.ChildPublisher | None = None
        if self.publish is None and self.config.daemon.publisher_process:
            self.child = child_process.ChildPublisher(self.config, self.fakes)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        from apscheduler.events import EVENT_JOB_MISSED

        self.config.state_path.mkdir(parents=True, exist_ok=True)
        self.scheduler.add_listener(self._job_missed, EVENT_JOB_MISSED)
        self.scheduler.start()
        jobs_mod.add_slot_jobs(self.scheduler, self.config.daemon.queue_slots, self.config.timezone, self._slot)
        self.poll(initial=True)
        self.worker.start()
        log.info("daemon started: %d archive(s), %d thread(s), %d job(s), timezone %s",
                 len(self._by_archive), len(self.threads), len(self.thread_jobs.times()), self.config.timezone,
                 extra={"event": "started"})

    def stop(self, timeout: float | None = None) -> None:
        """Stop taking new work, let the current request finish (the publisher sees stop_event)."""
        self.stop_event.set()
        with contextlib.suppress(Exception):
            self.scheduler.shutdown(wait=False)
        self.worker.join(timeout)
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
        if self.worker.stopped:
            problems.append(f"the publishing thread stopped ({self.worker.died or 'it ended'}): nothing is "
                            "published; restart the daemon")
        return problems

    def run_forever(self) -> None:
        """The main loop: watch the archives and beat the heart until stop_event is set."""
        interval = self.config.daemon.watch_interval
        beat_every = self.config.daemon.heartbeat_interval
        next_beat = 0.0
        while not self.stop_event.is_set():
            tick = time.monotonic()
            if tick >= next_beat:
                problems = self.vital_problems()
                if problems != self._reported:
                    for p in problems:
                        log.critical("%s", p, extra={"event": "unhealthy"})
                    self._reported = problems
                write_heartbeat(self.config.state_path, {"current": self.current, "problems": problems})
                next_beat = tick + beat_every
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
        due = [*self.thread_jobs.times().values(), self.next_slot(), *(f() for f in self.wakeups)]
        if publisher_wanted(due, now_utc(), child_process.PREWARM, self.worker.busy):
            self.child.ensure()
        elif (self.child.alive and not self.child.busy
              and time.monotonic() - self.child.idle_since > child_process.LINGER):
            self.child.close()

    # ------------------------------------------------------------------ watching

    def poll(self, initial: bool = False) -> None:
        """Re-expand the globs, stat every file, reload what changed."""
        with self._reload_lock:
            paths = self.config.archive_paths()
            changes = self._watcher.scan(paths)
            for path in changes.changed:
                if not initial:
                    log.info("archive changed: %s", path, extra={"event": "archive_changed", "archive": str(path)})
                self._load_archive(path)
            for gone in changes.removed:
                log.info("archive removed: %s", gone, extra={"event": "archive_removed", "archive": str(gone)})
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
        self.thread_jobs.drop(key)

    # ------------------------------------------------------------------ carrying out the policy

    def _reconcile(self, info: ThreadInfo, archive: Archive, thread: Thread) -> None:
        key = info.key
        now = now_utc()
        decision = decide(info, self.state.get(key, info.sig), now, self.config.daemon.misfire_grace,
                          self.worker.in_flight(key))
        action = decision.action
        if action == Action.IGNORE:
            return
        if action == Action.SCHEDULE:
            assert decision.at is not None and decision.reason is not None
            self.thread_jobs.set(key, decision.at, decision.reason)
            return
        self.thread_jobs.drop(key)
        if action == Action.BROKEN:
            log.error("not publishing %r until its crossposter block is fixed: %s", info.title, info.error,
                      extra={"event": "bad_metadata", "title": info.title, "archive": str(info.archive)})
        elif action == Action.MISSED:
            self._mark_missed(info, decision.late)
        elif action in (Action.RUN, Action.RUN_IF_INCOMPLETE):
            assert decision.at is not None and decision.reason is not None
            if action == Action.RUN_IF_INCOMPLETE and self._complete(info, archive, thread):
                return
            if decision.reason == WorkReason.MISFIRE:
                log.info("%r was due %s (%.0f s ago, within the %d s grace): publishing now", info.title,
                         decision.at.astimezone(self.zone).isoformat(timespec="seconds"), decision.late,
                         self.config.daemon.misfire_grace, extra={"event": "misfire_run", "title": info.title})
            self.worker.enqueue(key, decision.reason, decision.at)

    def _complete(self, info: ThreadInfo, archive: Archive, thread: Thread) -> bool:
        """Whether every enabled platform has all its posts recorded (planned offline; done entries cached)."""
        from crossposter.plan import plan_thread

        try:
            plan = plan_thread(archive, thread, self.config, self.config.enabled_platforms())
        except Exception:
            return False
        if plan.errors:
            return False
        done = all(info.recorded.get(p, 0) >= len(pp.posts) for p, pp in plan.platforms.items()
                   if p != info.source)
        if done and not info.pending:
            self.state.set(info.key, outcome=ThreadOutcome.DONE, sig=info.sig, message="all posts recorded")
        return done and not info.pending

    def _mark_missed(self, info: ThreadInfo, late: float) -> None:
        when = info.schedule.astimezone(self.zone).isoformat(timespec="seconds") if info.schedule else "?"
        from crossposter.messages import duration

        grace = duration(self.config.daemon.misfire_grace)
        log.warning("%s:%d: %r was due %s, %s ago, beyond the %s misfire grace: missed, left alone "
                    "(schedule it again to publish it)", info.archive, info.line, info.title, when, duration(late),
                    grace, extra={"event": "missed", "title": info.title, "archive": str(info.archive)})
        self.state.set(info.key, outcome=ThreadOutcome.MISSED, sig=info.sig, schedule=when,
                       message=f"missed: due {when}, the daemon saw it {duration(late)} late (grace {grace})")

    def _job_missed(self, event: Any) -> None:
        """APScheduler skipped a job whose time passed beyond the grace (the process was asleep)."""
        key = jobs_mod.thread_key_of(event.job_id)
        if key is None:
            return
        self.thread_jobs.forget(key)
        info = self.threads.get(key)
        if info is not None:
            self._mark_missed(info, (now_utc() - event.scheduled_run_time).total_seconds())

    def _describe(self, key: str) -> str:
        info = self.threads.get(key)
        return info.title if info else key

    # ------------------------------------------------------------------ jobs

    def next_slot(self) -> datetime | None:
        return jobs_mod.next_slot(self.scheduler)

    def jobs(self) -> dict[str, datetime]:
        """Each scheduled thread's key and the time of its job."""
        return self.thread_jobs.times()

    def _due(self, key: str, reason: WorkReason, when: datetime) -> None:
        with self._reload_lock:
            self.thread_jobs.fired(key, when)
        self.worker.enqueue(key, reason, when)

    def _slot(self, text: str) -> None:
        fired = now_utc()
        with self._reload_lock:
            ordered = (self.threads[k] for keys in self._by_archive.values() for k in keys if k in self.threads)
            info = next_for_slot(ordered, lambda key: self.state.get(key, self.threads[key].sig),
                                 self.worker.in_flight)
            if info is not None:
                log.info("queue slot %r: next queued thread is %r", text, info.title,
                         extra={"event": "slot", "title": info.title, "archive": str(info.archive)})
                self.worker.enqueue(info.key, WorkReason.QUEUED, fired)
                return
        log.info("queue slot %r: no queued thread waiting", text, extra={"event": "slot_empty"})

    # ------------------------------------------------------------------ the worker's side

    def _run(self, work: Work) -> None:
        # Look at the archives once more: an edit made while this waited behind another thread wins.
        try:
            self.poll()
        except Exception:
            log.exception("watching the archives failed", extra={"event": "watch_error"})
        info = self.threads.get(work.key)
        if info is None and work.reason == WorkReason.MIRROR:
            info = _read_info(work.key, self.config.timezone)  # the mirror's archive may not be in `archives`
        if info is None:
            log.info("%s is gone from the archives; not publishing", work.key, extra={"event": "gone"})
            return
        why_not = not_wanted(info, work.reason, now_utc())
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
            done = attempt(info, self._publisher(), config=self.config, state=self.state, zone=self.zone,
                           adapters=self.adapters, stop_event=self.stop_event, platforms=work.platforms)
        finally:
            self.current = None
        if done.retry_at is not None:
            with self._reload_lock:
                self.thread_jobs.set(info.key, done.retry_at, WorkReason.RETRY)
        if self.on_result is not None:
            self.on_result(work.key, done.outcome)

    def submit_mirror(self, archive: Path, title: str, platforms: list[str], due: datetime) -> None:
        """The mirror's hook: publish this thread to `platforms` through the same worker as schedules."""
        self.worker.enqueue(f"{Path(archive).resolve()}::{title}", WorkReason.MIRROR, due, list(platforms))

    def _publisher(self) -> Publisher:
        if self.publish is not None:
            return self.publish
        if self.child is not None:
            return self.child
        from crossposter.publish import publish_thread

        return publish_thread

    def _finished(self, work: Work) -> None:
        # Edits seen while it was queued or running were not acted on (it was in flight):
        # forget the file's signature so the next poll reconciles its threads again.
        info = self.threads.get(work.key)
        if info is not None:
            with self._reload_lock:
                self._watcher.forget(info.archive)


def _read_info(key: str, timezone: str) -> ThreadInfo | None:
    """A thread the watcher does not follow (the mirror's archive outside `archives`), read now."""
    from crossposter.archive import ArchiveError, read_archive

    archive, _, title = key.partition("::")
    try:
        path = Path(archive)
        return thread_info(path, read_archive(path).find(title), timezone)
    except ArchiveError:
        return None
