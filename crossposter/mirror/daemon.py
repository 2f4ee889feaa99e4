"""The mirror inside `crossposter daemon`: two APScheduler jobs and a bridge to the engine's worker.

* `mirror:poll`, an interval job every `mirror.every` (the first one at start-up): one backup and
  one look at the archive (`Mirror.poll`). APScheduler runs it in its own pool, so a slow platform
  never holds up a scheduled thread; `max_instances=1` and the mirror's lock keep polls apart.
* `mirror:wake`, a one-shot job at the earliest time a waiting thread settles, when that comes
  before the next regular poll: a thread goes out about `settle` after its newest post, not up to
  `every` later.

Publishing goes through `Engine.submit_mirror`: the same worker, the same publisher (child
process) and the same outcome bookkeeping (retries, failures in `daemon-state.json`) as a
scheduled thread.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crossposter.mirror.loop import Mirror, now_utc

if TYPE_CHECKING:
    from crossposter.archive import Thread

log = logging.getLogger("crossposter.mirror")


class EnginePublisher:
    """The `Publisher` the mirror talks to, over the daemon's engine."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def submit(self, archive: Path, title: str, platforms: list[str]) -> None:
        self.engine.submit_mirror(archive, title, platforms, now_utc())

    def outcome(self, archive: Path, title: str, thread: Thread) -> tuple[str | None, datetime | None]:
        from crossposter.daemon.state import state_time
        from crossposter.daemon.watch import thread_info

        info = thread_info(Path(archive).resolve(), thread, self.engine.config.timezone)
        entry = self.engine.state.get(info.key, info.sig)
        if not entry:
            return None, None
        return entry.get("outcome"), state_time(entry.get("retry_at"))


def attach(engine: Any, *, backfill: datetime | None = None, backup: Any = None) -> Mirror:
    """Create the mirror and add its jobs to the engine's (started) scheduler."""
    from apscheduler.triggers.date import DateTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    config = engine.config
    assert config.mirror is not None
    from crossposter.mirror.backup_child import (
        backup_out_of_process,
        changes_out_of_process,
        delete_out_of_process,
        records_unchanged,
        update_out_of_process,
    )

    mirror = Mirror(config, EnginePublisher(engine), backfill=backfill, backup=backup or backup_out_of_process,
                    changes=changes_out_of_process, delete=delete_out_of_process,
                    update=update_out_of_process, unchanged=records_unchanged)
    every = config.mirror.every

    def run() -> None:
        if engine.stop_event.is_set():
            return
        try:
            wake = mirror.poll()
        except Exception:  # never let one bad poll end the job (or the scheduler's thread)
            log.exception("mirror: the poll failed", extra={"event": "mirror_error"})
            return
        job = engine.scheduler.get_job("mirror:poll")
        nxt = job.next_run_time if job is not None else None
        if wake is not None and (nxt is None or wake < nxt - timedelta(seconds=0.5)):
            engine.scheduler.add_job(run, DateTrigger(run_date=max(wake, now_utc())), id="mirror:wake",
                                     name="mirror wake-up", replace_existing=True, misfire_grace_time=None)

    engine.wakeups.append(lambda: mirror.wake)  # the publisher process is warm when a thread settles
    engine.scheduler.add_job(run, IntervalTrigger(seconds=every), id="mirror:poll", name="mirror poll",
                             next_run_time=now_utc(), max_instances=1, coalesce=True, misfire_grace_time=None)
    log.info("mirror: %s -> %s every %g s, settle %g s, into %s", config.mirror.from_, ", ".join(config.mirror.to),
             every, config.mirror.settle, mirror_into(mirror), extra={"event": "mirror_started"})
    return mirror


def mirror_into(mirror: Mirror) -> str:
    from crossposter.mirror.source import into_path

    return str(into_path(mirror.config))
