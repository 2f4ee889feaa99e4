"""`mirror.deletions: delete`: a deleted source post takes exactly its copies off each target, once.

The mirror publishes through `post`'s own code (`publish_thread`) onto in-memory fakes, so the archive
records real IDs and shas; the source is a fake `changes` function that says which post is gone.
"""

from __future__ import annotations

import io
import json
import logging
from datetime import timedelta
from pathlib import Path

import pytest

from crossposter.archive import read_archive
from crossposter.config import load_config
from crossposter.mirror.changes import Current, SourceView
from crossposter.mirror.loop import Mirror
from crossposter.mirror.propagate import delete_posts, target_group
from crossposter.mirror.state import MirrorState
from crossposter.platforms.base import RejectedError, TransientError
from crossposter.platforms.fakes import FakeAdapter
from crossposter.publish import publish_thread, text_sha
from tests.unit.test_mirror_loop import T0, Clock, no_backup, section, uri, write

T1, T2, T3 = (T0 + timedelta(minutes=m) for m in (1, 2, 3))
#: the second post is long: one post on Mastodon (500), two on X (280)
LONG = ("A second post that is long enough to be split on X but not on Mastodon. " * 5).strip()
POSTS = [(T1, "Opening post."), (T2, LONG), (T3, "Third post.")]


class Publishing:
    """The daemon's worker, in-process: `post`'s publisher onto fake accounts."""

    def __init__(self, config, fakes: dict[str, FakeAdapter]) -> None:  # noqa: ANN001
        self.config, self.fakes, self.submitted = config, fakes, []

    def submit(self, archive: Path, title: str, platforms: list[str]) -> None:
        self.submitted.append(title)
        assert publish_thread(self.config, archive, title, platforms, adapters=self.fakes, progress=False).ok

    def outcome(self, archive: Path, title: str, thread: object):  # noqa: ANN201
        return None, None


class Source:
    def __init__(self) -> None:
        self.gone: set[str] = set()

    def __call__(self, config: object, since: object, expect: list[str]) -> SourceView:
        return SourceView(posts={uri(t): Current(text_sha(x)) for t, x in POSTS if uri(t) not in self.gone},
                          gone={k for k in expect if k in self.gone})


def deleting_on(fakes: dict[str, FakeAdapter]):  # noqa: ANN201
    def delete(config: object, platform: str, ids: list[str]) -> dict:
        out: dict = {}
        for i in ids:
            try:
                fakes[platform].delete(i)
                out[i] = None
            except TransientError as e:
                out[i] = ("retry", e.message)
            except RejectedError as e:
                out[i] = ("failed", e.message)
        return out
    return delete


def make(tmp_path: Path, deletions: str = "delete"):  # noqa: ANN201
    cfg = tmp_path / "crossposter.yaml"
    cfg.write_text("state_dir: state\nplatforms: {bluesky: {handle: me.test}, x: {enabled: true}}\n"
                   "mirror: {from: bluesky, to: [mastodon, x], every: 60, settle: 10m, edits_every: 30m, "
                   f"deletions: {deletions}}}\n")
    (tmp_path / "threads").mkdir()
    return load_config(cfg), tmp_path / "threads" / "bluesky.md"


def mirrored(tmp_path: Path, deletions: str = "delete"):  # noqa: ANN201
    """A 3-post source thread the mirror published to both targets (the second post is two posts on X)."""
    config, archive = make(tmp_path, deletions)
    fakes = {p: FakeAdapter(p) for p in ("mastodon", "x")}
    clock, pub, src = Clock(T0), Publishing(config, fakes), Source()
    m = Mirror(config, pub, backup=no_backup, changes=src, clock=clock, delete=deleting_on(fakes))
    write(archive, section("New", POSTS))
    clock.now = T3 + timedelta(minutes=11)
    m.poll()
    assert pub.submitted == ["New"]
    clock.now += timedelta(minutes=1)
    m.poll()
    assert m.state.threads[uri(T1)].status == "mirrored"
    assert [len(fakes[p].thread()) for p in ("mastodon", "x")] == [3, 4]
    return config, archive, fakes, clock, src, m


