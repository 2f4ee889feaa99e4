"""Progress reaches a `Reporter` (crossposter.reporter): every event, from the thread that makes it.

The publish benchmark times chains and archive writes through these calls, so they are part of the
publishing engine's contract rather than a view of its private classes.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from crossposter.config import Config
from crossposter.outcome import OutcomeState, PlatformOutcome
from crossposter.platforms.base import RateLimitedError
from crossposter.platforms.fakes import fake_adapters
from crossposter.publish import PublishOptions, publish_thread, publish_with
from crossposter.reporter import LogReporter, Reporter

TITLE = "A thread"


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    path = tmp_path / "threads.md"
    path.write_text(f"# Archive\n\n## {TITLE}\n\nThe first post.\n\n### Two\nThe second post.\n\n"
                    "### Three\nThe third post.\n", encoding="utf-8")
    return path


@pytest.fixture
def config(tmp_path: Path) -> Config:
    cfg = Config(state_dir=tmp_path / "state", base_dir=tmp_path)
    cfg.platforms.x.enabled = True
    return cfg


def no_sleep(_seconds: float) -> None:
    pass


class Recording(Reporter):
    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.lock = threading.Lock()

    def _add(self, *event: object) -> None:
        with self.lock:
            self.events.append((*event, threading.current_thread().name))

    def start(self, platform: str, done: int, total: int) -> None:
        self._add("start", platform, done, total)

    def posted(self, platform: str, done: int, total: int, url: str) -> None:
        self._add("posted", platform, done)

    def recorded(self, platform: str, seconds: float) -> None:
        assert seconds >= 0
        self._add("recorded", platform)

    def note(self, platform: str, message: str) -> None:
        self._add("note", platform, message)

    def chain_ended(self, outcome: PlatformOutcome) -> None:
        self._add("chain_ended", outcome.platform, outcome.state)

    def finish(self, outcome: PlatformOutcome) -> None:
        self._add("finish", outcome.platform, outcome.state)

    def of(self, platform: str) -> list[tuple]:
        return [e[:-1] for e in self.events if e[1] == platform]


def test_every_event_reaches_the_reporter_from_the_chain_thread(archive: Path, config: Config) -> None:
    fakes = fake_adapters(["bluesky", "mastodon", "x"])
    fakes["x"].fail("publish", RateLimitedError("x", "slow down", None), index=1)
    reporter = Recording()
    result = publish_thread(config, archive, TITLE, list(fakes), adapters=fakes, reporter=reporter, sleep=no_sleep)
    assert result.ok
    # Bluesky writes its pending rkey before the first post: one more write than posts
    assert reporter.of("bluesky") == [("start", "bluesky", 0, 3), ("recorded", "bluesky"),
                                      *[e for i in (1, 2, 3) for e in (("recorded", "bluesky"),
                                                                       ("posted", "bluesky", i))],
                                      ("chain_ended", "bluesky", "done"), ("finish", "bluesky", "done")]
    x = reporter.of("x")
    assert x[0] == ("start", "x", 0, 3) and x[-2:] == [("chain_ended", "x", "done"), ("finish", "x", "done")]
    assert [e[0] for e in x].count("note") == 1  # the rate limit, waited out
    threads = {(e[0] == "finish", e[-1]) for e in reporter.events}
    assert all(name.startswith("chain") for is_finish, name in threads if not is_finish)
    assert {name for is_finish, name in threads if is_finish} == {threading.current_thread().name}


def test_options_object_runs_the_same_publication(archive: Path, config: Config) -> None:
    fakes = fake_adapters(["mastodon"])
    result = publish_with(config, archive, TITLE, PublishOptions(platforms=["mastodon"], adapters=fakes,
                                                                 reporter=LogReporter(), sleep=no_sleep))
    assert result.ok and result.outcomes["mastodon"].state == OutcomeState.DONE
    assert len(fakes["mastodon"].thread()) == 3
