"""The Bluesky adapter against a real PDS on loopback (the `pds` fixture), plus error mapping with httpx mocks.

What is checked on the PDS is read back with plain XRPC calls (getRecord, listRecords, getBlob) from the
fixture, never through the adapter, so a bug in the adapter cannot hide itself.
"""

from __future__ import annotations

import json
import logging
import stat
import subprocess
import sys
import time
import traceback
from base64 import urlsafe_b64encode
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from PIL import Image
from pydantic import SecretStr

from crossposter.model import Facet
from crossposter.platforms.base import (
    ImageUpload,
    OutgoingPost,
    PostRef,
    RateLimitedError,
    RejectedError,
    TransientError,
    UnauthorizedError,
)
from crossposter.platforms.bluesky import BlueskyAdapter, from_config, new_tid, now_iso

LANG = "de"  # not the SDK's silent default 'en'


# --------------------------------------------------------------------------- helpers


def make_image(path: Path, size: tuple[int, int], color: tuple[int, int, int], fmt: str) -> Path:
    img = Image.new("RGB", size, color)
    for x in range(0, size[0], 7):  # some structure, so that two images never share bytes
        img.putpixel((x, x % size[1]), (255 - color[0], x % 256, 255 - color[2]))
    img.save(path, fmt)
    return path


def prepared(path: Path, alt: str) -> ImageUpload:
    """The production preparation when the images module is there (it strips metadata, fits the limit)."""
    try:
        from crossposter.images import prepare_image
    except ImportError:  # pragma: no cover - only while the images module is being written
        with Image.open(path) as img:
            w, h = img.size
            mime = Image.MIME[img.format]
        return ImageUpload(path=path, data=path.read_bytes(), mime_type=mime, width=w, height=h, alt=alt)
    return prepare_image(path, alt, max_bytes=1_000_000)


def facet_at(text: str, needle: str, kind: str, value: str) -> Facet:
    """A facet over the first `needle` in `text`, offsets computed independently of the adapter."""
    data = text.encode("utf-8")
    start = data.index(needle.encode("utf-8"))
    return Facet(byte_start=start, byte_end=start + len(needle.encode("utf-8")), kind=kind, value=value)  # type: ignore[arg-type]


def without_type(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k != "$type"}


def strong_refs(reply: dict) -> dict[str, tuple[str, str]]:
    """root/parent of a record's reply as (uri, cid), whether or not the writer added `$type`."""
    return {k: (reply[k]["uri"], reply[k]["cid"]) for k in ("root", "parent")} | (
        {"extra": sorted(set(reply) - {"root", "parent", "$type"})} if set(reply) - {"root", "parent", "$type"} else {})


def outgoing(text: str, index: int, **kw: object) -> OutgoingPost:
    return OutgoingPost(text=text, index=index, thread_key="thread.md::Test", language=LANG,
                        rkey=new_tid(), created_at=now_iso(), **kw)  # type: ignore[arg-type]


@pytest.fixture
def account(pds):
    return pds.create_account("alice")


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


def adapter_for(pds, account, state_dir: Path, password: str | None = None) -> BlueskyAdapter:
    handle, _did, real_password = account
    pw = real_password if password is None else password
    return BlueskyAdapter(handle=handle, password=SecretStr(pw), state_dir=state_dir, service=pds.url)