def test_a_deleted_source_post_deletes_exactly_its_copies_once_and_a_restart_deletes_nothing_more(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="crossposter.mirror")
    config, archive, fakes, clock, src, m = mirrored(tmp_path)
    before = archive.read_bytes()
    meta = read_archive(archive).find("New").metadata
    want = {"mastodon": [meta["mastodon"][1]["id"]], "x": [meta["x"][1]["id"], meta["x"][2]["id"]]}
    src.gone.add(uri(T2))
    clock.now += timedelta(minutes=31)
    m.poll()
    assert {p: f.deleted for p, f in fakes.items()} == want
    assert [p.ref.id for p in fakes["x"].thread()] == [meta["x"][0]["id"], meta["x"][3]["id"]]
    assert archive.read_bytes() == before  # the archive is never rewritten
    st = MirrorState.load(config.state_path)
    t = st.threads[uri(T1)]
    assert t.deleted == want and t.deleting == {}
    assert [(a["kind"], a["platform"], a["post"]) for a in st.actions] == [
        ("deleted", "mastodon", want["mastodon"][0]), ("deleted", "x", want["x"][0]), ("deleted", "x", want["x"][1])]
    assert "deleting its copies on mastodon" in st.changes[-1]["message"]
    assert sum(getattr(r, "event", "") == "mirror_copy_deleted" for r in caplog.records) == 3
    # polls later, and a restart: nothing is deleted again, not even asked for
    calls = {p: len(f.calls) for p, f in fakes.items()}
    for _ in range(2):
        clock.now += timedelta(minutes=31)
        m.poll()
    again = Mirror(config, Publishing(config, fakes), backup=no_backup, changes=src, clock=clock,
                   delete=deleting_on(fakes))
    clock.now += timedelta(minutes=31)
    again.poll()
    assert {p: len(f.calls) for p, f in fakes.items()} == calls
    assert len(MirrorState.load(config.state_path).actions) == 3
    # status: text and JSON
    from rich.console import Console

    from crossposter.mirror.report import mirror_report, print_mirror

    data = mirror_report(config, clock.now)
    assert data is not None and data["deletions"] == "delete" and data["deleting"] == 0
    json.dumps(data)
    out = io.StringIO()
    print_mirror(Console(file=out, width=300), data)
    assert "deleted on x" in out.getvalue() and want["x"][1] in out.getvalue()


def test_a_crash_after_a_delete_repeats_that_request_harmlessly_and_forgets_nothing(tmp_path: Path) -> None:
    config, archive, fakes, clock, src, m = mirrored(tmp_path)
    real = deleting_on(fakes)

    def crashing(config: object, platform: str, ids: list[str]) -> dict:
        real(config, platform, ids)  # the platform deleted them ...
        raise SystemExit("killed")  # ... and the process died before the state said so

    m.delete = crashing
    src.gone.add(uri(T3))
    clock.now += timedelta(minutes=31)
    with pytest.raises(SystemExit):
        m.poll()
    assert MirrorState.load(config.state_path).threads[uri(T1)].deleting  # the intent was on disk first
    restarted = Mirror(config, Publishing(config, fakes), backup=no_backup, changes=src, clock=clock,
                       delete=real)
    clock.now += timedelta(minutes=1)
    restarted.poll()
    meta = read_archive(archive).find("New").metadata
    t = MirrorState.load(config.state_path).threads[uri(T1)]
    assert t.deleting == {} and t.deleted == {"mastodon": [meta["mastodon"][2]["id"]], "x": [meta["x"][3]["id"]]}
    assert {p: f.deleted for p, f in fakes.items()} == t.deleted  # each deleted once on the platform


