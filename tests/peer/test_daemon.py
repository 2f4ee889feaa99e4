"""The daemon as a real subprocess (journal fakes via CROSSPOSTER_FAKE_PLATFORMS), and its engine in-process.

Times here are correctness bounds only (generous); the precise start delays are measured by
benchmarks/daemon.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crossposter.archive import read_archive

ROOT = Path(__file__).resolve().parents[2]


def checkout_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """Subprocesses run the code of this checkout, whatever `pip install -e` points at."""
    e = dict(os.environ if env is None else env)
    e["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [e.get("PYTHONPATH")])])
    return e


def iso(dt: datetime) -> str:
    return dt.isoformat(timespec="seconds")


def thread_md(title: str, posts: list[str], when: datetime | None = None, queued: bool = False) -> str:
    meta = []
    if when is not None:
        meta.append(f"schedule: {iso(when)}")
    if queued:
        meta.append("queued: true")
    block = ("<!-- crossposter\n" + "\n".join(meta) + "\n-->\n") if meta else ""
    body = f"\n{posts[0]}\n" + "".join(f"\n### Part {i + 2}\n\n{p}\n" for i, p in enumerate(posts[1:]))
    return f"## {title}\n{block}{body}\n"


@dataclass
class Daemon:
    root: Path
    config: Path
    out: Path
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)

    def start(self, **env: str) -> None:
        e = checkout_env({**os.environ, "CROSSPOSTER_FAKE_PLATFORMS": "1", **self.env, **env})
        e.pop("CROSSPOSTER_CONFIG", None)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        with self.out.open("ab") as f:
            self.proc = subprocess.Popen([sys.executable, "-m", "crossposter", "daemon", "--config", str(self.config)],
                                         stdout=f, stderr=subprocess.STDOUT, env=e, cwd="/")
        self.wait_for(lambda: any(ev.get("event") == "started" for ev in self.events()), 20, "daemon start")

    def events(self) -> list[dict]:
        out = []
        for line in self.out.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"event": "non-json", "msg": line})
        return out

    def journal(self) -> list[dict]:
        p = self.root / "state" / "fake-platforms.jsonl"
        if not p.exists():
            return []
        return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]

    def wait_for(self, cond: Callable[[], bool], timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if cond():
                return
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"daemon exited ({self.proc.returncode}) waiting for {what}:\n"
                                     + self.out.read_text())
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}:\n" + self.out.read_text()[-4000:])

    def signal(self, sig: int) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        rc = self.proc.wait(30)
        self.proc = None
        return rc

    def published(self, title: str) -> list[dict]:
        return [e for e in self.journal() if e["thread_key"].endswith(f"::{title}")]


@pytest.fixture()
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    (tmp_path / "threads").mkdir()
    cfg = tmp_path / "crossposter.yaml"
    cfg.write_text("timezone: Europe/Berlin\nstate_dir: state\narchives: ['threads/*.md']\n"
                   "platforms: {bluesky: {handle: me.test}, mastodon: {instance: 'http://127.0.0.1:9'}}\n"
                   "daemon: {log_format: json, heartbeat_interval: 1, watch_interval: 0.5, misfire_grace: 3}\n")
    d = Daemon(tmp_path, cfg, tmp_path / "daemon.log")
    yield d
    if d.proc is not None and d.proc.poll() is None:
        d.proc.kill()
        d.proc.wait(10)


def write_archive(path: Path, *threads: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text("# Threads\n\n" + "\n".join(threads), encoding="utf-8")
    os.replace(tmp, path)


def test_publishes_on_time_and_health(daemon: Daemon) -> None:
    a = daemon.root / "threads" / "a.md"
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=4)
    write_archive(a, thread_md("On time", ["First post.", "Second post."], due), thread_md("Later", ["Not yet."]))
    daemon.start()
    daemon.wait_for(lambda: len(daemon.published("On time")) == 4, 20, "the thread on both platforms")
    first = min(e["time"] for e in daemon.journal())
    assert -0.05 <= first - due.timestamp() < 5.0  # correctness bound; the benchmark measures precisely
    start = [e for e in daemon.events() if e.get("event") == "publish_start"]
    assert len(start) == 1 and start[0]["title"] == "On time" and start[0]["delay"] < 5.0
    assert daemon.published("Later") == []
    # recorded in the archive, every post in thread order
    daemon.wait_for(lambda: len(read_archive(a).find("On time").metadata.get("mastodon", [])) == 2, 10, "record")
    # health: fresh while it runs
    env = checkout_env({**os.environ, "CROSSPOSTER_CONFIG": str(daemon.config)})
    r = subprocess.run([sys.executable, "-m", "crossposter", "health"], env=env, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    assert daemon.signal(signal.SIGTERM) == 0
    time.sleep(3.2)  # three heartbeat intervals
    r = subprocess.run([sys.executable, "-m", "crossposter", "health"], env=env, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 1 and "unhealthy" in r.stderr


def test_edits_while_running_change_jobs(daemon: Daemon) -> None:
    a = daemon.root / "threads" / "a.md"
    far = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    write_archive(a, thread_md("Moved", ["Moved thread."], far), thread_md("Dropped", ["Dropped thread."], far))
    daemon.start()
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=4)
    # rescheduled (far -> soon) and Dropped also brought forward; a new file with a new thread
    write_archive(a, thread_md("Moved", ["Moved thread."], soon),
                  thread_md("Dropped", ["Dropped thread."], soon + timedelta(seconds=1)))
    write_archive(daemon.root / "threads" / "b.md", thread_md("Added", ["Added thread."], soon + timedelta(seconds=1)))
    daemon.wait_for(lambda: sum(ev.get("event") == "archive_changed" for ev in daemon.events()) >= 1, 5, "reload")
    time.sleep(1)
    # then unscheduled before its time: it must not go out
    write_archive(a, thread_md("Moved", ["Moved thread."], soon), thread_md("Dropped", ["Dropped thread."]))
    daemon.wait_for(lambda: bool(daemon.published("Moved") and daemon.published("Added")), 20, "moved and added")
    moved = min(e["time"] for e in daemon.published("Moved"))
    assert -0.05 < moved - soon.timestamp() < 5
    added = min(e["time"] for e in daemon.published("Added"))
    assert -0.05 < added - (soon + timedelta(seconds=1)).timestamp() < 5
    time.sleep(max(0.0, soon.timestamp() + 2.5 - time.time()))
    assert daemon.published("Dropped") == []
    # removing a file drops its jobs
    c = daemon.root / "threads" / "c.md"
    write_archive(c, thread_md("Gone", ["Gone."], datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)))
    daemon.wait_for(lambda: any(str(ev.get("archive", "")).endswith("c.md") for ev in daemon.events()), 5, "c.md")
    c.unlink()
    time.sleep(4)
    assert daemon.published("Gone") == []
    assert any(ev.get("event") == "archive_removed" for ev in daemon.events())
    assert daemon.signal(signal.SIGTERM) == 0


def test_kill_and_restart_misfire_policy(daemon: Daemon) -> None:
    a = daemon.root / "threads" / "a.md"
    now = datetime.now(UTC).replace(microsecond=0)
    late_ok = now + timedelta(seconds=5)  # 2 s late at restart: within the 3 s grace
    too_late = now + timedelta(seconds=1)  # 6 s late at restart: beyond it
    write_archive(a, thread_md("Within grace", ["Goes out late."], late_ok),
                  thread_md("Beyond grace", ["Stays unposted."], too_late))
    daemon.start()
    assert daemon.proc is not None
    daemon.proc.kill()  # kill -9: no clean-up at all
    daemon.proc.wait(10)
    daemon.proc = None
    time.sleep(max(0.0, late_ok.timestamp() + 2 - time.time()))
    daemon.start()
    daemon.wait_for(lambda: len(daemon.published("Within grace")) == 2, 15, "the thread within grace")
    missed = [ev for ev in daemon.events() if ev.get("event") == "missed"]
    assert [m["title"] for m in missed] == ["Beyond grace"]
    time.sleep(1)
    assert daemon.published("Beyond grace") == []
    assert read_archive(a).find("Beyond grace").metadata.get("bluesky") is None
    state = json.loads((daemon.root / "state" / "daemon-state.json").read_text())["threads"]
    assert state[f"{a}::Beyond grace"]["outcome"] == "missed"
    assert daemon.signal(signal.SIGTERM) == 0
    # a further restart does not publish the missed thread either
    daemon.start()
    time.sleep(1.5)
    assert daemon.published("Beyond grace") == []
    assert daemon.signal(signal.SIGINT) == 0


def test_sigterm_mid_thread_then_resume_without_duplicates(daemon: Daemon) -> None:
    a = daemon.root / "threads" / "a.md"
    posts = [f"Post number {i} of the long thread." for i in range(1, 7)]
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    write_archive(a, thread_md("Long", posts, due))
    daemon.start(CROSSPOSTER_FAKE_DELAY="0.4")
    daemon.wait_for(lambda: len(daemon.published("Long")) >= 2, 20, "the first posts")
    assert daemon.signal(signal.SIGTERM) == 0
    partial = daemon.published("Long")
    assert 2 <= len(partial) < 12, "SIGTERM must land mid-thread"
    meta = read_archive(a).find("Long").metadata
    recorded = len(meta.get("bluesky", [])) + len(meta.get("mastodon", []))
    assert recorded == len(partial)  # every accepted post was recorded before exit
    stopped = [ev for ev in daemon.events() if ev.get("event") == "stopped"]
    assert stopped and stopped[0]["title"] == "Long"
    # well past the 3 s grace: a started thread is resumed anyway
    time.sleep(max(0.0, due.timestamp() + 4 - time.time()))
    daemon.start()
    daemon.wait_for(lambda: len({(e["platform"], e["index"]) for e in daemon.published("Long")}) == 12, 20,
                    "the rest of the thread")
    time.sleep(0.5)
    entries = [e for e in daemon.published("Long") if not e["rewrite"]]
    keys = [(e["platform"], e["index"]) for e in entries]
    assert sorted(keys) == sorted({(p, i) for p in ("bluesky", "mastodon") for i in range(6)}), "duplicate post"
    meta = read_archive(a).find("Long").metadata
    assert [m["id"] for m in meta["mastodon"]] == [e["id"] for e in sorted(
        (e for e in entries if e["platform"] == "mastodon"), key=lambda e: e["index"])]
    # each reply's parent is the previous post of the same chain
    for p in ("bluesky", "mastodon"):
        chain = sorted((e for e in entries if e["platform"] == p), key=lambda e: e["index"])
        assert [e["parent"] for e in chain[1:]] == [e["id"] for e in chain[:-1]]
    assert daemon.signal(signal.SIGTERM) == 0


def test_bad_config_exits_with_message(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("daemon: {misfire_grase: 5}\n")
    r = subprocess.run([sys.executable, "-m", "crossposter", "daemon", "--config", str(cfg)], capture_output=True,
                       text=True, timeout=30, env=checkout_env())
    assert r.returncode == 1
    assert "daemon.misfire_grase: unknown key" in r.stderr


def test_missing_secret_exits_and_is_not_leaked(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("platforms: {bluesky: {handle: me.test}}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSPOSTER_")}
    env["CROSSPOSTER_BLUESKY_PASSWORD"] = "very-secret-app-password"
    env = checkout_env(env)
    r = subprocess.run([sys.executable, "-m", "crossposter", "daemon", "--config", str(cfg)], capture_output=True,
                       text=True, timeout=30, env=env)
    assert r.returncode == 1
    assert "CROSSPOSTER_MASTODON_ACCESS_TOKEN" in r.stdout
    assert "very-secret" not in r.stdout + r.stderr


# --------------------------------------------------------------------------- engine in-process


@dataclass
class FakeResult:
    outcomes: dict
    ok: bool
    retryable: bool


@dataclass
class FakeOutcome:
    state: str
    posted: int = 0
    total: int = 1
    message: str = ""
    links: list = field(default_factory=list)
    retry_at: datetime | None = None


def _engine(tmp_path: Path, publish: Callable, **daemon: object):
    from crossposter.config import load_config
    from crossposter.daemon.engine import Engine

    cfg = tmp_path / "crossposter.yaml"
    extra = "".join(f"  {k}: {json.dumps(v)}\n" for k, v in daemon.items())
    cfg.write_text("timezone: Europe/Berlin\nstate_dir: state\narchives: ['one.md', 'two.md']\n"
                   f"daemon:\n  watch_interval: 0.2\n{extra}")
    return Engine(load_config(cfg), publish=publish)


def test_queue_slot_takes_next_queued_in_archive_order(tmp_path: Path) -> None:
    calls: list[str] = []

    def publish(config, path, title, **kw):  # noqa: ANN001, ANN003, ANN202
        calls.append(title)
        return FakeResult({"bluesky": FakeOutcome("done")}, True, False)

    write_archive(tmp_path / "one.md", thread_md("Plain", ["x"]), thread_md("Q1", ["a"], queued=True))
    write_archive(tmp_path / "two.md", thread_md("Q2", ["b"], queued=True),
                  thread_md("Q3 scheduled", ["c"], datetime.now(UTC) + timedelta(days=2), queued=True))
    done: list[str] = []
    eng = _engine(tmp_path, publish, queue_slots=["daily 09:00"])
    eng.on_result = lambda key, outcome: done.append(outcome)
    eng.start()
    try:
        nxt = eng.next_slot()
        assert nxt is not None and nxt.astimezone(eng.zone).strftime("%H:%M") == "09:00"
        for expect in (1, 2):
            eng._slot("daily 09:00")
            end = time.monotonic() + 5
            while len(done) < expect and time.monotonic() < end:
                time.sleep(0.02)
        assert calls == ["Q1", "Q2"]
        eng._slot("daily 09:00")  # nothing queued is left (Q3 has a schedule: its own job takes it)
        time.sleep(0.3)
        assert calls == ["Q1", "Q2"]
    finally:
        eng.stop(5)


def test_retry_later_is_bounded(tmp_path: Path) -> None:
    calls: list[float] = []

    def publish(config, path, title, **kw):  # noqa: ANN001, ANN003, ANN202
        calls.append(time.monotonic())
        return FakeResult({"mastodon": FakeOutcome("rate_limited", message="429")}, False, True)

    write_archive(tmp_path / "one.md", thread_md("Limited", ["x"], datetime.now(UTC) + timedelta(seconds=1)))
    eng = _engine(tmp_path, publish, retry_later_attempts=2, retry_later_delay=1)
    outcomes: list[str] = []
    eng.on_result = lambda key, outcome: outcomes.append(outcome)
    eng.start()
    try:
        end = time.monotonic() + 15
        while len(outcomes) < 3 and time.monotonic() < end:
            time.sleep(0.05)
        time.sleep(1.5)
    finally:
        eng.stop(5)
    assert outcomes == ["retrying", "retrying", "failed"]
    assert all(b - a >= 0.9 for a, b in zip(calls, calls[1:], strict=False))
    state = json.loads((tmp_path / "state" / "daemon-state.json").read_text())["threads"]
    entry = state[f"{tmp_path / 'one.md'}::Limited"]
    assert entry["outcome"] == "failed" and "gave up after 2" in entry["message"]


def test_retry_at_from_platform_is_used(tmp_path: Path) -> None:
    calls: list[datetime] = []

    def publish(config, path, title, **kw):  # noqa: ANN001, ANN003, ANN202
        calls.append(datetime.now(UTC))
        if len(calls) == 1:
            return FakeResult({"x": FakeOutcome("transient", retry_at=datetime.now(UTC) + timedelta(seconds=1.5))},
                              False, True)
        return FakeResult({"x": FakeOutcome("done")}, True, False)

    write_archive(tmp_path / "one.md", thread_md("Flaky", ["x"], datetime.now(UTC) + timedelta(seconds=1)))
    eng = _engine(tmp_path, publish, retry_later_delay=3600)
    outcomes: list[str] = []
    eng.on_result = lambda key, outcome: outcomes.append(outcome)
    eng.start()
    try:
        end = time.monotonic() + 10
        while len(outcomes) < 2 and time.monotonic() < end:
            time.sleep(0.05)
    finally:
        eng.stop(5)
    assert outcomes == ["retrying", "done"]
    assert 1.3 <= (calls[1] - calls[0]).total_seconds() < 4


# --------------------------------------------------------------------------- logs


def test_logs_redact_secrets_plain_and_json() -> None:
    import io
    import logging

    from crossposter.logs import setup_logging

    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        for fmt in ("plain", "json"):
            buf = io.StringIO()
            setup_logging(fmt, ["s3cr3t-token-value", "pw"], stream=buf)
            log = logging.getLogger("crossposter.test")
            log.info("token is %s", "s3cr3t-token-value", extra={"event": "e1", "detail": "x s3cr3t-token-value"})
            try:
                raise RuntimeError("auth failed for s3cr3t-token-value")
            except RuntimeError:
                log.exception("boom")
            out = buf.getvalue()
            assert "s3cr3t" not in out, out
            assert out.count("***") >= 3
            if fmt == "json":
                lines = [json.loads(line) for line in out.splitlines()]
                assert lines[0]["event"] == "e1" and lines[0]["msg"] == "token is ***"
                assert lines[0]["detail"] == "x ***" and "RuntimeError" in lines[1]["exc"]
            else:
                assert "INFO" in out and "token is ***" in out and "Traceback" in out
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


# --------------------------------------------------------------------------- against the local test servers


@pytest.fixture()
def local_servers(pds, mastodon_server, x_server):  # noqa: ANN001, ANN201 - fixtures from the server plugins
    from tests.peer.test_publish_e2e import Servers

    handle, did, password = pds.create_account("dmn")
    return Servers(pds, mastodon_server, x_server, handle, did, password)


def test_daemon_publishes_to_local_servers_on_time(local_servers, tmp_path: Path) -> None:  # noqa: ANN001
    """`schedule` (CLI), `check` (real logins), then the daemon publishes to the real local PDS,
    mastodon-mock and the X fake; `status` reports it published."""
    import uuid

    from tests.peer.test_publish_e2e import (
        TITLE,
        assert_thread_everywhere,
        cli_env,
        write_archive,
        write_config,
    )

    platforms = ["bluesky", "mastodon", "x"]
    marker = uuid.uuid4().hex[:10]
    archive = write_archive(tmp_path, marker)
    cfg = write_config(tmp_path, local_servers, platforms)
    cfg.write_text(cfg.read_text() + "timezone: Europe/Berlin\narchives: [threads.md]\n"
                   "daemon: {log_format: json, heartbeat_interval: 1, watch_interval: 0.5}\n")
    env = checkout_env(cli_env(local_servers))
    cli = [sys.executable, "-m", "crossposter"]

    r = subprocess.run([*cli, "check", "--config", str(cfg)], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("logged in") == 3

    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=8)
    r = subprocess.run([*cli, "schedule", str(archive), "--thread", TITLE, "--at", due.isoformat(), "--config",
                        str(cfg)], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr

    d = Daemon(tmp_path, cfg, tmp_path / "daemon.log")
    with d.out.open("ab") as f:  # cli_env has no CROSSPOSTER_FAKE_PLATFORMS: the real adapters
        d.proc = subprocess.Popen([*cli, "daemon", "--config", str(cfg)], stdout=f, stderr=subprocess.STDOUT,
                                  env=env, cwd="/")
    try:
        d.wait_for(lambda: any(ev.get("event") == "published" for ev in d.events()), 90, "published")
        starts = [ev for ev in d.events() if ev.get("event") == "publish_start"]
        assert len(starts) == 1 and 0 <= starts[0]["delay"] < 5.0
        assert_thread_everywhere(local_servers, archive, cfg, marker, platforms)
        assert d.signal(signal.SIGTERM) == 0
    finally:
        if d.proc is not None and d.proc.poll() is None:
            d.proc.kill()
    out = d.out.read_text()
    for secret in (local_servers.bsky_password, local_servers.mastodon.token, *local_servers.x.env.values()):
        assert secret not in out
    r = subprocess.run([*cli, "status", "--format", "json", "--config", str(cfg)], env=env, capture_output=True,
                       text=True, timeout=60)
    t = {t["title"]: t for t in json.loads(r.stdout)["threads"]}[TITLE]
    assert t["state"] == "published"
    assert all(v["posted"] == v["total"] == 3 for v in t["platforms"].values())


def test_rescheduled_while_waiting_behind_another_thread(tmp_path: Path) -> None:
    """One worker: B waits while A publishes; B moved later meanwhile goes out at its new time, not now."""
    calls: list[tuple[str, float]] = []

    def publish(config, path, title, **kw):  # noqa: ANN001, ANN003, ANN202
        calls.append((title, time.time()))
        if title == "A":
            time.sleep(2.0)
        return FakeResult({"bluesky": FakeOutcome("done")}, True, False)

    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    write_archive(tmp_path / "one.md", thread_md("A", ["a"], due), thread_md("B", ["b"], due))
    import threading

    eng = _engine(tmp_path, publish)
    eng.start()
    threading.Thread(target=eng.run_forever, daemon=True).start()  # the daemon's watch loop
    threading_done = time.monotonic() + 15
    try:
        while not calls and time.monotonic() < threading_done:
            time.sleep(0.02)
        later = due + timedelta(seconds=4)
        write_archive(tmp_path / "one.md", thread_md("A", ["a"], due), thread_md("B", ["b"], later))
        while len(calls) < 2 and time.monotonic() < threading_done:
            time.sleep(0.02)
    finally:
        eng.stop(5)
    assert [c[0] for c in calls] == ["A", "B"]
    assert calls[1][1] >= later.timestamp() - 0.05


def test_sigterm_during_a_real_request_then_resume(local_servers, tmp_path: Path) -> None:  # noqa: ANN001
    """SIGTERM lands while the daemon's first X request is on the wire: that request finishes and is
    recorded, the daemon exits 0, and the next start completes the thread: every server holds each post once."""
    import threading
    import uuid

    from tests.peer.test_publish_e2e import (
        assert_thread_everywhere,
        cli_env,
        recorded,
        write_archive,
        write_config,
    )

    platforms = ["bluesky", "mastodon", "x"]
    marker = uuid.uuid4().hex[:10]
    archive = write_archive(tmp_path, marker, posts=4)
    cfg = write_config(tmp_path, local_servers, platforms)
    cfg.write_text(cfg.read_text() + "archives: [threads.md]\n"
                   "daemon: {log_format: json, heartbeat_interval: 1, watch_interval: 0.5, misfire_grace: 1}\n")
    from tests.peer.test_publish_e2e import TITLE

    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=5)  # after start-up and first logins
    text = archive.read_bytes().decode("utf-8")
    archive.write_bytes(text.replace(f"## {TITLE}\r\n", f"## {TITLE}\r\n<!-- crossposter\r\nschedule: "
                                     f"{due.isoformat()}\r\n-->\r\n", 1).encode())
    env = checkout_env(cli_env(local_servers))
    d = Daemon(tmp_path, cfg, tmp_path / "daemon.log")
    fired = threading.Event()

    def after(method: str, path: str, status: int) -> None:
        if method == "POST" and path == "/2/tweets" and status == 201 and not fired.is_set():
            fired.set()
            assert d.proc is not None
            d.proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)  # the response is still pending: the request is in flight

    local_servers.x.after_request = after
    cmd = [sys.executable, "-m", "crossposter", "daemon", "--config", str(cfg)]
    with d.out.open("ab") as f:
        d.proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd="/")
    try:
        assert d.proc.wait(90) == 0, d.out.read_text()
        d.proc = None
        assert fired.is_set()
        assert len(recorded(archive, "x")) == 1  # the in-flight tweet was recorded before exit
        assert any(ev.get("event") == "stopped" for ev in d.events())
        local_servers.x.after_request = None
        time.sleep(max(0.0, due.timestamp() + 2 - time.time()))  # past the 1 s grace: resumed anyway
        with d.out.open("ab") as f:
            d.proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd="/")
        d.wait_for(lambda: any(ev.get("event") == "published" for ev in d.events()), 90, "resumed and published")
        assert_thread_everywhere(local_servers, archive, cfg, marker, platforms)
        assert d.signal(signal.SIGTERM) == 0
    finally:
        local_servers.x.after_request = None
        if d.proc is not None and d.proc.poll() is None:
            d.proc.kill()


def test_publisher_process_only_around_due_times(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK-holding child runs only when something is due soon, and goes away when idle."""
    import threading

    from crossposter.daemon import child
    from crossposter.daemon.engine import Engine
    from crossposter.platforms.fakes import JOURNAL, JournalFakes

    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setattr(child, "PREWARM", 3.0)
    monkeypatch.setattr(child, "LINGER", 1.0)
    write_archive(tmp_path / "one.md", thread_md("Far", ["far"], datetime.now(UTC) + timedelta(hours=1)))
    from crossposter.config import load_config

    cfg = tmp_path / "crossposter.yaml"
    cfg.write_text("state_dir: state\narchives: ['one.md']\nplatforms: {bluesky: {handle: me.test}}\n"
                   "daemon: {watch_interval: 0.2}\n")
    config = load_config(cfg)
    eng = Engine(config, fakes=JournalFakes(config.state_path / JOURNAL))  # reach the child: no environment
    results: list[str] = []
    eng.on_result = lambda key, outcome: results.append(outcome)
    eng.start()
    threading.Thread(target=eng.run_forever, daemon=True).start()
    try:
        time.sleep(1.0)
        assert eng.child is not None and not eng.child.alive  # nothing due within PREWARM
        due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=5)
        write_archive(tmp_path / "one.md", thread_md("Far", ["far"], datetime.now(UTC) + timedelta(hours=1)),
                      thread_md("Soon", ["soon"], due))
        end = time.monotonic() + 10
        while not eng.child.alive and time.monotonic() < end:
            time.sleep(0.05)
        assert eng.child.alive and time.time() < due.timestamp()  # started ahead of time
        pid = eng.child.proc.pid
        while not results and time.monotonic() < end + 10:
            time.sleep(0.05)
        assert results == ["done"]
        end = time.monotonic() + 5
        while eng.child.alive and time.monotonic() < end:
            time.sleep(0.05)
        assert not eng.child.alive  # idle past LINGER with nothing due soon: stopped
        end = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < end:
            time.sleep(0.05)
        assert not Path(f"/proc/{pid}").exists()  # exited and reaped
    finally:
        eng.stop(10)


