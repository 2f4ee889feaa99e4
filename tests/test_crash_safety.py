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

import contextlib
import http.client
import os
import signal
import subprocess
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.test_publish_e2e import (
    Servers,
    assert_thread_everywhere,
    cli_env,
    post_cmd,
    write_archive,
    write_config,
    x_thread,
)

_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization",
        "proxy-authenticate", "content-length", "accept-encoding", "content-encoding"}


class CountingProxy:
    """A reverse proxy on 127.0.0.1 that counts requests, can add latency, and can SIGKILL its client."""

    def __init__(self, upstream: str, rewrite: list[str] | None = None, delay: float = 0.0) -> None:
        u = urllib.parse.urlsplit(upstream)
        self.upstream_host, self.upstream_port = u.hostname or "127.0.0.1", u.port or 80
        self.delay = delay
        self.count = 0
        self.log: list[tuple[int, str, str, int]] = []
        self.kill_at: int | None = None
        self.kill_before = False
        self.pid: int | None = None
        self.killed = False
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._rewrite = [(r.encode(), self.url.encode()) for r in (rewrite or [upstream])]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def arm(self, pid: int | None, kill_at: int | None, before: bool = False) -> None:
        with self._lock:
            self.count, self.log, self.killed = 0, [], False
            self.pid, self.kill_at, self.kill_before = pid, kill_at, before

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _kill(self) -> None:
        self.killed = True
        if self.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes: Nagle would add ~40 ms each

            def log_message(self, *args: object) -> None:
                return None

            def _read_body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:
                            self.rfile.readline()
                            return out
                        out += self.rfile.read(size)
                        self.rfile.readline()
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def _proxy(self) -> None:
                body = self._read_body()
                with proxy._lock:
                    proxy.count += 1
                    n = proxy.count
                    doomed = proxy.kill_at == n and not proxy.killed
                if doomed and proxy.kill_before:
                    proxy._kill()
                    self.close_connection = True
                    return
                if proxy.delay:
                    time.sleep(proxy.delay)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                if body or self.command in ("POST", "PUT", "PATCH"):
                    headers["Content-Length"] = str(len(body))
                conn = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=60)
                try:
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    status, reason = resp.status, resp.reason
                    out_headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP]
                finally:
                    conn.close()
                proxy.log.append((n, self.command, self.path.split("?")[0], status))
                if doomed:  # the server has done it; the client never learns
                    proxy._kill()
                    self.close_connection = True
                    return
                if any(k.lower() == "content-type" and "json" in v for k, v in out_headers):
                    for old, new in proxy._rewrite:
                        data = data.replace(old, new)
                self.send_response(status, reason)
                for k, v in out_headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _safe(self) -> None:
                try:
                    self._proxy()
                except (ConnectionError, TimeoutError):  # the client was killed mid-conversation: expected
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _safe

        return Handler


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
