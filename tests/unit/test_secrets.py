"""Secrets never show: recognisable fake credentials for every platform, failing logins and error paths
against a local server (and a closed port), then every log record (DEBUG, SDK and HTTP loggers included),
exception message, repr and traceback is searched for them, in every form they can take.

The commands as subprocesses, a server echoing the credential in its 401 and the daemon's state
file are in tests/process/test_secret_forms.py.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from crossposter.config import Config
from crossposter.platforms import load_adapter
from crossposter.platforms.base import (
    ImageUpload,
    OutgoingPost,
    PlatformError,
    PostRef,
    UnauthorizedError,
    UploadedMedia,
)
from tests.fixtures_echo import leak_forms

SECRETS = {
    "CROSSPOSTER_BLUESKY_PASSWORD": "SEKRIT-bsky-123",
    "CROSSPOSTER_MASTODON_ACCESS_TOKEN": "SEKRIT-masto-456",
    "CROSSPOSTER_X_CONSUMER_KEY": "SEKRIT-xck-789",
    "CROSSPOSTER_X_CONSUMER_SECRET": "SEKRIT-xcs-012",
    "CROSSPOSTER_X_ACCESS_TOKEN": "SEKRIT-xat-345",
    "CROSSPOSTER_X_ACCESS_TOKEN_SECRET": "SEKRIT-xats-678",
}
#: Loggers that see requests: the HTTP stacks, the SDKs, OAuth signing, and ours.
LOGGERS = ("", "urllib3", "requests", "httpx", "httpcore", "oauthlib", "requests_oauthlib", "tweepy", "mastodon",
           "atproto", "atproto_client", "crossposter")
PLATFORMS = ("bluesky", "mastodon", "x")
DID = "did:plc:abcdefghijklmnopqrstuvwx"


def _fake_jwt() -> str:
    """An unsigned but well-formed access JWT: the atproto SDK reads its expiry."""
    def part(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    now = int(time.time())
    return ".".join([part({"alg": "ES256K", "typ": "at+jwt"}),
                     part({"scope": "com.atproto.access", "sub": DID, "iat": now, "exp": now + 3600}), "c2ln"])


LOGIN_OK = {
    "/api/v1/accounts/verify_credentials": {"id": "1", "username": "me", "acct": "me", "url": "http://x/@me"},
    "/2/users/me": {"data": {"id": "1", "name": "Me", "username": "me"}},
    "/xrpc/com.atproto.server.createSession": None,  # filled per request (fresh JWT)
}


def _error_body(status: int) -> dict:
    if status == 403:
        return {"detail": "You are not allowed to create a Tweet with duplicate content.", "title": "Forbidden",
                "error": "Forbidden", "message": "duplicate content", "status": 403}
    return {"error": "Denied", "message": "request refused", "detail": "request refused", "title": "Refused",
            "status": status}


def _error_headers(status: int) -> dict[str, str]:
    if status == 429:
        reset = int(time.time()) + 600
        return {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "2099-01-01T00:00:00.000Z",
                "x-rate-limit-remaining": "0", "x-rate-limit-reset": str(reset),
                "ratelimit-remaining": "0", "ratelimit-reset": str(reset), "Retry-After": "600"}
    if status >= 500:
        return {"Retry-After": "5"}
    return {}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _reply(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        status, headers, body = self.server.route(self.command, self.path.split("?", 1)[0])
        data = json.dumps(body).encode()
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _reply

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    route: Callable[[str, str], tuple[int, dict[str, str], dict]]


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _config(tmp_path: Path, url: str) -> Config:
    cfg = Config(base_dir=tmp_path)
    cfg.platforms.bluesky.handle = "me.test"
    cfg.platforms.bluesky.service = url
    cfg.platforms.mastodon.instance = url
    cfg.platforms.x.enabled = True
    cfg.platforms.x.api_base = url
    cfg.platforms.x.upload_base = url
    return cfg


def _exercise(adapter, platform: str) -> list[BaseException]:
    """Every protocol method once; all are expected to fail against the server's errors."""
    from crossposter.platforms.bluesky import new_tid, now_iso

    image = ImageUpload(path=Path("/tmp/pic.png"), data=b"\x89PNG\r\n\x1a\n" + b"0" * 64, mime_type="image/png",
                        width=10, height=10, alt="alt text")
    media = [] if platform == "bluesky" else [UploadedMedia(id="77", alt="alt text")]
    post = OutgoingPost(text="hello secrets", index=1, thread_key="t.md::T", media=media, language="en",
                        rkey=new_tid(), created_at=now_iso())
    parent = PostRef(id=f"at://{DID}/app.bsky.feed.post/3l2aaaaaaaaa2" if platform == "bluesky" else "100",
                     url="http://example/1", cid="bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a")
    steps: list[Callable[[], object]] = [
        adapter.login, adapter.limits, lambda: adapter.upload_image(image),
        lambda: adapter.publish(post, parent, parent), lambda: adapter.lookup(parent.id),
    ]
    errors: list[BaseException] = []
    for step in steps:
        try:
            step()
        except Exception as e:  # every failure is collected and searched below
            errors.append(e)
    return errors


