"""The mirror's poll with fakes: what it hands to the publisher, and when, across restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crossposter.backup.bluesky import tid_before
from crossposter.config import load_config
from crossposter.mirror.changes import SourceView
from crossposter.mirror.loop import Mirror
from crossposter.mirror.source import BackupResult
from crossposter.mirror.state import BEFORE_START, MIRRORED, WAITING, MirrorState
from crossposter.publish import text_sha

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DID = "did:plc:abcdefghijklmnopqrstuvwx"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Publisher:
    def __init__(self) -> None:
        self.submitted: list[tuple[str, list[str]]] = []
        self.outcomes: dict[str, str] = {}

    def submit(self, archive: Path, title: str, platforms: list[str]) -> None:
        self.submitted.append((title, platforms))

    def outcome(self, archive: Path, title: str, thread: object) -> tuple[str | None, datetime | None]:
        return self.outcomes.get(title), None


def uri(when: datetime) -> str:
    return f"at://{DID}/app.bsky.feed.post/{tid_before(when + timedelta(microseconds=1))}"


def section(title: str, posts: list[tuple[datetime, str]], targets: dict[str, int] | None = None) -> str:
    lines = [f"## {title}", "<!-- crossposter", "source: bluesky", "bluesky:"]
    lines += [f"- {{id: '{uri(t)}', sha: {text_sha(text)}}}" for t, text in posts]
    for p, n in (targets or {}).items():
        lines.append(f"{p}:")
        lines += [f"- {{id: '{1000 + i}', sha: {text_sha(posts[i][1])}}}" for i in range(n)]
    lines += ["-->", posts[0][0].strftime("%Y-%m-%d %H:%M"), ""]
    return "\n".join(lines) + "\n" + "\n\n---\n\n".join(text for _, text in posts) + "\n\n"


@pytest.fixture
def setup(tmp_path: Path):  # noqa: ANN201
    cfg = tmp_path / "crossposter.yaml"
    cfg.write_text("state_dir: state\nplatforms: {bluesky: {handle: me.test}, x: {enabled: true}}\n"
                   "mirror: {from: bluesky, to: [mastodon, x], every: 60, settle: 10m}\n")
    (tmp_path / "threads").mkdir()
    return load_config(cfg), tmp_path / "threads" / "bluesky.md"


def write(path: Path, *sections: str) -> None:
    path.write_text("# Bluesky threads\n\n" + "".join(sections), encoding="utf-8")


def no_backup(_config: object) -> BackupResult:
    return BackupResult(newest={}, problems=[])


def no_changes(_config: object, _since: object, _expect: object) -> SourceView:
    return SourceView(posts={}, gone=set())


def test_waits_for_settle_submits_once_and_not_again_after_restart(setup) -> None:  # noqa: ANN001
    config, archive = setup
    clock, pub = Clock(T0), Publisher()
    m = Mirror(config, pub, backup=no_backup, changes=no_changes, clock=clock)
    old = T0 - timedelta(hours=1)
    t1, t2 = T0 + timedelta(minutes=1), T0 + timedelta(minutes=3)
    posts = [(t1, "Opening post."), (t2, "Second post.")]
    write(archive, section("Old", [(old, "From before the start.")]), section("New", posts))
    clock.now = T0 + timedelta(minutes=5)
    assert m.poll() == t2 + timedelta(minutes=10)  # a wake-up at its settle time
    assert pub.submitted == []
    assert {t.title: t.status for t in m.state.threads.values()} == {"Old": BEFORE_START, "New": WAITING}
    clock.now = t2 + timedelta(minutes=10)
    m.poll()
    m.poll()  # still not recorded on the targets: handed on again, the worker ignores what is in flight
    assert pub.submitted == [("New", ["mastodon", "x"])] * 2
    # the publisher recorded both posts on both targets
    write(archive, section("Old", [(old, "From before the start.")]),
          section("New", posts, {"mastodon": 2, "x": 2}))
    m.poll()
    assert m.state.threads[uri(t1)].status == MIRRORED
    # a restart reads the state back: nothing is handed on again
    again = Mirror(config, pub, backup=no_backup, changes=no_changes, clock=clock)
    clock.now += timedelta(hours=1)
    again.poll()
    assert len(pub.submitted) == 2 and again.state.start == T0


def test_a_later_reply_waits_and_continues(setup) -> None:  # noqa: ANN001
    config, archive = setup
    clock, pub = Clock(T0), Publisher()
    m = Mirror(config, pub, backup=no_backup, changes=no_changes, clock=clock)
    t1 = T0 + timedelta(minutes=1)
    write(archive, section("New", [(t1, "Opening post.")], {"mastodon": 1, "x": 1}))
    clock.now = T0 + timedelta(hours=1)
    m.poll()
    assert pub.submitted == [] and m.state.threads[uri(t1)].status == MIRRORED
    t2 = T0 + timedelta(hours=2)
    write(archive, section("New", [(t1, "Opening post."), (t2, "A reply, later.")], {"mastodon": 1, "x": 1}))
    clock.now = t2 + timedelta(minutes=1)
    m.poll()
    assert pub.submitted == [] and m.state.threads[uri(t1)].status == WAITING
    clock.now = t2 + timedelta(minutes=10)
    m.poll()
    assert pub.submitted == [("New", ["mastodon", "x"])]


def test_a_failing_backup_is_a_problem_and_the_archive_is_still_looked_at(setup) -> None:  # noqa: ANN001
    config, archive = setup
    clock, pub = Clock(T0), Publisher()

    def broken(_config: object) -> BackupResult:
        raise RuntimeError("listRecords answered 502")

    m = Mirror(config, pub, backup=broken, clock=clock, changes=no_changes)
    t1 = T0 + timedelta(minutes=1)
    write(archive, section("New", [(t1, "Opening post.")]))
    clock.now = T0 + timedelta(hours=1)
    m.poll()
    assert pub.submitted == [("New", ["mastodon", "x"])]
    st = MirrorState.load(config.state_path)
    assert not st.last_poll_ok and "listRecords answered 502" in st.problems[-1]["message"]


def test_failed_publishing_is_not_retried_until_the_thread_changes(setup) -> None:  # noqa: ANN001
    config, archive = setup
    clock, pub = Clock(T0 + timedelta(hours=1)), Publisher()
    m = Mirror(config, pub, backup=no_backup, changes=no_changes, clock=Clock(T0))
    m.clock = clock
    write(archive, section("New", [(T0 + timedelta(minutes=1), "Opening post.")]))
    pub.outcomes["New"] = "failed"
    m.poll()
    assert pub.submitted == []


def test_the_status_account_name_is_the_backup_commands(setup, monkeypatch) -> None:  # noqa: ANN001
    from crossposter.commands.backup import _reader
    from crossposter.mirror.report import account_name

    config, _ = setup
    monkeypatch.setenv("CROSSPOSTER_BLUESKY_PASSWORD", "a-long-enough-app-password")
    monkeypatch.setenv("CROSSPOSTER_MASTODON_ACCESS_TOKEN", "a-long-enough-access-token")
    for platform in ("bluesky", "mastodon"):
        assert account_name(config, platform) == _reader(platform, config, None)[1]


def test_done_by_the_daemon_counts_as_mirrored(setup) -> None:  # noqa: ANN001
    """The daemon planned at the instance's real limit; the mirror's offline plan may count differently."""
    config, archive = setup
    clock, pub = Clock(T0 + timedelta(hours=1)), Publisher()
    m = Mirror(config, pub, backup=no_backup, changes=no_changes, clock=Clock(T0))
    m.clock = clock
    t1 = T0 + timedelta(minutes=1)
    write(archive, section("New", [(t1, "Opening post.")]))
    pub.outcomes["New"] = "done"
    m.poll()
    assert pub.submitted == [] and m.state.threads[uri(t1)].status == MIRRORED


def test_the_backups_notes_are_logged_once_not_kept_as_problems(setup, caplog: pytest.LogCaptureFixture) -> None:  # noqa: ANN001
    import logging

    config, archive = setup
    write(archive)
    note = "https://bsky.app/profile/me.test/post/3k: embed {'$type': 'app.bsky.embed.unknown'} is not one this backup knows"
    results = iter([BackupResult(newest={}, problems=[], notes=[note]), BackupResult(newest={}, problems=[])])
    caplog.set_level(logging.WARNING, logger="crossposter.mirror")
    m = Mirror(config, Publisher(), backup=lambda _c: next(results), changes=no_changes, clock=Clock(T0))
    m.poll()
    m.poll()
    said = [r.getMessage() for r in caplog.records if getattr(r, "event", "") == "backup_note"]
    assert said == [f"mirror: backup of bluesky: {note}"]
    assert m.state.problems == [] and m.state.last_poll_ok
