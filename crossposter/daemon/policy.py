"""The daemon's decisions, as pure functions of a thread, its stored outcome and the time.

Nothing here touches a file, a process or the scheduler, so every rule can be unit-tested with
plain values (`tests/unit/test_daemon_policy.py`); the engine carries the decisions out.

Misfire policy: a scheduled thread nobody has started, whose time passed while the daemon
was down (or asleep), goes out if the daemon sees it within `daemon.misfire_grace` seconds
of its time; later than that it is logged as missed, recorded, and left alone. A thread
that was already started (some posts recorded, or stopped by SIGTERM) is always resumed,
because a half-published thread is worse than a late one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from crossposter.daemon.state import TERMINAL, ThreadOutcome, state_time
from crossposter.daemon.watch import ThreadInfo

#: The longest a retry is put off, whatever reset time a server announced.
MAX_RETRY_WAIT = timedelta(days=30)


class WorkReason(StrEnum):
    """Why a thread was put on the worker's queue."""

    SCHEDULED = "scheduled"  # its date job fired
    QUEUED = "queued"  # a queue slot picked it
    MISFIRE = "misfire"  # its time passed while the daemon was away, within the grace
    RESUME = "resume"  # it was started (posts recorded, or stopped by a signal): finish it
    RETRY = "retry"  # a later attempt after a rate limit, a transient failure or a crash
    MIRROR = "mirror"  # the mirror found it settled (crossposter.mirror): its targets only


class Action(StrEnum):
    IGNORE = "ignore"  # in flight: the worker looks again when it is done
    BROKEN = "broken"  # its block has problems: no job, and say why
    DROP = "drop"  # nothing to do: no job
    SCHEDULE = "schedule"  # a date job at `at` with `reason`
    RUN = "run"  # on the queue now (`reason`, due at `at`)
    RUN_IF_INCOMPLETE = "run_if_incomplete"  # RUN, unless every post is already recorded
    MISSED = "missed"  # past the grace: record it as missed, leave it alone


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: WorkReason | None = None
    at: datetime | None = None
    #: seconds past its time (MISSED, and RUN for a misfire)
    late: float = 0.0


def decide(info: ThreadInfo, entry: dict[str, Any] | None, now: datetime, grace: float,
           in_flight: bool = False) -> Decision:
    """What a thread read from the archive needs, given its stored outcome (`entry`, for this signature)."""
    if info.error:  # nothing in a block that cannot be read is trusted, not even `skip`
        return Decision(Action.BROKEN)
    if info.skipped or (info.schedule is None and not info.queued):
        return Decision(Action.DROP)
    if in_flight:
        return Decision(Action.IGNORE)
    outcome = entry.get("outcome") if entry else None
    if outcome in TERMINAL:
        return Decision(Action.DROP)
    if outcome == ThreadOutcome.STOPPED:
        return Decision(Action.RUN, WorkReason.RESUME, now)
    if outcome == ThreadOutcome.RETRYING:
        assert entry is not None
        return Decision(Action.SCHEDULE, WorkReason.RETRY, max(state_time(entry.get("retry_at")) or now, now))
    if info.schedule is None:  # queued only: a slot takes it, unless it was started and interrupted
        return Decision(Action.RUN_IF_INCOMPLETE, WorkReason.RESUME, now) if info.started else Decision(Action.DROP)
    if info.schedule > now:
        return Decision(Action.SCHEDULE, WorkReason.SCHEDULED, info.schedule)
    # its time has passed
    if info.started:
        return Decision(Action.RUN_IF_INCOMPLETE, WorkReason.RESUME, info.schedule)
    late = (now - info.schedule).total_seconds()
    if late <= grace:
        return Decision(Action.RUN, WorkReason.MISFIRE, info.schedule, late)
    return Decision(Action.MISSED, late=late)


def not_wanted(info: ThreadInfo, reason: WorkReason, now: datetime) -> str | None:
    """Why a thread taken off the queue should not be published after all (None: go ahead)."""
    if info.error:
        return "its crossposter block has problems"
    if info.skipped:
        return f"skipped ({info.skipped})"
    if reason == WorkReason.MIRROR:
        return None  # the mirror decided (crossposter.mirror.decide); it has no schedule to check
    if reason == WorkReason.QUEUED:
        return None if info.queued and info.schedule is None else "no longer queued"
    if reason in (WorkReason.SCHEDULED, WorkReason.MISFIRE):
        if info.schedule is None:
            return "unscheduled"
        if info.schedule > now + timedelta(seconds=1):
            return "rescheduled to a later time"
    if reason == WorkReason.RETRY and info.schedule is None and not info.queued:
        return "unscheduled"
    return None


def waits_for_slot(info: ThreadInfo, has_outcome: bool, in_flight: bool) -> bool:
    """Whether a queue slot may take this thread: queued, unscheduled, untouched, not being published."""
    return (info.queued and info.schedule is None and not info.skipped and not info.started and not info.error
            and not has_outcome and not in_flight)


def next_for_slot(threads: Iterable[ThreadInfo], has_outcome: Any, in_flight: Any) -> ThreadInfo | None:
    """The first thread in archive order a queue slot takes (`has_outcome(key)`, `in_flight(key)`)."""
    for info in threads:
        if waits_for_slot(info, bool(has_outcome(info.key)), bool(in_flight(info.key))):
            return info
    return None


@dataclass(frozen=True)
class Retry:
    """A later attempt: `at` is None when the attempts are used up (the thread has failed)."""

    attempts: int
    at: datetime | None


def plan_retry(attempts: int, max_attempts: int, retry_at: datetime | None, now: datetime,
               delay: float) -> Retry:
    """The next later attempt after `attempts` earlier ones; a server's reset time is clamped to sane bounds."""
    attempts += 1
    if attempts > max_attempts:
        return Retry(attempts - 1, None)
    when = retry_at or (now + timedelta(seconds=delay))
    # a server's reset time is not trusted to be sane: between now and MAX_RETRY_WAIT from now
    return Retry(attempts, min(max(when, now), now + MAX_RETRY_WAIT))


def publisher_wanted(due: Iterable[datetime | None], now: datetime, prewarm: float, working: bool) -> bool:
    """Whether the publisher process should run: something is due within `prewarm` seconds, or in flight."""
    times = [t for t in due if t is not None]
    return working or (bool(times) and (min(times) - now).total_seconds() <= prewarm)
