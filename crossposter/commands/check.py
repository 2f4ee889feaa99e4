"""`crossposter check`: find now what would make a scheduled post fail at 3 a.m.

It does everything the daemon will do except post: loads the config, reads every secret,
logs in to every enabled platform for real (and reads the account's limits), plans every
thread of every archive at those real limits, and checks that the archives and the state
directory are writable. Problems that would stop a scheduled or queued thread fail the
check (exit 1); problems in threads nobody scheduled are listed as warnings.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crossposter.messages import duration, error, fail, plural
from crossposter.platforms.registry import PlatformName


class _Report:
    """Every line `check` prints goes through here, redacted: login errors quote server answers."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.warnings: list[str] = []

    @staticmethod
    def _print(text: str) -> None:
        from crossposter.redact import redact

        print(redact(text))

    def ok(self, msg: str) -> None:
        self._print(f"ok    {msg}")

    def fail(self, msg: str) -> None:
        self.problems.append(msg)
        self._print(f"FAIL  {msg}")

    def warn(self, msg: str) -> None:
        self.warnings.append(msg)
        self._print(f"warn  {msg}")


def _writable_dir(path: Path) -> str | None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".crossposter-check.{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        return e.strerror or str(e)
    return None


def _login(config: Any, report: _Report, platforms: list[PlatformName]) -> dict[str, int]:
    """Log in to each platform; returns the real character limits learnt."""
    from crossposter.config import ConfigError
    from crossposter.platforms.base import PlatformError
    from crossposter.platforms.fakes import journal_fakes_from_env

    fakes = journal_fakes_from_env(config)
    fake = fakes is not None
    limits: dict[str, int] = {}
    for p in platforms:
        try:
            if fakes is not None:
                adapter = fakes.adapters([p])[p]
            else:
                from crossposter import platforms as platforms_pkg

                adapter = platforms_pkg.load_adapter(p, config)
            adapter.login()
            lim = adapter.limits()
            limits[p] = lim.max_characters
            report.ok(f"{p}: logged in{' (FAKE platforms)' if fake else ''}; limit {lim.max_characters} characters")
        except ConfigError as e:
            for m in e.problems:
                report.fail(f"{p}: {m}")
        except PlatformError as e:
            report.fail(f"{p}: login failed: {e.message}")
        except Exception as e:  # an SDK error the adapter did not translate: still a failed login
            report.fail(f"{p}: login failed: {type(e).__name__}: {e}")
    return limits


def run(config_path: Path | None, now: datetime | None = None) -> int:
    from crossposter.config import ConfigError, config_for_command, missing_settings, secret_values

    report = _Report()
    try:
        config = config_for_command(config_path, required=True)
    except ConfigError as e:
        return fail("\n".join(f"config: {p}" if e.source is None else f"config {e.source}: {p}" for p in e.problems))
    secret_values()  # registers every readable secret for redaction before anything can fail
    now = now or datetime.now(UTC)
    report.ok(f"config loaded (timezone {config.timezone}, platforms: {', '.join(config.enabled_platforms()) or '-'})")
    if not config.enabled_platforms():
        report.fail("platforms: none enabled (set platforms.<name>.enabled: true)")

    # 1. secrets and required settings, then a real login where they are complete
    settings = missing_settings(config)
    for m in settings:
        report.fail(m)
    ready = [p for p in config.enabled_platforms() if not any(m.startswith(f"platforms.{p}") for m in settings)]
    from crossposter.platforms.fakes import journal_fakes_from_env

    if journal_fakes_from_env(config) is not None:
        ready = config.enabled_platforms()
    limits = _login(config, report, ready)

    # 2. where the daemon writes
    err = _writable_dir(config.state_path)
    if err:
        report.fail(f"state_dir {config.state_path}: not writable ({err})")
    else:
        report.ok(f"state_dir {config.state_path} is writable")

    # 3. every archive, every thread
    _archives(config, report, limits, now)

    # 4. the mirror's archive and state (its source logged in above, with the other platforms)
    from crossposter.mirror.check import check_mirror

    check_mirror(config, report)

    print()
    warnings = plural(len(report.warnings), "warning")
    if report.problems:
        sys.stdout.flush()  # the report first, then the verdict on stderr
        error(f"{plural(len(report.problems), 'problem')} would stop a scheduled post ({warnings}); "
              "see FAIL above")
        return 1
    print(f"All good: nothing would stop a scheduled post ({warnings}).")
    return 0


def _archives(config: Any, report: _Report, limits: dict[str, int], now: datetime) -> None:
    from collections import Counter
    from zoneinfo import ZoneInfo

    from crossposter.archive import ArchiveError, read_archive
    from crossposter.daemon.state import GAVE_UP, STATE_FILE, DaemonState
    from crossposter.daemon.watch import thread_info
    from crossposter.plan import plan_thread

    zone = ZoneInfo(config.timezone)
    paths = config.archive_paths()
    if not paths:
        report.fail(f"archives: no file matches {config.archives} (relative to {config.base_dir})")
        return
    state = DaemonState.load(config.state_path / STATE_FILE)
    grace = config.daemon.misfire_grace
    n_queued = 0
    for path in paths:
        try:
            archive = read_archive(path)
        except ArchiveError as e:
            report.fail(str(e))
            continue
        if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK):
            report.fail(f"{path}: not writable (crossposter records post IDs in the archive, and writes a temp "
                        "file beside it)")
        dups = [t for t, n in Counter(t.title for t in archive.threads).items() if n > 1]
        for title in dups:
            report.fail(f"{path}: two threads are titled {title!r}; rename one (titles identify threads)")
        n_sched = 0
        for thread in archive.threads:
            info = thread_info(path, thread, config.timezone)
            where = f"{path}:{thread.line}: {thread.title!r}"
            if info.error:  # a block no command will use is a problem whether or not it is scheduled
                for line in info.error.splitlines():
                    report.fail(line)
                continue
            if info.skipped:
                continue
            wanted = info.schedule is not None or info.queued
            started = info.meta is not None and info.meta.started
            if info.schedule is not None and not started:
                late = (now - info.schedule).total_seconds()
                entry = state.get(info.key, info.sig)
                if entry and entry.get("outcome") in GAVE_UP:
                    said = str(entry.get("message", ""))  # the daemon's own words, which may name the outcome
                    report.fail(f"{where}: {said}" if said.startswith(entry["outcome"]) else
                                f"{where}: {entry['outcome']}: {said}")
                    continue
                if late > grace:
                    report.fail(f"{where}: scheduled {info.schedule.astimezone(zone).isoformat(timespec='seconds')}"
                                f", {duration(late)} ago, beyond the {duration(grace)} misfire grace: it will not "
                                "be posted (schedule it again)")
                    continue
            plan = plan_thread(archive, thread, config, config.enabled_platforms(), limits or None)
            for d in plan.errors:
                msg = f"{path}:{d.line}: " + (f"[{d.platform}] " if d.platform else "") + f"{d.message}"
                (report.fail if wanted else report.warn)(msg + ("" if wanted else f" (in unscheduled {thread.title!r})"))
            if wanted and not started:
                n_sched += 1
            if info.queued and not started and info.schedule is None:
                n_queued += 1
        report.ok(f"{path}: {plural(len(archive.threads), 'thread')}, {n_sched} scheduled or queued to go")
    if n_queued and not config.daemon.queue_slots:
        report.warn(f"{plural(n_queued, 'thread')} marked `queued: true` but daemon.queue_slots is empty: "
                    "nothing will publish them; add a slot such as \"mon-fri 09:00\", or schedule them")
