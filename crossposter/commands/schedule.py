"""`crossposter schedule` / `unschedule`: the schedule lives in the archive's metadata block.

Writing it into the archive (not into a database) is what lets it be reviewed and versioned
with the text; the write goes through `metadata.update_thread_metadata` like the publisher's,
so it is atomic, locked against a running daemon or `post`, and preserves every other byte.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

from crossposter.thread_meta import ThreadMeta, Where


def _err(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def published_platforms(meta: dict, where: Where, timezone: str = "UTC") -> list[str]:
    """Platforms on which the thread already has recorded posts (or a post in flight).

    Read through the validated model: a block it refuses (MetadataError, an ArchiveError) is not
    written to either, so `schedule` never adds a time to a thread nothing would publish.
    """
    return ThreadMeta.parse(meta, where, timezone).published()


def run_schedule(path: Path, thread: str, at: str, config_path: Path | None,
                 now: datetime | None = None) -> int:
    from crossposter.archive import ArchiveError, read_archive
    from crossposter.config import ConfigError, config_for_command
    from crossposter.metadata import update_thread_metadata
    from crossposter.timeparse import TimeError, format_at, parse_at

    try:
        config = config_for_command(config_path)
    except ConfigError as e:
        return _err(str(e))
    try:
        when = parse_at(at, config.timezone)
    except TimeError as e:
        return _err(f"--at: {e}")
    now = now or datetime.now(UTC)
    if when <= now:
        local_now = now.astimezone(when.tzinfo).isoformat(timespec="seconds")
        return _err(f"--at {at!r} is in the past (now is {local_now}); give a future time")
    value = format_at(when, config.timezone)
    try:
        t = read_archive(Path(path)).find(thread)
    except ArchiveError as e:
        return _err(str(e))
    where = Where.of(t)
    try:  # read as it is in the file first: the error then points at the line of the bad key
        published_platforms(t.metadata, where, config.timezone)
    except ArchiveError as e:
        return _err(str(e))
    if t.skipped:
        return _err(f"{path}:{t.line}: thread {t.title!r} is not postable ({t.skipped}); nothing to schedule")

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
    print(f"{path}:{t.line}: {t.title!r} scheduled for {value} ({config.timezone})")
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
