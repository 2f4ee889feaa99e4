"""A source post edited while its thread waits to settle: the thread is held, never mirrored with the old text.

The archive holds what the backup wrote before the edit. The mirror reads the source once more before it
hands a settled thread on; an edited text holds the thread (reported once) until the archive's text of
that post is no longer the backup's (the person put the new text there) or the source reads as the
archive again. A post already edited by hand in the archive never holds anything.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from crossposter.mirror.changes import Current, SourceView
from crossposter.mirror.loop import Mirror
from crossposter.mirror.state import HELD, MirrorState
from crossposter.platforms.fakes import FakeAdapter
from crossposter.publish import text_sha
from tests.unit.test_mirror_deletions import POSTS, T2, T3, Publishing, make
from tests.unit.test_mirror_loop import T0, Clock, no_backup, section, uri, write

NEW = "A second post, corrected on the source while the thread settled."


class Source:
    """The source now: post 2 edited (a new record cid, as Bluesky's putRecord gives), unless reverted."""

    def __init__(self) -> None:
        self.edited = True
        self.fail = False
        self.calls: list[tuple[datetime, list[str]]] = []

    def __call__(self, config: object, since: datetime, expect: list[str]) -> SourceView:
        self.calls.append((since, expect))
        if self.fail:
            raise RuntimeError("listRecords answered 502")
        posts = {uri(t): Current(text_sha(x)) for t, x in POSTS}
        if self.edited:
            posts[uri(T2)] = Current(text_sha(NEW), cid="bafyreinewrecord")
        return SourceView(posts=posts, gone=set())


def settled(tmp_path: Path):  # noqa: ANN201
    config, archive = make(tmp_path, "report")
    fakes = {p: FakeAdapter(p) for p in ("mastodon", "x")}
    clock, src = Clock(T0), Source()
    pub = Publishing(config, fakes)
    m = Mirror(config, pub, backup=no_backup, changes=src, clock=clock)
    write(archive, section("New", POSTS))
    clock.now = T3 + timedelta(minutes=5)
    src.edited = False
    m.poll()  # waiting; the regular look reads the source (nothing edited yet) and is not due again for 30m
    assert pub.submitted == [] and m.state.threads[uri(POSTS[0][0])].status == "waiting"
    src.edited, src.calls = True, []  # edited on the source while the thread settles
    clock.now = T3 + timedelta(minutes=11)
    return config, archive, fakes, clock, src, pub, m


def test_an_edit_while_settling_holds_the_thread_reports_once_and_the_archive_is_untouched(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="crossposter.mirror")
    config, archive, fakes, clock, src, pub, m = settled(tmp_path)
    before = archive.read_bytes()
    m.poll()
    root = uri(POSTS[0][0])
    assert pub.submitted == [] and all(not f.calls for f in fakes.values())
    t = MirrorState.load(config.state_path).threads[root]
    assert t.status == HELD and "post 2 of 3 was edited on the source" in t.message and str(archive) in t.message
    assert [(c["kind"], c["post"]) for c in m.state.changes] == [("edited", uri(T2))]
    assert sum(getattr(r, "event", "") == "mirror_held" for r in caplog.records) == 1
    assert archive.read_bytes() == before
    reads = len(src.calls)
    for minutes in (1, 2):  # within edits_every: no new read, still held, nothing reported again
        clock.now += timedelta(minutes=minutes)
        m.poll()
    assert len(src.calls) == reads and pub.submitted == [] and len(m.state.changes) == 1
    clock.now += timedelta(minutes=31)  # the regular look runs too: the same edit is not reported twice
    m.poll()
    assert pub.submitted == [] and len(m.state.changes) == 1 and m.state.threads[root].status == HELD
    from crossposter.mirror.report import mirror_report

    data = mirror_report(config, clock.now)
    assert data is not None and [o["status"] for o in data["left_alone"]] == [HELD]


def test_the_person_putting_the_new_text_in_the_archive_releases_it_with_that_text(tmp_path: Path) -> None:
    config, archive, fakes, clock, src, pub, m = settled(tmp_path)
    m.poll()
    assert pub.submitted == []
    archive.write_text(archive.read_text(encoding="utf-8").replace(POSTS[1][1], NEW), encoding="utf-8")
    reads = len(src.calls)
    clock.now += timedelta(minutes=1)
    m.poll()
    assert pub.submitted == ["New"] and len(src.calls) == reads  # no read needed: the archive says it
    assert NEW in [p.text for p in fakes["mastodon"].thread()]
    assert POSTS[1][1] not in [p.text for p in fakes["mastodon"].thread()]


def test_a_source_edited_back_releases_it_at_the_next_read(tmp_path: Path) -> None:
    config, archive, fakes, clock, src, pub, m = settled(tmp_path)
    m.poll()
    src.edited = False
    clock.now += timedelta(minutes=1)
    m.poll()
    assert pub.submitted == []  # not read again before edits_every
    clock.now += timedelta(minutes=30)
    m.poll()
    assert pub.submitted == ["New"]


def test_an_archive_already_edited_by_hand_is_mirrored_as_it_is_without_a_read(tmp_path: Path) -> None:
    config, archive, fakes, clock, src, pub, m = settled(tmp_path)
    text = archive.read_text(encoding="utf-8")
    archive.write_text(text.replace("Opening post.", "Opening post, as I want it.").replace(POSTS[1][1], "Mine.")
                       .replace("Third post.", "Third, mine."), encoding="utf-8")
    m.poll()
    assert pub.submitted == ["New"] and src.calls == []


def test_unedited_threads_go_out_and_a_failed_read_does_not_stop_the_mirror(tmp_path: Path) -> None:
    config, archive, fakes, clock, src, pub, m = settled(tmp_path)
    src.edited = False
    m.poll()
    assert pub.submitted == ["New"] and len(src.calls) == 1
    (tmp_path / "b").mkdir()
    config2, archive2, fakes2, clock2, src2, pub2, m2 = settled(tmp_path / "b")
    src2.fail = True
    m2.poll()
    assert pub2.submitted == ["New"]
    assert "mirrored as the archive holds them" in m2.state.problems[-1]["message"]


def test_a_cheap_look_saying_unchanged_spares_the_read_and_a_doubt_reads(tmp_path: Path) -> None:
    config, archive, fakes, clock, src, pub, m = settled(tmp_path)
    asked: list[list[tuple[str, str | None]]] = []

    def unchanged(config: object, posts: list[tuple[str, str | None]]) -> bool:
        asked.append(posts)
        return False  # a doubt: the full read decides (and finds the edit)

    m.unchanged = unchanged
    m.poll()
    assert [p for p, _ in asked[0]] == [uri(t) for t, _ in POSTS] and len(src.calls) == 1
    assert pub.submitted == [] and m.state.threads[uri(POSTS[0][0])].status == HELD
    (tmp_path / "b").mkdir()
    config2, archive2, fakes2, clock2, src2, pub2, m2 = settled(tmp_path / "b")
    m2.unchanged = lambda config, posts: True
    m2.poll()
    assert pub2.submitted == ["New"] and src2.calls == []


def test_a_post_deleted_on_the_source_while_settling_holds_the_thread_until_the_archive_drops_it(
        tmp_path: Path) -> None:
    config, archive, fakes, clock, src, pub, m = settled(tmp_path)

    def deleted(config: object, since: datetime, expect: list[str]) -> SourceView:
        src.calls.append((since, expect))
        return SourceView(posts={uri(t): Current(text_sha(x)) for t, x in POSTS if t != T2}, gone={uri(T2)})

    m.changes = deleted
    before = archive.read_bytes()
    m.poll()
    root = uri(POSTS[0][0])
    t = MirrorState.load(config.state_path).threads[root]
    assert pub.submitted == [] and all(not f.calls for f in fakes.values())  # what was taken back is not mirrored
    assert t.status == HELD and "post 2 of 3 was deleted on the source" in t.message and str(archive) in t.message
    assert [(c["kind"], c["post"]) for c in m.state.changes] == [("deleted", uri(T2))]
    assert archive.read_bytes() == before
    # the person takes the post out of the archive: the rest goes out, without it
    archive.write_text(archive.read_text(encoding="utf-8").replace(f"{POSTS[1][1]}\n\n---\n\n", ""),
                       encoding="utf-8")
    clock.now += timedelta(minutes=1)
    m.poll()
    assert pub.submitted == ["New"]
    texts = [p.text for p in fakes["mastodon"].thread()]
    assert POSTS[1][1] not in texts and any("Third post." in x for x in texts)
