"""A hostile local server for the secrets tests: it refuses every request with 401 and echoes the
credential it was sent back in the error body, in every encoding a credential can take in text.

It plays Bluesky (`createSession`'s password from the JSON body), Mastodon (the `Bearer` token)
and X (the OAuth 1.0a header, whose consumer key and token it decodes) on one port, so one
config can point all three platforms at it. Imported by the test modules that need it.
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def encodings(value: str) -> dict[str, str]:
    """Every form `value` can take in text, by name: what the server echoes and what the tests grep for."""
    raw = value.encode("utf-8")
    forms = {
        "raw": value,
        "repr": repr(value)[1:-1],
        "repr-bearer": repr(f"Bearer {value}\n"),
        "ascii": ascii(value)[1:-1],
        "unicode-escape": value.encode("unicode_escape").decode("ascii"),
        "json": json.dumps(value)[1:-1],
        "json-ascii": json.dumps(value, ensure_ascii=True)[1:-1],
        "json-in-json": json.dumps(json.dumps(value))[1:-1],
        "quote": urllib.parse.quote(value, safe=""),
        "quote-slash": urllib.parse.quote(value),
        "quote-plus": urllib.parse.quote_plus(value),
        "quote-twice": urllib.parse.quote(urllib.parse.quote(value, safe=""), safe=""),
        "base64": base64.b64encode(raw).decode(),
        "base64-url": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "base64-basic": base64.b64encode(b"me:" + raw).decode(),
        "base64-basic-2": base64.b64encode(b"user:" + raw).decode(),
        "base64-basic-3": base64.b64encode(b"me.test:" + raw + b":x").decode(),
        "authorization": f"Authorization: Bearer {value}",
    }
    # lower-case hex in the percent escapes (some encoders write %2f), keeping the letters of the value
    forms["quote-lower"] = "%".join(
        part if i == 0 else part[:2].lower() + part[2:]
        for i, part in enumerate(urllib.parse.quote(value, safe="").split("%")))
    return forms


def leak_forms(value: str) -> dict[str, str]:
    """The forms to search outputs for: every encoding, minus those identical to another or trivially short."""
    out: dict[str, str] = {}
    for name, form in encodings(value).items():
        if name in ("repr-bearer", "authorization"):
            continue  # they contain the raw value: "raw" finds them
        if form not in out.values():
            out[name] = form
    return out


class _Handler(BaseHTTPRequestHandler):
    server: EchoServer

    def _reply(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        seen: list[str] = []
        auth = self.headers.get("Authorization") or ""
        if auth:
            seen.append(auth)
            scheme, _, rest = auth.partition(" ")
            if scheme == "Bearer":
                seen.append(rest)
            elif scheme == "OAuth":
                for part in rest.split(","):
                    key, _, quoted = part.strip().partition("=")
                    if key in ("oauth_consumer_key", "oauth_token"):
                        seen.append(urllib.parse.unquote(quoted.strip('"')))
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            data = {}
        if isinstance(data, dict) and isinstance(data.get("password"), str):
            seen.append(data["password"])
        with self.server.lock:
            self.server.seen.extend(seen)
        echoed = " | ".join(form for value in seen for form in encodings(value).values())
        text = f"invalid credentials: {echoed}"
        # Mastodon puts its explanation in "error", Bluesky in "error" and "message", X in "detail"/"errors"
        answer = {"error": text, "message": text, "detail": text, "title": "Unauthorized",
                  "errors": [{"message": text, "code": 89}], "error_description": text}
        out = json.dumps(answer).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("WWW-Authenticate", f'Bearer error="invalid_token", error_description="{echoed[:200]}"')
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = _reply

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
        pass


class EchoServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        #: Every credential a client sent (the test checks the server really saw them).
        self.seen: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@contextmanager
def echo_server() -> Iterator[EchoServer]:
    srv = EchoServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