def forbid_password_login(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any createSession (password login) through the SDK fail the test."""
    from atproto import Client

    def refuse(self, *a, **k):
        raise AssertionError("createSession was called: the saved session was not reused")

    monkeypatch.setattr(Client, "_get_and_set_session", refuse)


# --------------------------------------------------------------------------- against the real PDS


def test_thread_with_images_facets_language_and_replies(pds, account, state_dir, tmp_path):
    handle, did, _ = account
    friend_handle, friend_did, _ = pds.create_account("bob")
    bsky = adapter_for(pds, account, state_dir)
    bsky.login()

    text0 = f"Grüße 🎉 aus #Köln: siehe die Projektseite, Hallo @{friend_handle} und @nobody-here.test!"
    facets0 = [
        facet_at(text0, "#Köln", "tag", "Köln"),
        facet_at(text0, "Projektseite", "link", "https://example.com/projekt?q=1&x=ü"),
        facet_at(text0, f"@{friend_handle}", "mention", friend_handle),
        facet_at(text0, "@nobody-here.test", "mention", "nobody-here.test"),  # does not resolve: dropped
    ]
    png = prepared(make_image(tmp_path / "wide.png", (64, 32), (10, 120, 200), "PNG"), "Ein breites Bild")
    jpg = prepared(make_image(tmp_path / "tall.jpg", (30, 90), (200, 50, 10), "JPEG"), "")
    media = [bsky.upload_image(png), bsky.upload_image(jpg)]
    posts = [
        outgoing(text0, 0, facets=facets0),
        outgoing("Zweiter Teil mit zwei Bildern.", 1, media=media),
        outgoing("Dritter Teil. Ende 🧵", 2),
    ]

    refs: list[PostRef] = []
    for post in posts:
        parent = refs[-1] if refs else None
        root = refs[0] if refs else None
        refs.append(bsky.publish(post, parent, root))

    records = pds.list_records(did)
    assert [r["uri"] for r in records] == [ref.id for ref in refs]
    by_uri = {r["uri"]: r for r in records}
    for post, ref in zip(posts, refs, strict=True):
        rec = by_uri[ref.id]
        assert rec["cid"] == ref.cid
        assert ref.id == f"at://{did}/app.bsky.feed.post/{post.rkey}"
        assert ref.url == f"https://bsky.app/profile/{handle}/post/{post.rkey}"
        value = rec["value"]
        assert value["$type"] == "app.bsky.feed.post"
        assert value["text"] == post.text
        assert value["langs"] == [LANG]
        assert value["createdAt"] == post.created_at

    # facets: byte ranges cut exactly the intended substrings; the unresolvable mention is gone
    v0 = by_uri[refs[0].id]["value"]
    raw = text0.encode("utf-8")
    cut = [(raw[f["index"]["byteStart"]:f["index"]["byteEnd"]].decode("utf-8"), f["features"][0]) for f in v0["facets"]]
    assert cut == [
        ("#Köln", {"$type": "app.bsky.richtext.facet#tag", "tag": "Köln"}),
        ("Projektseite", {"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com/projekt?q=1&x=ü"}),
        (f"@{friend_handle}", {"$type": "app.bsky.richtext.facet#mention", "did": friend_did}),
    ]
    assert "reply" not in v0 and "embed" not in v0

    # reply refs: root is always the first post, parent the one before
    v1, v2 = by_uri[refs[1].id]["value"], by_uri[refs[2].id]["value"]
    first = (refs[0].id, refs[0].cid)
    assert strong_refs(v1["reply"]) == {"root": first, "parent": first}
    assert strong_refs(v2["reply"]) == {"root": first, "parent": (refs[1].id, refs[1].cid)}

    # images: blobs stored byte for byte, alt text and aspect ratio in the record
    embed = v1["embed"]
    assert embed["$type"] == "app.bsky.embed.images"
    assert [img["alt"] for img in embed["images"]] == ["Ein breites Bild", ""]
    assert [without_type(img["aspectRatio"]) for img in embed["images"]] == [
        {"width": png.width, "height": png.height}, {"width": jpg.width, "height": jpg.height}]
    assert (png.width, png.height, jpg.width, jpg.height) == (64, 32, 30, 90)
    for img, upload in zip(embed["images"], (png, jpg), strict=True):
        assert img["image"]["mimeType"] == upload.mime_type
        assert img["image"]["size"] == len(upload.data)
        assert pds.get_blob(did, img["image"]["ref"]["$link"]) == upload.data

    # lookup reads the same post back by its recorded id
    found = bsky.lookup(refs[2].id)
    assert found is not None and found.text == posts[2].text and found.ref.cid == refs[2].cid


def test_repeating_a_publish_rewrites_the_same_record(pds, account, state_dir, tmp_path):
    """A retry after a lost answer (or a crash) reuses rkey/createdAt: still exactly one record, same cid."""
    _, did, _ = account
    bsky = adapter_for(pds, account, state_dir)
    image = prepared(make_image(tmp_path / "a.png", (40, 40), (0, 200, 0), "PNG"), "grün")
    post = outgoing("Nur einmal, bitte. #idempotent", 0, media=[bsky.upload_image(image)],
                    facets=[facet_at("Nur einmal, bitte. #idempotent", "#idempotent", "tag", "idempotent")])
    first = bsky.publish(post, None, None)
    again = bsky.publish(post, None, None)
    # after a crash the image is uploaded again by a new process: same bytes, same blob, same record
    fresh = adapter_for(pds, account, state_dir)
    post.media = [fresh.upload_image(image)]
    third = fresh.publish(post, None, None)

    assert again == first and third == first
    records = pds.list_records(did)
    assert len(records) == 1
    assert records[0]["uri"] == first.id and records[0]["cid"] == first.cid


def test_replies_work_when_the_parent_cid_was_not_recorded(pds, account, state_dir):
    _, did, _ = account
    bsky = adapter_for(pds, account, state_dir)
    root = bsky.publish(outgoing("Wurzel", 0), None, None)
    reply = bsky.publish(outgoing("Antwort", 1), PostRef(id=root.id, url=root.url), None)
    value = pds.get_record(reply.id)["value"]
    assert strong_refs(value["reply"]) == {"root": (root.id, root.cid), "parent": (root.id, root.cid)}


def test_session_is_saved_private_and_reused(pds, account, state_dir, monkeypatch):
    bsky = adapter_for(pds, account, state_dir)
    bsky.login()
    path = bsky.session_path
    assert path.parent == state_dir and path.name == f"bluesky-session-{account[0]}"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    assert account[2] not in path.read_text()

    forbid_password_login(monkeypatch)
    # a second process: wrong password on purpose, so only the saved session can make this work
    again = adapter_for(pds, account, state_dir, password="not-the-password")
    again.login()
    assert again.did == account[1]
    ref = again.publish(outgoing("Mit gespeicherter Sitzung", 0), None, None)
    assert pds.get_record(ref.id)["value"]["text"] == "Mit gespeicherter Sitzung"


def test_refreshed_tokens_are_saved_again(pds, account, state_dir, monkeypatch):
    bsky = adapter_for(pds, account, state_dir)
    bsky.login()
    before = bsky.session_path.read_text()
    # make the SDK consider the access token due for refresh on the next request
    monkeypatch.setattr(type(bsky._client), "_should_refresh_session", lambda self: True)
    assert bsky.lookup(f"at://{account[1]}/app.bsky.feed.post/{new_tid()}") is None
    monkeypatch.undo()
    after = bsky.session_path.read_text()
    assert after != before
    assert stat.S_IMODE(bsky.session_path.stat().st_mode) == 0o600

    # refresh tokens rotate: only the newly saved session still works, without a password login
    forbid_password_login(monkeypatch)
    again = adapter_for(pds, account, state_dir, password="wrong")
    again.login()
    assert again.did == account[1]


def test_a_refused_saved_session_falls_back_to_the_password(pds, account, state_dir):
    bsky = adapter_for(pds, account, state_dir)
    bsky.login()
    handle, did, access, refresh, endpoint = bsky.session_path.read_text().split(":::")
    head, payload, _sig = access.split(".")
    forged = f"{head}.{payload}.{urlsafe_b64encode(b'x' * 64).decode().rstrip('=')}"
    bsky.session_path.write_text(":::".join([handle, did, forged, refresh, endpoint]))

    again = adapter_for(pds, account, state_dir)
    again.login()  # getSession refuses the forged token; the password logs in again
    assert again.did == did
    assert forged not in again.session_path.read_text()
    assert again.publish(outgoing("Wieder da", 0), None, None).id.startswith(f"at://{did}/")


def test_wrong_password_is_unauthorized_and_never_shown(pds, account, state_dir, caplog):
    secret = "Wr0ng-Secret-" + account[2]
    caplog.set_level(logging.DEBUG)
    bsky = adapter_for(pds, account, state_dir, password=secret)
    with pytest.raises(UnauthorizedError) as info:
        bsky.login()
    err = info.value
    shown = "\n".join([str(err), repr(err), repr(bsky), caplog.text,
                       "".join(traceback.format_exception(err))])
    assert secret not in shown and account[2] not in shown
    assert "app password" in str(err) and account[0] in str(err)
    assert not bsky.session_path.exists()


def test_lookup_of_a_deleted_or_unknown_post_is_none(pds, account, state_dir):
    bsky = adapter_for(pds, account, state_dir)
    assert bsky.lookup(f"at://{account[1]}/app.bsky.feed.post/{new_tid()}") is None
    with pytest.raises(RejectedError):
        bsky.lookup("https://bsky.app/profile/x/post/1")


def test_invalid_record_is_rejected_with_the_reason(pds, account, state_dir):
    bsky = adapter_for(pds, account, state_dir)
    # 301 graphemes: the SDK does not count graphemes, the PDS does and refuses the record
    with pytest.raises(RejectedError) as info:
        bsky.publish(outgoing("ä" * 301, 0), None, None)
    assert "HTTP 400 InvalidRequest" in str(info.value) and "$.record.text" in str(info.value)
    # over the lexicon's 3000-character maxLength: refused by the SDK's model before any request
    with pytest.raises(RejectedError, match="not a valid record"):
        bsky.publish(outgoing("x" * 3001, 0), None, None)
    assert pds.list_records(account[1]) == []


def test_from_config_reads_handle_service_and_secret(pds, account, tmp_path, monkeypatch):
    from crossposter.config import Config, ConfigError

    cfg = Config.model_validate({
        "state_dir": "st", "base_dir": tmp_path, "language": LANG,
        "platforms": {"bluesky": {"handle": account[0], "service": pds.url}},
    })
    monkeypatch.delenv("CROSSPOSTER_BLUESKY_PASSWORD", raising=False)
    monkeypatch.delenv("CROSSPOSTER_BLUESKY_PASSWORD_FILE", raising=False)
    with pytest.raises(ConfigError, match="CROSSPOSTER_BLUESKY_PASSWORD"):
        from_config(cfg)
    monkeypatch.setenv("CROSSPOSTER_BLUESKY_PASSWORD", account[2])
    bsky = from_config(cfg)
    bsky.login()
    assert bsky.session_path == tmp_path / "st" / f"bluesky-session-{account[0]}"
    assert bsky.limits().max_characters == 300 and bsky.limits().max_images == 4
    assert account[2] not in repr(bsky)


def test_pds_listens_on_loopback_only(pds):
    port = pds.url.rsplit(":", 1)[1]
    out = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True, check=False).stdout
    if not out:
        pytest.skip("`ss` is not available to list listening sockets")
    local = [line.split()[3] for line in out.splitlines() if line.split()[3].endswith(f":{port}")]
    assert local == [f"127.0.0.1:{port}"]


# --------------------------------------------------------------------------- error mapping (httpx mocks)


def fake_jwt(exp: float) -> str:
    def part(obj: dict) -> str:
        return urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'ES256K'})}.{part({'exp': int(exp), 'sub': 'did:plc:fake', 'scope': 'com.atproto.appPass'})}.c2ln"


SESSION = {"handle": "me.test", "did": "did:plc:fake"}


def mocked(tmp_path: Path, answer, password: str = "pw") -> tuple[BlueskyAdapter, list[httpx.Request]]:
    """An adapter whose every request is answered by `answer(request)`; createSession always succeeds."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("com.atproto.server.createSession"):
            return httpx.Response(200, json={**SESSION, "accessJwt": fake_jwt(time.time() + 7200),
                                             "refreshJwt": fake_jwt(time.time() + 86400)})
        return answer(request)

    bsky = BlueskyAdapter("me.test", SecretStr(password), tmp_path / "state", "https://pds.invalid",
                          transport=httpx.MockTransport(handler))
    return bsky, seen


def xrpc_error(status: int, error: str, message: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"error": error, "message": message}, headers=headers)