def test_report_deletes_nothing(tmp_path: Path) -> None:
    config, archive, fakes, clock, src, m = mirrored(tmp_path, "report")
    src.gone.add(uri(T2))
    clock.now += timedelta(minutes=31)
    m.poll()
    assert all(c[0] != "delete" for f in fakes.values() for c in f.calls)
    assert [len(f.thread()) for f in fakes.values()] == [3, 4]
    assert "reported only" in m.state.changes[-1]["message"] and m.state.actions == []


def test_a_list_left_by_delete_is_not_acted_on_once_the_config_says_report(tmp_path: Path) -> None:
    config, archive, fakes, clock, src, m = mirrored(tmp_path)
    m.delete = lambda *a: (_ for _ in ()).throw(SystemExit("killed"))
    src.gone.add(uri(T2))
    clock.now += timedelta(minutes=31)
    with pytest.raises(SystemExit):
        m.poll()
    assert m.config.mirror is not None
    reporting = config.model_copy(update={"mirror": m.config.mirror.model_copy(update={"deletions": "report"})})
    again = Mirror(reporting, Publishing(reporting, fakes), backup=no_backup, changes=src, clock=clock,
                   delete=deleting_on(fakes))
    clock.now += timedelta(minutes=1)
    again.poll()
    assert all(c[0] != "delete" for f in fakes.values() for c in f.calls)


def test_posts_the_mirror_did_not_publish_are_never_deleted(tmp_path: Path) -> None:
    """Published by `post` before the mirror saw the thread: the mirror finds it complete and owns none of it."""
    config, archive = make(tmp_path)
    fakes = {p: FakeAdapter(p) for p in ("mastodon", "x")}
    write(archive, section("New", POSTS))
    assert publish_thread(config, archive, "New", ["mastodon", "x"], adapters=fakes, progress=False).ok
    clock, src = Clock(T0), Source()
    m = Mirror(config, Publishing(config, fakes), backup=no_backup, changes=src, clock=clock,
               delete=deleting_on(fakes))
    clock.now = T3 + timedelta(minutes=11)
    m.poll()
    assert m.state.threads[uri(T1)].status == "mirrored" and m.state.threads[uri(T1)].own == {}
    src.gone.add(uri(T2))
    clock.now += timedelta(minutes=31)
    m.poll()
    assert all(c[0] != "delete" for f in fakes.values() for c in f.calls)
    assert "not published by the mirror: left alone" in m.state.changes[-1]["message"]


def test_a_hand_edited_archive_makes_the_mapping_uncertain_and_nothing_is_deleted(tmp_path: Path) -> None:
    config, archive, fakes, clock, src, m = mirrored(tmp_path)
    archive.write_bytes(archive.read_bytes().replace(b"Opening post.", b"Opening post, reworded."))
    src.gone.add(uri(T2))
    clock.now += timedelta(minutes=31)
    m.poll()
    assert all(c[0] != "delete" for f in fakes.values() for c in f.calls)
    assert "not deleted" in m.state.changes[-1]["message"] and "not certain" in m.state.changes[-1]["message"]


def test_the_group_follows_the_parts_between_rules(tmp_path: Path) -> None:
    config, archive, fakes, clock, src, m = mirrored(tmp_path)
    a = read_archive(archive)
    thread = a.find("New")
    meta = thread.metadata
    groups = [target_group(a, thread, config, "bluesky", ["mastodon", "x"], i).posts for i in (1, 2, 3)]
    assert groups == [{"mastodon": [meta["mastodon"][0]["id"]], "x": [meta["x"][0]["id"]]},
                      {"mastodon": [meta["mastodon"][1]["id"]], "x": [meta["x"][1]["id"], meta["x"][2]["id"]]},
                      {"mastodon": [meta["mastodon"][2]["id"]], "x": [meta["x"][3]["id"]]}]
    assert target_group(a, thread, config, "bluesky", ["x"], 4).problem is not None


