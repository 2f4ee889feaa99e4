"""The mirror's rules for one thread at one poll: wait, publish, or leave it alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from crossposter.mirror.decide import Rules, Seen, decide, has_tag, id_time
from crossposter.mirror.state import (
    BEFORE_START,
    DUE,
    FAILED,
    MIRRORED,
    SKIPPED,
    TOO_OLD,
    WAITING,
    MirrorState,
)

START = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
RULES = Rules(settle=timedelta(minutes=10), catch_up=timedelta(days=1), start=START, skip_tag="#nomirror")


def seen(started: datetime, newest: datetime | None = None, posts: int = 1, **kw: object) -> Seen:
    return Seen(root_id="r1", archive="a.md", title="T", posts=posts, started=started,
                newest=newest or started, **kw)  # type: ignore[arg-type]


def test_first_start_leaves_the_back_catalogue_alone() -> None:
    d = decide(None, seen(START - timedelta(seconds=1)), START + timedelta(hours=1), RULES)
    assert d.thread.status == BEFORE_START and not d.publish
    assert "before the mirror's start" in d.thread.message


def test_backfill_mirrors_older_threads_and_overrides_catch_up() -> None:
    rules = Rules(**{**RULES.__dict__, "backfill": START - timedelta(days=30)})
    d = decide(None, seen(START - timedelta(days=10)), START, rules)
    assert d.publish and d.thread.status == DUE
    d = decide(None, seen(START - timedelta(days=31)), START, rules)
    assert d.thread.status == BEFORE_START


def test_a_thread_waits_until_its_newest_post_is_settle_old() -> None:
    t0 = START + timedelta(minutes=5)
    d = decide(None, seen(t0), t0 + timedelta(minutes=9, seconds=59), RULES)
    assert d.thread.status == WAITING and not d.publish and d.wake == t0 + timedelta(minutes=10)
    d = decide(d.thread, seen(t0), t0 + timedelta(minutes=10), RULES)
    assert d.publish and d.thread.status == DUE


def test_a_reply_restarts_the_settle_time_and_a_mirrored_thread_waits_again() -> None:
    t0 = START + timedelta(minutes=5)
    d = decide(None, seen(t0), t0 + timedelta(minutes=11), RULES)
    d = decide(d.thread, seen(t0, posts=1, complete=True), t0 + timedelta(minutes=12), RULES)
    assert d.thread.status == MIRRORED and d.thread.mirrored_posts == 1
    reply = t0 + timedelta(minutes=20)
    d = decide(d.thread, seen(t0, reply, posts=2), reply + timedelta(minutes=1), RULES)
    assert d.thread.status == WAITING and not d.publish and d.wake == reply + timedelta(minutes=10)
    d = decide(d.thread, seen(t0, reply, posts=2), reply + timedelta(minutes=10), RULES)
    assert d.publish


def test_a_reply_without_a_known_time_settles_from_when_it_was_seen() -> None:
    t0 = START + timedelta(minutes=5)
    d = decide(None, seen(t0, complete=True), t0 + timedelta(minutes=11), RULES)
    later = t0 + timedelta(hours=2)
    d = decide(d.thread, Seen("r1", "a.md", "T", 2, t0, None), later, RULES)
    assert d.thread.newest == later and not d.publish


def test_catch_up_window_after_downtime() -> None:
    t0 = START + timedelta(days=1)
    d = decide(None, seen(t0), t0 + timedelta(days=1, seconds=1), RULES)
    assert d.thread.status == TOO_OLD and not d.publish
    d = decide(None, seen(t0), t0 + timedelta(hours=23), RULES)
    assert d.publish


def test_skip_tag_anywhere_in_the_thread() -> None:
    t0 = START + timedelta(minutes=5)
    d = decide(None, seen(t0, tagged=True), t0 + timedelta(hours=1), RULES)
    assert d.thread.status == SKIPPED and not d.publish
    # final: a later reply without the tag does not bring it back
    d = decide(d.thread, seen(t0, t0 + timedelta(hours=2), posts=2), t0 + timedelta(hours=3), RULES)
    assert d.thread.status == SKIPPED and not d.publish


def test_failed_is_not_retried_until_the_thread_changes() -> None:
    t0 = START + timedelta(minutes=5)
    d = decide(None, seen(t0, outcome="failed"), t0 + timedelta(hours=1), RULES)
    assert d.thread.status == FAILED and not d.publish
    d = decide(d.thread, seen(t0, t0 + timedelta(hours=1), posts=2), t0 + timedelta(hours=2), RULES)
    assert d.publish


def test_retry_waits_for_its_time() -> None:
    t0 = START + timedelta(minutes=5)
    at = t0 + timedelta(hours=2)
    d = decide(None, seen(t0, outcome="retrying", retry_at=at), t0 + timedelta(hours=1), RULES)
    assert not d.publish and d.wake == at
    d = decide(d.thread, seen(t0, outcome="retrying", retry_at=at), at, RULES)
    assert d.publish


def test_has_tag_is_a_whole_hashtag() -> None:
    assert has_tag(["hello #NoMirror"], "#nomirror")
    assert has_tag(["#nomirror."], "#nomirror")
    assert not has_tag(["#nomirrors"], "#nomirror")
    assert not has_tag(["##nomirror", "x#nomirror"], "#nomirror")


def test_id_time() -> None:
    assert id_time("bluesky", "at://did:plc:abc/app.bsky.feed.post/3lbq2xk7d2s2a") is not None
    when = datetime(2025, 3, 4, 5, 6, 7, 891000, tzinfo=UTC)
    ms = int(when.timestamp() * 1000)
    assert id_time("x", str(((ms - 1288834974657) << 22) | 4095)) == when  # snowflake: ms since X's epoch
    assert id_time("mastodon", str((ms << 16) | 65535)) == when  # Mastodon: ms since 1970 << 16
    assert id_time("mastodon", "01HXYZ") is None
    assert id_time("mastodon", "9" * 30) is None


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**6), st.booleans(), st.booleans())
def test_never_publishes_before_settle_or_start(started_s: int, quiet_s: int, now_s: int, tagged: bool,
                                                complete: bool) -> None:
    started = START - timedelta(seconds=500_000) + timedelta(seconds=started_s)
    newest = started + timedelta(seconds=quiet_s)
    now = newest + timedelta(seconds=now_s)
    d = decide(None, seen(started, newest, tagged=tagged, complete=complete), now, RULES)
    if d.publish:
        assert now - newest >= RULES.settle
        assert started >= RULES.start and now - started <= RULES.catch_up
        assert not tagged and not complete


def test_state_round_trip_is_private(tmp_path) -> None:
    st_ = MirrorState.load(tmp_path)
    st_.start = START
    d = decide(None, seen(START + timedelta(minutes=1)), START + timedelta(minutes=2), RULES)
    st_.threads["r1"] = d.thread
    st_.problem("backup failed: Bearer abcdefghijklmnopqrstuvwxyz0123456789")
    st_.save()
    assert (tmp_path / "mirror-state.json").stat().st_mode & 0o777 == 0o600
    back = MirrorState.load(tmp_path)
    assert back.start == START and back.threads["r1"] == d.thread
    assert "abcdefghijklmnopqrstuvwxyz0123456789" not in (tmp_path / "mirror-state.json").read_text()


def test_unreadable_state_is_a_first_start(tmp_path) -> None:
    (tmp_path / "mirror-state.json").write_text("{not json")
    assert MirrorState.load(tmp_path).start is None
