"""`crossposter post` end to end: the real CLI in a subprocess against a real local Bluesky PDS,
mastodon-mock and the local X fake. What each server holds is read back with plain HTTP (or the
fake's own state), never through the code under test.

The helpers here are shared with tests/peer/test_crash_safety.py.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
TITLE = "Publishing end to end"


@dataclass
class Servers:
    pds: object
    mastodon: object
    x: object
    bsky_handle: str
    bsky_did: str
    bsky_password: str


def sha12(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def write_archive(folder: Path, marker: str, *, posts: int = 3) -> Path:
    """A thread of `posts` posts with two images (posts 1 and 2), unique by `marker`."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "imgs").mkdir(exist_ok=True)
    Image.new("RGB", (64, 48), (10, 160, 60)).save(folder / "imgs" / "green.png")
    Image.new("RGB", (48, 64), (30, 30, 200)).save(folder / "imgs" / "blue.jpg", quality=90)
    parts = [f"The opening post {marker}, with a green image.\n\n![A green rectangle](imgs/green.png)\n"]
    for i in range(2, posts + 1):
        extra = "\n![A blue rectangle](imgs/blue.jpg)\n" if i == 2 else ""
        parts.append(f"### Part {i}\nPost number {i} of the thread {marker}.{extra}\n")
    text = (f"# Archive {marker}\r\n\r\nNot a thread.\r\n\r\n## {TITLE}\r\n2024-02-13 21:25\r\n\r\n"
            + "\r\n".join(p.replace("\n", "\r\n") for p in parts)
            + "\r\n## Another thread\r\n\r\nUntouched.   ")  # CRLF, trailing spaces, no final newline
    path = folder / "threads.md"
    path.write_bytes(text.encode("utf-8"))
    return path


def write_config(folder: Path, servers: Servers, platforms: list[str], urls: dict[str, str] | None = None) -> Path:
    urls = urls or {}
    cfg = folder / "crossposter.yaml"
    cfg.write_text(f"""\
language: en
state_dir: state
retry: {{attempts: 3, base_delay: 0.05, max_delay: 0.2}}
platforms:
  bluesky: {{enabled: {str('bluesky' in platforms).lower()}, handle: {servers.bsky_handle},
            service: "{urls.get('bluesky', servers.pds.url)}"}}
  mastodon: {{enabled: {str('mastodon' in platforms).lower()},
             instance: "{urls.get('mastodon', servers.mastodon.url)}", visibility: public}}
  x: {{enabled: {str('x' in platforms).lower()}, api_base: "{urls.get('x', servers.x.url)}",
      upload_base: "{urls.get('x', servers.x.url)}", username: xfake_user}}
""", encoding="utf-8")
    return cfg


def cli_env(servers: Servers) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSPOSTER_")}
    # the checkout under test, whatever `pip install -e` last pointed the installed package at
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.update(servers.x.env)
    env["CROSSPOSTER_BLUESKY_PASSWORD"] = servers.bsky_password
    env["CROSSPOSTER_MASTODON_ACCESS_TOKEN"] = servers.mastodon.token
    return env


def post_cmd(archive: Path, cfg: Path) -> list[str]:
    return [sys.executable, "-m", "crossposter", "post", str(archive), "--thread", TITLE, "--config", str(cfg)]


def planned(archive: Path, cfg: Path, platform: str) -> list[str]:
    from crossposter.archive import read_archive
    from crossposter.config import load_config
    from crossposter.plan import plan_thread

    a = read_archive(archive)
    plan = plan_thread(a, a.find(TITLE), load_config(cfg), [platform], limits={"mastodon": 500})
    assert not plan.errors, plan.errors
    return [p.text for p in plan.platforms[platform].posts]


def recorded(archive: Path, platform: str) -> list[dict]:
    from crossposter.archive import read_archive

    return list(read_archive(archive).find(TITLE).metadata.get(platform, []))


# --------------------------------------------------------------------------- what each server holds


def bluesky_thread(servers: Servers, marker: str) -> list[dict]:
    recs = [r for r in servers.pds.list_records(servers.bsky_did) if marker in r["value"]["text"]]
    return sorted(recs, key=lambda r: r["value"]["createdAt"])


