"""A small stateful fake of X's v2 endpoints on 127.0.0.1 (session fixture `x_server`).

No local X server exists, so this follows X's documented API closely enough for the
publisher's end-to-end and crash tests: OAuth 1.0a user-context signatures are
verified (HMAC-SHA1 over the URL the client used), `POST /2/media/upload`
(multipart or JSON base64), `POST /2/media/metadata` (alt text), `POST /2/tweets`
(text, reply, media ids; 403 "duplicate content" for a repeated text, exactly as X
answers), `GET /2/tweets/:id`, `DELETE /2/tweets/:id`, `GET /2/users/me` and the user timeline `GET /2/users/:id/tweets`. Started for the tests by
tests/fixtures_xfake.py (the `x_server` fixture) and by `benchmarks/publish.py` (`serve`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONSUMER_KEY = "xfake-consumer-key"
CONSUMER_SECRET = "xfake-consumer-secret"
ACCESS_TOKEN = "1234567890-xfake-access-token"
ACCESS_TOKEN_SECRET = "xfake-access-token-secret"
USER_ID = "1234567890"
USERNAME = "xfake_user"


@dataclass
class FakeTweet:
    id: str
    text: str
    in_reply_to: str | None
    media_ids: list[str]
    conversation_id: str


@dataclass
class XFakeServer:
    """The running fake: its URL, state, and hooks tests use (delay, a callback after each request)."""

    url: str = ""
    tweets: list[FakeTweet] = field(default_factory=list)
    media: dict[str, dict] = field(default_factory=dict)
    requests: list[tuple[str, str, int]] = field(default_factory=list)  # (method, path, status)
    auth_failures: list[str] = field(default_factory=list)
    delay: float = 0.0
    #: Called after a request was processed, before the response is sent (crash tests kill the client here).
    after_request: Callable[[str, str, int], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    _next_id: int = 1_870_000_000_000_000_001
    _next_media: int = 1_880_000_000_000_000_001

    @property
    def env(self) -> dict[str, str]:
        """The secrets the publisher needs, as environment variables."""
        return {"CROSSPOSTER_X_CONSUMER_KEY": CONSUMER_KEY, "CROSSPOSTER_X_CONSUMER_SECRET": CONSUMER_SECRET,
                "CROSSPOSTER_X_ACCESS_TOKEN": ACCESS_TOKEN, "CROSSPOSTER_X_ACCESS_TOKEN_SECRET": ACCESS_TOKEN_SECRET}

    def reset(self) -> None:
        with self.lock:
            self.tweets.clear()
            self.media.clear()
            self.requests.clear()
            self.auth_failures.clear()
            self.delay = 0.0
            self.after_request = None

    def tweet(self, tweet_id: str) -> FakeTweet | None:
        return next((t for t in self.tweets if t.id == tweet_id), None)


def _oauth_problem(handler: BaseHTTPRequestHandler, body: bytes) -> str | None:
    """None when the Authorization header is a valid OAuth 1.0a HMAC-SHA1 signature by our user."""
    from oauthlib.oauth1.rfc5849 import signature as sig
    from oauthlib.oauth1.rfc5849.utils import parse_authorization_header

    header = handler.headers.get("Authorization", "")
    if not header.startswith("OAuth "):
        return "no OAuth 1.0a Authorization header"
    params = dict(parse_authorization_header(header))
    if params.get("oauth_consumer_key") != CONSUMER_KEY:
        return "wrong consumer key"
    if params.get("oauth_token") != ACCESS_TOKEN:
        return "wrong access token"
    if params.get("oauth_signature_method") != "HMAC-SHA1":
        return f"signature method {params.get('oauth_signature_method')!r}"
    parsed = urllib.parse.urlsplit(handler.path)
    uri = f"http://{handler.headers.get('Host')}{parsed.path}"
    ctype = handler.headers.get("Content-Type", "")
    form = body.decode() if ctype.startswith("application/x-www-form-urlencoded") else ""
    collected = sig.collect_parameters(uri_query=parsed.query, body=form or None,
                                       headers={"Authorization": header}, exclude_oauth_signature=True)
    base = sig.signature_base_string(handler.command, sig.base_string_uri(uri), sig.normalize_parameters(collected))
    key = f"{urllib.parse.quote(CONSUMER_SECRET, safe='')}&{urllib.parse.quote(ACCESS_TOKEN_SECRET, safe='')}"
    expected = base64.b64encode(hmac.new(key.encode(), base.encode(), hashlib.sha1).digest()).decode()
    if not sig.safe_string_equals(expected, urllib.parse.unquote(params.get("oauth_signature", ""))):
        return "bad OAuth signature"
    return None


def _multipart(content_type: str, body: bytes) -> dict[str, bytes]:
    msg = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    out: dict[str, bytes] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            out[str(name)] = part.get_payload(decode=True) or b""
    return out


def _handler(state: XFakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # The answer goes out in two writes (headers, then body). With Nagle's algorithm on, the body waits
        # for the client's delayed ACK of the headers on a kept-alive connection: ~40 ms per request that
        # no real server costs (measured: 44 ms per request with it, 1.5 ms without).
        disable_nagle_algorithm = True

        def log_message(self, *args: object) -> None:
            return None

        def _send(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            path = urllib.parse.urlsplit(self.path).path
            with state.lock:
                state.requests.append((self.command, path, status))
            if state.after_request is not None:
                state.after_request(self.command, path, status)
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-rate-limit-limit", "300")
            self.send_header("x-rate-limit-remaining", "299")
            self.send_header("x-rate-limit-reset", str(int(time.time()) + 900))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def _handle(self) -> None:
            body = self._body()
            if state.delay:
                time.sleep(state.delay)
            problem = _oauth_problem(self, body)
            if problem:
                with state.lock:
                    state.auth_failures.append(problem)
                self._send(401, {"title": "Unauthorized", "type": "about:blank", "status": 401,
                                 "detail": "Unauthorized"})
                return
            path = urllib.parse.urlsplit(self.path).path.rstrip("/")
            route = (self.command, path)
            if route == ("GET", "/2/users/me"):
                self._send(200, {"data": {"id": USER_ID, "name": "X Fake", "username": USERNAME}})
            elif route == ("POST", "/2/media/upload"):
                self._upload(body)
            elif route == ("POST", "/2/media/metadata"):
                self._metadata(body)
            elif route == ("POST", "/2/tweets"):
                self._create(body)
            elif route == ("GET", f"/2/users/{USER_ID}/tweets"):
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                limit = int(query.get("max_results", ["10"])[0])
                with state.lock:
                    newest = list(reversed(state.tweets))[:limit]
                data = [{"id": t.id, "text": t.text, "edit_history_tweet_ids": [t.id],
                         **({"referenced_tweets": [{"type": "replied_to", "id": t.in_reply_to}]}
                            if t.in_reply_to else {})} for t in newest]
                meta = {"result_count": len(data), **({"newest_id": data[0]["id"], "oldest_id": data[-1]["id"]}
                                                      if data else {})}
                self._send(200, {"data": data, "meta": meta} if data else {"meta": meta})
            elif self.command == "GET" and path.startswith("/2/tweets/"):
                t = state.tweet(path.rsplit("/", 1)[-1])
                if t is None:
                    self._send(200, {"errors": [{"value": path.rsplit("/", 1)[-1], "detail": "Could not find "
                               "tweet", "title": "Not Found Error", "resource_type": "tweet", "parameter": "id",
                               "type": "https://api.twitter.com/2/problems/resource-not-found"}]})
                else:
                    self._send(200, {"data": {"id": t.id, "text": t.text, "conversation_id": t.conversation_id,
                                              "edit_history_tweet_ids": [t.id]}})
            elif self.command == "DELETE" and path.startswith("/2/tweets/"):
                tid = path.rsplit("/", 1)[-1]
                with state.lock:
                    t = state.tweet(tid)
                    if t is not None:
                        state.tweets.remove(t)
                if t is None:
                    self._send(404, {"title": "Not Found Error", "status": 404, "detail": f"Could not find tweet "
                                     f"with id: [{tid}].", "type": "https://api.twitter.com/2/problems/"
                                     "resource-not-found"})
                else:
                    self._send(200, {"data": {"deleted": True}})
            else:
                self._send(404, {"title": "Not Found", "status": 404, "detail": f"no route {route}"})

        def _upload(self, body: bytes) -> None:
            ctype = self.headers.get("Content-Type", "")
            if ctype.startswith("multipart/form-data"):
                fields = _multipart(ctype, body)
                data = fields.get("media")
                category = fields.get("media_category", b"").decode()
            elif ctype.startswith("application/json"):
                doc = json.loads(body or b"{}")
                data = base64.b64decode(doc["media"]) if doc.get("media") else None
                category = str(doc.get("media_category", ""))
            else:
                data, category = None, ""
            if not data:
                self._send(400, {"errors": [{"message": "media is required"}], "title": "Invalid Request"})
                return
            with state.lock:
                mid = str(state._next_media)
                state._next_media += 1
                state.media[mid] = {"size": len(data), "category": category, "alt": None,
                                    "png": data.startswith(b"\x89PNG"), "jpeg": data.startswith(b"\xff\xd8")}
            self._send(200, {"data": {"id": mid, "media_key": f"3_{mid}", "size": len(data),
                                      "expires_after_secs": 86400}})

        def _metadata(self, body: bytes) -> None:
            doc = json.loads(body or b"{}")
            mid = str(doc.get("id", ""))
            alt = (doc.get("metadata") or {}).get("alt_text", {}).get("text")
            if mid not in state.media:
                self._send(400, {"errors": [{"message": f"unknown media id {mid}"}], "title": "Invalid Request"})
                return
            if alt is None or len(alt) > 1000:
                self._send(400, {"errors": [{"message": "alt_text.text missing or over 1000"}]})
                return
            with state.lock:
                state.media[mid]["alt"] = alt
            self._send(200, {"data": {"id": mid, "associated_metadata": {"alt_text": {"text": alt}}}})

        def _create(self, body: bytes) -> None:
            try:
                doc = json.loads(body or b"{}")
            except json.JSONDecodeError:
                self._send(400, {"title": "Invalid Request", "detail": "body is not JSON"})
                return
            text = doc.get("text")
            reply = (doc.get("reply") or {}).get("in_reply_to_tweet_id")
            media_ids = [str(m) for m in (doc.get("media") or {}).get("media_ids", [])]
            if not isinstance(text, str) or not text:
                self._send(400, {"title": "Invalid Request", "detail": "text is required"})
                return
            with state.lock:
                if any(t.text == text for t in state.tweets):
                    dup = True
                else:
                    dup = False
                    parent = state.tweet(str(reply)) if reply else None
                    bad_media = [m for m in media_ids if m not in state.media]
                    if not (reply and parent is None) and not bad_media:
                        tid = str(state._next_id)
                        state._next_id += 1
                        state.tweets.append(FakeTweet(tid, text, str(reply) if reply else None, media_ids,
                                                      parent.conversation_id if parent else tid))
            if dup:
                self._send(403, {"detail": "You are not allowed to create a Tweet with duplicate content.",
                                 "type": "about:blank", "title": "Forbidden", "status": 403})
            elif reply and parent is None:
                self._send(403, {"detail": "You attempted to reply to a Tweet that is deleted or not visible "
                                           "to you.", "type": "about:blank", "title": "Forbidden", "status": 403})
            elif bad_media:
                self._send(400, {"errors": [{"message": "Your media IDs are invalid."}], "title": "Invalid Request"})
            else:
                self._send(201, {"data": {"id": tid, "text": text, "edit_history_tweet_ids": [tid]}})

        do_GET = _handle
        do_POST = _handle
        do_DELETE = _handle

    return Handler


def serve() -> tuple[XFakeServer, ThreadingHTTPServer]:
    """A fake on a free loopback port, served from a daemon thread (stop it with `shutdown()`)."""
    state = XFakeServer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, name="x-fake", daemon=True).start()
    return state, server
