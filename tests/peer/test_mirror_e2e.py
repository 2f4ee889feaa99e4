"""The mirror end to end: `crossposter daemon` as a subprocess, the real local PDS as the source,
mastodon-mock and the local X fake as targets. Posts are made on the PDS with the atproto SDK, the
way a person's app makes them (reply by reply); what each target holds is read back with plain
HTTP (or the fake's own state), never through the code under test.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.peer.test_publish_e2e import Servers, cli_env, mastodon_thread, sha12, x_thread

ROOT = Path(__file__).resolve().parents[2]


def png(color: tuple[int, int, int]) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(out, "PNG")
    return out.getvalue()


class Source:
    """The person's Bluesky account, posting through the SDK like an app."""

    def __init__(self, servers: Servers) -> None:
        from atproto import Client

        self.did = servers.bsky_did
        self.client = Client(base_url=servers.pds.url)
        self.client.login(servers.bsky_handle, servers.bsky_password, fetch_bsky_profile=False)

    def post(self, text: str, *, root: object = None, parent: object = None, image: tuple[bytes, str] | None = None,
             client: object = None, did: str | None = None) -> object:
        from atproto import models

        client = client or self.client
        embed = None
        if image is not None:
            blob = client.upload_blob(image[0]).blob  # type: ignore[attr-defined]
            embed = models.AppBskyEmbedImages.Main(images=[models.AppBskyEmbedImages.Image(alt=image[1], image=blob)])
        reply = None
        if parent is not None:
            reply = models.AppBskyFeedPost.ReplyRef(root=models.create_strong_ref(root),
                                                    parent=models.create_strong_ref(parent))
        return client.send_post(text, profile_identify=did or self.did, reply_to=reply,  # type: ignore[attr-defined]
                                embed=embed, langs=["en"])


def write_config(folder: Path, servers: Servers, *, settle: str = "3s", every: str = "1s", extra: str = "") -> Path:
    cfg = folder / "crossposter.yaml"
    cfg.write_text(f"""\
language: en
state_dir: state
archives: ['threads/*.md']
retry: {{attempts: 3, base_delay: 0.05, max_delay: 0.2}}
platforms:
  bluesky: {{enabled: true, handle: {servers.bsky_handle}, service: "{servers.pds.url}"}}
  mastodon: {{enabled: true, instance: "{servers.mastodon.url}", visibility: public}}
  x: {{enabled: true, api_base: "{servers.x.url}", upload_base: "{servers.x.url}", username: xfake_user}}
daemon: {{log_format: json, heartbeat_interval: 1, watch_interval: 0.5}}
mirror: {{from: bluesky, to: [mastodon, x], every: {every}, settle: {settle}{extra}}}
""", encoding="utf-8")
    (folder / "threads").mkdir(exist_ok=True)
    return cfg


