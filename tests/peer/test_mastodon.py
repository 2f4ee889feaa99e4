"""Mastodon adapter: against mastodon-mock for real round trips, with `responses` for what the mock cannot show."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import requests
import responses
from PIL import Image
from pydantic import SecretStr

from crossposter.images import prepare_image
from crossposter.platforms.base import (
    ImageUpload,
    Limits,
    OutgoingPost,
    PostRef,
    RateLimitedError,
    RejectedError,
    TransientError,
    UnauthorizedError,
)
from crossposter.platforms.mastodon import MastodonAdapter, from_config, idempotency_key

FAKE = "https://masto.example"


def _png(tmp_path: Path, name: str = "pic.png", size: tuple[int, int] = (120, 80)) -> Path:
    path = tmp_path / name
    Image.new("RGB", size, (30, 160, 90)).save(path, "PNG")
    return path


def _image(alt: str = "a green square") -> ImageUpload:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(buf, "PNG")
    return ImageUpload(path=Path("/nonexistent/red.png"), data=buf.getvalue(), mime_type="image/png",
                       width=40, height=30, alt=alt)


# --------------------------------------------------------------------------- against mastodon-mock


def _adapter(server, tmp_path: Path, **kw) -> MastodonAdapter:
    return MastodonAdapter(server.url, SecretStr(server.token), state_dir=tmp_path / "state", **kw)


def _get_status(server, status_id: str) -> dict:
    r = requests.get(f"{server.url}/api/v1/statuses/{status_id}",
                     headers={"Authorization": f"Bearer {server.token}"}, timeout=10)
    r.raise_for_status()
    return r.json()


def test_thread_with_image_is_a_reply_chain(mastodon_server, tmp_path: Path) -> None:
    adapter = _adapter(mastodon_server, tmp_path, visibility="unlisted", language="de")
    adapter.login()
    limits = adapter.limits()
    assert limits.max_characters == 500  # what mastodon-mock's /api/v2/instance says

    marker = uuid.uuid4().hex[:8]
    upload = prepare_image(_png(tmp_path), "Ein grünes Rechteck", max_bytes=limits.max_image_bytes)
    media = adapter.upload_image(upload)
    texts = [f"Erster Beitrag {marker}", f"Zweiter Beitrag {marker}", f"Dritter Beitrag {marker}"]
    refs: list[PostRef] = []
    for i, text in enumerate(texts):
        post = OutgoingPost(text=text, index=i, thread_key=f"threads.md::{marker}", language="de",
                            media=[media] if i == 1 else [])
        parent = refs[-1] if refs else None
        refs.append(adapter.publish(post, parent, refs[0] if refs else None))

    assert len({r.id for r in refs}) == 3
    statuses = [_get_status(mastodon_server, r.id) for r in refs]
    assert statuses[0]["in_reply_to_id"] in (None, "")
    assert str(statuses[1]["in_reply_to_id"]) == refs[0].id
    assert str(statuses[2]["in_reply_to_id"]) == refs[1].id
    for status, text, ref in zip(statuses, texts, refs, strict=True):
        assert text in status["content"]
        assert status["language"] == "de"
        assert status["visibility"] == "unlisted"
        assert ref.url == status["url"]
    assert [m["description"] for m in statuses[1]["media_attachments"]] == ["Ein grünes Rechteck"]
    assert statuses[0]["media_attachments"] == [] and statuses[2]["media_attachments"] == []

    found = adapter.lookup(refs[2].id)
    assert found is not None
    assert found.ref.id == refs[2].id
    assert found.text == texts[2]


def test_idempotency_key_makes_a_repeat_harmless(mastodon_server, tmp_path: Path) -> None:
    adapter = _adapter(mastodon_server, tmp_path)
    marker = uuid.uuid4().hex[:8]
    post = OutgoingPost(text=f"Only once {marker}", index=0, thread_key=f"a.md::{marker}")
    first = adapter.publish(post, None, None)
    again = adapter.publish(post, None, None)  # e.g. the retry after a timeout
    assert again.id == first.id

    # a different post (next index) is not swallowed by the key
    other = adapter.publish(OutgoingPost(text=f"Only once {marker}", index=1, thread_key=f"a.md::{marker}"),
                            first, first)
    assert other.id != first.id

    r = requests.get(f"{mastodon_server.url}/api/v1/accounts/{adapter._account_id}/statuses",
                     params={"limit": 40}, headers={"Authorization": f"Bearer {mastodon_server.token}"},
                     timeout=10)
    r.raise_for_status()
    mine = [s for s in r.json() if marker in s["content"]]
    assert sorted(str(s["id"]) for s in mine) == sorted([first.id, other.id])


def test_lookup_of_a_missing_status_is_none(mastodon_server, tmp_path: Path) -> None:
    assert _adapter(mastodon_server, tmp_path).lookup("9999999999999") is None


def test_wrong_token_is_unauthorized(mastodon_server, tmp_path: Path) -> None:
    adapter = MastodonAdapter(mastodon_server.url, SecretStr("not-the-token"), state_dir=tmp_path)
    with pytest.raises(UnauthorizedError) as info:
        adapter.login()
    assert "401" in str(info.value)
    assert "CROSSPOSTER_MASTODON_ACCESS_TOKEN" in str(info.value)


# --------------------------------------------------------------------------- with `responses`

ACCOUNT = {"id": "42", "username": "me", "acct": "me", "url": f"{FAKE}/@me"}


def _instance(max_chars: int = 1000, url_chars: int = 30, **media: int) -> dict:
    return {
        "domain": "masto.example",
        "version": "4.4.0",
        "configuration": {
            "statuses": {"max_characters": max_chars, "max_media_attachments": 4,
                         "characters_reserved_per_url": url_chars},
            "media_attachments": {"image_size_limit": 8_000_000, "image_matrix_limit": 33_177_600,
                                  "description_limit": 1500, **media},
        },
    }


def _status(status_id: str, text: str = "hi", reply_to: str | None = None) -> dict:
    return {"id": status_id, "uri": f"{FAKE}/users/me/statuses/{status_id}", "url": f"{FAKE}/@me/{status_id}",
            "content": f"<p>{text}</p>", "in_reply_to_id": reply_to, "visibility": "public",
            "language": "en", "created_at": "2026-11-28T10:00:00.000Z", "media_attachments": [],
            "account": ACCOUNT}


def _media(media_id: str, url: str | None) -> dict:
    return {"id": media_id, "type": "image", "url": url, "preview_url": url, "description": "a green square"}


def _form(request) -> dict[str, list[str]]:
    body = request.body or ""
    if isinstance(body, bytes):
        body = body.decode()
    return parse_qs(body)


def _fake(tmp_path: Path, **kw) -> MastodonAdapter:
    return MastodonAdapter(FAKE, SecretStr("tok-123"), state_dir=tmp_path / "state", **kw)


@responses.activate
def test_instance_limits_are_read_and_cached(tmp_path: Path) -> None:
    responses.get(f"{FAKE}/api/v2/instance/", json=_instance(1000, 30, description_limit=1200))
    limits = _fake(tmp_path).limits()
    assert limits == Limits(max_characters=1000, characters_reserved_per_url=30, max_images=4,
                            max_image_bytes=8_000_000, max_alt_text=1200, max_image_pixels=33_177_600)
    assert len(responses.calls) == 1
    cached = json.loads((tmp_path / "state" / "mastodon-instance-masto.example.json").read_text())
    assert cached["limits"]["max_characters"] == 1000

    # a new process (new adapter) uses the cache: no request at all
    again = _fake(tmp_path)
    assert again.limits() == limits
    assert again.image_matrix_limit == 33_177_600
    assert len(responses.calls) == 1


@responses.activate
def test_instance_without_v2_falls_back_to_v1_and_defaults(tmp_path: Path) -> None:
    responses.get(f"{FAKE}/api/v2/instance/", status=404, json={"error": "Record not found"})
    responses.get(f"{FAKE}/api/v1/instance/", json={"uri": "masto.example", "version": "3.5.0",
                                                    "max_toot_chars": 5000})
    limits = _fake(tmp_path).limits()
    assert limits.max_characters == 5000
    assert limits.characters_reserved_per_url == 23
    assert limits.max_alt_text == 1500


@responses.activate
def test_media_processing_202_then_ready(tmp_path: Path) -> None:
    responses.get(f"{FAKE}/api/v2/instance/", json=_instance())
    responses.get(f"{FAKE}/api/v1/accounts/verify_credentials", json=ACCOUNT)
    responses.post(f"{FAKE}/api/v2/media", status=202, json=_media("77", None))
    media_get = [
        responses.get(f"{FAKE}/api/v1/media/77", status=206, json=_media("77", None)),
    ]
    statuses = responses.post(f"{FAKE}/api/v1/statuses", json=_status("1001"))

    adapter = _fake(tmp_path)
    uploaded = adapter.upload_image(_image())
    assert uploaded.id == "77"
    assert uploaded.raw == {"processing": True}
    upload_req = next(c.request for c in responses.calls if c.request.url.endswith("/api/v2/media"))
    assert b'name="description"' in upload_req.body and b"a green square" in upload_req.body

    post = OutgoingPost(text="with a picture", index=0, thread_key="t::x", media=[uploaded])
    with pytest.raises(TransientError) as info:
        adapter.publish(post, None, None)
    assert info.value.retry_after == 2.0
    assert "still processing" in str(info.value)
    assert statuses.call_count == 0  # nothing posted while the image is not ready
    assert media_get[0].call_count == 1

    responses.replace(responses.GET, f"{FAKE}/api/v1/media/77", json=_media("77", f"{FAKE}/m/77.png"))
    ref = adapter.publish(post, None, None)
    assert ref == PostRef(id="1001", url=f"{FAKE}/@me/1001")
    assert statuses.call_count == 1
    assert _form(statuses.calls[0].request)["media_ids[]"] == ["77"]

    # once seen ready, the image is not asked about again
    adapter.publish(post, None, None)
    assert sum(1 for c in responses.calls if "/api/v1/media/77" in c.request.url) == 2


@responses.activate
def test_status_request_shape_and_stable_idempotency_key(tmp_path: Path) -> None:
    responses.get(f"{FAKE}/api/v1/accounts/verify_credentials", json=ACCOUNT)
    statuses = responses.post(f"{FAKE}/api/v1/statuses", json=_status("2002", reply_to="2001"))
    adapter = _fake(tmp_path, visibility="unlisted", language="fr")
    post = OutgoingPost(text="Bonjour 🌍", index=1, thread_key="t.md::Voyage", language="fr")
    parent = PostRef(id="2001", url=f"{FAKE}/@me/2001")
    adapter.publish(post, parent, parent)
    adapter.publish(post, parent, parent)

    first, second = (c.request for c in statuses.calls)
    form = _form(first)
    assert form["status"] == ["Bonjour 🌍"]
    assert form["in_reply_to_id"] == ["2001"]
    assert form["visibility"] == ["unlisted"]
    assert form["language"] == ["fr"]
    assert "media_ids[]" not in form
    key = first.headers["Idempotency-Key"]
    assert key == second.headers["Idempotency-Key"]
    assert key == idempotency_key(FAKE, "42", "t.md::Voyage", 1, "Bonjour 🌍", "2001")
    assert first.headers["Authorization"] == "Bearer tok-123"
    # every ingredient changes the key
    variants = {
        idempotency_key(FAKE, "42", "t.md::Voyage", 2, "Bonjour 🌍", "2001"),
        idempotency_key(FAKE, "42", "t.md::Voyage", 1, "Bonjour 🌎", "2001"),
        idempotency_key(FAKE, "43", "t.md::Voyage", 1, "Bonjour 🌍", "2001"),
        idempotency_key(FAKE, "42", "t.md::Other", 1, "Bonjour 🌍", "2001"),
        idempotency_key(FAKE, "42", "t.md::Voyage", 1, "Bonjour 🌍", "2000"),
        idempotency_key("https://other.example", "42", "t.md::Voyage", 1, "Bonjour 🌍", "2001"),
    }
    assert key not in variants and len(variants) == 6


@responses.activate
def test_validation_error_is_rejected_with_the_servers_text(tmp_path: Path) -> None:
    responses.get(f"{FAKE}/api/v1/accounts/verify_credentials", json=ACCOUNT)
    responses.post(f"{FAKE}/api/v1/statuses", status=422,
                   json={"error": "Validation failed: Text character limit of 1000 exceeded"})
    with pytest.raises(RejectedError) as info:
        _fake(tmp_path).publish(OutgoingPost(text="x" * 1200, index=0, thread_key="t"), None, None)
    assert "Validation failed: Text character limit of 1000 exceeded" in str(info.value)
    assert "422" in str(info.value)


@responses.activate
def test_rate_limit_with_iso_8601_reset(tmp_path: Path) -> None:
    responses.get(f"{FAKE}/api/v1/accounts/verify_credentials", json=ACCOUNT)
    responses.post(f"{FAKE}/api/v1/statuses", status=429, json={"error": "Too many requests"},
                   headers={"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0",
                            "X-RateLimit-Reset": "2099-01-02T03:04:05.000Z"})
    with pytest.raises(RateLimitedError) as info:
        _fake(tmp_path).publish(OutgoingPost(text="hello", index=0, thread_key="t"), None, None)
    assert info.value.reset_at == datetime(2099, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert "2099-01-02T03:04:05" in str(info.value)
    assert len(responses.calls) == 2  # thrown, not waited out and retried by Mastodon.py


@responses.activate
def test_unauthorized(tmp_path: Path) -> None:
    responses.get(f"{FAKE}/api/v1/accounts/verify_credentials", status=401,
                  json={"error": "The access token is invalid"})
    with pytest.raises(UnauthorizedError) as info:
        _fake(tmp_path).login()
    assert "The access token is invalid" in str(info.value)


@responses.activate
def test_server_error_is_transient_with_retry_after(tmp_path: Path) -> None:
    responses.get(f"{FAKE}/api/v1/accounts/verify_credentials", json=ACCOUNT)
    responses.post(f"{FAKE}/api/v1/statuses", status=503, body="<html>down</html>",
                   headers={"Retry-After": "30"})
    with pytest.raises(TransientError) as info:
        _fake(tmp_path).publish(OutgoingPost(text="hello", index=0, thread_key="t"), None, None)
    assert info.value.retry_after == 30.0
    assert "503" in str(info.value)


@responses.activate
def test_network_error_is_transient(tmp_path: Path) -> None:
    responses.get(f"{FAKE}/api/v1/accounts/verify_credentials",
                  body=requests.ConnectionError("connection refused"))
    with pytest.raises(TransientError, match="network error") as info:
        _fake(tmp_path).login()
    assert "connection refused" in str(info.value)  # requests' own error, the cause Mastodon.py wrapped


@responses.activate
def test_an_answer_that_is_not_json_is_described_not_quoted(tmp_path: Path) -> None:
    """Mastodon.py's error for it quotes the whole body in an undocumented args tuple; its cause (the JSON
    decoder's error, by Python's exception chaining) says what is wrong without the page."""
    responses.get(f"{FAKE}/api/v1/accounts/verify_credentials", json=ACCOUNT)
    responses.post(f"{FAKE}/api/v1/statuses", status=200, body="<html>" + "captive portal " * 100 + "</html>")
    with pytest.raises(TransientError) as info:
        _fake(tmp_path).publish(OutgoingPost(text="hello", index=0, thread_key="t"), None, None)
    assert "unexpected answer from the server (Expecting value: line 1 column 1" in str(info.value)
    assert "captive portal" not in str(info.value)


@responses.activate
def test_lookup_falls_back_to_html_without_source(tmp_path: Path) -> None:
    responses.get(f"{FAKE}/api/v1/statuses/5", json=_status("5", "a &amp; b<br>c"))
    responses.get(f"{FAKE}/api/v1/statuses/5/source", status=404, json={"error": "Record not found"})
    found = _fake(tmp_path).lookup("5")
    assert found is not None and found.text == "a & b\nc"


def test_from_config_reads_the_token_from_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    from crossposter.config import Config, ConfigError

    cfg = Config(base_dir=tmp_path)
    cfg.platforms.mastodon.instance = "social.example"
    cfg.platforms.mastodon.visibility = "private"
    monkeypatch.delenv("CROSSPOSTER_MASTODON_ACCESS_TOKEN", raising=False)
    monkeypatch.delenv("CROSSPOSTER_MASTODON_ACCESS_TOKEN_FILE", raising=False)
    with pytest.raises(ConfigError, match="CROSSPOSTER_MASTODON_ACCESS_TOKEN"):
        from_config(cfg)
    monkeypatch.setenv("CROSSPOSTER_MASTODON_ACCESS_TOKEN", "tok-xyz")
    adapter = from_config(cfg)
    assert adapter.instance == "https://social.example"
    assert adapter.visibility == "private"
    assert adapter.state_dir == tmp_path / ".crossposter"
    assert "tok-xyz" not in repr(adapter)


@responses.activate
def test_image_over_the_pixel_limit_is_scaled_down_before_upload(tmp_path: Path) -> None:
    responses.get(f"{FAKE}/api/v2/instance/", json=_instance(image_matrix_limit=10_000))
    upload = responses.post(f"{FAKE}/api/v2/media", json=_media("78", f"{FAKE}/m/78.png"))
    src = _png(tmp_path, "big.png", size=(300, 200))
    prepared = prepare_image(src, "big", max_bytes=8_000_000)
    assert prepared.width * prepared.height == 60_000

    media = _fake(tmp_path).upload_image(prepared)

    assert (media.width or 0) * (media.height or 0) <= 10_000
    body = upload.calls[0].request.body
    start = body.index(b"\x89PNG")
    with Image.open(io.BytesIO(body[start:])) as sent:
        assert sent.width * sent.height <= 10_000
        assert abs(sent.width - 1.5 * sent.height) <= 2


@responses.activate
def test_answers_are_plain_json_not_typed_entities(tmp_path: Path) -> None:
    """Mastodon.py's typed entities cost ~5 ms of CPU per request and the adapter only reads keys."""
    responses.get(f"{FAKE}/api/v1/accounts/verify_credentials", json=ACCOUNT)
    responses.post(f"{FAKE}/api/v1/statuses", json=_status("3003"))
    adapter = _fake(tmp_path)
    ref = adapter.publish(OutgoingPost(text="hi", index=0, thread_key="t"), None, None)
    assert ref == PostRef(id="3003", url=f"{FAKE}/@me/3003")
    status = adapter._call("reading it back", "status_post", "again")  # the same endpoint, answer as decoded
    assert type(status) is dict and status["created_at"] == "2026-11-28T10:00:00.000Z"


@responses.activate
def test_answers_stay_plain_json_with_the_pinned_mastodon_py(tmp_path: Path) -> None:
    """The one private hook left (Mastodon.py's per-answer casting, ~4 ms of CPU per status, 160 ms per
    backup page) must still take effect: a Mastodon.py upgrade that renames it fails here, not silently slow."""
    responses.get(f"{FAKE}/api/v1/statuses/7", json=_status("7"))
    answer = _fake(tmp_path).call("reading a post", "status", "7")
    assert type(answer) is dict and answer["id"] == "7"


@responses.activate
def test_error_text_comes_from_the_answer(tmp_path: Path) -> None:
    responses.get(f"{FAKE}/api/v1/statuses/8", status=422,
                  json={"error": "Validation failed", "error_description": "Text too long"})
    with pytest.raises(RejectedError) as info:
        _fake(tmp_path).call("reading a post", "status", "8")
    assert "HTTP 422: Validation failed: Text too long" in str(info.value)
