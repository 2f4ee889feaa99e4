"""A reverse proxy on 127.0.0.1 that counts requests, can add latency, and can SIGKILL its client.

Used by the crash tests (kill the publisher at request n) and by `benchmarks/publish.py` (100 ms per request).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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