def test_429_maps_to_rate_limited_with_the_reset_time(tmp_path):
    reset = int(time.time()) + 600
    bsky, _ = mocked(tmp_path, lambda r: xrpc_error(429, "RateLimitExceeded", "Rate Limit Exceeded",
                                                      {"ratelimit-reset": str(reset), "ratelimit-remaining": "0"}))
    with pytest.raises(RateLimitedError) as info:
        bsky.publish(outgoing("hi", 0), None, None)
    assert info.value.reset_at == datetime.fromtimestamp(reset, tz=UTC)
    assert info.value.reset_at.tzinfo is not None


def test_429_without_reset_header_uses_retry_after(tmp_path):
    bsky, _ = mocked(tmp_path, lambda r: xrpc_error(429, "RateLimitExceeded", "slow down", {"retry-after": "120"}))
    with pytest.raises(RateLimitedError) as info:
        bsky.publish(outgoing("hi", 0), None, None)
    delta = (info.value.reset_at - datetime.now(UTC)).total_seconds()
    assert 110 < delta <= 120


@pytest.mark.parametrize(("status", "headers", "retry_after"), [
    (500, {}, None), (502, {}, None), (503, {"retry-after": "7"}, 7.0), (504, {"Retry-After": "0"}, 0.0)])
def test_5xx_maps_to_transient(tmp_path, status, headers, retry_after):
    bsky, _ = mocked(tmp_path, lambda r: xrpc_error(status, "InternalServerError", "boom", headers))
    with pytest.raises(TransientError) as info:
        bsky.publish(outgoing("hi", 0), None, None)
    assert info.value.retry_after == retry_after
    assert str(status) in str(info.value)


