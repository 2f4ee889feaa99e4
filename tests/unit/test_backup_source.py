"""`source:` in a thread's block: a backed-up thread is published on its source platform, and only there.

`crossposter backup` writes `source: <platform>` and the source's post IDs into each thread it
backs up. Every command must then treat the thread as published on that platform (its recorded
posts are the originals, whole: an X long post is one post there), never send it there again,
and still let it be sent to the other platforms: `status`, `check`, `schedule`, `post`, the daemon.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crossposter.archive import read_archive
from crossposter.commands import schedule as schedule_cmd
from crossposter.commands import status as status_cmd
from crossposter.config import Config
from crossposter.daemon.watch import thread_info
from crossposter.plan import PlanOptions, plan_thread
from crossposter.platforms.fakes import FakeAdapter
from crossposter.publish import publish_thread, text_sha
from tests.peer.test_daemon import FakeOutcome, FakeResult, _engine, write_archive

#: An X long post (note-tweet): 620 characters, one post on X, more than one anywhere else.
LONG = " ".join(f"word{i:02d}" for i in range(90)).strip()
X_ID = "1700000000000000001"
X_URL = f"https://x.com/me/status/{X_ID}"


def backed_up(title: str = "A long post", text: str = LONG, *, source: str = "x", extra: str = "") -> str:
    """A section as `crossposter backup` writes it (heading, block with source and IDs, date line, post)."""
    entry = f"- {{id: '{X_ID}', url: '{X_URL}', sha: {text_sha(text)}}}"
    src = f"source: {source}\n" if source else ""
    return f"## {title}\n<!-- crossposter\n{src}x:\n{entry}\n{extra}-->\n2024-02-13 21:25\n\n{text}\n"


def write(path: Path, *sections: str) -> Path:
    path.write_text("# Backup of x\n\n" + "\n".join(sections), encoding="utf-8")
    return path


def plan_of(path: Path, config: Config | PlanOptions, title: str = "A long post"):
    archive = read_archive(path)
    return plan_thread(archive, archive.find(title), config)


# --------------------------------------------------------------------------- preview


def test_the_source_platforms_post_is_whole_and_the_others_split(tmp_path: Path) -> None:
    plan = plan_of(write(tmp_path / "x.md", backed_up()), PlanOptions(decode_images=False))
    assert not plan.errors, plan.errors
    assert [p.text for p in plan.platforms["x"].posts] == [LONG]
    assert plan.platforms["x"].limit >= plan.platforms["x"].posts[0].length > 280
    assert len(plan.platforms["bluesky"].posts) == 3 and len(plan.platforms["mastodon"].posts) == 2
    # the same text written by hand (no source) is split for X like any other thread
    plain = plan_of(write(tmp_path / "plain.md", backed_up(source="")), PlanOptions(decode_images=False))
    assert len(plain.platforms["x"].posts) == 3


def test_a_per_account_limit_changes_the_other_platforms_only(tmp_path: Path) -> None:
    path = write(tmp_path / "x.md", backed_up())
    bigger = PlanOptions(limits={"bluesky": 300, "mastodon": 1000, "x": 280}, decode_images=False)
    plan = plan_of(path, bigger)
    assert [len(plan.platforms[p].posts) for p in ("bluesky", "mastodon", "x")] == [3, 1, 1]
    smaller = PlanOptions(limits={"bluesky": 300, "mastodon": 500, "x": 100}, decode_images=False)
    assert [p.text for p in plan_of(path, smaller).platforms["x"].posts] == [LONG]


# --------------------------------------------------------------------------- status


def _config(tmp_path: Path, extra: str = "") -> Path:
    cfg = tmp_path / "crossposter.yaml"
    cfg.write_text("timezone: UTC\nstate_dir: state\narchives: ['threads/*.md']\n"
                   "platforms: {bluesky: {handle: me.test}, x: {enabled: true}}\n" + extra, encoding="utf-8")
    (tmp_path / "threads").mkdir(exist_ok=True)
    return cfg


def test_status_counts_the_source_as_published_and_links_its_posts(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    cfg = _config(tmp_path)
    bsky = ("bluesky:\n"
            + "".join(f"- {{id: 'at://did:plc:me/app.bsky.feed.post/3kabcdefghij{c}', "
                      f"url: 'https://bsky.app/profile/me.test/post/3kabcdefghij{c}'}}\n" for c in "234")
            + "mastodon:\n- {id: '11', url: 'https://m.example/@me/11'}\n- {id: '12', url: 'https://m.example/@me/12'}\n")
    write(tmp_path / "threads" / "x.md", backed_up(), backed_up("Queued", extra="queued: true\n"),
          backed_up("Mirrored", extra=bsky), backed_up("By hand", source=""))
    assert status_cmd.run([], "json", cfg) == 0
    by = {t["title"]: t for t in json.loads(capsys.readouterr().out)["threads"]}
    t = by["A long post"]
    assert t["platforms"]["x"] == {"posted": 1, "total": 1, "links": [X_URL], "source": True}
    assert t["platforms"]["bluesky"] == {"posted": 0, "total": 3, "links": []}
    assert t["state"] == "backed-up"
    assert by["Queued"]["state"] == "queued"
    assert by["Mirrored"]["state"] == "published"
    # without `source:` the same recorded post is a thread half published on X
    assert by["By hand"]["state"] == "partial" and by["By hand"]["platforms"]["x"]["total"] == 3
    assert status_cmd.run([], "text", cfg) == 0
    out = capsys.readouterr().out
    assert "1/1 src" in out and f"x (source): {X_URL}" in out


# --------------------------------------------------------------------------- post


@pytest.fixture
def config(tmp_path: Path) -> Config:
    cfg = Config(state_dir=tmp_path / "state", base_dir=tmp_path)
    cfg.platforms.x.enabled = True
    return cfg


def test_post_sends_to_the_other_platforms_and_never_to_the_source(tmp_path: Path, config: Config) -> None:
    path = write(tmp_path / "x.md", backed_up())
    fakes = {p: FakeAdapter(p) for p in ("bluesky", "mastodon", "x")}
    result = publish_thread(config, path, "A long post", list(fakes), adapters=fakes, progress=False)
    assert fakes["x"].requests == 0  # not even a log-in
    assert len(fakes["bluesky"].thread()) == 3 and len(fakes["mastodon"].thread()) == 2
    assert result.ok and list(result.outcomes) == ["bluesky", "mastodon", "x"]
    x = result.outcomes["x"]
    assert (x.state, x.posted, x.total, x.links) == ("done", 1, 1, [X_URL]) and "backed up from x" in x.message
    meta = read_archive(path).find("A long post").metadata
    assert meta["source"] == "x" and [e["id"] for e in meta["x"]] == [X_ID]
    assert len(meta["bluesky"]) == 3 and len(meta["mastodon"]) == 2
    # a second run finds everything published and sends nothing
    again = {p: FakeAdapter(p) for p in ("bluesky", "mastodon", "x")}
    before = path.read_bytes()
    assert publish_thread(config, path, "A long post", list(again), adapters=again, progress=False).ok
    assert [len(f.thread()) for f in again.values()] == [0, 0, 0] and path.read_bytes() == before


def test_post_to_the_source_alone_sends_nothing_and_needs_no_credentials(tmp_path: Path, config: Config,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KEY", "SECRET", "TOKEN", "TOKEN_SECRET"):
        monkeypatch.delenv(f"CROSSPOSTER_X_CONSUMER_{name}", raising=False)
        monkeypatch.delenv(f"CROSSPOSTER_X_ACCESS_{name}", raising=False)
    path = write(tmp_path / "x.md", backed_up())
    before = path.read_bytes()
    result = publish_thread(config, path, "A long post", ["x"], progress=False)
    assert result.ok and result.outcomes["x"].links == [X_URL]
    assert path.read_bytes() == before


# --------------------------------------------------------------------------- schedule, check, daemon


def test_a_backed_up_thread_is_not_started_and_can_be_scheduled(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    path = write(tmp_path / "threads" / "x.md", backed_up(), backed_up("By hand", source=""))
    archive = read_archive(path)
    assert not thread_info(path, archive.find("A long post"), "UTC").started
    assert thread_info(path, archive.find("By hand"), "UTC").started
    when = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0).isoformat()
    assert schedule_cmd.run_schedule(path, "A long post", when, cfg) == 0
    assert read_archive(path).find("A long post").metadata["schedule"]
    assert schedule_cmd.run_schedule(path, "By hand", when, cfg) == 1  # half published: `post` resumes it


def test_a_queue_slot_takes_a_backed_up_thread(tmp_path: Path) -> None:
    calls: list[str] = []

    def publish(config, path, title, **kw):  # noqa: ANN001, ANN003, ANN202
        calls.append(title)
        return FakeResult({"bluesky": FakeOutcome("done")}, True, False)

    write_archive(tmp_path / "one.md", backed_up("Queued backup", extra="queued: true\n"))
    write_archive(tmp_path / "two.md", backed_up("Not queued"))
    done: list[str] = []
    eng = _engine(tmp_path, publish, queue_slots=["daily 09:00"])
    eng.on_result = lambda key, outcome: done.append(outcome)
    eng.start()
    try:
        time.sleep(0.6)  # (it used to be taken at once, as a half-published thread to resume)
        assert calls == []
        eng._slot("daily 09:00")
        end = time.monotonic() + 5
        while not done and time.monotonic() < end:
            time.sleep(0.02)
        assert calls == ["Queued backup"]
    finally:
        eng.stop(5)
