"""`crossposter schedule` / `unschedule`: the schedule lives in the archive's metadata block.

Writing it into the archive (not into a database) is what lets it be reviewed and versioned
with the text; the write goes through `metadata.update_thread_metadata` like the publisher's,
so it is atomic, locked against a running daemon or `post`, and preserves every other byte.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from crossposter.thread_meta import ThreadMeta, Where

if TYPE_CHECKING:
    from crossposter.archive import Archive, Thread
    from crossposter.config import Config


def _err(message: str) -> int:
    from crossposter.messages import fail

    return fail(message)


def _typed_value(when: datetime, at: str, timezone: str) -> str:
    """The `schedule:` value: with the offset the person typed (`+01:00` stays `+01:00`, `Z` is `+00:00`),
    else the configured zone's; either way the same instant."""
    from zoneinfo import ZoneInfo

    from crossposter.timeparse import check_range, format_at

    if isinstance(when.tzinfo, ZoneInfo):  # typed without an offset: read in the configured zone
        return format_at(when, timezone)
    check_range(when)
    return when.isoformat(timespec="seconds")


def _refusals(path: Path, archive: Archive, thread: Thread, config: Config, config_file: Path | None) -> list[str]:
    """Why the daemon would not publish this thread at its time: said now, not at 3 a.m."""
    from crossposter.plan import plan_thread

    problems = []
    resolved = Path(path).resolve()
    if resolved not in config.archive_paths():
        where = f"the config {config_file}" if config_file else "the default config (no config file found)"
        problems.append(
            f"{path}: the daemon will not read this file: {where} has archives {config.archives} "
            f"(relative to {config.base_dir}); add a glob that matches it to `archives`, "
            "or move the thread into an archive they match")
    plan = plan_thread(archive, thread, config, config.enabled_platforms())
    problems += [f"{path}:{d.line}: " + (f"[{d.platform}] " if d.platform else "") + d.message
                 for d in plan.errors]
    return problems


def published_platforms(meta: dict, where: Where, timezone: str = "UTC") -> list[str]:
    """Platforms on which the thread already has recorded posts (or a post in flight).

    Read through the validated model: a block it refuses (MetadataError, an ArchiveError) is not
    written to either, so `schedule` never adds a time to a thread nothing would publish.
    """
    return ThreadMeta.parse(meta, where, timezone).published()


def run_schedule(path: Path, thread: str, at: str, config_path: Path | None,
                 now: datetime | None = None, force: bool = False) -> int:
    from crossposter.archive import ArchiveError, read_archive
    from crossposter.config import ConfigError, config_for_command, find_config_file
    from crossposter.metadata import update_thread_metadata
    from crossposter.timeparse import TimeError, parse_at

    try:
        config = config_for_command(config_path)
    except ConfigError as e:
        return _err(str(e))
    try:
        when = parse_at(at, config.timezone)
        value = _typed_value(when, at, config.timezone)
    except TimeError as e:
        return _err(f"--at: {e}")
    now = now or datetime.now(UTC)
    if when <= now:
        local_now = now.astimezone(when.tzinfo).isoformat(timespec="seconds")
        return _err(f"--at {at!r} is in the past (now is {local_now}); give a future time")
    try:
        archive = read_archive(Path(path))
        t = archive.find(thread)
    except ArchiveError as e:
        return _err(str(e))
    where = Where.of(t)
    try:  # read as it is in the file first: the error then points at the line of the bad key
        published_platforms(t.metadata, where, config.timezone)
    except ArchiveError as e:
        return _err(str(e))
    if t.skipped:
        return _err(f"{path}:{t.line}: thread {t.title!r} is not postable ({t.skipped}); nothing to schedule")
    config_file = find_config_file(config_path)
    problems = _refusals(Path(path), archive, t, config, config_file)
    if problems and not force:
        return _err("\n".join([f"not scheduled: the daemon would not publish {t.title!r}:", *problems,
                                "fix this, or schedule anyway with --force"]))

    refused: list[str] = []

    def update(meta: dict) -> None:
        # Checked again under the lock: a `post` may have published it since we looked.
        # (The writer may call this again after a concurrent edit: start from a clean slate.)
        refused.clear()
        done = published_platforms(meta, where, config.timezone)
        if done:
            refused.extend(done)
            return
        meta["schedule"] = value

    try:
        update_thread_metadata(Path(path), t.title, update)
    except ArchiveError as e:
        return _err(str(e))
    if refused:
        return _err(f"{path}:{t.line}: thread {t.title!r} is already published on {', '.join(refused)}; "
                    "a schedule would post nothing (run `crossposter post` to resume a partly published thread)")
    from crossposter.messages import warning

    for problem in problems:  # --force: scheduled, and still said
        warning(problem)
    if config_file is None:
        warning(f"no config file, so the time was read in {config.timezone} and no daemon will run yet: "
                "`crossposter init` writes one")
    print(f"{path}:{t.line}: {t.title!r} scheduled for {value}"
          + ("" if when.astimezone(ZoneInfo(config.timezone)).isoformat(timespec="seconds") == value
             else f" ({when.astimezone(ZoneInfo(config.timezone)):%Y-%m-%d %H:%M} {config.timezone})"))
    return 0


def run_unschedule(path: Path, thread: str, config_path: Path | None) -> int:
    from crossposter.archive import ArchiveError, read_archive
    from crossposter.metadata import update_thread_metadata

    try:
        t = read_archive(Path(path)).find(thread)
    except ArchiveError as e:
        return _err(str(e))
    removed: list[str] = []
    where = Where.of(t)
    # A block the model refuses is refused here too (each problem at its line), rather than half-fixed.
    # The schedule itself may be what is wrong: removing it is what the person asked for.
    try:
        ThreadMeta.parse(t.metadata, where, ignore=("schedule",))
    except ArchiveError as e:
        return _err(str(e))

    def update(meta: dict) -> None:
        removed.clear()  # may be called again after a concurrent edit
        ThreadMeta.parse(meta, where, ignore=("schedule",))  # again under the lock: it may have changed
        for key in ("schedule", "queued"):
            if key in meta:
                removed.append(key)
                del meta[key]

    try:
        update_thread_metadata(Path(path), t.title, update)
    except ArchiveError as e:
        return _err(str(e))
    if removed:
        print(f"{path}:{t.line}: {t.title!r} unscheduled (removed {', '.join(removed)})")
    else:
        print(f"{path}:{t.line}: {t.title!r} was not scheduled; nothing changed")
    return 0