@pytest.mark.parametrize("exc", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow")])
def test_network_failures_map_to_transient(tmp_path, exc):
    def answer(request):
        raise exc

    bsky, _ = mocked(tmp_path, answer)
    with pytest.raises(TransientError):
        bsky.publish(outgoing("hi", 0), None, None)


def test_400_invalid_request_is_rejected_with_the_server_message(tmp_path):
    bsky, _ = mocked(tmp_path, lambda r: xrpc_error(400, "InvalidRequest", "Invalid app.bsky.feed.post record: "
                                                                          "Record/text must not be longer than 300 graphemes"))
    with pytest.raises(RejectedError) as info:
        bsky.publish(outgoing("hi", 0), None, None)
    assert "must not be longer than 300 graphemes" in str(info.value)
    assert not isinstance(info.value, TransientError)


@pytest.mark.parametrize(("status", "error"), [(401, "AuthenticationRequired"), (400, "ExpiredToken"),
                                               (403, "AccountTakedown")])
def test_token_problems_map_to_unauthorized(tmp_path, status, error):
    bsky, _ = mocked(tmp_path, lambda r: xrpc_error(status, error, "no"))
    with pytest.raises(UnauthorizedError):
        bsky.publish(outgoing("hi", 0), None, None)


def test_failed_login_never_reveals_the_password(tmp_path, caplog):
    secret = "S3cr3t-app-pass-7f2d"
    caplog.set_level(logging.DEBUG)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return xrpc_error(401, "AuthenticationRequired", "Invalid identifier or password")

    bsky = BlueskyAdapter("me.test", SecretStr(secret), tmp_path / "state", "https://pds.invalid",
                          transport=httpx.MockTransport(handler))
    with pytest.raises(UnauthorizedError) as info:
        bsky.login()
    assert secret.encode() in seen[0].content  # it was really sent, so the checks below mean something
    shown = "\n".join([str(info.value), repr(info.value), repr(bsky), caplog.text,
                       "".join(traceback.format_exception(info.value))])
    assert secret not in shown
    assert "Invalid identifier or password" in str(info.value)


def test_login_without_password_or_session_says_which_variable(tmp_path):
    bsky = BlueskyAdapter("me.test", None, tmp_path / "state", "https://pds.invalid",
                          transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    with pytest.raises(UnauthorizedError, match="CROSSPOSTER_BLUESKY_PASSWORD"):
        bsky.login()


def test_saved_session_is_not_thrown_away_on_a_server_outage(tmp_path):
    """A 503 while checking the saved session must not trigger a password login (createSession is scarce)."""
    bsky, seen = mocked(tmp_path, lambda r: httpx.Response(200, json={}))
    bsky._save_session(":::".join(["me.test", "did:plc:fake", fake_jwt(time.time() + 7200),
                                   fake_jwt(time.time() + 86400), "https://pds.invalid"]))
    outage, seen = mocked(tmp_path, lambda r: xrpc_error(503, "Unavailable", "down"))
    with pytest.raises(TransientError):
        outage.login()
    assert not any(r.url.path.endswith("createSession") for r in seen)
    assert outage.session_path.exists()


def test_publish_checks_before_any_request(tmp_path):
    bsky, seen = mocked(tmp_path, lambda r: httpx.Response(200, json={}))
    post = outgoing("kurz", 0, facets=[Facet(0, 99, "link", "https://example.com")])
    with pytest.raises(RejectedError, match="outside the text"):
        bsky.publish(post, None, None)
    assert not any("putRecord" in r.url.path for r in seen)
    with pytest.raises(ValueError, match="rkey"):
        bsky.publish(OutgoingPost(text="x", index=0, thread_key="k"), None, None)
    big = ImageUpload(path=Path("big.jpg"), data=b"\xff" * 1_000_001, mime_type="image/jpeg", width=1, height=1,
                      alt="")
    with pytest.raises(RejectedError, match="1000000"):
        bsky.upload_image(big)


# --------------------------------------------------------------------------- helpers for the publisher


def test_new_tid_is_a_valid_increasing_record_key():
    from atproto_client.models.string_formats import TID_RE

    tids = [new_tid() for _ in range(2000)]
    assert all(TID_RE.match(t) for t in tids)
    assert tids == sorted(tids) and len(set(tids)) == len(tids)
    # the timestamp part is "now": decode the top 53 bits back to microseconds
    alphabet = "234567abcdefghijklmnopqrstuvwxyz"
    value = 0
    for ch in tids[0]:
        value = value * 32 + alphabet.index(ch)
    assert abs((value >> 10) / 1e6 - time.time()) < 60


def test_now_iso_is_utc_with_milliseconds():
    stamp = now_iso()
    assert stamp.endswith("Z") and len(stamp) == len("2026-01-01T00:00:00.000Z")
    parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert abs((parsed - datetime.now(UTC)).total_seconds()) < 60


def test_importing_the_adapter_does_not_import_the_sdk():
    code = "import sys, crossposter.platforms.bluesky; print('atproto' in sys.modules or 'atproto_client' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_clients_share_one_verifying_tls_context() -> None:
    """Loading the CA bundle for every client cost ~50 ms per log-in; sharing must not turn verification off."""
    import ssl

    from crossposter.platforms.bluesky import ssl_context

    ctx = ssl_context()
    assert ctx is ssl_context()
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.cert_store_stats()["x509_ca"] > 0  # a CA bundle is loaded
