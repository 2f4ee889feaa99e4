"""`schedule` / `unschedule` and the time rules behind them (time zones, DST, queue slots)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossposter.archive import read_archive
from crossposter.commands.schedule import run_schedule, run_unschedule
from crossposter.metadata import strip_metadata_blocks
from crossposter.timeparse import (
    TimeError,
    next_slot_time,
    parse_at,
    parse_slot,
    schedule_value,
    slot_triggers,
)

BERLIN = ZoneInfo("Europe/Berlin")
#: "Now" for every schedule made in-process: the dates below stay in the future whatever the real date.
NOW = datetime(2026, 1, 1, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]
ARCHIVE = "# Threads\r\n\r\n## First thread\r\n\r\nHello  \r\nworld.\r\n\r\n## Second\r\n\r\nBody two."


@pytest.fixture()
def setup(tmp_path: Path) -> tuple[Path, Path]:
    a = tmp_path / "a.md"
    a.write_bytes(b"\xef\xbb\xbf" + ARCHIVE.encode())
    c = tmp_path / "crossposter.yaml"
    c.write_text("timezone: Europe/Berlin\narchives: ['*.md']\n")
    return a, c


def meta(a: Path, title: str) -> dict:
    return read_archive(a).find(title).metadata


def test_local_time_in_config_zone(setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    a, c = setup
    assert run_schedule(a, "First thread", "2030-07-01 09:00", c, now=NOW) == 0
    assert schedule_value(meta(a, "First thread")["schedule"], "UTC") == datetime(2030, 7, 1, 7, 0, tzinfo=UTC)
    assert "+02:00" in str(meta(a, "First thread")["schedule"])
    assert "2030-07-01T09:00:00+02:00" in capsys.readouterr().out
    # every byte outside the block is kept: BOM, CRLF, trailing spaces, no final newline
    assert strip_metadata_blocks(a.read_bytes()) == b"\xef\xbb\xbf" + ARCHIVE.encode()


def test_iso_with_offset_keeps_the_typed_offset(setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """The person typed +05:30 (or Z): the archive says so, not the config zone's spelling of that instant."""
    a, c = setup
    assert run_schedule(a, "Second", "2030-01-15T08:00:00Z", c, now=NOW) == 0
    value = meta(a, "Second")["schedule"]
    assert schedule_value(value, "UTC") == datetime(2030, 1, 15, 8, 0, tzinfo=UTC)
    assert str(value).startswith("2030-01-15T08:00:00+00:00")
    assert run_schedule(a, "Second", "2030-01-15T14:00+05:30", c, now=NOW) == 0
    value = meta(a, "Second")["schedule"]
    assert str(value).startswith("2030-01-15T14:00:00+05:30")
    assert schedule_value(value, "UTC") == datetime(2030, 1, 15, 8, 30, tzinfo=UTC)
    # and the output names the configured zone's time too, once
    assert "(2030-01-15 09:30 Europe/Berlin)" in capsys.readouterr().out


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "crossposter", *args], capture_output=True, text=True,
                          timeout=60, cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_schedule_refuses_a_file_the_daemon_does_not_read(tmp_path: Path) -> None:
    (tmp_path / "threads").mkdir()
    c = tmp_path / "crossposter.yaml"
    c.write_text("archives: ['threads/*.md']\n")
    outside = tmp_path / "notes.md"
    outside.write_text("## A\n\nHello.\n")
    r = _cli("schedule", str(outside), "-t", "A", "--at", "2099-05-05 05:05", "-c", str(c), cwd=tmp_path)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("crossposter: error: ")
    assert "will not read this file" in r.stderr and "threads/*.md" in r.stderr and "`archives`" in r.stderr
    assert "--force" in r.stderr
    assert "crossposter" not in outside.read_text()  # nothing written
    r = _cli("schedule", str(outside), "-t", "A", "--at", "2099-05-05 05:05", "-c", str(c), "--force", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "crossposter: warning: " in r.stderr and "scheduled for 2099-05-05T05:05:00+00:00" in r.stdout
    assert "schedule: '2099-05-05T05:05:00+00:00'" in outside.read_text()


def test_schedule_refuses_a_thread_with_errors(tmp_path: Path) -> None:
    c = tmp_path / "crossposter.yaml"
    c.write_text("archives: ['*.md']\n")
    a = tmp_path / "a.md"
    a.write_text("## A\n\nHello.\n\n![a cat](cat.png)\n")
    r = _cli("schedule", str(a), "-t", "A", "--at", "2099-05-05 05:05", "-c", str(c), cwd=tmp_path)
    assert r.returncode == 1
    assert f"{a}:5: image file 'cat.png' not found" in r.stderr and "--force" in r.stderr
    assert "schedule" not in a.read_text()


def test_schedule_refuses_repeated_posts_on_x(tmp_path: Path) -> None:
    c = tmp_path / "crossposter.yaml"
    c.write_text("archives: ['*.md']\nplatforms: {x: {enabled: true}}\n")
    a = tmp_path / "a.md"
    a.write_text("## A\n\nHello.\n\n### Again\n\nSame.\n\n### Again\n\nSame.\n")
    r = _cli("schedule", str(a), "-t", "A", "--at", "2099-05-05 05:05", "-c", str(c), cwd=tmp_path)
    assert r.returncode == 1
    assert f"{a}:9: [x] " in r.stderr and "line 5" in r.stderr


def test_nonexistent_local_time_is_refused(setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    a, c = setup
    before = a.read_bytes()
    # 2027-03-28: Europe/Berlin springs forward from 02:00 to 03:00
    assert run_schedule(a, "First thread", "2027-03-28 02:30", c, now=NOW) == 1
    err = capsys.readouterr().err
    assert "does not exist in Europe/Berlin" in err and "2027-03-28 03:30" in err
    assert a.read_bytes() == before


def test_ambiguous_local_time_means_first_occurrence(setup: tuple[Path, Path]) -> None:
    a, c = setup
    # 2027-10-31: 02:30 happens twice in Berlin (CEST, then CET); the first one is 00:30 UTC
    assert run_schedule(a, "First thread", "2027-10-31 02:30", c, now=NOW) == 0
    got = schedule_value(meta(a, "First thread")["schedule"], "UTC")
    assert got == datetime(2027, 10, 31, 0, 30, tzinfo=UTC)
    # an explicit offset picks the second one
    assert run_schedule(a, "First thread", "2027-10-31T02:30:00+01:00", c, now=NOW) == 0
    assert schedule_value(meta(a, "First thread")["schedule"], "UTC") == datetime(2027, 10, 31, 1, 30, tzinfo=UTC)


def test_past_time_refused(setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    a, c = setup
    now = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    assert run_schedule(a, "Second", "2030-01-01 12:59", c, now=now) == 1  # 11:59 UTC
    assert "in the past" in capsys.readouterr().err
    assert run_schedule(a, "Second", "2030-01-01 13:01", c, now=now) == 0
    assert "schedule" in meta(a, "Second")


def test_published_thread_refused(setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    a, c = setup
    from crossposter.metadata import update_thread_metadata

    update_thread_metadata(a, "Second", lambda m: m.update(mastodon=[{"id": "1", "url": "https://m/1", "sha": "ab"}]))
    before = a.read_bytes()
    assert run_schedule(a, "Second", "2031-01-01 10:00", c, now=NOW) == 1
    err = capsys.readouterr().err
    assert "already published on mastodon" in err
    assert a.read_bytes() == before


def test_bad_inputs(setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    a, c = setup
    assert run_schedule(a, "No such", "2031-01-01 10:00", c, now=NOW) == 1
    assert "No such" in capsys.readouterr().err
    assert run_schedule(a, "Second", "next tuesday", c, now=NOW) == 1
    err = capsys.readouterr().err
    assert "cannot read 'next tuesday'" in err and "YYYY-MM-DD HH:MM" in err
    assert run_schedule(a, "Second", "2031-01-01", c, now=NOW) == 1
    assert "no time of day" in capsys.readouterr().err


def test_unschedule_removes_schedule_and_queued(setup: tuple[Path, Path]) -> None:
    a, c = setup
    from crossposter.metadata import update_thread_metadata

    assert run_schedule(a, "First thread", "2031-01-01 10:00", c, now=NOW) == 0
    update_thread_metadata(a, "First thread", lambda m: m.update(queued=True))
    assert run_unschedule(a, "First thread", c) == 0
    assert meta(a, "First thread") == {}
    assert a.read_bytes() == b"\xef\xbb\xbf" + ARCHIVE.encode()  # the empty block is gone
    assert run_unschedule(a, "First thread", c) == 0  # idempotent


def test_cli_end_to_end(setup: tuple[Path, Path], tmp_path: Path) -> None:
    a, c = setup
    r = subprocess.run([sys.executable, "-m", "crossposter", "schedule", str(a), "--thread", "Second",
                        "--at", "2099-05-05 05:05", "--config", str(c)], capture_output=True, text=True,
                       timeout=60, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    assert str(meta(a, "Second")["schedule"]).startswith("2099-05-05T05:05:00+02:00")


# --------------------------------------------------------------------------- the rules themselves


def test_parse_at_forms() -> None:
    assert parse_at("2030-01-01 10:00", "Europe/Berlin") == datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
    assert parse_at("2030-01-01T10:00:00-05:00", "Europe/Berlin") == datetime(2030, 1, 1, 15, 0, tzinfo=UTC)
    assert parse_at("2030-01-01T10:00", "UTC") == datetime(2030, 1, 1, 10, 0, tzinfo=UTC)
    with pytest.raises(TimeError):
        parse_at("2030-02-30 10:00", "UTC")


def test_slot_grammar() -> None:
    s = parse_slot("weekdays 09:00, 13:30")
    assert s.day_of_week == "mon-fri" and s.times == ((9, 0), (13, 30))
    assert parse_slot("daily 18:00").day_of_week == "mon-sun"
    for bad in ("9:00", "mon-fri", "funday 09:00", "mon 25:00", "mon 09:61", "mon-tue-wed 09:00"):
        with pytest.raises(TimeError):
            parse_slot(bad)


def _fires(slot: str, start: datetime, n: int) -> list[datetime]:
    trig = slot_triggers(parse_slot(slot), "Europe/Berlin")[0]
    out: list[datetime] = []
    prev = None
    now = start
    for _ in range(n):
        nxt = trig.get_next_fire_time(prev, now)
        assert nxt is not None
        out.append(nxt.astimezone(UTC))
        prev = now = nxt
    return out


def test_slot_in_skipped_hour_fires_shifted_by_the_gap() -> None:
    # 2027-03-28 Europe/Berlin: 02:00 CET -> 03:00 CEST. A 02:30 slot fires at 03:30 CEST (01:30 UTC) that day.
    fires = _fires("daily 02:30", datetime(2027, 3, 27, 12, 0, tzinfo=BERLIN), 3)
    assert fires == [datetime(2027, 3, 28, 1, 30, tzinfo=UTC), datetime(2027, 3, 29, 0, 30, tzinfo=UTC),
                     datetime(2027, 3, 30, 0, 30, tzinfo=UTC)]
    assert fires[0].astimezone(BERLIN).strftime("%H:%M %Z") == "03:30 CEST"


def test_slot_in_repeated_hour_fires_once() -> None:
    # 2027-10-31: 02:30 happens twice; the slot takes the first (CEST) and not the second.
    fires = _fires("daily 02:30", datetime(2027, 10, 30, 12, 0, tzinfo=BERLIN), 3)
    assert fires == [datetime(2027, 10, 31, 0, 30, tzinfo=UTC), datetime(2027, 11, 1, 1, 30, tzinfo=UTC),
                     datetime(2027, 11, 2, 1, 30, tzinfo=UTC)]


def test_weekday_slot_and_next_slot_time() -> None:
    # Friday 2027-01-08 19:00 Berlin: next "mon-fri 09:00" is Monday the 11th, 08:00 UTC
    fri = datetime(2027, 1, 8, 19, 0, tzinfo=BERLIN)
    assert _fires("mon-fri 09:00", fri, 1) == [datetime(2027, 1, 11, 8, 0, tzinfo=UTC)]
    assert next_slot_time(["mon-fri 09:00", "sat 10:30"], "Europe/Berlin", fri) == datetime(
        2027, 1, 9, 10, 30, tzinfo=BERLIN)
    assert next_slot_time([], "UTC", fri) is None


# --------------------------------------------------------------------------- times out of range


@pytest.mark.parametrize("text", ["9999-12-31T23:59:59Z", "9999-12-31 23:59", "0001-01-01T00:00:00+01:00",
                                  "2199-12-31T23:00:00-05:00", "1969-12-31T23:59:59Z", "2500-01-01 09:00"])
def test_a_time_out_of_range_is_refused_with_a_clear_message(text: str) -> None:
    with pytest.raises(TimeError, match="out of range: crossposter takes times from 1970-01-01 to 2199-12-31"):
        parse_at(text, "Europe/Berlin")


def test_schedule_at_the_end_of_the_calendar_is_an_error_not_a_traceback(setup: tuple[Path, Path]) -> None:
    a, c = setup
    before = a.read_bytes()
    r = subprocess.run([sys.executable, "-m", "crossposter", "schedule", str(a), "--thread", "Second",
                        "--at", "9999-12-31T23:59:59Z", "--config", str(c)], capture_output=True, text=True,
                       timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert "9999-12-31T23:59:59Z" in r.stderr and "out of range" in r.stderr
    assert a.read_bytes() == before


def test_a_far_future_schedule_in_the_archive_is_an_error(tmp_path: Path) -> None:
    """YAML reads `9999-12-31T23:30:00Z` as a datetime; moving it to Europe/Berlin overflowed."""
    for value in ("9999-12-31T23:30:00Z", "'9999-12-31 23:30'", "0001-01-01T00:00:00+01:00"):
        with pytest.raises(TimeError, match="out of range"):
            import yaml

            schedule_value(yaml.safe_load(f"s: {value}")["s"], "Europe/Berlin")


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
       st.one_of(st.none(), st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1)),
       st.sampled_from(["UTC", "Europe/Berlin", "America/Los_Angeles", "Pacific/Kiritimati", "Pacific/Pago_Pago"]))
def test_any_written_time_is_a_time_in_range_or_a_time_error(naive: datetime, offset: int | None, zone: str) -> None:
    """Whatever date and offset a person writes, reading it never raises anything but TimeError, and what it
    gives is inside the window the scheduler can hold."""
    from datetime import timedelta, timezone

    from crossposter.timeparse import EARLIEST, LATEST, format_at

    dt = naive if offset is None else naive.replace(tzinfo=timezone(timedelta(minutes=offset)))
    for value in (dt, dt.isoformat()):
        try:
            when = schedule_value(value, zone)
        except TimeError:
            continue
        assert EARLIEST <= when.astimezone(UTC) < LATEST
        format_at(when, zone)  # and it can be written back in the configured zone
