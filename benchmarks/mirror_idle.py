"""Requests and time per idle mirror poll, for each source platform (`python3 benchmarks/mirror_idle.py`).

An idle poll is one where nothing was posted since the backup's cursor. For each source a real
peer runs locally (the PDS from tests/pds, mastodon-mock, the X fake of testing/xfake), one
post is made and backed up (the cursor), then the daemon's poll function (`backup_out_of_process`)
is called `--polls` times with nothing new. Counted: the HTTP requests it makes itself (urllib) and
whether the backup child ran; for Mastodon and X also the old way (a backup child every poll),
counted on the server's side. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]


class Counting:
    """urllib.request.urlopen, counted; and the backup child, counted instead of run."""

    def __init__(self) -> None:
        self.requests = 0
        self.children = 0

    def install(self) -> None:
        from crossposter.mirror import backup_child
        from crossposter.mirror.source import BackupResult

        real = urllib.request.urlopen

        def urlopen(*a, **k):  # noqa: ANN002, ANN003, ANN202
            self.requests += 1
            return real(*a, **k)

        def child(*_a: object, **_k: object) -> BackupResult:
            self.children += 1
            return BackupResult(newest={}, problems=[])

        urllib.request.urlopen = urlopen  # type: ignore[assignment]
        backup_child.run_in_child = child  # type: ignore[assignment]


def config_for(folder: Path, platforms: str, source: str, target: str) -> object:
    from crossposter.config import load_config

    folder.mkdir(parents=True, exist_ok=True)
    cfg = folder / "crossposter.yaml"
    cfg.write_text(f"state_dir: state\nplatforms:\n{platforms}mirror: {{from: {source}, to: [{target}]}}\n",
                   encoding="utf-8")
    return load_config(cfg)


def idle(config: object, polls: int) -> tuple[float, float, list[float]]:
    from crossposter.mirror.backup_child import backup_out_of_process

    counter = COUNTER
    r0, c0 = counter.requests, counter.children
    times = []
    for _ in range(polls):
        t = time.perf_counter()
        backup_out_of_process(config)  # type: ignore[arg-type]
        times.append((time.perf_counter() - t) * 1000)
    return (counter.requests - r0) / polls, (counter.children - c0) / polls, times


def old_way(config: object, count: Callable[[], int]) -> tuple[int, float]:
    before = count()
    t = time.perf_counter()
    ORIGINAL_CHILD(config, 600)
    return count() - before, time.perf_counter() - t


def bluesky(base: Path, polls: int) -> None:
    import requests

    from crossposter.mirror.source import run_source_backup
    from testing import pds as local_pds

    pds = local_pds.start(timeout=90)
    url = pds.server.url
    try:
        handle = f"idle-{os.getpid()}.test"
        password = "bench-password-123"
        r = requests.post(f"{url}/xrpc/com.atproto.server.createAccount",
                          json={"handle": handle, "email": f"{handle}@example.com", "password": password}, timeout=30)
        r.raise_for_status()
        did, jwt = r.json()["did"], r.json()["accessJwt"]
        requests.post(f"{url}/xrpc/com.atproto.repo.createRecord", headers={"Authorization": f"Bearer {jwt}"},
                      json={"repo": did, "collection": "app.bsky.feed.post",
                            "record": {"text": "hello", "createdAt": "2026-12-01T00:00:00Z"}}, timeout=30)
        os.environ["CROSSPOSTER_BLUESKY_PASSWORD"] = password
        config = config_for(base / "bluesky", f"  bluesky: {{handle: {handle}, service: '{url}'}}\n"
                                              "  x: {enabled: true}\n", "bluesky", "x")
        run_source_backup(config)  # type: ignore[arg-type]
        report("bluesky", *idle(config, polls), None)
    finally:
        pds.stop()


def mastodon(base: Path, polls: int) -> None:
    import requests

    from crossposter.mirror.source import run_source_backup
    from testing.mastodon import answers as _answers
    from testing.mastodon import command as _command
    from testing.mastodon import free_port as _free_port
    from testing.mastodon import stop as _stop

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    work = base / "mock"
    work.mkdir(parents=True)
    log = (base / "mock.log").open("wb")
    proc = subprocess.Popen([*_command(port)[:-1], "info"], stdout=log, stderr=subprocess.STDOUT, cwd=work)
    try:
        deadline = time.monotonic() + 60
        while not _answers(url) and time.monotonic() < deadline:
            time.sleep(0.2)
        user = requests.post(f"{url}/api/v1/_mock/dev_user", json={"username": "idle"}, timeout=10).json()
        token = user["access_token"]
        requests.post(f"{url}/api/v1/statuses", data={"status": "hello"}, timeout=10,
                      headers={"Authorization": f"Bearer {token}"}).raise_for_status()
        os.environ["CROSSPOSTER_MASTODON_ACCESS_TOKEN"] = token
        config = config_for(base / "mastodon", "  bluesky: {enabled: false}\n  mastodon: {enabled: true, "
                                               f"instance: '{url}'}}\n  x: {{enabled: true}}\n", "mastodon", "x")
        run_source_backup(config)  # type: ignore[arg-type]

        def served() -> int:
            return sum(1 for line in (base / "mock.log").read_text(errors="replace").splitlines() if "HTTP/1.1" in line)

        report("mastodon", *idle(config, polls), old_way(config, served))
    finally:
        _stop(proc)
        log.close()


def x(base: Path, polls: int) -> None:
    from crossposter.backup.state import BackupState
    from crossposter.mirror.report import account_name
    from testing.xfake import FakeTweet, XFakeServer, _handler

    state = XFakeServer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        os.environ.update(state.env)
        config = config_for(base / "x", f"  mastodon: {{enabled: true}}\n  x: {{enabled: true, api_base: "
                                        f"'{state.url}', upload_base: '{state.url}', username: xfake_user}}\n",
                            "x", "mastodon")
        state.tweets.append(FakeTweet(id="1869000000000000000", text="hello", in_reply_to=None, media_ids=[],
                                      conversation_id="1869000000000000000"))
        # the fake's timeline has no dates, which the reader needs: the cursor a backup would leave
        BackupState.load(config.state_path, "x", account_name(config, "x")).save("1869000000000000000")  # type: ignore[attr-defined]
        report("x", *idle(config, polls), old_way(config, lambda: len(state.requests)))
    finally:
        server.shutdown()


def report(source: str, requests: float, children: float, times: list[float], old: tuple[int, float] | None) -> None:
    line = (f"{source:9} idle poll: {requests:.2f} request(s), {children:.2f} backup child(ren); "
            f"median {statistics.median(times):.1f} ms, max {max(times):.1f} ms over {len(times)} polls")
    if old is not None:
        line += f" | before (a backup child every poll): {old[0]} request(s), {old[1] * 1000:.0f} ms"
    print(line, flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=20)
    parser.add_argument("--only", choices=["bluesky", "mastodon", "x"])
    args = parser.parse_args()
    from crossposter.mirror import backup_child

    ORIGINAL_CHILD = backup_child.run_in_child
    COUNTER = Counting()
    COUNTER.install()
    base = Path(tempfile.mkdtemp(prefix="mirror-idle-"))
    try:
        for name, fn in (("x", x), ("mastodon", mastodon), ("bluesky", bluesky)):
            if args.only in (None, name):
                fn(base / name, args.polls)
    finally:
        shutil.rmtree(base, ignore_errors=True)
