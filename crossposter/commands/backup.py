"""`crossposter backup --from bluesky|mastodon|x`: the account's own threads into a Markdown archive.

The work is `crossposter.backup.run.run_backup` (shared with the mirror bot); this module picks
the reader, draws progress (a rich bar in a terminal, plain lines otherwise, on stderr) and prints
the summary on stdout.

Exit codes: 0 everything read and written; 1 the run stopped early or something was not written
(the summary says what, and the next run continues); 2 nothing was done (config, archive, options).
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crossposter.backup.run import BackupOutcome
    from crossposter.config import Config

EXIT_OK, EXIT_INCOMPLETE, EXIT_ERROR = 0, 1, 2
#: threads named one by one in the summary
LISTED_MAX = 40


def parse_since(text: str, timezone: str) -> datetime:
    """`--since`: a date (its midnight in the configured zone) or a time `--at` accepts."""
    from zoneinfo import ZoneInfo

    from crossposter.timeparse import TimeError, check_range, localize, parse_at

    s = text.strip()
    if len(s) == 10:
        try:
            day = datetime.strptime(s, "%Y-%m-%d")
        except ValueError:
            raise TimeError(f"--since {text!r}: write a date as YYYY-MM-DD (or a time as 'YYYY-MM-DD HH:MM')") \
                from None
        return check_range(localize(day, ZoneInfo(timezone), "--since"), "--since", repr(text))
    return parse_at(s, timezone)


def _reader(platform: str, config: Config, x_archive: Path | None, login_dir: Path | None = None) -> tuple[Any, str]:
    """The platform's reader and the account name its cursor is kept under (never a secret): its backup
    module's `open_reader` (the registry names the module).

    `login_dir` replaces `state_dir` for the platform's login caches (a dry run writes no file there).
    """
    from importlib import import_module

    from crossposter.platforms import registry

    login_config = config if login_dir is None else config.model_copy(update={"state_dir": login_dir})
    module = registry.get(platform).backup
    if module is None:
        raise ValueError(f"{registry.display(platform)} cannot be backed up from (no backup reader)")
    return import_module(module).open_reader(config, login_config, x_archive)


class _PlainReporter:
    """One line per event on stderr: for logs, cron and pipes."""

    def __init__(self) -> None:
        self.pages = 0
        self.records = 0

    def _line(self, text: str) -> None:
        from crossposter.redact import redact

        print(redact(text), file=sys.stderr, flush=True)

    def page(self, records: int) -> None:
        self.pages += 1
        self.records += records
        self._line(f"read page {self.pages} ({records} posts, {self.records} so far)")

    def waiting(self, seconds: float, why: str) -> None:
        self._line(f"waiting {seconds:.0f} s: {why}")

    def media(self, done: int, total: int) -> None:
        if done == total or done % 50 == 0:
            self._line(f"media {done}/{total}")

    def threads(self, done: int, total: int) -> None:
        self._line(f"written {done}/{total} threads")

    def note(self, message: str) -> None:
        self._line(f"problem: {message}")


class _BarReporter:
    """A rich progress bar (pages, media, threads) on stderr, for a terminal."""

    def __init__(self, progress: Any) -> None:
        self.progress = progress
        self._pages = progress.add_task("reading", total=None)
        self._media: Any = None
        self._threads: Any = None
        self.records = 0

    def page(self, records: int) -> None:
        self.records += records
        self.progress.update(self._pages, advance=1, description=f"reading ({self.records} posts)")

    def waiting(self, seconds: float, why: str) -> None:
        from crossposter.redact import redact

        self.progress.console.print(redact(f"waiting {seconds:.0f} s: {why}"), markup=False)

    def media(self, done: int, total: int) -> None:
        if self._media is None:
            self._media = self.progress.add_task("media", total=total)
        self.progress.update(self._media, completed=done, total=total)

    def threads(self, done: int, total: int) -> None:
        if self._threads is None:
            self._threads = self.progress.add_task("threads", total=total)
        self.progress.update(self._threads, completed=done, total=total)

    def note(self, message: str) -> None:
        from crossposter.redact import redact

        self.progress.console.print(redact(f"problem: {message}"), markup=False, style="yellow")


def note_lines(notes: list[str]) -> list[str]:
    """The readers' notes, each once; one note said of many posts (`url: note`) is one line with a count."""
    groups: dict[str, list[str]] = {}
    for n in notes:
        url, _, what = n.partition(": ")
        groups.setdefault(what or n, []).append(url)
    lines = [f"  note: {urls[0]}: {what}" if len(urls) == 1 else
             f"  note: {len(urls)} posts (e.g. {urls[0]}): {what}" for what, urls in groups.items()]
    if len(lines) > LISTED_MAX:
        lines[LISTED_MAX - 1:] = [f"  note: … and {len(lines) - LISTED_MAX + 1} more notes"]
    return lines


