"""APScheduler bookkeeping: one `DateTrigger` job per scheduled thread, `CronTrigger` jobs for queue slots.

APScheduler 3's `BackgroundScheduler` (in the configured zone) sleeps until the next job is due (an
`Event.wait` with a timeout), so an idle daemon uses no CPU. Jobs do no work themselves: their
callbacks put the thread on the worker's queue. Job ids are `thread:<key>` and `slot:<i>:<j>`; any
other periodic job (say, a mirror loop) is added to the same `Engine.scheduler` under its own prefix.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

log = logging.getLogger("crossposter.daemon")

THREAD_JOB = "thread:"
SLOT_JOB = "slot:"


def scheduler_class() -> type:
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


def new_scheduler(zone: Any, misfire_grace: int) -> Any:
    return scheduler_class()(
        timezone=zone,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": max(1, misfire_grace)},
    )


class ThreadJobs:
    """The date job of each thread key, mirrored in a dict so that "is it already there?" costs nothing."""

    def __init__(self, scheduler: Any, zone: Any, fire: Callable[[str, Any, datetime], None],
                 describe: Callable[[str], str]) -> None:
        self.scheduler = scheduler
        self.zone = zone
        self._fire = fire
        self._describe = describe
        self._times: dict[str, datetime] = {}  # thread key -> run time of its DateTrigger job

    def set(self, key: str, when: datetime, reason: Any) -> None:
        """Have `fire(key, reason, when)` called at `when` (moving the key's job if it had one)."""
        if self._times.get(key) == when:
            return
        from apscheduler.triggers.date import DateTrigger

        from crossposter.timeparse import TimeError, check_range

        try:
            # Every time is checked where it is read; this is the last line before APScheduler's thread,
            # which an out-of-range time would end (it computes in the configured zone).
            check_range(when)
        except TimeError as e:
            self.drop(key)
            log.error("not scheduling %s: %s", key, e, extra={"event": "bad_time"})
            return

        moved = key in self._times
        self._times[key] = when
        self.scheduler.add_job(self._fire, DateTrigger(run_date=when), args=[key, reason, when],
                               id=f"{THREAD_JOB}{key}", replace_existing=True, name=key)
        log.debug("%s %r at %s", "moved" if moved else "scheduled", self._describe(key),
                  when.astimezone(self.zone).isoformat(timespec="seconds"),
                  extra={"event": "job_moved" if moved else "job_added"})

    def drop(self, key: str) -> None:
        if self._times.pop(key, None) is not None:
            with contextlib.suppress(Exception):
                self.scheduler.remove_job(f"{THREAD_JOB}{key}")
            log.debug("dropped job of %s", key, extra={"event": "job_dropped"})

    def fired(self, key: str, when: datetime) -> None:
        """The job of `key` at `when` ran (APScheduler removes a date job after its run)."""
        if self._times.get(key) == when:
            del self._times[key]

    def forget(self, key: str) -> None:
        """APScheduler gave the job up (missed beyond its grace): it no longer exists."""
        self._times.pop(key, None)

    def times(self) -> dict[str, datetime]:
        return dict(self._times)


def add_slot_jobs(scheduler: Any, queue_slots: list[str], timezone: str, fire: Callable[[str], None]) -> None:
    """One cron job per trigger of each queue slot (a slot text may need several, see `timeparse`)."""
    from crossposter.timeparse import parse_slot, slot_triggers

    for i, text in enumerate(queue_slots):
        for j, trig in enumerate(slot_triggers(parse_slot(text), timezone)):
            scheduler.add_job(fire, trig, args=[text], id=f"{SLOT_JOB}{i}:{j}", name=f"slot {text}",
                              misfire_grace_time=60)


def next_slot(scheduler: Any) -> datetime | None:
    times = [j.next_run_time for j in scheduler.get_jobs() if j.id.startswith(SLOT_JOB) and j.next_run_time]
    return min(times) if times else None


def thread_key_of(job_id: str) -> str | None:
    """The thread key of a thread job's id, None for any other job."""
    return job_id[len(THREAD_JOB):] if job_id.startswith(THREAD_JOB) else None
