"""`crossposter backup` end to end, as a person runs it, against real peers.

Bluesky: the local PDS (posts, a thread, an image with alt text, a reply to a second account, all
written with the atproto SDK). Mastodon: mastodon-mock (statuses written with Mastodon.py). X: an
archive zip built here in X's documented format (tests/process/test_backup_x.py). Each backs up with the
command in a subprocess, compares the archive with what the test itself posted, then checks the
incremental run (an appended self-reply), the byte-identical rerun and, for X, a run killed with
SIGKILL half-way and resumed.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests
from PIL import Image

from crossposter.archive import read_archive
from crossposter.publish import text_sha
from tests.process.test_backup_x import OWN, OWN_ID, make_zip, photo, tweet


def png(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (9, 7), color).save(buf, "PNG")
    return buf.getvalue()


def crossposter(*args: str, cwd: Path, env: dict[str, str] | None = None,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "crossposter", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)


def write_config(folder: Path, text: str) -> Path:
    cfg = folder / "crossposter.yaml"
    cfg.write_text("timezone: Europe/Berlin\nstate_dir: state\n" + text, encoding="utf-8")
    return cfg


# --------------------------------------------------------------------------- Bluesky, the local PDS


def test_bluesky_backup_from_the_local_pds(pds, tmp_path: Path) -> None:
    from atproto import Client, models

    alice, bob = pds.create_account("bkw"), pds.create_account("bkwbob")
    a = Client(base_url=pds.url)
    a.login(alice[0], alice[2], fetch_bsky_profile=False)
    b = Client(base_url=pds.url)
    b.login(bob[0], bob[2], fetch_bsky_profile=False)
    theirs = b.send_post("Bob schreibt etwas", profile_identify=bob[1])
    image = png((200, 30, 30))
    blob = a.upload_blob(image).blob
    root = a.send_post("Ein Faden über Bäume", profile_identify=alice[1],
                       embed=models.AppBskyEmbedImages.Main(images=[models.AppBskyEmbedImages.Image(
                           alt="Eine rote Fläche", image=blob)]))
    ref = models.create_strong_ref(root)
    second = a.send_post("Zweiter Teil des Fadens", profile_identify=alice[1],
                         reply_to=models.AppBskyFeedPost.ReplyRef(root=ref, parent=ref))
    a.send_post("Antwort an Bob", profile_identify=alice[1], reply_to=models.AppBskyFeedPost.ReplyRef(
        root=models.create_strong_ref(theirs), parent=models.create_strong_ref(theirs)))

    cfg = write_config(tmp_path, f"platforms:\n  bluesky:\n    handle: {alice[0]}\n    service: {pds.url}\n")
    env = {"CROSSPOSTER_BLUESKY_PASSWORD": alice[2]}
    r = crossposter("backup", "--from", "bluesky", "--dry-run", "--config", str(cfg), cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    assert "would add 1 thread(s)" in r.stdout and "  + Ein Faden über Bäume (2 post(s)" in r.stdout
    assert sorted(os.listdir(tmp_path)) == ["crossposter.yaml"]  # not even the login's session file
    r = crossposter("backup", "--from", "bluesky", "--config", str(cfg), cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    assert "added 1 thread(s)" in r.stdout and "skipped 1: replies to other accounts" in r.stdout
    archive = tmp_path / "threads" / "bluesky.md"
    (thread,) = read_archive(archive).threads
    files = sorted((tmp_path / "threads" / "media" / "bluesky").iterdir())
    assert len(files) == 1 and files[0].read_bytes() == image  # the bytes as uploaded, not re-encoded
    media = f"media/bluesky/{files[0].name}"
    handle = alice[0]

    def entry(post, text: str) -> dict:
        rk = post.uri.rsplit("/", 1)[-1]
        return {"id": post.uri, "url": f"https://bsky.app/profile/{handle}/post/{rk}", "cid": post.cid,
                "sha": text_sha(text)}

    assert thread.title == "Ein Faden über Bäume"
    assert thread.metadata == {"source": "bluesky", "bluesky": [entry(root, "Ein Faden über Bäume"),
                                                                entry(second, "Zweiter Teil des Fadens")]}
    assert thread.body == (f"Ein Faden über Bäume\n\n![Eine rote Fläche]({media})\n\n---\n\n"
                           "Zweiter Teil des Fadens\n")
    assert alice[2] not in r.stdout + r.stderr + archive.read_text(encoding="utf-8")

    # a later self-reply goes into the section; then a run with nothing new changes nothing
    ref2 = models.create_strong_ref(second)
    third = a.send_post("Dritter Teil, später", profile_identify=alice[1],
                        reply_to=models.AppBskyFeedPost.ReplyRef(root=ref, parent=ref2))
    r = crossposter("backup", "--from", "bluesky", "--config", str(cfg), cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    (thread,) = read_archive(archive).threads
    assert thread.body.endswith("Zweiter Teil des Fadens\n\n---\n\nDritter Teil, später\n")
    assert [e["id"] for e in thread.metadata["bluesky"]] == [root.uri, second.uri, third.uri]
    before = archive.read_bytes()
    r = crossposter("backup", "--from", "bluesky", "--config", str(cfg), cwd=tmp_path, env=env)
    assert r.returncode == 0 and archive.read_bytes() == before and "added 0 thread(s)" in r.stdout


# --------------------------------------------------------------------------- Mastodon, mastodon-mock


def _dev_user(server, name: str) -> tuple[str, str]:
    r = requests.post(f"{server.url}/api/v1/_mock/dev_user", json={"username": name}, timeout=10)
    r.raise_for_status()
    return str(r.json()["id"]), r.json()["access_token"]


def _api(server, token: str):
    from mastodon import Mastodon

    api = Mastodon(access_token=token, api_base_url=server.url, version_check_mode="none")
    api.mastodon_major, api.mastodon_minor, api.mastodon_patch = 4, 0, 0
    return api


def test_mastodon_backup_from_mastodon_mock(mastodon_server, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    _, token = _dev_user(mastodon_server, f"bkw_me_{tag}")
    _, other_token = _dev_user(mastodon_server, f"bkw_other_{tag}")
    me, other = _api(mastodon_server, token), _api(mastodon_server, other_token)
    theirs = other.status_post(f"their post {tag}")
    image = png((20, 180, 40))
    media = me.media_post(image, mime_type="image/png", description="a green field")
    root = me.status_post(f"Thread {tag} about fields", media_ids=[media["id"]])
    r1 = me.status_post("first reply\nline two", in_reply_to_id=root["id"], visibility="unlisted")
    me.status_post("a reply to them", in_reply_to_id=theirs["id"])
    me.status_post("boosted?", visibility="direct")

    cfg = write_config(tmp_path, f"archives: ['threads/*.md']\nplatforms:\n  mastodon:\n"
                                 f"    instance: {mastodon_server.url}\n")
    env = {"CROSSPOSTER_MASTODON_ACCESS_TOKEN": token}
    r = crossposter("backup", "--from", "mastodon", "--config", str(cfg), cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    archive = tmp_path / "threads" / "mastodon.md"
    (thread,) = read_archive(archive).threads
    files = sorted((tmp_path / "threads" / "media" / "mastodon").iterdir())
    assert [f.read_bytes() for f in files] == [image]
    assert thread.title == f"Thread {tag} about fields"
    assert thread.body == (f"Thread {tag} about fields\n\n![a green field](media/mastodon/{files[0].name})\n\n"
                           "---\n\nfirst reply\nline two\n")
    assert [e["id"] for e in thread.metadata["mastodon"]] == [str(root["id"]), str(r1["id"])]
    assert thread.metadata["source"] == "mastodon"
    assert token not in r.stdout + r.stderr + archive.read_text(encoding="utf-8")
    for f in (tmp_path / "state").rglob("*"):
        assert not f.is_file() or token not in f.read_text(encoding="utf-8", errors="replace")

    me.status_post("second reply, a day later", in_reply_to_id=r1["id"])
    r = crossposter("backup", "--from", "mastodon", "--config", str(cfg), cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    (thread,) = read_archive(archive).threads
    assert thread.body.endswith("line two\n\n---\n\nsecond reply, a day later\n")
    before = archive.read_bytes()
    r = crossposter("backup", "--from", "mastodon", "--config", str(cfg), cwd=tmp_path, env=env)
    assert r.returncode == 0 and archive.read_bytes() == before


# --------------------------------------------------------------------------- X, an archive zip


def _x_zip(path: Path, n: int) -> Path:
    """`n` threads of two posts (the second with a photo), one day apart, plus a retweet."""
    tweets, media = [], {}
    for i in range(n):
        day = f"Wed Oct {10 + i % 18:02d} {i // 18 % 24:02d}:19:24 +0000 2018"
        first, second = str(1000 + 2 * i), str(1001 + 2 * i)
        tweets.append(tweet(first, f"Thread {i} starts here", created=day))
        tweets.append(tweet(second, f"and continues {i}", created=day, reply_to_status=first,
                            reply_to_user=OWN_ID, reply_to=(OWN,), media=[photo(f"p{i}.jpg", alt=f"photo {i}")]))
        media[f"{second}-p{i}.jpg"] = f"JPEG {i}".encode()
    tweets.append(tweet("9999", "RT @someone: not mine", created="Wed Oct 10 20:19:24 +0000 2018"))
    return make_zip(path, tweets, media=media)


def test_x_backup_from_an_archive_zip(tmp_path: Path) -> None:
    zipped = _x_zip(tmp_path / "x.zip", 3)
    cfg = write_config(tmp_path, "")
    r = crossposter("backup", "--from", "x", "--x-archive", str(zipped), "--dry-run", "--config", str(cfg),
                    cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "would add 3 thread(s)" in r.stdout and "Thread 0 starts here" in r.stdout
    assert sorted(os.listdir(tmp_path)) == ["crossposter.yaml", "x.zip"]  # dry run: nothing written
    r = crossposter("backup", "--from", "x", "--x-archive", str(zipped), "--config", str(cfg), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    archive = tmp_path / "threads" / "x.md"
    threads = read_archive(archive).threads
    assert [t.title for t in threads] == ["Thread 0 starts here", "Thread 1 starts here", "Thread 2 starts here"]
    assert threads[0].body == "Thread 0 starts here\n\n---\n\nand continues 0\n\n![photo 0](media/x/1001-p0.jpg)\n\n"
    assert threads[0].date == "2018-10-10 02:19"  # 00:19 UTC in Europe/Berlin (summer time)
    assert threads[0].metadata == {"source": "x", "x": [
        {"id": "1000", "url": f"https://x.com/{OWN}/status/1000", "sha": text_sha("Thread 0 starts here")},
        {"id": "1001", "url": f"https://x.com/{OWN}/status/1001", "sha": text_sha("and continues 0")}]}
    assert (tmp_path / "threads" / "media" / "x" / "1001-p0.jpg").read_bytes() == b"JPEG 0"
    assert "skipped 1: reposts" in r.stdout
    before = archive.read_bytes()
    r = crossposter("backup", "--from", "x", "--x-archive", str(zipped), "--config", str(cfg), cwd=tmp_path)
    assert r.returncode == 0 and archive.read_bytes() == before


def test_errors_are_one_line_on_stderr_with_a_non_zero_exit(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, "")
    r = crossposter("backup", "--from", "x", "--x-archive", str(tmp_path / "missing.zip"), "--config", str(cfg),
                    cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == "" and r.stderr.startswith("crossposter: error: ") and "missing.zip" in r.stderr
    r = crossposter("backup", "--from", "bluesky", "--x-archive", "a.zip", "--config", str(cfg), cwd=tmp_path)
    assert r.returncode == 2 and "--x-archive is for --from x" in r.stderr
    r = crossposter("backup", "--from", "x", "--x-archive", "a.zip", "--since", "yesterday", "--config", str(cfg),
                    cwd=tmp_path)
    assert r.returncode == 2 and "--since" in r.stderr
    r = crossposter("backup", "--from", "x", "--x-archive", "a.zip", "--since", "9999-12-31", "--config", str(cfg),
                    cwd=tmp_path)
    assert r.returncode == 2 and "out of range" in r.stderr and r.stderr.count("--since") == 1, r.stderr
    r = crossposter("backup", "--from", "mastodon", "--config", str(cfg), cwd=tmp_path,
                    env={"CROSSPOSTER_MASTODON_ACCESS_TOKEN": ""})
    assert r.returncode == 2 and "CROSSPOSTER_MASTODON_ACCESS_TOKEN" in r.stderr


def test_sigkill_mid_backup_is_resumed_without_duplicates_or_lost_posts(tmp_path: Path) -> None:
    """Killed between batches (one thread per batch), the next run gives exactly the archive of an
    uninterrupted run: nothing twice, nothing missing, same order."""
    zipped = _x_zip(tmp_path / "x.zip", 60)
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    for folder in (clean, killed):
        folder.mkdir()
        write_config(folder, "backup:\n  batch_threads: 1\n")
    r = crossposter("backup", "--from", "x", "--x-archive", str(zipped), "--config", "crossposter.yaml", cwd=clean)
    assert r.returncode == 0, r.stderr
    expected = (clean / "threads" / "x.md").read_bytes()
    assert len(read_archive(clean / "threads" / "x.md").threads) == 60

    kills = 0
    for _attempt in range(5):
        proc = subprocess.Popen([sys.executable, "-m", "crossposter", "backup", "--from", "x", "--x-archive",
                                 str(zipped), "--config", "crossposter.yaml"], cwd=killed,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        archive = killed / "threads" / "x.md"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if archive.read_bytes().count(b"\n## ") >= 5 + 10 * kills:
                    break
            except FileNotFoundError:
                pass
            time.sleep(0.002)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            kills += 1
        else:
            break
        data = archive.read_bytes()
        assert expected.startswith(data)  # a killed run leaves whole batches, in order
        assert data.count(b"\n## ") < 60
    assert kills >= 1, "the backup finished before it could be killed"
    r = crossposter("backup", "--from", "x", "--x-archive", str(zipped), "--config", "crossposter.yaml", cwd=killed)
    assert r.returncode == 0, r.stderr
    assert (killed / "threads" / "x.md").read_bytes() == expected
    leftovers = [p.name for p in (killed / "threads").iterdir() if p.name.startswith(".")]
    assert leftovers == []