class Daemon:
    def __init__(self, folder: Path, cfg: Path, servers: Servers) -> None:
        self.folder, self.cfg, self.servers = folder, cfg, servers
        self.log = folder / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *args: str) -> None:
        out = self.log.open("ab")
        # a session of its own: a SIGKILL to the group takes the publisher child too, like a container kill
        self.proc = subprocess.Popen([sys.executable, "-m", "crossposter", "daemon", "--config", str(self.cfg), *args],
                                     stdout=out, stderr=subprocess.STDOUT, cwd=self.folder, env=cli_env(self.servers),
                                     start_new_session=True)
        out.close()

    def kill(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def events(self) -> list[dict]:
        out = []
        for line in self.log.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def polls(self) -> int:
        state = self.folder / "state" / "mirror-state.json"
        try:
            return json.loads(state.read_text()).get("last_poll") or ""  # type: ignore[return-value]
        except (OSError, ValueError):
            return ""  # type: ignore[return-value]

    def wait_polls(self, n: int, timeout: float = 60) -> None:
        """Wait until `n` more polls have finished."""
        seen = [self.polls()]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            cur = self.polls()
            if cur and cur != seen[-1]:
                seen.append(cur)
                if len(seen) > n:
                    return
            self.check_alive()
            time.sleep(0.1)
        raise AssertionError(f"{n} polls did not happen in {timeout} s; log:\n{self.log.read_text()[-4000:]}")

    def check_alive(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, f"daemon exited; log:\n{self.log.read_text()[-4000:]}"

    def wait_for(self, cond: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return
            self.check_alive()
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; log:\n{self.log.read_text()[-6000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(60) == 0, self.log.read_text()[-4000:]
        self.proc = None


@pytest.fixture
def servers(pds, mastodon_server, x_server) -> Servers:  # noqa: ANN001 - fixtures from plugins
    handle, did, password = pds.create_account("mirror")
    return Servers(pds, mastodon_server, x_server, handle, did, password)


def archive_thread(folder: Path, marker: str) -> tuple[str, dict]:
    from crossposter.archive import read_archive

    a = read_archive(folder / "threads" / "bluesky.md")
    found = [t for t in a.threads if marker in t.body]
    assert len(found) == 1, [t.title for t in a.threads]
    return found[0].title, found[0].metadata


def _recorded(folder: Path, marker: str) -> bool:
    """Whether the thread's three posts are recorded for both targets, nothing pending."""
    from crossposter.archive import ArchiveError

    try:
        _title, meta = archive_thread(folder, marker)
    except (AssertionError, OSError, ValueError, ArchiveError):  # (not written yet, or caught mid-replace: looked at again)
        return False
    return all(len(meta.get(p) or []) >= 3 for p in ("mastodon", "x")) and "pending" not in meta


def test_a_thread_posted_reply_by_reply_reaches_both_targets_once(servers: Servers, tmp_path: Path, pds) -> None:  # noqa: ANN001
    marker = uuid.uuid4().hex[:10]
    src = Source(servers)
    # the back catalogue: posted before the mirror's first start, never mirrored
    src.post(f"An old post {marker} from before the mirror.")
    cfg = write_config(tmp_path, servers)
    d = Daemon(tmp_path, cfg, servers)
    d.start()
    try:
        d.wait_polls(1)
        # somebody else, for a reply to another account inside the thread
        bob_handle, bob_did, bob_password = pds.create_account("bob")
        from atproto import Client

        bob = Client(base_url=pds.url)
        bob.login(bob_handle, bob_password, fetch_bsky_profile=False)

        texts = [f"Mirror test {marker}: the opening post, with a picture.",
                 f"Second post {marker}.", f"Third post {marker}, still going.", f"Fourth and last {marker}."]
        root = src.post(texts[0], image=(png((200, 30, 30)), "A red rectangle"))
        parent = root
        for i, text in enumerate(texts[1:], start=2):
            time.sleep(0.6)
            parent = src.post(text, root=root, parent=parent,
                              image=(png((30, 30, 200)), "A blue rectangle") if i == 3 else None)
            if i == 2:  # bob answers post 2, the person answers bob: neither is the person's own chain
                bobs = src.post(f"Bob's reply {marker}.", root=root, parent=parent, client=bob, did=bob_did)
                src.post(f"My answer to Bob {marker}.", root=root, parent=bobs)

        d.wait_for(lambda: len(mastodon_thread(servers, marker)) >= 4 and len(x_thread(servers, marker)) >= 4, 90,
                   "the thread on mastodon and x")
        time.sleep(1.5)  # anything extra would be sent now
        statuses, tweets = mastodon_thread(servers, marker), x_thread(servers, marker)
        assert [s["text"] for s in statuses] == texts
        assert [t.text for t in tweets] == texts
        assert statuses[0]["in_reply_to_id"] in (None, "") and tweets[0].in_reply_to is None
        for prev, s in zip(statuses, statuses[1:], strict=False):
            assert str(s["in_reply_to_id"]) == str(prev["id"])
        for prev, t in zip(tweets, tweets[1:], strict=False):
            assert t.in_reply_to == prev.id
        assert [[m["description"] for m in s["media_attachments"]] for s in statuses] == \
            [["A red rectangle"], [], ["A blue rectangle"], []]
        assert [[servers.x.media[m]["alt"] for m in t.media_ids] for t in tweets] == \
            [["A red rectangle"], [], ["A blue rectangle"], []]

        # the archive holds the thread with every ID: the source's and each target's
        _title, meta = archive_thread(tmp_path, f"Mirror test {marker}")
        assert [e["id"] for e in meta["bluesky"]][0] == root.uri
        assert len(meta["bluesky"]) == 4
        assert [(str(e["id"]), e["sha"]) for e in meta["mastodon"]] == [(str(s["id"]), sha12(s["text"]))
                                                                       for s in statuses]
        assert [(str(e["id"]), e["sha"]) for e in meta["x"]] == [(t.id, sha12(t.text)) for t in tweets]
        assert not [s for s in mastodon_thread(servers, marker) if "old post" in s["text"] or "Bob" in s["text"]]

        # a later self-reply continues the chains
        fifth = f"A fifth post, added later {marker}."
        src.post(fifth, root=root, parent=parent)
        d.wait_for(lambda: len(mastodon_thread(servers, marker)) >= 5 and len(x_thread(servers, marker)) >= 5, 60,
                   "the fifth post on mastodon and x")
        statuses, tweets = mastodon_thread(servers, marker), x_thread(servers, marker)
        assert statuses[-1]["text"] == fifth and str(statuses[-1]["in_reply_to_id"]) == str(statuses[-2]["id"])
        assert tweets[-1].text == fifth and tweets[-1].in_reply_to == tweets[-2].id
        assert len(statuses) == 5 and len(tweets) == 5

        # a restart does not mirror anything again
        d.stop()
        d.start()
        d.wait_polls(3)
        time.sleep(1)
        assert len(mastodon_thread(servers, marker)) == 5 and len(x_thread(servers, marker)) == 5

        # status shows the mirror; check validates it and logs in to the source
        env = cli_env(servers)
        st = subprocess.run([sys.executable, "-m", "crossposter", "status", "--format", "json", "--config", str(cfg)],
                            capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
        mirror = json.loads(st.stdout)["mirror"]
        assert mirror["from"] == "bluesky" and mirror["to"] == ["mastodon", "x"]
        assert mirror["counts"] == {"mirrored": 1, "before_start": 1}, mirror
        assert mirror["cursor"] and mirror["last_poll"] and mirror["last_poll_ok"] and not mirror["problems"]
        text = subprocess.run([sys.executable, "-m", "crossposter", "status", "--config", str(cfg)],
                              capture_output=True, text=True, cwd=tmp_path, env={**env, "COLUMNS": "200"},
                              timeout=120).stdout
        assert "Mirror: bluesky → mastodon, x" in text and "1 mirrored" in text
        ck = subprocess.run([sys.executable, "-m", "crossposter", "check", "--config", str(cfg)],
                            capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
        assert "bluesky: logged in" in ck.stdout and "mirror: bluesky -> mastodon, x" in ck.stdout, ck.stdout
    finally:
        if d.proc is not None and d.proc.poll() is None:
            d.kill()
    for secret in (servers.bsky_password, servers.mastodon.token, *servers.x.env.values()):
        assert secret not in d.log.read_text()
    state = tmp_path / "state" / "mirror-state.json"
    assert os.stat(state).st_mode & 0o777 == 0o600


def test_sigkill_at_requests_of_a_mirrored_thread_leaves_one_copy(servers: Servers, tmp_path: Path) -> None:
    """The daemon and its publisher are killed (-9) at the k-th request to X of a thread, then restarted."""
    src = Source(servers)
    cfg = write_config(tmp_path, servers, settle="1s")
    d = Daemon(tmp_path, cfg, servers)
    try:
        d.start()
        d.wait_polls(1)
        d.stop()
        for k in (1, 2, 3, 5):  # media upload, alt text, first post, last post
            marker = uuid.uuid4().hex[:10]
            count = {"n": 0}
            killed = {"done": False}

            def hook(method: str, path: str, status: int, k: int = k, count: dict = count, killed: dict = killed) -> None:
                if method == "POST" and not killed["done"]:
                    count["n"] += 1
                    if count["n"] == k and d.proc is not None:
                        killed["done"] = True
                        os.killpg(d.proc.pid, signal.SIGKILL)

            servers.x.after_request = hook
            try:
                d.start()
                d.wait_polls(1)
                root = src.post(f"Crash {k} {marker}, the opening post.", image=(png((0, 120, 0)), "A green rectangle"))
                parent = src.post(f"Crash {k} {marker}, the second post.", root=root, parent=root)
                src.post(f"Crash {k} {marker}, the third post.", root=root, parent=parent)
                d.wait_for(lambda killed=killed: killed["done"], 90, f"the kill at X request {k}")
                assert d.proc is not None
                d.proc.wait(10)
                d.proc = None
            finally:
                servers.x.after_request = None
            d.start()
            d.wait_for(lambda marker=marker: len(mastodon_thread(servers, marker)) >= 3 and
                       len(x_thread(servers, marker)) >= 3, 90, f"the thread after the kill at request {k}")
            # The posts the kill left unrecorded are already on the servers: the restarted publisher records
            # them (Mastodon's idempotency key, X's duplicate refusal + find_recent) when it gets to them,
            # which under load takes more than two polls. Then two more polls, for any second copy to show.
            d.wait_for(lambda k=k, marker=marker: _recorded(tmp_path, f"Crash {k} {marker}"), 90,
                       f"the archive to record the thread after the kill at request {k}")
            d.wait_polls(2)
            statuses, tweets = mastodon_thread(servers, marker), x_thread(servers, marker)
            assert len(statuses) == 3 and len(tweets) == 3, (k, [s["text"] for s in statuses], [t.text for t in tweets])
            assert tweets[1].in_reply_to == tweets[0].id and tweets[2].in_reply_to == tweets[1].id
            assert str(statuses[2]["in_reply_to_id"]) == str(statuses[1]["id"])
            _title, meta = archive_thread(tmp_path, f"Crash {k} {marker}")
            assert [str(e["id"]) for e in meta["x"]] == [t.id for t in tweets]
            assert [str(e["id"]) for e in meta["mastodon"]] == [str(s["id"]) for s in statuses]
            assert len(meta["bluesky"]) == 3 and "pending" not in meta
            d.stop()
    finally:
        if d.proc is not None and d.proc.poll() is None:
            d.kill()


def test_an_edit_and_a_deletion_on_the_source_are_reported_not_republished(servers: Servers, tmp_path: Path) -> None:
    """The daemon's way (the read in the backup's child process): reported once in the log and `status`."""
    marker = uuid.uuid4().hex[:10]
    src = Source(servers)
    cfg = write_config(tmp_path, servers, settle="1s", extra=", edits_every: 1s, remove_tags: ['#xpost']")
    d = Daemon(tmp_path, cfg, servers)
    d.start()
    try:
        d.wait_polls(1)
        root = src.post(f"Edits {marker}: the opening post #xpost")
        second = src.post(f"Edits {marker}: the second post.", root=root, parent=root)
        third = src.post(f"Edits {marker}: the third post.", root=root, parent=second)
        d.wait_for(lambda: len(mastodon_thread(servers, marker)) >= 3 and len(x_thread(servers, marker)) >= 3, 90,
                   "the thread on mastodon and x")
        statuses = [s["text"] for s in mastodon_thread(servers, marker)]
        assert statuses[0] == f"Edits {marker}: the opening post"  # remove_tags, on the target only
        assert [t.text for t in x_thread(servers, marker)] == statuses
        archive = tmp_path / "threads" / "bluesky.md"
        d.wait_polls(2)
        before = archive.read_bytes()
        assert b"#xpost" in before
        from atproto import models

        rkey = third.uri.rsplit("/", 1)[-1]
        record = src.client.com.atproto.repo.get_record(models.ComAtprotoRepoGetRecord.Params(
            repo=src.did, collection="app.bsky.feed.post", rkey=rkey)).value
        text = f"Edits {marker}: the third post, EDITED."
        edited = {**record, "text": text} if isinstance(record, dict) else record.model_copy(update={"text": text})
        src.client.com.atproto.repo.put_record(models.ComAtprotoRepoPutRecord.Data(
            repo=src.did, collection="app.bsky.feed.post", rkey=rkey, record=edited))
        src.client.delete_post(second.uri)

        def reported() -> set[str]:
            return {e.get("event") for e in d.events()} & {"mirror_edited", "mirror_deleted"}

        d.wait_for(lambda: reported() == {"mirror_edited", "mirror_deleted"}, 60, "the edit and the deletion reported")
        d.wait_polls(3)
        events = [e for e in d.events() if e.get("event") in ("mirror_edited", "mirror_deleted")]
        assert len(events) == 2 and all("bluesky.md:" in e["msg"] for e in events), events
        assert archive.read_bytes() == before
        assert [s["text"] for s in mastodon_thread(servers, marker)] == statuses
        assert [t.text for t in x_thread(servers, marker)] == statuses
        st = subprocess.run([sys.executable, "-m", "crossposter", "status", "--format", "json", "--config", str(cfg)],
                            capture_output=True, text=True, cwd=tmp_path, env=cli_env(servers), timeout=120)
        changes = json.loads(st.stdout)["mirror"]["changes"]
        assert sorted((c["kind"], c["index"]) for c in changes) == [("deleted", 2), ("edited", 3)]
    finally:
        if d.proc is not None and d.proc.poll() is None:
            d.kill()


def test_deletions_delete_takes_exactly_the_deleted_posts_copies_off_both_targets_once(
        servers: Servers, tmp_path: Path) -> None:
    """`deletions: delete`, the daemon's way: the deletes run in a child; a restart deletes nothing more."""
    marker = uuid.uuid4().hex[:10]
    src = Source(servers)
    long = f"Deletes {marker}: the second post, long enough to be two posts on X. " + "Words to fill it up. " * 9
    long += f"And more words {marker}."  # the marker in each of its X posts too
    assert 280 < len(long) <= 300  # two posts on X, one on Bluesky and Mastodon
    cfg = write_config(tmp_path, servers, settle="1s", extra=", edits_every: 1s, deletions: delete")
    d = Daemon(tmp_path, cfg, servers)
    d.start()
    try:
        d.wait_polls(1)
        root = src.post(f"Deletes {marker}: the opening post.")
        second = src.post(long, root=root, parent=root)
        src.post(f"Deletes {marker}: the third post.", root=root, parent=second)
        d.wait_for(lambda: len(mastodon_thread(servers, marker)) >= 3 and len(x_thread(servers, marker)) >= 4, 90,
                   "the thread on mastodon and x")
        d.wait_polls(2)
        _, meta = archive_thread(tmp_path, marker)
        gone = {"mastodon": [meta["mastodon"][1]["id"]], "x": [meta["x"][1]["id"], meta["x"][2]["id"]]}
        src.client.delete_post(second.uri)
        d.wait_for(lambda: sum(e.get("event") == "mirror_copy_deleted" for e in d.events()) >= 3, 60,
                   "the copies deleted")
        assert [s["id"] for s in mastodon_thread(servers, marker)] == [meta["mastodon"][i]["id"] for i in (0, 2)]
        assert [t.id for t in x_thread(servers, marker)] == [meta["x"][i]["id"] for i in (0, 3)]
        d.stop()
        d.start()  # a restart: nothing more is deleted
        d.wait_polls(3)
        deletes = [r for r in servers.x.requests if r[0] == "DELETE"]
        assert deletes == [("DELETE", f"/2/tweets/{i}", 200) for i in gone["x"]]
        assert sum(e.get("event") == "mirror_copy_deleted" for e in d.events()) == 3
        st = subprocess.run([sys.executable, "-m", "crossposter", "status", "--format", "json", "--config", str(cfg)],
                            capture_output=True, text=True, cwd=tmp_path, env=cli_env(servers), timeout=120)
        actions = json.loads(st.stdout)["mirror"]["actions"]
        assert sorted((a["platform"], a["post"]) for a in actions) == sorted(
            (p, i) for p, ids in gone.items() for i in ids)
    finally:
        if d.proc is not None and d.proc.poll() is None:
            d.kill()