def mastodon_thread(servers: Servers, marker: str) -> list[dict]:
    m = servers.mastodon
    headers = {"Authorization": f"Bearer {m.token}"}
    me = requests.get(f"{m.url}/api/v1/accounts/verify_credentials", headers=headers, timeout=10).json()
    statuses: list[dict] = []
    max_id = None
    while True:
        params = {"limit": 40, **({"max_id": max_id} if max_id else {})}
        page = requests.get(f"{m.url}/api/v1/accounts/{me['id']}/statuses", params=params, headers=headers,
                            timeout=10).json()
        if not page:
            break
        statuses += page
        max_id = page[-1]["id"]
        if len(page) < 40:
            break
    mine = []
    for s in statuses:
        src = requests.get(f"{m.url}/api/v1/statuses/{s['id']}/source", headers=headers, timeout=10).json()
        if marker in src["text"]:
            mine.append({**s, "text": src["text"]})
    return sorted(mine, key=lambda s: int(s["id"]))


def x_thread(servers: Servers, marker: str) -> list:
    return [t for t in servers.x.tweets if marker in t.text]


def assert_thread_everywhere(servers: Servers, archive: Path, cfg: Path, marker: str, platforms: list[str]) -> None:
    """Each server holds exactly the planned posts, once, in order, as a reply chain; the archive holds their IDs."""
    if "bluesky" in platforms:
        texts = planned(archive, cfg, "bluesky")
        recs = bluesky_thread(servers, marker)
        assert [r["value"]["text"] for r in recs] == texts
        for prev, rec in zip(recs, recs[1:], strict=False):
            reply = rec["value"]["reply"]
            assert (reply["parent"]["uri"], reply["parent"]["cid"]) == (prev["uri"], prev["cid"])
            assert (reply["root"]["uri"], reply["root"]["cid"]) == (recs[0]["uri"], recs[0]["cid"])
        assert "reply" not in recs[0]["value"]
        alts = [[i["alt"] for i in r["value"].get("embed", {}).get("images", [])] for r in recs]
        assert alts[:2] == [["A green rectangle"], ["A blue rectangle"]] and not any(alts[2:])
        entries = recorded(archive, "bluesky")
        assert [(e["id"], e["cid"], e["sha"]) for e in entries] == [(r["uri"], r["cid"], sha12(t))
                                                                   for r, t in zip(recs, texts, strict=True)]
    if "mastodon" in platforms:
        texts = planned(archive, cfg, "mastodon")
        statuses = mastodon_thread(servers, marker)
        assert [s["text"] for s in statuses] == texts
        assert statuses[0]["in_reply_to_id"] in (None, "")
        for prev, s in zip(statuses, statuses[1:], strict=False):
            assert str(s["in_reply_to_id"]) == str(prev["id"])
        alts = [[m["description"] for m in s["media_attachments"]] for s in statuses]
        assert alts[:2] == [["A green rectangle"], ["A blue rectangle"]] and not any(alts[2:])
        entries = recorded(archive, "mastodon")
        assert [(str(e["id"]), e["sha"]) for e in entries] == [(str(s["id"]), sha12(t))
                                                              for s, t in zip(statuses, texts, strict=True)]
    if "x" in platforms:
        texts = planned(archive, cfg, "x")
        tweets = x_thread(servers, marker)
        assert [t.text for t in tweets] == texts
        assert tweets[0].in_reply_to is None
        for prev, t in zip(tweets, tweets[1:], strict=False):
            assert t.in_reply_to == prev.id
        alts = [[servers.x.media[m]["alt"] for m in t.media_ids] for t in tweets]
        assert alts[:2] == [["A green rectangle"], ["A blue rectangle"]] and not any(alts[2:])
        assert not servers.x.auth_failures
        entries = recorded(archive, "x")
        assert [(str(e["id"]), e["sha"]) for e in entries] == [(t.id, sha12(s))
                                                              for t, s in zip(tweets, texts, strict=True)]


@pytest.fixture
def servers(pds, mastodon_server, x_server) -> Servers:  # noqa: ANN001 - fixtures from plugins
    handle, did, password = pds.create_account("pub")
    return Servers(pds, mastodon_server, x_server, handle, did, password)


# --------------------------------------------------------------------------- tests


