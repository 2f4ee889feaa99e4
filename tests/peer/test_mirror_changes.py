"""Edited and deleted source posts: the comparison, the once-only report, status; then against the real peers
(the local PDS with putRecord/deleteRecord, mastodon-mock with PUT/DELETE /api/v1/statuses/:id)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crossposter.config import load_config
from crossposter.mirror.changes import DELETED, EDITED, Current, SourceView, compare
from crossposter.mirror.loop import Mirror
from crossposter.mirror.state import MirrorState
from crossposter.publish import text_sha
from crossposter.thread_meta import Entry
from tests.unit.test_mirror_loop import T0, Clock, Publisher, no_backup, section, uri, write


def entries(*texts: str, cids: tuple[str, ...] = ()) -> list[Entry]:
    return [Entry(id=f"id{i}", sha=text_sha(t), cid=cids[i] if cids else None) for i, t in enumerate(texts)]


# --------------------------------------------------------------------------- the comparison


def test_a_changed_text_is_an_edit_a_gone_post_a_deletion_and_both_are_reported_once() -> None:
    es = entries("one", "two", "three")
    view = SourceView(posts={"id0": Current(text_sha("one")),
                             "id1": Current(text_sha("two, edited"), edited_at="2026-12-01T12:00:00+00:00")},
                      gone={"id2"})
    found = compare("id0", es, view, set(), {})
    assert [(c.kind, c.post_id, c.index, c.posts) for c in found] == [(EDITED, "id1", 2, 3), (DELETED, "id2", 3, 3)]
    assert "its text changed" in found[0].detail and "deleted" in found[1].detail
    assert compare("id0", es, view, {c.key for c in found}, {}) == []


def test_a_text_that_only_reads_differently_is_not_an_edit() -> None:
    """Mastodon's HTML converted otherwise since the backup: no `edited_at`, or the same Bluesky cid."""
    es = entries("one", "two", cids=("cidA", ""))
    view = SourceView(posts={"id0": Current(text_sha("one!"), cid="cidA"), "id1": Current(text_sha("two!"))},
                      gone=set())
    assert compare("id0", es, view, set(), {}) == []
    # a Bluesky post recorded without its cid: the record's own text is compared
    es = entries("one")
    assert [c.kind for c in compare("id0", es, SourceView(posts={"id0": Current(text_sha("one!"), cid="cidB")},
                                                          gone=set()), set(), {})] == [EDITED]


def test_missing_from_the_read_without_a_lookup_saying_gone_is_not_a_deletion() -> None:
    es = entries("one", "two")
    assert compare("id0", es, SourceView(posts={"id0": Current(text_sha("one"))}, gone=set()), set(), {}) == []


def test_a_bluesky_record_with_a_new_cid_and_the_same_text_is_an_edit_and_each_version_is_reported() -> None:
    es = entries("one", cids=("cidA",))
    v1 = SourceView(posts={"id0": Current(text_sha("one"), cid="cidB")}, gone=set())
    first = compare("id0", es, v1, set(), {})
    assert [c.kind for c in first] == [EDITED] and "text is the same" in first[0].detail
    assert compare("id0", es, SourceView(posts={"id0": Current(text_sha("one"), cid="cidA")}, gone=set()),
                   set(), {}) == []
    v2 = SourceView(posts={"id0": Current(text_sha("one"), cid="cidC")}, gone=set())
    assert len(compare("id0", es, v2, {first[0].key}, {})) == 1  # edited again: reported again


def test_a_mastodon_edit_that_keeps_the_text_is_seen_by_edited_at_against_the_first_look() -> None:
    es = entries("one")
    view = SourceView(posts={"id0": Current(text_sha("one"), edited_at="2026-12-01T12:00:00+00:00")}, gone=set())
    assert compare("id0", es, view, set(), {}) == []  # no first look yet: the archive may hold this version
    assert compare("id0", es, view, set(), {"id0": "2026-12-01T12:00:00+00:00"}) == []
    found = compare("id0", es, view, set(), {"id0": ""})
    assert [c.kind for c in found] == [EDITED] and "edited" in found[0].detail


# --------------------------------------------------------------------------- the poll


@pytest.fixture
def setup(tmp_path: Path):  # noqa: ANN201
    cfg = tmp_path / "crossposter.yaml"
    cfg.write_text("state_dir: state\nplatforms: {bluesky: {handle: me.test}, x: {enabled: true}}\n"
                   "mirror: {from: bluesky, to: [mastodon, x], every: 60, settle: 10m, edits_every: 30m}\n")
    (tmp_path / "threads").mkdir()
    return load_config(cfg), tmp_path / "threads" / "bluesky.md"