# --------------------------------------------------------------------------- no value can stop the daemon

FAR = "<!-- crossposter\nschedule: 9999-12-31T23:30:00Z\n-->\n"


def _health(config: Path) -> subprocess.CompletedProcess[str]:
    env = checkout_env({**os.environ, "CROSSPOSTER_CONFIG": str(config)})
    return subprocess.run([sys.executable, "-m", "crossposter", "health"], env=env, capture_output=True, text=True,
                          timeout=30)


def test_a_far_future_schedule_neither_crashes_nor_silences_the_daemon(daemon: Daemon) -> None:
    """At start it crashed the daemon (OverflowError); added while it ran, it ended APScheduler's thread
    while the heartbeat stayed fresh: `health` said healthy and nothing was posted again."""
    a = daemon.root / "threads" / "a.md"
    write_archive(a, f"## Far\n{FAR}\nNever.\n",
                  thread_md("Soon", ["Posted."], datetime.now(UTC) + timedelta(seconds=3)))
    daemon.start()  # it starts...
    bad = [ev for ev in daemon.events() if ev.get("event") == "bad_metadata"]
    assert bad and "out of range" in bad[0]["msg"] and "`schedule`" in bad[0]["msg"]
    daemon.wait_for(lambda: len(daemon.published("Soon")) == 2, 20, "the good thread, on time")
    # ...and the same value added while it runs leaves the scheduler working
    b = daemon.root / "threads" / "b.md"
    write_archive(b, f"## Far too\n{FAR}\nNever either.\n",
                  thread_md("Later", ["Also posted."], datetime.now(UTC) + timedelta(seconds=3)))
    daemon.wait_for(lambda: len(daemon.published("Later")) == 2, 20, "a thread scheduled after the bad one")
    r = _health(daemon.config)
    assert r.returncode == 0, r.stderr
    assert daemon.signal(signal.SIGTERM) == 0


