"""Progress of a publication, behind one small interface: log lines, rich bars, or a benchmark's timer.

The publishing engine calls a `Reporter` and knows nothing of how progress is shown. `post` on a
terminal draws bars (`RichReporter`), the daemon and pipes get log lines (`LogReporter`), and the
publishing benchmark times chains and archive writes through the same calls instead of patching
the engine's private classes.

Calls come from the chains' threads (one per platform) except `finish`, which the engine makes for
every platform, in the order of the targets, once all chains have ended.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from crossposter.outcome import OutcomeState

if TYPE_CHECKING:
    from crossposter.outcome import PlatformOutcome

#: The publishing engine's logger: progress lines read as the publisher's own.
log = logging.getLogger("crossposter.publish")


class Reporter:
    """Every event of a publication; each does nothing here, so a reporter overrides only what it shows."""

    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def start(self, platform: str, done: int, total: int) -> None:
        """A platform's chain begins (in its own thread), with `done` of `total` posts already published."""

    def posted(self, platform: str, done: int, total: int, url: str) -> None:
        """A post was published and recorded."""

    def recorded(self, platform: str, seconds: float) -> None:
        """A write to the thread's block (a post's record, Bluesky's pending rkey) ended after `seconds`
        (its own write, or waiting for a grouped one)."""

    def note(self, platform: str, message: str) -> None:
        """Something worth a word happened on the way (a retry, a wait for a rate limit)."""

    def chain_ended(self, outcome: PlatformOutcome) -> None:
        """A platform's chain ended (in its own thread)."""

    def finish(self, outcome: PlatformOutcome) -> None:
        """How a platform ended, for every platform, once all chains are over."""


class LogReporter(Reporter):
    """Plain log lines (the daemon, pipes, `post` without a terminal)."""

    def start(self, platform: str, done: int, total: int) -> None:
        log.info("%s: %d/%d already posted, %d to go", platform, done, total, total - done)

    def posted(self, platform: str, done: int, total: int, url: str) -> None:
        log.info("%s: posted %d/%d %s", platform, done, total, url)

    def note(self, platform: str, message: str) -> None:
        log.warning("%s: %s", platform, message)

    def finish(self, outcome: PlatformOutcome) -> None:
        level = logging.INFO if outcome.state == OutcomeState.DONE else logging.WARNING
        log.log(level, "%s: %s, %d/%d posted%s", outcome.platform, outcome.state, outcome.posted, outcome.total,
                f" — {outcome.message}" if outcome.message else "")


class RichReporter(Reporter):
    """A bar per platform (`post` on a terminal); rich is imported only when one is made."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(TextColumn("{task.description:<9}"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("{task.fields[status]}"), TimeElapsedColumn())
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> RichReporter:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def start(self, platform: str, done: int, total: int) -> None:
        self._tasks[platform] = self._progress.add_task(platform, total=total, completed=done, status="")

    def posted(self, platform: str, done: int, total: int, url: str) -> None:
        self._progress.update(self._tasks[platform], completed=done, status="")

    def note(self, platform: str, message: str) -> None:
        if platform in self._tasks:
            self._progress.update(self._tasks[platform], status=message[:60])

    def finish(self, outcome: PlatformOutcome) -> None:
        task = self._tasks.get(outcome.platform)
        if task is None:
            self.start(outcome.platform, outcome.posted, outcome.total)
            task = self._tasks[outcome.platform]
        self._progress.update(task, completed=outcome.posted, status=outcome.state)


def default_reporter(progress: bool) -> Reporter:
    return RichReporter() if progress else LogReporter()
