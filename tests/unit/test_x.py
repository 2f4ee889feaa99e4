"""X adapter with `responses`: exact request shapes, OAuth 1.0a signatures over the configured host, errors."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlparse

import pytest
import requests
import responses
from oauthlib.oauth1.rfc5849 import signature, utils
from pydantic import SecretStr

from crossposter.platforms.base import (
    ImageUpload,
    MaybePostedError,
    OutgoingPost,
    PostRef,
    RateLimitedError,
    RejectedError,
    TransientError,
    UnauthorizedError,
    UploadedMedia,
)
from crossposter.platforms.x import XAdapter, from_config, readable_text

API = "https://api.x.test"
UPLOAD = "https://upload.x.test"
CK, CS, AT, ATS = "ck-consumer-key", "cs-consumer-secret", "at-1234-access-token", "ats-token-secret"


def _adapter(username: str = "me") -> XAdapter:
    return XAdapter(SecretStr(CK), SecretStr(CS), SecretStr(AT), SecretStr(ATS), api_base=API,
                    upload_base=UPLOAD, username=username)


def _image(alt: str = "a red square") -> ImageUpload:
    return ImageUpload(path=Path("/photos/IMG_0001 at home.png"), data=b"\x89PNG\r\n\x1a\nfake-bytes",
                       mime_type="image/png", width=40, height=30, alt=alt)


def _assert_oauth_signed(request, consumer_secret: str = CS, token_secret: str = ATS) -> None:
    """Recompute the HMAC-SHA1 signature over the URL actually requested: proves the rebased host was signed."""
    auth = request.headers["Authorization"]
    assert auth.startswith("OAuth ")
    params = [(k, utils.unescape(v)) for k, v in utils.parse_authorization_header(auth)]
    fields = dict(params)
    assert fields["oauth_consumer_key"] == CK
    assert fields["oauth_token"] == AT
    assert fields["oauth_signature_method"] == "HMAC-SHA1"
    query = parse_qsl(urlparse(request.url).query, keep_blank_values=True)
    signed = [(k, v) for k, v in params if k not in ("oauth_signature", "realm")] + query
    base = signature.signature_base_string(request.method, signature.base_string_uri(request.url),
                                           signature.normalize_parameters(signed))
    key = f"{utils.escape(consumer_secret)}&{utils.escape(token_secret)}".encode()
    expected = base64.b64encode(hmac.new(key, base.encode(), hashlib.sha1).digest()).decode()
    assert expected == fields["oauth_signature"]


def _created(tweet_id: str, text: str = "") -> dict:
    return {"data": {"id": tweet_id, "text": text, "edit_history_tweet_ids": [tweet_id]}}


# --------------------------------------------------------------------------- request shapes


@responses.activate
def test_root_and_reply_json_bodies() -> None:
    tweets = responses.post(f"{API}/2/tweets", status=201, json=_created("111"))
    adapter = _adapter()
    root = adapter.publish(OutgoingPost(text="Hello thread 🧵", index=0, thread_key="t"), None, None)
    assert root == PostRef(id="111", url="https://x.com/me/status/111")

    responses.replace(responses.POST, f"{API}/2/tweets", status=201, json=_created("112"))
    media = [UploadedMedia(id="9001", alt="a"), UploadedMedia(id="9002", alt="b")]
    reply = adapter.publish(OutgoingPost(text="second", index=1, thread_key="t", media=media), root, root)
    assert reply.id == "112"

    calls = [c for c in responses.calls if c.request.url == f"{API}/2/tweets"]
    assert len(calls) == 2
    assert json.loads(calls[0].request.body) == {"text": "Hello thread 🧵"}
    assert json.loads(calls[1].request.body) == {
        "text": "second",
        "reply": {"in_reply_to_tweet_id": "111"},
        "media": {"media_ids": ["9001", "9002"]},
    }
    for call in calls:
        assert call.request.headers["Content-Type"] == "application/json"
        _assert_oauth_signed(call.request)
    assert tweets.call_count == 1  # the replaced registration took the second call


@responses.activate
def test_image_upload_is_multipart_then_alt_text_metadata() -> None:
    upload = responses.post(f"{UPLOAD}/2/media/upload",
                            json={"data": {"id": "1880028106020515840", "media_key": "3_1880028106020515840",
                                           "size": 19, "expires_after_secs": 86400}})
    metadata = responses.post(f"{UPLOAD}/2/media/metadata",
                              json={"data": {"associated_metadata": {"alt_text": {"text": "a red square"}}}})
    media = _adapter().upload_image(_image())
    assert media.id == "1880028106020515840"
    assert media.alt == "a red square"

    req = upload.calls[0].request
    content_type = req.headers["Content-Type"]
    assert content_type.startswith("multipart/form-data; boundary=")
    boundary = content_type.split("boundary=", 1)[1].encode()
    parts = {}
    for chunk in req.body.split(b"--" + boundary):
        if b"Content-Disposition" not in chunk:
            continue
        head, _, value = chunk.partition(b"\r\n\r\n")
        name = head.split(b'name="', 1)[1].split(b'"', 1)[0].decode()
        parts[name] = (head, value[:-2])  # drop the CRLF before the next boundary
    assert set(parts) == {"media", "media_category", "media_type"}
    assert parts["media_category"][1] == b"tweet_image"
    assert parts["media_type"][1] == b"image/png"
    media_head, media_bytes = parts["media"]
    assert media_bytes == b"\x89PNG\r\n\x1a\nfake-bytes"
    assert b"Content-Type: image/png" in media_head
    assert b'filename="image.png"' in media_head  # the local file name is not sent
    _assert_oauth_signed(req)

    meta_req = metadata.calls[0].request
    assert json.loads(meta_req.body) == {"id": "1880028106020515840",
                                         "metadata": {"alt_text": {"text": "a red square"}}}
    _assert_oauth_signed(meta_req)


@responses.activate
def test_alt_text_cut_to_1000_and_empty_alt_skips_metadata() -> None:
    responses.post(f"{UPLOAD}/2/media/upload", json={"data": {"id": "5"}})
    metadata = responses.post(f"{UPLOAD}/2/media/metadata", json={"data": {}})
    adapter = _adapter()
    adapter.upload_image(_image(alt="é" * 1200))
    assert json.loads(metadata.calls[0].request.body)["metadata"]["alt_text"]["text"] == "é" * 1000
    adapter.upload_image(_image(alt=""))
    assert metadata.call_count == 1


@responses.activate
def test_login_learns_the_username_for_links() -> None:
    me = responses.get(f"{API}/2/users/me", json={"data": {"id": "2244994945", "name": "Dev", "username": "dev"}})
    responses.post(f"{API}/2/tweets", status=201, json=_created("7"))
    adapter = _adapter(username="")
    assert adapter.publish(OutgoingPost(text="x", index=0, thread_key="t"), None, None).url == \
        "https://x.com/i/web/status/7"
    adapter.login()
    assert adapter.username == "dev" and adapter.user_id == "2244994945"
    _assert_oauth_signed(me.calls[0].request)
    assert adapter.publish(OutgoingPost(text="y", index=0, thread_key="t"), None, None).url == \
        "https://x.com/dev/status/7"


# --------------------------------------------------------------------------- errors


@responses.activate
def test_rate_limited_with_epoch_reset() -> None:
    responses.post(f"{API}/2/tweets", status=429,
                   json={"title": "Too Many Requests", "detail": "Too Many Requests", "status": 429},
                   headers={"x-rate-limit-limit": "100", "x-rate-limit-remaining": "0",
                            "x-rate-limit-reset": "4102444800"})
    with pytest.raises(RateLimitedError) as info:
        _adapter().publish(OutgoingPost(text="x", index=0, thread_key="t"), None, None)
    assert info.value.reset_at == datetime(2100, 1, 1, tzinfo=UTC)
    assert len(responses.calls) == 1  # no waiting, no retry inside the adapter


@responses.activate
def test_daily_post_cap_reset_wins_over_the_15_minute_window() -> None:
    responses.post(f"{API}/2/tweets", status=429, json={"title": "Too Many Requests", "status": 429},
                   headers={"x-rate-limit-remaining": "95", "x-rate-limit-reset": "4102444800",
                            "x-user-limit-24hour-limit": "17", "x-user-limit-24hour-remaining": "0",
                            "x-user-limit-24hour-reset": "4102480800"})
    with pytest.raises(RateLimitedError) as info:
        _adapter().publish(OutgoingPost(text="x", index=0, thread_key="t"), None, None)
    assert info.value.reset_at == datetime(2100, 1, 1, 10, tzinfo=UTC)


@responses.activate
def test_duplicate_content_is_maybe_posted_and_not_retried() -> None:
    responses.post(f"{API}/2/tweets", status=403,
                   json={"detail": "You are not allowed to create a Tweet with duplicate content.",
                         "type": "about:blank", "title": "Forbidden", "status": 403})
    with pytest.raises(MaybePostedError) as info:
        _adapter().publish(OutgoingPost(text="again", index=0, thread_key="t"), None, None)
    assert "duplicate content" in str(info.value)
    assert len(responses.calls) == 1


@responses.activate
def test_other_forbidden_and_bad_request_are_rejected_with_xs_detail() -> None:
    responses.post(f"{API}/2/tweets", status=400,
                   json={"errors": [{"parameters": {"media.media_ids": ["1"]},
                                     "message": "Your media IDs are invalid."}],
                         "title": "Invalid Request", "detail": "One or more parameters to your request was invalid.",
                         "type": "https://api.twitter.com/2/problems/invalid-request"})
    with pytest.raises(RejectedError) as info:
        _adapter().publish(OutgoingPost(text="x", index=0, thread_key="t"), None, None)
    assert "Your media IDs are invalid." in str(info.value)
    assert "HTTP 400" in str(info.value)

    responses.replace(responses.POST, f"{API}/2/tweets", status=403,
                      json={"detail": "You are not permitted to reply to this post.", "status": 403})
    with pytest.raises(RejectedError, match="not permitted to reply"):
        _adapter().publish(OutgoingPost(text="x", index=1, thread_key="t"), PostRef("1", "u"), None)


@responses.activate
def test_read_only_app_is_unauthorized() -> None:
    responses.post(f"{API}/2/tweets", status=403, json={
        "title": "Unsupported Authentication", "status": 403,
        "detail": "Your client app is not configured with the appropriate oauth1 app permissions for this "
                  "endpoint."})
    with pytest.raises(UnauthorizedError, match="read and write"):
        _adapter().publish(OutgoingPost(text="x", index=0, thread_key="t"), None, None)


@responses.activate
def test_unauthorized() -> None:
    responses.get(f"{API}/2/users/me", status=401,
                  json={"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"})
    responses.post(f"{UPLOAD}/2/media/upload", status=401, json={"title": "Unauthorized", "status": 401})
    with pytest.raises(UnauthorizedError) as info:
        _adapter().login()
    assert "CROSSPOSTER_X_CONSUMER_KEY" in str(info.value)
    with pytest.raises(UnauthorizedError):
        _adapter().upload_image(_image())


@responses.activate
def test_server_and_network_errors_are_transient() -> None:
    responses.post(f"{API}/2/tweets", status=503, body="over capacity", headers={"retry-after": "12"})
    with pytest.raises(TransientError) as info:
        _adapter().publish(OutgoingPost(text="x", index=0, thread_key="t"), None, None)
    assert info.value.retry_after == 12.0

    responses.replace(responses.POST, f"{API}/2/tweets", body=requests.ConnectionError("refused"))
    with pytest.raises(TransientError, match="network error"):
        _adapter().publish(OutgoingPost(text="x", index=0, thread_key="t"), None, None)

    responses.post(f"{UPLOAD}/2/media/upload", body=requests.ReadTimeout("slow"))
    with pytest.raises(TransientError, match="timed out"):
        _adapter().upload_image(_image())


# --------------------------------------------------------------------------- reading back


@responses.activate
def test_lookup_expands_links_and_unescapes() -> None:
    responses.get(f"{API}/2/tweets/555", json={"data": {
        "id": "555", "author_id": "1", "edit_history_tweet_ids": ["555"],
        "text": "Tom &amp; Jerry https://t.co/abc see https://t.co/pic",
        "entities": {"urls": [
            {"start": 16, "end": 35, "url": "https://t.co/abc", "expanded_url": "https://example.com/a?b=1"},
            {"start": 40, "end": 59, "url": "https://t.co/pic", "expanded_url": "https://x.com/me/status/555/photo/1",
             "media_key": "3_1"},
        ]},
    }})
    found = _adapter().lookup("555")
    assert found is not None
    assert found.ref == PostRef(id="555", url="https://x.com/me/status/555")
    assert found.text == "Tom & Jerry https://example.com/a?b=1 see"
    _assert_oauth_signed(responses.calls[0].request)


@responses.activate
def test_lookup_of_a_deleted_post_is_none() -> None:
    responses.get(f"{API}/2/tweets/556", json={"errors": [{
        "value": "556", "detail": "Could not find tweet with id: [556].", "title": "Not Found Error",
        "resource_type": "tweet", "parameter": "id", "resource_id": "556",
        "type": "https://api.twitter.com/2/problems/resource-not-found"}]})
    assert _adapter().lookup("556") is None


@responses.activate
def test_find_recent_settles_a_duplicate() -> None:
    responses.get(f"{API}/2/users/me", json={"data": {"id": "42", "name": "Me", "username": "me"}})
    responses.get(f"{API}/2/users/42/tweets", json={"data": [
        {"id": "901", "text": "second post", "edit_history_tweet_ids": ["901"], "referenced_tweets": [{"type": "replied_to", "id": "800"}]},
        {"id": "900", "text": "second post", "edit_history_tweet_ids": ["900"], "referenced_tweets": [{"type": "replied_to", "id": "899"}]},
    ], "meta": {"result_count": 2}})
    adapter = _adapter()
    assert adapter.find_recent("second post", PostRef("899", "u")) == PostRef(
        id="900", url="https://x.com/me/status/900")
    assert adapter.find_recent("second post", None) is None
    assert adapter.find_recent("other text", PostRef("800", "u")) is None


def test_readable_text_without_entities() -> None:
    assert readable_text("a &lt;b&gt; c", None) == "a <b> c"


def test_from_config_needs_all_four_secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from crossposter.config import Config, ConfigError

    names = ("CROSSPOSTER_X_CONSUMER_KEY", "CROSSPOSTER_X_CONSUMER_SECRET", "CROSSPOSTER_X_ACCESS_TOKEN",
             "CROSSPOSTER_X_ACCESS_TOKEN_SECRET")
    for name in names:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)
    monkeypatch.setenv("CROSSPOSTER_X_CONSUMER_KEY", "abcd-key")
    cfg = Config(base_dir=tmp_path)
    cfg.platforms.x.api_base = "http://127.0.0.1:9/"
    with pytest.raises(ConfigError) as info:
        from_config(cfg)
    for name in names[1:]:
        assert name in str(info.value)
    for name in names[1:]:
        monkeypatch.setenv(name, f"value-of-{name}")
    adapter = from_config(cfg)
    assert adapter.api_base == "http://127.0.0.1:9"
    assert "abcd-key" not in repr(adapter)
