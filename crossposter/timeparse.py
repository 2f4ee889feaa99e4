"""Times a person writes (`--at`, queue slots, `schedule:` values) turned into aware datetimes.

Kept apart from the scheduler so `schedule`, `status`, `check` and config validation share
one set of rules, and so the DST rules are written down (and tested) in one place:

* A local wall time that does not exist (the hour skipped when clocks spring forward, e.g.
  02:30 on 2026-03-29 in Europe/Berlin) is an error for `--at`: we cannot know what was meant.
  A queue slot in that hour fires shifted by the gap (02:30 → 03:30 CEST), as cron does.
* A wall time that happens twice (the hour repeated when clocks fall back) means its *first*
  occurrence (fold=0, the summer-time offset). Give an explicit offset to pick the second.
  A queue slot in that hour fires once, at the first occurrence.
* Only times from 1970 to 2199 are taken (`EARLIEST`, `LATEST`). Python's datetime ends at
  9999-12-31, so a year-9999 time overflows as soon as it is moved to another zone, and the
  scheduler's thread sleeps with `Event.wait`, which refuses a timeout beyond ~292 years: either
  used to crash the daemon (or silently kill its scheduler thread) on a value typed in an archive.
  Every time a person writes goes through `check_range` here, before any arithmetic.

Only the standard library is imported at module level; APScheduler is imported inside the
functions that build triggers, so validating a config does not pay for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger


class TimeError(ValueError):
    """A time or slot that cannot be used; the message says what is wrong and what to write instead."""


#: The first and the last instant crossposter accepts (see the module docstring).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
#: A wall-clock time must lie within a day of them (no UTC offset is a day), far from the calendar's ends.
_EARLIEST_NAIVE = datetime(1969, 12, 31)
_LATEST_NAIVE = datetime(2200, 1, 2)

_LOCAL_FORMS = ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S")


def check_range(dt: datetime, what: str = "time", shown: str | None = None) -> datetime:
    """`dt` itself when it lies in the accepted window; TimeError otherwise. Safe for any datetime.

    The wall-clock part is checked first, so a value near the end of the calendar never reaches a
    conversion that would overflow; an aware time is then checked as an instant. A naive time is only
    checked loosely (it has no instant yet): check it again once it has its zone.
    """
    wall = dt.replace(tzinfo=None, fold=0)
    ok = _EARLIEST_NAIVE <= wall < _LATEST_NAIVE
    if ok and dt.tzinfo is not None:
        off = dt.utcoffset()
        ok = off is None or (abs(off) < timedelta(days=1) and EARLIEST <= dt.astimezone(UTC) < LATEST)
    if not ok:
        text = shown if shown is not None else dt.isoformat()
        raise TimeError(f"{what} {text} is out of range: crossposter takes times from {EARLIEST:%Y-%m-%d} to "
                        f"{LATEST - timedelta(days=1):%Y-%m-%d} (UTC); check the year")
    return dt


def nonexistent(naive: datetime, zone: ZoneInfo) -> bool:
    """True when `naive` falls in the hour skipped by a spring-forward transition of `zone`."""
    aware = naive.replace(tzinfo=zone)
    back = aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    return back != naive


def ambiguous(naive: datetime, zone: ZoneInfo) -> bool:
    """True when `naive` happens twice in `zone` (the repeated hour when clocks fall back)."""
    return naive.replace(tzinfo=zone, fold=0).utcoffset() != naive.replace(tzinfo=zone, fold=1).utcoffset()


def localize(naive: datetime, zone: ZoneInfo, what: str = "time") -> datetime:
    """Attach `zone` to a wall-clock time: error if it does not exist, first occurrence if it is repeated."""
    check_range(naive, what)
    if nonexistent(naive, zone):
        before = (naive.replace(tzinfo=zone) - timedelta(hours=3)).astimezone(zone)
        after = (naive.replace(tzinfo=zone) + timedelta(hours=3)).astimezone(zone)
        gap = (after.utcoffset() or timedelta(0)) - (before.utcoffset() or timedelta(0))
        raise TimeError(
            f"{what} {naive:%Y-%m-%d %H:%M} does not exist in {zone.key}: the clocks skip that hour "
            f"(UTC offset {_fmt_offset(before)} → {_fmt_offset(after)}). Pick a time outside the gap, "
            f"e.g. {naive + gap:%Y-%m-%d %H:%M}"
        )
    return naive.replace(tzinfo=zone, fold=0)


def _fmt_offset(dt: datetime) -> str:
    off = dt.utcoffset() or timedelta(0)
    sign = "-" if off < timedelta(0) else "+"
    minutes = abs(int(off.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def parse_at(text: str, timezone: str) -> datetime:
    """`--at`: ISO 8601 with an offset (or `Z`), or `YYYY-MM-DD HH:MM` in the configured zone."""
    zone = ZoneInfo(timezone)
    s = text.strip()
    if not s:
        raise TimeError("empty time: write e.g. '2026-12-01 09:00' or '2026-12-01T09:00:00+01:00'")
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        dt = None
        for form in _LOCAL_FORMS:
            try:
                dt = datetime.strptime(s, form)
                break
            except ValueError:
                continue
        if dt is None:
            raise TimeError(
                f"cannot read {text!r} as a time: write ISO 8601 with an offset "
                f"('2026-12-01T09:00:00+01:00') or 'YYYY-MM-DD HH:MM' in {timezone}"
            ) from None
    check_range(dt, "time", repr(text))
    if dt.tzinfo is None:
        if len(s) <= 10:
            raise TimeError(f"{text!r} has no time of day: write 'YYYY-MM-DD HH:MM'")
        dt = check_range(localize(dt, zone), "time", repr(text))
    return dt


def format_at(dt: datetime, timezone: str) -> str:
    """The `schedule:` value: ISO 8601 in the configured zone, with its offset, to the second."""
    check_range(dt)
    return dt.astimezone(ZoneInfo(timezone)).isoformat(timespec="seconds")


def schedule_value(value: Any, timezone: str) -> datetime:
    """Read a `schedule:` metadata value (a string, or a datetime PyYAML already parsed) as an aware time."""
    if isinstance(value, datetime):
        dt = check_range(value)
        if dt.tzinfo is None:
            dt = check_range(localize(dt, ZoneInfo(timezone)))
        return dt
    if isinstance(value, str):
        return parse_at(value, timezone)
    raise TimeError(f"schedule: expected a date and time like 2026-12-01T09:00:00+01:00, got {value!r}")


# --------------------------------------------------------------------------- queue slots

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_ALIASES = {"daily": "mon-sun", "everyday": "mon-sun", "weekdays": "mon-fri", "weekends": "sat,sun"}
_SLOT_RE = re.compile(r"^\s*(?P<days>[a-z,\-]+)\s+(?P<times>\d{1,2}:\d{2}(?:\s*,\s*\d{1,2}:\d{2})*)\s*$")

SLOT_GRAMMAR = (
    "'<days> <HH:MM>[,<HH:MM>...]' where <days> is daily, weekdays, weekends, a day (mon..sun), "
    "a range (mon-fri) or a comma list (mon,wed,fri); e.g. 'mon-fri 09:00', 'sat 10:30', 'daily 18:00'"
)


@dataclass(frozen=True)
class Slot:
    """A parsed queue slot: APScheduler `day_of_week` expression plus the times of day."""

    text: str
    day_of_week: str
    times: tuple[tuple[int, int], ...]


def parse_slot(text: str) -> Slot:
    """Parse one queue slot; the error message quotes the grammar."""
    if not isinstance(text, str):
        raise TimeError(f"expected a string like 'mon-fri 09:00', got {text!r}")
    m = _SLOT_RE.match(text.lower())
    if not m:
        raise TimeError(f"cannot read slot {text!r}: write {SLOT_GRAMMAR}")
    days = _DAY_ALIASES.get(m["days"], m["days"])
    for part in days.split(","):
        ends = part.split("-")
        if len(ends) > 2 or not all(e in _DAYS for e in ends):
            raise TimeError(f"slot {text!r}: unknown day {part!r}: write {SLOT_GRAMMAR}")
    times: list[tuple[int, int]] = []
    for t in m["times"].split(","):
        h, mi = (int(x) for x in t.strip().split(":"))
        if h > 23 or mi > 59:
            raise TimeError(f"slot {text!r}: {t.strip()} is not a time of day (00:00 to 23:59)")
        times.append((h, mi))
    return Slot(text=text, day_of_week=days, times=tuple(times))


def slot_triggers(slot: Slot, timezone: str) -> list[CronTrigger]:
    """One CronTrigger per time of day of the slot, in the configured zone, firing once a day even at fall-back."""
    from apscheduler.triggers.cron import CronTrigger

    class _OncePerWallTime(CronTrigger):
        """CronTrigger fires a repeated wall time twice when clocks fall back; a slot means once."""

        def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
            next_fire = super().get_next_fire_time(previous_fire_time, now)
            while (next_fire is not None and next_fire.fold == 1
                   and ambiguous(next_fire.replace(tzinfo=None), self.timezone)):
                # The first occurrence (fold=0) is the slot; skip its repetition an hour later.
                # Search again from one minute later, in UTC so the fold cannot be lost on the way.
                next_fire = super().get_next_fire_time(None, next_fire.astimezone(UTC) + timedelta(minutes=1))
            return next_fire

    zone = ZoneInfo(timezone)
    return [
        _OncePerWallTime(day_of_week=slot.day_of_week, hour=h, minute=mi, second=0, timezone=zone)
        for h, mi in slot.times
    ]


def next_slot_time(slots: list[str], timezone: str, now: datetime | None = None) -> datetime | None:
    """The next time any queue slot fires after `now` (for `status`)."""
    now = now or datetime.now(UTC)
    best: datetime | None = None
    for text in slots:
        for trig in slot_triggers(parse_slot(text), timezone):
            next_fire = trig.get_next_fire_time(None, now.astimezone(ZoneInfo(timezone)))
            if next_fire is not None and (best is None or next_fire < best):
                best = next_fire
    return best