class Source:
    """A fake `changes` function: what the source has now, and what it was asked."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}
        self.edited: dict[str, str] = {}
        self.gone: set[str] = set()
        self.calls: list[tuple[datetime, list[str]]] = []
        self.fail = False

    def __call__(self, config: object, since: datetime, expect: list[str]) -> SourceView:
        self.calls.append((since, expect))
        if self.fail:
            raise RuntimeError("listRecords answered 502")
        return SourceView(posts={k: Current(text_sha(v), edited_at=self.edited.get(k))
                                 for k, v in self.texts.items() if k not in self.gone},
                          gone={k for k in expect if k in self.gone})


def test_an_edit_and_a_deletion_are_reported_once_in_status_and_the_log_and_survive_a_restart(
        setup, caplog) -> None:  # noqa: ANN001
    from rich.console import Console

    from crossposter.mirror.report import mirror_report, print_mirror

    config, archive = setup
    clock, pub, src = Clock(T0), Publisher(), Source()
    t1, t2 = T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)
    posts = [(t1, "Opening post."), (t2, "Second post.")]
    text = section("New", posts, {"mastodon": 2, "x": 2})
    write(archive, text)
    m = Mirror(config, pub, backup=no_backup, clock=clock, changes=src)
    src.texts = {uri(t1): "Opening post.", uri(t2): "Second post."}
    clock.now = T0 + timedelta(hours=1)
    m.poll()
    assert m.state.threads[uri(t1)].status == "mirrored" and m.state.changes == []
    assert src.calls == [(clock.now - timedelta(days=2), [uri(t1), uri(t2)])]
    clock.now += timedelta(minutes=10)
    m.poll()
    assert len(src.calls) == 1  # not before edits_every
    src.texts[uri(t1)] = "Opening post, edited."
    src.edited[uri(t1)] = (clock.now + timedelta(minutes=1)).isoformat()
    src.gone.add(uri(t2))
    clock.now += timedelta(minutes=30)
    m.poll()
    assert [(c["kind"], c["post"], c["line"]) for c in m.state.changes] == [("edited", uri(t1), 3),
                                                                           ("deleted", uri(t2), 3)]
    assert f"{archive}:3: 'New': post 1 of 2 was edited" in m.state.changes[0]["message"]
    events = [r.event for r in caplog.records if getattr(r, "event", "").startswith("mirror_")]
    assert events.count("mirror_edited") == 1 and events.count("mirror_deleted") == 1
    assert archive.read_text(encoding="utf-8") == "# Bluesky threads\n\n" + text  # never rewritten
    assert pub.submitted == []  # never republished
    again = Mirror(config, pub, backup=no_backup, clock=clock, changes=src)
    clock.now += timedelta(hours=1)
    again.poll()
    assert len(src.calls) == 3 and len(again.state.changes) == 2  # read again, reported once
    data = mirror_report(config, clock.now)
    assert data is not None and [c["kind"] for c in data["changes"]] == ["edited", "deleted"]
    assert data["edits"] == "report" and data["deletions"] == "report"
    json.dumps(data)
    out = io.StringIO()
    print_mirror(Console(file=out, width=300), data)
    assert "edited on the source" in out.getvalue() and "post 2 of 2 was deleted on the source" in out.getvalue()


def test_no_recent_thread_no_request_and_a_failed_read_infers_nothing(setup) -> None:  # noqa: ANN001
    config, archive = setup
    clock, pub, src = Clock(T0), Publisher(), Source()
    m = Mirror(config, pub, backup=no_backup, clock=clock, changes=src)
    old = T0 - timedelta(hours=1)
    write(archive, section("Old", [(old, "From before the start.")]))
    clock.now = T0 + timedelta(hours=1)
    m.poll()
    assert src.calls == []  # a thread before the start is not watched: the idle poll asks nothing
    t1 = T0 + timedelta(hours=1, minutes=1)
    write(archive, section("Old", [(old, "From before the start.")]),
          section("New", [(t1, "Opening post.")], {"mastodon": 1, "x": 1}))
    src.fail = True
    clock.now += timedelta(hours=1)
    m.poll()
    assert len(src.calls) == 1 and m.state.changes == []
    assert "edits and deletions failed" in MirrorState.load(config.state_path).problems[-1]["message"]


def test_threads_older_than_edits_within_are_not_read(setup) -> None:  # noqa: ANN001
    config, archive = setup
    clock, pub, src = Clock(T0), Publisher(), Source()
    m = Mirror(config, pub, backup=no_backup, clock=clock, changes=src)
    t1 = T0 + timedelta(minutes=1)
    write(archive, section("New", [(t1, "Opening post.")], {"mastodon": 1, "x": 1}))
    clock.now = T0 + timedelta(hours=1)
    m.poll()
    assert len(src.calls) == 1
    clock.now = t1 + timedelta(days=2, minutes=1)
    m.poll()
    assert len(src.calls) == 1


def test_the_config_keys() -> None:
    from pydantic import ValidationError

    from crossposter.config import MirrorConfig

    m = MirrorConfig.model_validate({"from": "bluesky", "to": ["x"], "edits_within": "3d", "edits_every": "1h",
                                     "remove_tags": ["#xpost"]})
    assert (m.edits, m.deletions, m.edits_within, m.edits_every) == ("report", "report", 3 * 86400, 3600)
    assert MirrorConfig.model_validate({"from": "bluesky", "to": ["x"], "deletions": "delete"}).deletions == "delete"
    assert MirrorConfig.model_validate({"from": "bluesky", "to": ["x"], "edits": "update"}).edits == "update"
    for bad in ({"deletions": "remove"}, {"deletions": True}, {"edits": "rewrite"}, {"remove_tags": ["xpost"]},
                {"edits_every": "0s"}):
        with pytest.raises(ValidationError):
            MirrorConfig.model_validate({"from": "bluesky", "to": ["x"], **bad})


def test_state_round_trip_keeps_changes(tmp_path: Path) -> None:
    st = MirrorState(tmp_path / "mirror-state.json")
    st.changes.append({"at": "x", "kind": "deleted", "message": "m"})
    st.last_changes_check = datetime(2026, 12, 1, tzinfo=UTC)
    st.save()
    back = MirrorState.load(tmp_path)
    assert back.changes == st.changes and back.last_changes_check == st.last_changes_check


# --------------------------------------------------------------------------- against the real peers


def _peer_config(folder: Path, platform_yaml: str, source: str) -> Path:
    cfg = folder / "crossposter.yaml"
    cfg.write_text(f"state_dir: state\narchives: ['threads/*.md']\nplatforms:\n{platform_yaml}"
                   f"  x: {{enabled: true}}\n"
                   f"mirror: {{from: {source}, to: [x], every: 60, settle: 10m, edits_every: 1s}}\n",
                   encoding="utf-8")
    (folder / "threads").mkdir(exist_ok=True)
    return cfg


def _poll_after_edits_every(m: Mirror) -> None:
    import time

    time.sleep(1.1)
    m.poll()


def test_bluesky_put_record_and_delete_record_are_reported(pds, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    handle, did, password = pds.create_account("edits")
    token = pds.xrpc_post("com.atproto.server.createSession", {"identifier": handle, "password": password}).json()
    jwt = token["accessJwt"]
    monkeypatch.setenv("CROSSPOSTER_BLUESKY_PASSWORD", password)
    cfg = _peer_config(tmp_path, f"  bluesky: {{enabled: true, handle: {handle}, service: '{pds.url}'}}\n", "bluesky")
    config = load_config(cfg)
    pub = Publisher()
    m = Mirror(config, pub)
    m.poll()  # the first start

    def create(text: str, reply: dict | None = None) -> dict:
        record = {"$type": "app.bsky.feed.post", "text": text,
                  "createdAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"), **({"reply": reply} if reply else {})}
        r = pds.xrpc_post("com.atproto.repo.createRecord", {"repo": did, "collection": "app.bsky.feed.post",
                                                             "record": record}, jwt)
        assert r.status_code == 200, r.text
        return {**r.json(), "record": record}

    root = create("An opening post about edits.")
    ref = {"uri": root["uri"], "cid": root["cid"]}
    second = create("A second post, deleted later.", {"root": ref, "parent": ref})
    third = create("A third post, edited later.", {"root": ref, "parent": {"uri": second["uri"], "cid": second["cid"]}})
    m.poll()
    assert m.state.threads[root["uri"]].posts == 3 and m.state.changes == []
    _poll_after_edits_every(m)
    assert m.state.changes == []  # read again: nothing changed, nothing reported
    rkey = third["uri"].rsplit("/", 1)[-1]
    r = r_put = pds.xrpc_post("com.atproto.repo.putRecord", {"repo": did, "collection": "app.bsky.feed.post", "rkey": rkey,
                                                      "record": {**third["record"], "text": "A third post, EDITED."}},
                      jwt)
    assert r.status_code == 200, r.text
    r = pds.xrpc_post("com.atproto.repo.deleteRecord", {"repo": did, "collection": "app.bsky.feed.post",
                                                         "rkey": second["uri"].rsplit("/", 1)[-1]}, jwt)
    assert r.status_code == 200, r.text
    archive = tmp_path / "threads" / "bluesky.md"
    before = archive.read_bytes()
    _poll_after_edits_every(m)
    assert sorted((c["kind"], c["post"], c["index"]) for c in m.state.changes) == [
        ("deleted", second["uri"], 2), ("edited", third["uri"], 3)]
    _poll_after_edits_every(m)
    assert len(m.state.changes) == 2  # once
    assert archive.read_bytes() == before and pub.submitted == []
    assert "is what gets mirrored" in m.state.changes[0]["message"]  # not mirrored yet (settle 10m)
    # the daemon's way: the same read in the backup's child process
    from crossposter.mirror.backup_child import changes_out_of_process

    since = datetime.now(UTC) - timedelta(days=2)
    expect = [root["uri"], second["uri"], third["uri"]]
    child = changes_out_of_process(config, since, expect)
    assert child.gone == {second["uri"]} and set(child.posts) == {root["uri"], third["uri"]}
    assert child.posts[third["uri"]].cid == r_put.json()["cid"]
    assert child.posts[third["uri"]].sha == text_sha("A third post, EDITED.")


def test_mastodon_edit_and_delete_are_reported(mastodon_server, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    import uuid

    from tests.peer.test_backup_peers import _api, _dev_user

    _, token = _dev_user(mastodon_server, f"edits_{uuid.uuid4().hex[:8]}")
    api = _api(mastodon_server, token)
    monkeypatch.setenv("CROSSPOSTER_MASTODON_ACCESS_TOKEN", token)
    cfg = _peer_config(tmp_path, f"  bluesky: {{enabled: false}}\n  mastodon: {{enabled: true, instance: "
                                 f"'{mastodon_server.url}'}}\n", "mastodon")
    config = load_config(cfg)
    pub = Publisher()
    m = Mirror(config, pub)
    m.poll()
    root = api.status_post("An opening toot about edits.")
    second = api.status_post("A second toot, deleted later.", in_reply_to_id=root["id"])
    third = api.status_post("A third toot, edited later.", in_reply_to_id=second["id"])
    m.poll()
    assert m.state.threads[str(root["id"])].posts == 3 and m.state.changes == []
    _poll_after_edits_every(m)
    assert m.state.changes == []
    api.status_update(third["id"], status="A third toot, EDITED.")
    api.status_delete(second["id"])
    _poll_after_edits_every(m)
    assert sorted((c["kind"], c["post"], c["index"]) for c in m.state.changes) == [
        ("deleted", str(second["id"]), 2), ("edited", str(third["id"]), 3)]
    _poll_after_edits_every(m)
    assert len(m.state.changes) == 2
    assert pub.submitted == []


def test_records_unchanged_asks_the_pds_for_each_records_cid(pds, tmp_path: Path) -> None:  # noqa: ANN001
    from crossposter.mirror.backup_child import records_unchanged

    handle, did, password = pds.create_account("cids")
    jwt = pds.xrpc_post("com.atproto.server.createSession", {"identifier": handle, "password": password}).json()
    record = {"$type": "app.bsky.feed.post", "text": "as backed up",
              "createdAt": datetime.now(UTC).isoformat().replace("+00:00", "Z")}
    made = pds.xrpc_post("com.atproto.repo.createRecord", {"repo": did, "collection": "app.bsky.feed.post",
                                                            "record": record}, jwt["accessJwt"]).json()
    config = load_config(_peer_config(tmp_path, f"  bluesky: {{enabled: true, handle: {handle}, service: "
                                                f"'{pds.url}'}}\n", "bluesky"))
    assert records_unchanged(config, [(made["uri"], made["cid"])])
    assert not records_unchanged(config, [(made["uri"], None)])  # no cid recorded: a doubt
    rkey = made["uri"].rsplit("/", 1)[-1]
    r = pds.xrpc_post("com.atproto.repo.putRecord", {"repo": did, "collection": "app.bsky.feed.post", "rkey": rkey,
                                                      "record": {**record, "text": "edited"}}, jwt["accessJwt"])
    assert r.status_code == 200, r.text
    assert not records_unchanged(config, [(made["uri"], made["cid"])])
    pds.xrpc_post("com.atproto.repo.deleteRecord", {"repo": did, "collection": "app.bsky.feed.post", "rkey": rkey},
                  jwt["accessJwt"])
    assert not records_unchanged(config, [(made["uri"], r.json()["cid"])])  # gone: not "unchanged"
