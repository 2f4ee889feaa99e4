"""One publication attempt of a thread, and what it leaves in the state file and the log.

The worker calls `attempt` for a thread it took off the queue. The publisher (the child process,
or `publish_thread` in-process) does the posting; this module turns its result, or its refusal,
into the thread's stored outcome: done, failed, stopped (by a signal, resumed at the next start)
or retrying at a time (a rate limit, a transient failure, a crash, a lock held by another run).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from crossposter.daemon.policy import plan_retry
from crossposter.daemon.state import DaemonState, ThreadOutcome, now_utc
from crossposter.daemon.watch import ThreadInfo
from crossposter.messages import plural

if TYPE_CHECKING:
    from pathlib import Path
    from zoneinfo import ZoneInfo

    from crossposter.config import Config

log = logging.getLogger("crossposter.daemon")


class Publisher(Protocol):
    """`publish_thread`'s signature as the daemon uses it (the child publisher has the same)."""

    def __call__(self, config: Config, archive: Path, title: str, *, adapters: Any = None,
                 stop_event: threading.Event | None = None, progress: bool = False) -> Any: ...


@dataclass(frozen=True)
class Attempted:
    outcome: ThreadOutcome
    #: when the next attempt is due (RETRYING only)
    retry_at: datetime | None = None


def attempt(info: ThreadInfo, publish: Publisher, *, config: Config, state: DaemonState, zone: ZoneInfo,
            adapters: dict[str, Any] | None, stop_event: threading.Event,
            platforms: list[str] | None = None) -> Attempted:
    from crossposter.publish import PreflightError, ThreadLockedError

    prev = state.get(info.key, info.sig) or {}
    attempts = int(prev.get("attempts", 0)) if prev.get("outcome") == ThreadOutcome.RETRYING else 0
    extra = {"title": info.title, "archive": str(info.archive)}
    try:
        only = {"platforms": platforms} if platforms else {}  # the mirror's targets
        result = publish(config, info.archive, info.title, adapters=adapters, stop_event=stop_event, progress=False,
                         **only)
    except PreflightError as e:
        state.set(info.key, outcome=ThreadOutcome.FAILED, sig=info.sig, message="; ".join(e.problems))
        for p in e.problems:
            log.error("not published: %s", p, extra={**extra, "event": "preflight_error"})
        return Attempted(ThreadOutcome.FAILED)
    except ThreadLockedError as e:
        # another run (a manual `post`, or an orphaned publisher finishing) holds it: look again soon
        soon = now_utc() + timedelta(seconds=min(30, config.daemon.retry_later_delay))
        return retry_later(info, attempts, soon, str(e), config=config, state=state, zone=zone)
    except Exception as e:  # never loop on a crash: count it as a later attempt
        log.exception("publishing %r failed", info.title, extra={**extra, "event": "error"})
        return retry_later(info, attempts, None, f"{type(e).__name__}: {e}", config=config, state=state, zone=zone)
    summary = "; ".join(f"{p}: {o.state} {o.posted}/{o.total}" + (f" ({o.message})" if o.message else "")
                        for p, o in result.outcomes.items())
    links = {p: o.links for p, o in result.outcomes.items()}
    if result.ok:
        state.set(info.key, outcome=ThreadOutcome.DONE, sig=info.sig, message=summary, links=links)
        log.info("published %r: %s", info.title, summary, extra={**extra, "event": "published", "links": links})
        return Attempted(ThreadOutcome.DONE)
    if stop_event.is_set() and result.retryable:
        state.set(info.key, outcome=ThreadOutcome.STOPPED, sig=info.sig, message=summary)
        log.info("stopped %r on shutdown: %s (resumes at the next start)", info.title, summary,
                 extra={**extra, "event": "stopped"})
        return Attempted(ThreadOutcome.STOPPED)
    if result.retryable:
        retry_ats = [o.retry_at for o in result.outcomes.values() if o.retry_at is not None]
        return retry_later(info, attempts, max(retry_ats) if retry_ats else None, summary,
                           config=config, state=state, zone=zone)
    state.set(info.key, outcome=ThreadOutcome.FAILED, sig=info.sig, message=summary)
    log.error("failed %r: %s", info.title, summary, extra={**extra, "event": "failed"})
    return Attempted(ThreadOutcome.FAILED)


def retry_later(info: ThreadInfo, attempts: int, retry_at: datetime | None, why: str, *, config: Config,
                state: DaemonState, zone: ZoneInfo) -> Attempted:
    """Store a later attempt (at `retry_at`, or after the configured delay), or give up when they are used up."""
    extra = {"title": info.title, "archive": str(info.archive)}
    retry = plan_retry(attempts, config.daemon.retry_later_attempts, retry_at, now_utc(),
                       config.daemon.retry_later_delay)
    if retry.at is None:
        state.set(info.key, outcome=ThreadOutcome.FAILED, sig=info.sig, attempts=retry.attempts,
                  message=f"gave up after {plural(retry.attempts, 'later attempt')}: {why}")
        log.error("giving up on %r after %s: %s", info.title, plural(retry.attempts, "later attempt"), why,
                  extra={**extra, "event": "failed"})
        return Attempted(ThreadOutcome.FAILED)
    state.set(info.key, outcome=ThreadOutcome.RETRYING, sig=info.sig, attempts=retry.attempts,
              retry_at=retry.at.isoformat(), message=why)
    log.warning("%r stopped (%s); retry %d/%d at %s", info.title, why, retry.attempts,
                config.daemon.retry_later_attempts, retry.at.astimezone(zone).isoformat(timespec="seconds"),
                extra={**extra, "event": "retry_later", "retry_at": retry.at.isoformat()})
    return Attempted(ThreadOutcome.RETRYING, retry.at)
