"""Where the mirror's source threads come from: one backup of the source account into the mirror's archive.

Kept apart from the poll (`loop`) and from the child process that runs it (`backup_child`) so that
each of those imports this, never each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crossposter.config import Config


@dataclass
class BackupResult:
    """What the mirror uses of a backup run."""

    #: newest post time per source thread written this run, keyed by its first post's ID
    newest: dict[str, datetime]
    problems: list[str]
    complete: bool = True
    #: the readers' notes on the posts written (`BackupOutcome.notes`)
    notes: list[str] = field(default_factory=list)


BackupFn = Callable[["Config"], BackupResult]


def into_path(config: Config) -> Path:
    """The archive the mirror backs up into: `mirror.into`, else the backup's own `backup.into`."""
    m = config.mirror
    assert m is not None
    pattern = m.into
    if pattern is None:
        backup = getattr(config, "backup", None)
        pattern = getattr(backup, "into", None) or "threads/{platform}.md"
    return config.resolve(pattern.format(platform=m.from_)).absolute()


def run_source_backup(config: Config) -> BackupResult:
    """One incremental backup of the source account into the mirror's archive (`crossposter backup`'s code)."""
    from crossposter.backup.run import run_backup
    from crossposter.commands.backup import _reader

    m = config.mirror
    assert m is not None
    reader, account = _reader(m.from_, config, None)  # the same account name, so the same cursor as `backup`
    out = run_backup(reader, config, account=account, into=into_path(config))
    newest = {t.root_id: t.newest for t in out.threads}
    return BackupResult(newest=newest, problems=list(out.problems), complete=out.complete, notes=list(out.notes))