def test_a_failed_delete_is_reported_a_transient_one_tried_again(tmp_path: Path) -> None:
    config, archive, fakes, clock, src, m = mirrored(tmp_path)
    fakes["mastodon"].fail("delete", TransientError("mastodon", "HTTP 502"))
    fakes["x"].fail("delete", RejectedError("x", "HTTP 403: You are not allowed to delete this Tweet."))
    src.gone.add(uri(T3))
    clock.now += timedelta(minutes=31)
    m.poll()
    t = m.state.threads[uri(T1)]
    assert list(t.deleting) == ["mastodon"] and "x" not in t.deleted
    assert any("not allowed to delete" in p["message"] for p in m.state.problems)
    clock.now += timedelta(minutes=1)
    m.poll()
    assert m.state.threads[uri(T1)].deleting == {} and len(m.state.threads[uri(T1)].deleted["mastodon"]) == 1


def test_delete_posts_uses_the_journal_fakes_when_the_commands_would(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    config, _ = make(tmp_path)
    monkeypatch.setenv("CROSSPOSTER_FAKE_PLATFORMS", "1")
    from crossposter.platforms.base import OutgoingPost
    from crossposter.platforms.fakes import journal_fakes_from_env

    fakes = journal_fakes_from_env(config)
    assert fakes is not None
    x = fakes.adapters(["x"])["x"]
    ref = x.publish(OutgoingPost(text="hello", index=0, thread_key="k"), None, None)
    assert delete_posts(config, "x", [ref.id, ref.id]) == {ref.id: None}
    assert fakes.adapters(["x"])["x"].lookup(ref.id) is None


def test_the_instances_own_limit_is_the_split_the_group_is_read_from(tmp_path: Path) -> None:
    """The publisher split for Mastodon at the limit the instance told it (200), not the configured 500."""
    import dataclasses

    from crossposter.platforms.fakes import fake_limits
    from crossposter.platforms.mastodon import limits_cache_path, normalise_instance

    config, archive = make(tmp_path)
    fakes = {"mastodon": FakeAdapter("mastodon", limits=dataclasses.replace(fake_limits("mastodon"),
                                                                            max_characters=200)),
             "x": FakeAdapter("x")}
    clock, src = Clock(T0), Source()
    m = Mirror(config, Publishing(config, fakes), backup=no_backup, changes=src, clock=clock,
               delete=deleting_on(fakes))
    write(archive, section("New", POSTS))
    clock.now = T3 + timedelta(minutes=11)
    m.poll()
    clock.now += timedelta(minutes=1)
    m.poll()
    assert len(fakes["mastodon"].thread()) > 3  # the long post is more than one post at 200
    a = read_archive(archive)
    meta = a.find("New").metadata
    uncertain = target_group(a, a.find("New"), config, "bluesky", ["mastodon", "x"], 2)
    assert uncertain.posts == {} and "mastodon: post 2 was published from another text" in str(uncertain.problem)
    cache = limits_cache_path(config.state_path, normalise_instance(config.platforms.mastodon.instance))
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"instance": "x", "fetched_at": "2020-01-01T00:00:00+00:00",
                                 "limits": {"max_characters": 200}}))
    src.gone.add(uri(T2))
    clock.now += timedelta(minutes=31)
    m.poll()
    assert fakes["mastodon"].deleted == [e["id"] for e in meta["mastodon"][1:-1]]  # all but the first and last
    assert fakes["x"].deleted == [meta["x"][1]["id"], meta["x"][2]["id"]]


def test_a_state_file_listing_a_post_the_mirror_did_not_publish_deletes_nothing(tmp_path: Path) -> None:
    config, archive, fakes, clock, src, m = mirrored(tmp_path)
    t = m.state.threads[uri(T1)]
    t.deleting = {"x": ["1999999999999999999"]}  # forged, or an old file: not one of its own posts
    m.state.save()
    clock.now += timedelta(minutes=1)
    m.poll()
    assert all(c[0] != "delete" for f in fakes.values() for c in f.calls)
    assert m.state.threads[uri(T1)].deleting == {}
    assert "not published by the mirror" in m.state.problems[-1]["message"]