def test_health_reports_a_dead_scheduler_thread(tmp_path: Path) -> None:
    """Whatever ends APScheduler's thread (here a job whose time overflows in the daemon's zone, put past the
    checks on purpose), the next heartbeat says so and `health` is unhealthy while the loop keeps beating."""
    import threading

    from apscheduler.triggers.date import DateTrigger

    def publish(config, path, title, **kw):  # noqa: ANN001, ANN003, ANN202
        return FakeResult({"bluesky": FakeOutcome("done")}, True, False)

    write_archive(tmp_path / "one.md", thread_md("Plain", ["x"]))
    eng = _engine(tmp_path, publish, heartbeat_interval=1)
    eng.start()
    loop = threading.Thread(target=eng.run_forever, daemon=True)
    loop.start()
    try:
        time.sleep(1.2)
        assert _health(tmp_path / "crossposter.yaml").returncode == 0
        eng.scheduler.add_job(lambda: None, DateTrigger(run_date=datetime(9999, 12, 31, 23, 30, tzinfo=UTC)))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            r = _health(tmp_path / "crossposter.yaml")
            if r.returncode:
                break
            time.sleep(0.3)
        assert r.returncode == 1
        assert "scheduler thread stopped" in r.stderr and "OverflowError" in r.stderr
        beat = json.loads((tmp_path / "state" / "heartbeat").read_text())
        assert (datetime.now(UTC) - datetime.fromisoformat(beat["time"])).total_seconds() < 3  # still beating
    finally:
        eng.stop(5)
        loop.join(5)


def test_out_of_range_retry_times_are_not_scheduled(tmp_path: Path) -> None:
    """A server's reset time or an edited state file cannot hand APScheduler a time it cannot hold."""
    def publish(config, path, title, **kw):  # noqa: ANN001, ANN003, ANN202
        return FakeResult({"x": FakeOutcome("rate_limited", retry_at=datetime(9999, 12, 31, 23, 59, tzinfo=UTC))},
                          False, True)

    write_archive(tmp_path / "one.md", thread_md("Limited", ["x"], datetime.now(UTC) + timedelta(seconds=1)))
    eng = _engine(tmp_path, publish, retry_later_attempts=3)
    outcomes: list[str] = []
    eng.on_result = lambda key, outcome: outcomes.append(outcome)
    eng.start()
    try:
        end = time.monotonic() + 10
        while not outcomes and time.monotonic() < end:
            time.sleep(0.05)
        assert outcomes == ["retrying"]
        assert eng.vital_problems() == []
        when = next(iter(eng.jobs().values()))
        assert timedelta(days=29) < when - datetime.now(UTC) <= timedelta(days=30)  # put off, but boundedly
    finally:
        eng.stop(5)