def summary_lines(outcome: BackupOutcome, base: Path | None = None) -> list[str]:
    """What the run did (or would do), for people: counts, then each thread, then skips and problems."""
    def shown(p: Path) -> str:
        try:
            return str(p.relative_to(base)) if base is not None else str(p)
        except ValueError:
            return str(p)

    would = "would add" if outcome.dry_run else "added"
    lines = [f"{outcome.platform} → {shown(outcome.into)}: {would} {len(outcome.threads)} thread(s), "
             f"{len(outcome.replies)} section(s) with later replies, {outcome.posts_added} post(s), "
             + ("media not downloaded (dry run)" if outcome.dry_run else
                f"{outcome.media_added} media file(s) ({outcome.media_reused} already there)")
             + f"; {outcome.posts_read} post(s) read in {outcome.requests} request(s)"]
    listed = [f"  + {t.title} ({len(t.post_ids)} post(s), {shown(t.archive)})" for t in outcome.threads]
    listed += [f"  + {len(r.post_ids)} later repl{'y' if len(r.post_ids) == 1 else 'ies'} in {r.title} "
               f"({shown(r.archive)})" for r in outcome.replies]
    if len(listed) > LISTED_MAX:  # a first backup of a big account: the archive itself is the list
        listed[LISTED_MAX - 1:] = [f"  … and {len(listed) - LISTED_MAX + 1} more"]
    lines += listed
    for reason, n in sorted(outcome.skipped.items()):
        lines.append(f"  skipped {n}: {reason}")
    lines += note_lines(outcome.notes)
    for p in outcome.problems:
        lines.append(f"  problem: {p}")
    if not outcome.complete:
        lines.append("  The read stopped before the newest post: run the same command again to continue.")
    elif outcome.problems and not outcome.dry_run:
        lines.append("  Not everything was written: run the same command again (nothing is written twice).")
    if outcome.dry_run:
        lines.append("  Dry run: nothing was written (no archive, no media, no cursor).")
    return lines


def run(platform: str, into: Path | None, x_archive: Path | None, since: str | None, dry_run: bool,
        config_path: Path | None) -> int:
    from crossposter.archive import ArchiveError
    from crossposter.config import ConfigError, config_for_command, secret_values
    from crossposter.messages import fail
    from crossposter.redact import redact
    from crossposter.timeparse import TimeError

    secret_values()  # registers every readable secret: a server's error below may quote one

    def error(message: str) -> int:
        return fail(message, EXIT_ERROR)  # the one voice of every command: `crossposter: error: ...`, redacted

    from importlib import import_module

    from crossposter.platforms import registry

    backup_module = registry.get(platform).backup
    #: the platform's own export can be read instead of its API (X's archive zip: `--x-archive`)
    reads_archive = bool(backup_module and getattr(import_module(backup_module), "READS_ARCHIVE", False))
    if x_archive is not None and not reads_archive:
        return error("--x-archive is for --from x only")
    try:
        config = config_for_command(config_path)
    except ConfigError as e:
        return error(str(e))
    try:
        since_at = parse_since(since, config.timezone) if since else None
    except TimeError as e:
        said = str(e) if str(e).startswith("--since") else f"--since: {e}"  # (said once, not "--since: --since")
        return error(f"{said} (a date alone, YYYY-MM-DD, means its midnight)")

    import tempfile

    from crossposter.backup.run import run_backup
    from crossposter.platforms.base import PlatformError

    reader: Any = None
    login_dir = tempfile.TemporaryDirectory(prefix="crossposter-dry-run-") if dry_run else None
    try:
        reader, account = _reader(platform, config, x_archive, Path(login_dir.name) if login_dir else None)
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import Progress

            with Progress(console=Console(stderr=True), transient=True) as progress:
                outcome = run_backup(reader, config, account=account, into=into, since=since_at, dry_run=dry_run,
                                     reporter=_BarReporter(progress))  # type: ignore[arg-type]
        else:
            outcome = run_backup(reader, config, account=account, into=into, since=since_at, dry_run=dry_run,
                                 reporter=_PlainReporter())  # type: ignore[arg-type]
    except ConfigError as e:
        hint = " (or back up from X's archive zip: --x-archive ZIP, no credentials needed)" \
            if reads_archive and x_archive is None else ""
        return error(f"the config is not enough to read {platform}{hint}:\n{e}")
    except (ArchiveError, PlatformError) as e:
        return error(str(e))
    except ValueError as e:  # a reader refusing its input (an X archive's account, a cursor it cannot use)
        return error(str(e))
    except KeyboardInterrupt:
        print("interrupted: every batch written so far is in the archive; the next run continues "
              "(nothing is written twice)", file=sys.stderr)
        return 130
    finally:
        close = getattr(reader, "close", None)
        if callable(close):
            close()
        if login_dir is not None:
            login_dir.cleanup()
    for line in summary_lines(outcome, Path.cwd()):
        print(redact(line))
    return EXIT_OK if outcome.ok else EXIT_INCOMPLETE
