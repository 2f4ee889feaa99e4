"""Crash safety: SIGKILL `crossposter post` at every request of a thread's publication, rerun, and check
that every server ends with exactly one copy of each post, correctly chained, and the archive records them.

The kill comes from outside the process: a counting reverse proxy sits in front of each server; when
request k arrives it forwards it, lets the server process it completely, then SIGKILLs the client before
the answer is delivered (the worst moment: done on the server, unknown to the client). A second pass kills
*before* forwarding request k, i.e. right after the client got answer k-1 and perhaps recorded it.

X has no idempotency key: when the kill lands between X accepting a tweet and the archive recording
it, the rerun gets "duplicate content" and must settle it from the account's recent posts (the X
adapter's `find_recent`, served by the X fake's timeline endpoint) instead of posting again.

The proxy rewrites the upstream's own URL in JSON answers (a reverse proxy's usual job), because the
PDS's session answer names its public URL and the atproto SDK switches to it after login.
"""

from __future__ import annotations

import signal
import subprocess
import urllib.parse
import uuid
from pathlib import Path

import pytest

from testing.proxy import CountingProxy
from tests.peer.test_publish_e2e import (
    Servers,
    assert_thread_everywhere,
    cli_env,
    post_cmd,
    write_archive,
    write_config,
    x_thread,
)


@pytest.fixture
def servers(pds, mastodon_server, x_server) -> Servers:  # noqa: ANN001 - fixtures from plugins
    handle, did, password = pds.create_account("crash")
    return Servers(pds, mastodon_server, x_server, handle, did, password)


def _proxy_for(servers: Servers, platform: str) -> CountingProxy:
    if platform == "bluesky":
        port = urllib.parse.urlsplit(servers.pds.url).port
        return CountingProxy(servers.pds.url, rewrite=[servers.pds.url, f"http://localhost:{port}"])
    if platform == "mastodon":
        return CountingProxy(servers.mastodon.url)
    return CountingProxy(servers.x.url)


def _crash_and_resume(servers: Servers, tmp_path: Path, platform: str, before: bool) -> int:
    """Kill at request 1, 2, … until a run needs fewer requests than k; returns how many points were hit."""
    proxy = _proxy_for(servers, platform)
    env = cli_env(servers)
    try:
        k = 0
        while True:
            k += 1
            assert k < 40, "publication never finished below 40 requests"
            marker = uuid.uuid4().hex[:10]
            folder = tmp_path / f"{platform}-{'b' if before else 'a'}{k}"
            archive = write_archive(folder, marker)
            cfg = write_config(folder, servers, [platform], urls={platform: proxy.url})
            proc = subprocess.Popen(post_cmd(archive, cfg), cwd=folder, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
            proxy.arm(proc.pid, k, before)
            out, _ = proc.communicate(timeout=120)
            if not proxy.killed:
                assert proc.returncode == 0, out
                assert_thread_everywhere(servers, archive, cfg, marker, [platform])
                return k - 1
            assert proc.returncode == -signal.SIGKILL, out
            killed_log = list(proxy.log)
            print(f"{platform}: killed {'before' if before else 'after'} request {k}: {killed_log[-1:]}")
            proxy.arm(None, None)
            rerun = subprocess.run(post_cmd(archive, cfg), cwd=folder, env=env, capture_output=True, text=True,
                                   timeout=120)
            assert rerun.returncode == 0, f"killed at request {k} {killed_log[-1:]}:\n{rerun.stdout}{rerun.stderr}"
            assert_thread_everywhere(servers, archive, cfg, marker, [platform])
    finally:
        proxy.close()


@pytest.mark.parametrize("platform", ["bluesky", "mastodon", "x"])
def test_killed_after_the_server_processed_request_k(servers: Servers, tmp_path: Path, platform: str) -> None:
    points = _crash_and_resume(servers, tmp_path, platform, before=False)
    assert points >= 6  # login, 2 images, 3 posts at least: every one of them was a kill point


@pytest.mark.parametrize("platform", ["bluesky", "mastodon"])
def test_killed_before_request_k_reaches_the_server(servers: Servers, tmp_path: Path, platform: str) -> None:
    assert _crash_and_resume(servers, tmp_path, platform, before=True) >= 6


def test_killed_mid_thread_on_all_three_at_once(servers: Servers, tmp_path: Path) -> None:
    """All platforms concurrently; the kill lands on whichever chain sends the k-th request to its server."""
    proxies = {p: _proxy_for(servers, p) for p in ("bluesky", "mastodon", "x")}
    env = cli_env(servers)
    try:
        for k in (3, 5):
            marker = uuid.uuid4().hex[:10]
            folder = tmp_path / f"all-{k}"
            archive = write_archive(folder, marker, posts=4)
            cfg = write_config(folder, servers, list(proxies), urls={p: x.url for p, x in proxies.items()})
            proc = subprocess.Popen(post_cmd(archive, cfg), cwd=folder, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
            proxies["bluesky"].arm(proc.pid, k)
            proxies["mastodon"].arm(proc.pid, None)
            proxies["x"].arm(proc.pid, None)
            proc.communicate(timeout=120)
            assert proxies["bluesky"].killed and proc.returncode == -signal.SIGKILL
            proxies["bluesky"].arm(None, None)
            rerun = subprocess.run(post_cmd(archive, cfg), cwd=folder, env=env, capture_output=True, text=True,
                                   timeout=180)
            assert rerun.returncode == 0, (rerun.stdout + rerun.stderr + repr(x_thread(servers, marker))
                                           + archive.read_text() + repr(servers.x.requests[-12:]))
            assert_thread_everywhere(servers, archive, cfg, marker, ["bluesky", "mastodon", "x"])
    finally:
        for p in proxies.values():
            p.close()