def _texts_of(exc: BaseException) -> list[str]:
    texts = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    if isinstance(exc, PlatformError):
        texts.append(exc.message)
    return texts


def _leaks(text: str) -> list[str]:
    """Every secret found in `text` in any of its forms (raw, escaped, percent-encoded, base64...)."""
    return [f"{name} ({form})" for name, value in SECRETS.items()
            for form, leaked in leak_forms(value).items() if leaked in text]


@pytest.fixture
def fake_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
        monkeypatch.delenv(f"{name}_FILE", raising=False)


SCENARIOS = [("all-fail", s) for s in (400, 401, 403, 422, 429, 500)] + [
    ("login-ok", s) for s in (401, 403, 422, 429, 503)] + [("closed-port", 0)]


@pytest.mark.parametrize(("mode", "status"), SCENARIOS, ids=[f"{m}-{s}" for m, s in SCENARIOS])
def test_secrets_never_appear(mode: str, status: int, server: _Server, tmp_path: Path, fake_secrets: None,
                              caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    def route(method: str, path: str) -> tuple[int, dict[str, str], dict]:
        if mode == "login-ok" and path in LOGIN_OK:
            body = LOGIN_OK[path] or {"accessJwt": _fake_jwt(), "refreshJwt": _fake_jwt(), "handle": "me.test",
                                      "did": DID, "active": True}
            return 200, {}, body
        return status, _error_headers(status), _error_body(status)

    server.route = route
    url = _closed_port_url() if mode == "closed-port" else f"http://127.0.0.1:{server.server_address[1]}"
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)

    cfg = _config(tmp_path, url)
    adapters = {p: load_adapter(p, cfg) for p in PLATFORMS}
    errors = {p: _exercise(adapters[p], p) for p in PLATFORMS}

    problems: list[str] = []
    for platform, errs in errors.items():
        assert errs, f"{platform}: nothing failed, so nothing was tested"
        for exc in errs:
            for text in _texts_of(exc):
                if leaked := _leaks(text):
                    problems.append(f"{platform}: {type(exc).__name__} shows {leaked}: {text[:300]!r}")
        if leaked := _leaks(repr(adapters[platform])):
            problems.append(f"{platform}: repr(adapter) shows {leaked}")
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for record in caplog.records:
        if leaked := _leaks(formatter.format(record)):
            problems.append(f"log record of {record.name} shows {leaked}: {record.getMessage()[:300]!r}")
    out = capsys.readouterr()
    if leaked := _leaks(out.out + out.err):
        problems.append(f"stdout/stderr shows {leaked}")
    assert not problems, "\n".join(problems)

    # The test has teeth: requests really went out and DEBUG records of the HTTP/OAuth stacks were captured.
    names = {r.name.split(".")[0] for r in caplog.records}
    if mode != "closed-port":
        assert {"urllib3", "httpx", "requests_oauthlib", "oauthlib"} <= names, names
    if mode == "all-fail" and status == 401:
        for platform, errs in errors.items():
            assert isinstance(errs[0], UnauthorizedError), (platform, errs[0])


def test_oauth_debug_records_really_carried_the_keys(server: _Server, tmp_path: Path, fake_secrets: None,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """Without the X adapter's redaction, oauthlib's DEBUG records would show the consumer key and token."""
    server.route = lambda method, path: (401, {}, _error_body(401))
    caplog.set_level(logging.DEBUG)
    adapter = load_adapter("x", _config(tmp_path, f"http://127.0.0.1:{server.server_address[1]}"))
    with pytest.raises(UnauthorizedError):
        adapter.login()
    oauth = [r for r in caplog.records if r.name.startswith(("oauthlib", "requests_oauthlib"))]
    assert oauth, "no OAuth DEBUG records captured"
    assert any("***" in r.getMessage() for r in oauth), "nothing was redacted: the leak this guards is gone?"