def test_post_publishes_the_thread_with_images_on_all_three(servers: Servers, tmp_path: Path) -> None:
    marker = uuid.uuid4().hex[:10]
    archive = write_archive(tmp_path, marker)
    original = archive.read_bytes()
    cfg = write_config(tmp_path, servers, ["bluesky", "mastodon", "x"])
    proc = subprocess.run(post_cmd(archive, cfg), capture_output=True, text=True, cwd=tmp_path, env=cli_env(servers),
                          timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert_thread_everywhere(servers, archive, cfg, marker, ["bluesky", "mastodon", "x"])
    from crossposter.metadata import strip_metadata_blocks

    assert strip_metadata_blocks(archive.read_bytes()) == original  # CRLF, trailing spaces, no final newline kept
    for secret in (servers.bsky_password, servers.mastodon.token, *servers.x.env.values()):
        assert secret not in proc.stdout + proc.stderr

    # running it again is a no-op: everything is recorded, nothing is sent twice
    again = subprocess.run(post_cmd(archive, cfg), capture_output=True, text=True, cwd=tmp_path,
                           env=cli_env(servers), timeout=180)
    assert again.returncode == 0, again.stdout + again.stderr
    assert_thread_everywhere(servers, archive, cfg, marker, ["bluesky", "mastodon", "x"])


def test_dry_run_against_the_same_config_sends_nothing(servers: Servers, tmp_path: Path) -> None:
    marker = uuid.uuid4().hex[:10]
    archive = write_archive(tmp_path, marker)
    original = archive.read_bytes()
    cfg = write_config(tmp_path, servers, ["bluesky", "mastodon", "x"])
    proc = subprocess.run([*post_cmd(archive, cfg), "--dry-run"], capture_output=True, text=True, cwd=tmp_path,
                          env=cli_env(servers), timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"Post number 3 of the thread {marker}." in proc.stdout
    assert "+<!-- crossposter" in proc.stdout
    assert archive.read_bytes() == original
    assert not bluesky_thread(servers, marker) and not mastodon_thread(servers, marker)
    assert not x_thread(servers, marker)


def test_editing_a_published_post_stops_each_platform_with_a_message(servers: Servers, tmp_path: Path) -> None:
    marker = uuid.uuid4().hex[:10]
    archive = write_archive(tmp_path, marker)
    cfg = write_config(tmp_path, servers, ["bluesky", "mastodon", "x"])
    env = cli_env(servers)
    assert subprocess.run(post_cmd(archive, cfg), capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=180).returncode == 0
    data = archive.read_bytes().replace(f"Post number 2 of the thread {marker}.".encode(),
                                        f"Post number 2, edited, of the thread {marker}.".encode())
    archive.write_bytes(data)
    proc = subprocess.run(post_cmd(archive, cfg), capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=180)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    for platform in ("bluesky", "mastodon", "x"):  # the plain log lines carry the whole message
        assert f"{platform}: changed, 3/3 posted — post 2 (line" in proc.stderr, proc.stderr
    assert len(bluesky_thread(servers, marker)) == 3 and len(mastodon_thread(servers, marker)) == 3
    assert len(x_thread(servers, marker)) == 3


def test_sigterm_stops_before_the_next_request_and_keeps_the_record(servers: Servers, tmp_path: Path) -> None:
    import signal
    import time

    marker = uuid.uuid4().hex[:10]
    archive = write_archive(tmp_path, marker, posts=5)
    cfg = write_config(tmp_path, servers, ["x"])
    servers.x.delay = 0.3
    proc = subprocess.Popen(post_cmd(archive, cfg), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path, env=cli_env(servers))
    deadline = time.monotonic() + 60
    while not x_thread(servers, marker) and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, out + err
    assert "stopped" in out and "Stopping" in err
    tweets = x_thread(servers, marker)
    assert 1 <= len(tweets) < 5
    assert [e["id"] for e in recorded(archive, "x")] == [t.id for t in tweets]  # nothing sent unrecorded
    servers.x.delay = 0.0
    again = subprocess.run(post_cmd(archive, cfg), capture_output=True, text=True, cwd=tmp_path,
                           env=cli_env(servers), timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    assert [t.text for t in x_thread(servers, marker)] == planned(archive, cfg, "x")


def test_two_post_processes_at_once_never_both_post(servers: Servers, tmp_path: Path) -> None:
    marker = uuid.uuid4().hex[:10]
    archive = write_archive(tmp_path, marker)
    cfg = write_config(tmp_path, servers, ["mastodon", "x"])
    servers.x.delay = 0.2
    procs = [subprocess.Popen(post_cmd(archive, cfg), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=tmp_path, env=cli_env(servers)) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    codes = sorted(p.returncode for p in procs)
    # the second is refused (3), or started after the first finished and found everything recorded (0)
    assert codes in ([0, 3], [0, 0]), outs
    if codes == [0, 3]:
        assert any("another crossposter run" in err for _, err in outs)
    assert_thread_everywhere(servers, archive, cfg, marker, ["mastodon", "x"])
