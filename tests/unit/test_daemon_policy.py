"""The daemon's decisions (`crossposter.daemon.policy`) as plain values: no process, no scheduler, no files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crossposter.daemon.policy import (
    MAX_RETRY_WAIT,
    Action,
    Decision,
    WorkReason,
    decide,
    next_for_slot,
    not_wanted,
    plan_retry,
    publisher_wanted,
)
from crossposter.daemon.state import ThreadOutcome
from crossposter.daemon.watch import ThreadInfo

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
GRACE = 300


def info(title: str = "T", *, schedule: datetime | None = None, queued: bool = False, skipped: str | None = None,
         posted: int = 0, pending: bool = False, problems: list | None = None) -> ThreadInfo:
    return ThreadInfo(archive=Path("/a.md"), title=title, line=3, schedule=schedule, problems=problems or [],
                      queued=queued, skipped=skipped, recorded={"bluesky": posted, "mastodon": 0, "x": 0},
                      pending=pending, sig="s")


def entry(outcome: str, **values: object) -> dict:
    return {"outcome": outcome, "sig": "s", **values}


@pytest.mark.parametrize(("thread", "stored", "in_flight", "expected"), [
    # a broken block is reported even when it also says skip (nothing in it is trusted)
    (info(schedule=NOW, skipped="skip: true", problems=[(4, "bad")]), None, False, Decision(Action.BROKEN)),
    (info(schedule=NOW, skipped="skip: true"), None, False, Decision(Action.DROP)),
    (info(), None, False, Decision(Action.DROP)),  # neither scheduled nor queued
    (info(schedule=NOW - timedelta(hours=1)), None, True, Decision(Action.IGNORE)),
    (info(schedule=NOW - timedelta(hours=1)), entry("done"), False, Decision(Action.DROP)),
    (info(schedule=NOW - timedelta(hours=1)), entry("failed"), False, Decision(Action.DROP)),
    (info(schedule=NOW - timedelta(hours=1)), entry("missed"), False, Decision(Action.DROP)),
    # stopped by a signal: resumed at once, however late
    (info(schedule=NOW - timedelta(days=3)), entry("stopped"), False,
     Decision(Action.RUN, WorkReason.RESUME, NOW)),
    (info(queued=True), None, False, Decision(Action.DROP)),  # a queue slot takes it
    (info(queued=True, posted=2), None, False, Decision(Action.RUN_IF_INCOMPLETE, WorkReason.RESUME, NOW)),
    (info(queued=True, pending=True), None, False, Decision(Action.RUN_IF_INCOMPLETE, WorkReason.RESUME, NOW)),
    (info(schedule=NOW + timedelta(hours=2)), None, False,
     Decision(Action.SCHEDULE, WorkReason.SCHEDULED, NOW + timedelta(hours=2))),
    # past its time: a started thread is resumed whatever the delay
    (info(schedule=NOW - timedelta(days=3), posted=1), None, False,
     Decision(Action.RUN_IF_INCOMPLETE, WorkReason.RESUME, NOW - timedelta(days=3))),
    (info(schedule=NOW - timedelta(seconds=GRACE)), None, False,
     Decision(Action.RUN, WorkReason.MISFIRE, NOW - timedelta(seconds=GRACE), GRACE)),
    (info(schedule=NOW - timedelta(seconds=GRACE + 1)), None, False, Decision(Action.MISSED, late=GRACE + 1)),
])
def test_decide(thread: ThreadInfo, stored: dict | None, in_flight: bool, expected: Decision) -> None:
    assert decide(thread, stored, NOW, GRACE, in_flight) == expected


@pytest.mark.parametrize(("retry_at", "expected"), [
    ((NOW + timedelta(minutes=5)).isoformat(), NOW + timedelta(minutes=5)),
    ((NOW - timedelta(minutes=5)).isoformat(), NOW),  # its time passed while the daemon was down: now
    ("not a time", NOW),  # the state file was edited
    ("2026-12-01T10:00:00", NOW),  # naive: not trusted
    (None, NOW),
])
def test_a_retrying_thread_gets_its_retry_job(retry_at: object, expected: datetime) -> None:
    d = decide(info(schedule=NOW - timedelta(hours=1)), entry("retrying", retry_at=retry_at), NOW, GRACE)
    assert d == Decision(Action.SCHEDULE, WorkReason.RETRY, expected)


times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))


@given(schedule=st.none() | times, now=times, grace=st.integers(0, 10**6), queued=st.booleans(),
       posted=st.integers(0, 3), pending=st.booleans(), in_flight=st.booleans(),
       stored=st.none() | st.sampled_from(list(ThreadOutcome)))
def test_decisions_are_consistent(schedule: datetime | None, now: datetime, grace: int, queued: bool, posted: int,
                                  pending: bool, in_flight: bool, stored: ThreadOutcome | None) -> None:
    """Whatever the thread: no job in the past, nothing started is ever "missed", misfire only within grace."""
    thread = info(schedule=schedule, queued=queued, posted=posted, pending=pending)
    d = decide(thread, entry(stored, retry_at=None) if stored else None, now, grace, in_flight)
    if d.action == Action.SCHEDULE:
        assert d.at is not None and d.at >= now
    if d.action == Action.MISSED:
        assert not thread.started and schedule is not None and (now - schedule).total_seconds() > grace
    if d.reason == WorkReason.MISFIRE:
        assert schedule is not None and 0 <= (now - schedule).total_seconds() <= grace and not thread.started
    if d.action in (Action.RUN, Action.RUN_IF_INCOMPLETE, Action.SCHEDULE):
        assert d.reason is not None and d.at is not None and not in_flight
    if schedule is None and not queued:
        assert d.action == Action.DROP


@pytest.mark.parametrize(("thread", "reason", "why"), [
    (info(schedule=NOW, problems=[(4, "bad")]), WorkReason.SCHEDULED, "its crossposter block has problems"),
    (info(schedule=NOW, skipped="skip: true"), WorkReason.SCHEDULED, "skipped (skip: true)"),
    (info(queued=True), WorkReason.QUEUED, None),
    (info(queued=True, schedule=NOW), WorkReason.QUEUED, "no longer queued"),
    (info(), WorkReason.QUEUED, "no longer queued"),
    (info(schedule=NOW), WorkReason.SCHEDULED, None),
    (info(schedule=NOW + timedelta(seconds=1)), WorkReason.SCHEDULED, None),  # the job may fire a little early
    (info(schedule=NOW + timedelta(minutes=5)), WorkReason.SCHEDULED, "rescheduled to a later time"),
    (info(schedule=NOW + timedelta(minutes=5)), WorkReason.MISFIRE, "rescheduled to a later time"),
    (info(queued=True), WorkReason.SCHEDULED, "unscheduled"),
    (info(), WorkReason.RETRY, "unscheduled"),
    (info(queued=True), WorkReason.RETRY, None),
    (info(), WorkReason.RESUME, None),  # a started thread is finished whatever happened to its schedule
])
def test_not_wanted(thread: ThreadInfo, reason: WorkReason, why: str | None) -> None:
    assert not_wanted(thread, reason, NOW) == why


def test_a_slot_takes_the_first_waiting_thread_in_archive_order() -> None:
    threads = [info("scheduled", schedule=NOW, queued=True), info("started", queued=True, posted=1),
               info("skipped", queued=True, skipped="skip: true"), info("broken", queued=True, problems=[(1, "x")]),
               info("failed before", queued=True), info("running", queued=True), info("next", queued=True),
               info("after", queued=True)]
    has_outcome = {"/a.md::failed before"}.__contains__
    in_flight = {"/a.md::running"}.__contains__
    assert next_for_slot(threads, has_outcome, in_flight).title == "next"
    assert next_for_slot(threads[:6], has_outcome, in_flight) is None


def test_retries_are_bounded_in_number_and_time() -> None:
    first = plan_retry(0, 3, None, NOW, 600)
    assert (first.attempts, first.at) == (1, NOW + timedelta(seconds=600))
    assert plan_retry(1, 3, NOW + timedelta(hours=1), NOW, 600).at == NOW + timedelta(hours=1)
    assert plan_retry(1, 3, NOW - timedelta(hours=1), NOW, 600).at == NOW  # a reset time in the past
    assert plan_retry(1, 3, NOW + timedelta(days=400), NOW, 600).at == NOW + MAX_RETRY_WAIT  # a silly one
    assert plan_retry(2, 3, None, NOW, 600).attempts == 3
    gave_up = plan_retry(3, 3, None, NOW, 600)
    assert (gave_up.attempts, gave_up.at) == (3, None)


def test_the_publisher_runs_only_around_due_times() -> None:
    assert not publisher_wanted([], NOW, 60, working=False)
    assert not publisher_wanted([None, NOW + timedelta(seconds=61)], NOW, 60, working=False)
    assert publisher_wanted([None, NOW + timedelta(seconds=60)], NOW, 60, working=False)
    assert publisher_wanted([NOW - timedelta(hours=1)], NOW, 60, working=False)  # overdue
    assert publisher_wanted([], NOW, 60, working=True)
