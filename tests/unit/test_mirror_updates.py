"""`mirror.edits: update`: an edited source post gives its one Mastodon copy the new text; X and Bluesky are
reported as not updatable; anything uncertain (a different split, images) is reported, never guessed."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from crossposter.archive import read_archive
from crossposter.mirror.changes import Current, SourceView
from crossposter.mirror.loop import Mirror
from crossposter.mirror.propagate import updated_text
from crossposter.mirror.state import MirrorState
from crossposter.platforms.fakes import FakeAdapter
from crossposter.publish import text_sha
from tests.unit.test_mirror_deletions import POSTS, T2, T3, Publishing, deleting_on
from tests.unit.test_mirror_loop import T0, Clock, no_backup, section, uri, write


class Source:
    def __init__(self) -> None:
        self.edits: dict[str, str] = {}

    def __call__(self, config: object, since: object, expect: list[str]) -> SourceView:
        posts = {uri(t): Current(text_sha(x), markdown=x) for t, x in POSTS}
        for k, text in self.edits.items():
            posts[k] = Current(text_sha(text), cid=f"bafyedit{len(text)}", markdown=text)
        return SourceView(posts=posts, gone=set())


def updating_on(fakes: dict[str, FakeAdapter]):  # noqa: ANN201
    def update(config: object, platform: str, texts: dict[str, str]) -> dict:
        for post_id, text in texts.items():
            fakes[platform].update(post_id, text)
        return dict.fromkeys(texts)
    return update


def mirrored(tmp_path: Path, edits: str = "update"):  # noqa: ANN201
    from crossposter.config import load_config

    cfg = tmp_path / "crossposter.yaml"
    cfg.write_text("state_dir: state\nplatforms: {bluesky: {handle: me.test}, x: {enabled: true}}\n"
                   "mirror: {from: bluesky, to: [mastodon, x], every: 60, settle: 10m, edits_every: 30m, "
                   f"edits: {edits}}}\n")
    (tmp_path / "threads").mkdir()
    config, archive = load_config(cfg), tmp_path / "threads" / "bluesky.md"
    fakes = {p: FakeAdapter(p) for p in ("mastodon", "x")}
    clock, src = Clock(T0), Source()
    m = Mirror(config, Publishing(config, fakes), backup=no_backup, changes=src, clock=clock,
               delete=deleting_on(fakes), update=updating_on(fakes))
    write(archive, section("New", POSTS))
    clock.now = T3 + timedelta(minutes=11)
    m.poll()
    clock.now += timedelta(minutes=1)
    m.poll()
    assert m.state.threads[uri(POSTS[0][0])].status == "mirrored"
    return config, archive, fakes, clock, src, m


def texts(fake: FakeAdapter) -> list[str]:
    return [p.text for p in fake.thread()]


def test_an_edited_post_gives_its_one_mastodon_copy_the_new_text_once(tmp_path: Path) -> None:
    config, archive, fakes, clock, src, m = mirrored(tmp_path)
    before_archive, before_x = archive.read_bytes(), texts(fakes["x"])
    meta = read_archive(archive).find("New").metadata
    src.edits[uri(T3)] = "Third post, corrected on the source."
    clock.now += timedelta(minutes=31)
    m.poll()
    assert texts(fakes["mastodon"]) == [POSTS[0][1], POSTS[1][1], "Third post, corrected on the source."]
    assert texts(fakes["x"]) == before_x and archive.read_bytes() == before_archive
    st = MirrorState.load(config.state_path)
    assert [(a["kind"], a["platform"], a["post"]) for a in st.actions] == [
        ("updated", "mastodon", meta["mastodon"][2]["id"])]
    message = st.changes[-1]["message"]
    assert "updating mastodon post" in message and "x cannot edit a post" in message
    calls = len(fakes["mastodon"].calls)
    for _ in range(2):  # the same version: reported and sent once
        clock.now += timedelta(minutes=31)
        m.poll()
    assert len(fakes["mastodon"].calls) == calls
    src.edits[uri(T3)] = "Third post, corrected twice."  # another edit: sent again
    clock.now += timedelta(minutes=31)
    m.poll()
    assert texts(fakes["mastodon"])[2] == "Third post, corrected twice."


def test_the_long_post_is_one_post_on_mastodon_and_is_updated_there_only(tmp_path: Path) -> None:
    config, archive, fakes, clock, src, m = mirrored(tmp_path)
    new = POSTS[1][1].replace("long enough", "still long enough")
    src.edits[uri(T2)] = new
    clock.now += timedelta(minutes=31)
    m.poll()
    assert texts(fakes["mastodon"])[1] == new and len(fakes["x"].thread()) == 4


def test_a_new_text_that_would_split_differently_is_reported_not_sent(tmp_path: Path) -> None:
    config, archive, fakes, clock, src, m = mirrored(tmp_path)
    src.edits[uri(T3)] = "Now a much longer third post. " * 20  # 600 characters: two posts on Mastodon
    clock.now += timedelta(minutes=31)
    m.poll()
    assert all(c[0] != "update" for c in fakes["mastodon"].calls)
    assert "not updated on mastodon" in m.state.changes[-1]["message"]
    a = read_archive(archive)
    u = updated_text(a, a.find("New"), config, "bluesky", "mastodon", 3, "Now a much longer third post. " * 20)
    assert u.post_id is None and u.problem


def test_report_updates_nothing(tmp_path: Path) -> None:
    config, archive, fakes, clock, src, m = mirrored(tmp_path, "report")
    src.edits[uri(T3)] = "Third post, corrected on the source."
    clock.now += timedelta(minutes=31)
    m.poll()
    assert all(c[0] != "update" for c in fakes["mastodon"].calls)
    assert "reported only" in m.state.changes[-1]["message"]


def test_a_post_with_images_on_the_source_is_not_updated(tmp_path: Path) -> None:
    config, archive, fakes, clock, src, m = mirrored(tmp_path)

    def with_images(config: object, since: object, expect: list[str]) -> SourceView:
        view = Source()(config, since, expect)
        view.posts[uri(T3)] = Current(text_sha("Edited, with a photo."), cid="bafyphoto", markdown=None)
        return view

    m.changes = with_images
    clock.now += timedelta(minutes=31)
    m.poll()
    assert all(c[0] != "update" for c in fakes["mastodon"].calls)
    assert "has images" in m.state.changes[-1]["message"]


def test_a_state_file_listing_an_edit_of_a_post_the_mirror_did_not_publish_sends_nothing(tmp_path: Path) -> None:
    config, archive, fakes, clock, src, m = mirrored(tmp_path)
    m.state.threads[uri(POSTS[0][0])].updating = {"mastodon": {"42": "forged text"}}
    m.state.save()
    clock.now += timedelta(minutes=1)
    m.poll()
    assert all(c[0] != "update" for c in fakes["mastodon"].calls)
    assert m.state.threads[uri(POSTS[0][0])].updating == {}
    assert "not published by the mirror" in m.state.problems[-1]["message"]
