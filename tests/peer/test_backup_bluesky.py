"""The Bluesky backup reader against the real local PDS (the `pds` fixture), and its offset conversion as properties.

Posts are written with the atproto SDK (its `TextBuilder` computes the facets' byte offsets, independently
of the reader); records no client of ours would write are created with plain XRPC and `validate: false`.
Expected values come from the test's own inputs, never from the reader.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from pydantic import SecretStr

from crossposter.backup.bluesky import (
    BlueskyReader,
    byte_to_str_offsets,
    media_filename,
    parse_created_at,
    post_from_record,
    spans_from_facets,
    tid_before,
    tid_time,
    web_url,
)
from crossposter.backup.source import LinkSpan, MentionSpan, Skipped, SourceMedia, SourcePost, build_threads
from crossposter.platforms.base import RateLimitedError, RejectedError, TransientError, UnauthorizedError
from crossposter.platforms.bluesky import BlueskyAdapter

POST = "app.bsky.feed.post"
PREFIX = "👩\u200d👩\u200d👧\u200d👦 家族と 🇩🇪 Grüße — siehe "  # ZWJ family, CJK, flag, umlaut, em dash
SHOWN = "example.com/ein-sehr-la…"
FULL_URL = "https://example.com/ein-sehr-langer-pfad/zum/artikel?x=1&y=(2)"


# --------------------------------------------------------------------------- helpers


def png(color: tuple[int, int, int], size: tuple[int, int] = (7, 5)) -> bytes:
    img = Image.new("RGB", size, color)
    img.putpixel((1, 1), (color[2], color[0], color[1]))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


#: Enough of an MP4 (an `ftyp` box and a `free` box) for the PDS to take it as video/mp4.
FAKE_MP4 = (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
            + b"\x00\x00\x00\x10free" + bytes(range(8)))


def sdk_client(pds, handle: str, password: str):
    from atproto import Client

    client = Client(base_url=pds.url)
    client.login(handle, password, fetch_bsky_profile=False)
    return client


def send(client, did: str, text, *, reply=None, embed=None, langs=("de",)):
    return client.send_post(text, profile_identify=did, reply_to=reply, embed=embed, langs=list(langs))


def reply_ref(root, parent):
    from atproto import models

    return models.AppBskyFeedPost.ReplyRef(root=models.create_strong_ref(root), parent=models.create_strong_ref(parent))


def upload(client, data: bytes):
    return client.upload_blob(data).blob


def rkey(uri: str) -> str:
    return uri.rsplit("/", 1)[-1]


def reader_for(pds, account, state_dir: Path, **kw: Any) -> BlueskyReader:
    handle, _did, password = account
    adapter = BlueskyAdapter(handle=handle, password=SecretStr(password), state_dir=state_dir, service=pds.url,
                             transport=kw.pop("transport", None))
    return BlueskyReader(adapter=adapter, **kw)


def raw_token(pds, handle: str, password: str) -> str:
    r = pds.xrpc_post("com.atproto.server.createSession", {"identifier": handle, "password": password})
    assert r.status_code == 200, r.text
    return r.json()["accessJwt"]


def raw_create(pds, token: str, did: str, record: dict, *, validate: bool = False) -> str:
    body = {"repo": did, "collection": POST, "record": {"$type": POST, **record}, "validate": validate}
    r = pds.xrpc_post("com.atproto.repo.createRecord", body, token)
    assert r.status_code == 200, r.text
    return r.json()["uri"]


def utf8_offset(text: str, needle: str) -> tuple[int, int]:
    start = text.encode("utf-8").index(needle.encode("utf-8"))
    return start, start + len(needle.encode("utf-8"))


class Proxy(httpx.BaseTransport):
    """The real PDS, except where `fault(request, n)` answers instead (n: how many listRecords so far)."""

    def __init__(self, fault) -> None:
        self.real = httpx.HTTPTransport()
        self.fault = fault
        self.list_calls = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/com.atproto.repo.listRecords"):
            self.list_calls += 1
        answer = self.fault(request, self.list_calls)
        return answer if answer is not None else self.real.handle_request(request)


# --------------------------------------------------------------------------- the scene


@dataclass
class Scene:
    reader: BlueskyReader
    alice: tuple[str, str, str]
    bob: tuple[str, str, str]
    uris: dict[str, str] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)  # cid -> uploaded bytes
    posts: dict[str, SourcePost] = field(default_factory=dict)  # name -> what the reader returned
    result: Any = None


@pytest.fixture(scope="module")
def scene(pds, tmp_path_factory) -> Scene:
    from atproto import client_utils, models

    alice, bob = pds.create_account("alice"), pds.create_account("bob")
    a, b = sdk_client(pds, alice[0], alice[2]), sdk_client(pds, bob[0], bob[2])
    adid, bdid = alice[1], bob[1]
    s = Scene(reader=reader_for(pds, alice, tmp_path_factory.mktemp("state")), alice=alice, bob=bob)

    def blob(data: bytes):
        ref = upload(a, data)
        s.blobs[str(ref.cid)] = data
        return ref

    made: dict[str, Any] = {}

    def post(name: str, text, **kw: Any):
        made[name] = send(a, adid, text, **kw)
        s.uris[name] = made[name].uri
        s.texts[name] = text.build_text() if isinstance(text, client_utils.TextBuilder) else text

    made["b1"] = send(b, bdid, "Bobs Beitrag, auf den geantwortet und der zitiert wird")
    s.uris["b1"] = made["b1"].uri

    t1 = (client_utils.TextBuilder().text(PREFIX).link(SHOWN, FULL_URL).text(" hallo ")
          .mention(f"@{bob[0]}", bdid).text(" und ").tag("#日本語", "日本語").text(" ✨\nzweite Zeile"))
    images = models.AppBskyEmbedImages.Main(images=[
        models.AppBskyEmbedImages.Image(alt="Ein rotes Quadrat 🟥", image=blob(png((200, 10, 10)))),
        models.AppBskyEmbedImages.Image(alt="", image=blob(png((10, 200, 10)))),
    ])
    post("t1", t1, embed=images)
    post("t2", "Zweiter Teil, mit Bild", reply=reply_ref(made["t1"], made["t1"]),
         embed=models.AppBskyEmbedImages.Main(images=[models.AppBskyEmbedImages.Image(
             alt="Alt mit\nZeilenumbruch & <b>", image=blob(png((10, 10, 200))))]))
    post("t3", "Dritter Teil.", reply=reply_ref(made["t1"], made["t2"]))
    post("r1", "Antwort an Bob", reply=reply_ref(made["b1"], made["b1"]))
    post("r2", "Nachtrag zur Antwort an Bob", reply=reply_ref(made["b1"], made["r1"]))
    post("q1", "Zitat von Bob", embed=models.AppBskyEmbedRecord.Main(record=models.create_strong_ref(made["b1"])))
    post("c1", "Schau dir das an", embed=models.AppBskyEmbedExternal.Main(external=models.AppBskyEmbedExternal.External(
        uri="https://example.org/card?a=1", title="Karte", description="Beschreibung")))
    post("c2", client_utils.TextBuilder().text("Artikel: ").link("example.org/artikel", "https://example.org/artikel"),
         embed=models.AppBskyEmbedExternal.Main(external=models.AppBskyEmbedExternal.External(
             uri="https://example.org/artikel", title="Artikel", description="")))
    post("qm", "Mit Bild zitiert", embed=models.AppBskyEmbedRecordWithMedia.Main(
        record=models.AppBskyEmbedRecord.Main(record=models.create_strong_ref(made["t1"])),
        media=models.AppBskyEmbedImages.Main(images=[models.AppBskyEmbedImages.Image(
            alt="zitiertes Bild", image=blob(png((90, 90, 90))))])))
    video_ref = a.com.atproto.repo.upload_blob(FAKE_MP4, headers={"Content-Type": "video/mp4"}).blob
    s.blobs[str(video_ref.cid)] = FAKE_MP4
    post("v1", "Ein Video", embed=models.AppBskyEmbedVideo.Main(video=video_ref, alt="Wellen am Strand"),
         langs=("en", "de"))

    s.result = s.reader.read()
    by_id = {p.id: p for p in s.result.posts}
    s.posts = {name: by_id[uri] for name, uri in s.uris.items() if uri in by_id}
    return s


# --------------------------------------------------------------------------- reading the scene


def test_every_own_post_is_read_once_with_its_exact_text(scene, pds):
    own = [name for name in scene.uris if name != "b1"]
    assert sorted(p.id for p in scene.result.posts) == sorted(scene.uris[n] for n in own)
    assert "b1" not in scene.posts  # another account's post is never read
    for name in own:
        p = scene.posts[name]
        record = pds.get_record(scene.uris[name])
        assert p.text == scene.texts[name]
        assert p.platform == "bluesky"
        assert p.cid == record["cid"]
        assert p.url == f"https://bsky.app/profile/{scene.alice[0]}/post/{rkey(p.id)}"
        assert p.created_at == datetime.fromisoformat(record["value"]["createdAt"])
        assert p.created_at.tzinfo is not None
        assert p.notes == ()
        assert p.repost is False
    assert scene.posts["t1"].language == "de" and scene.posts["v1"].language == "en"
    assert scene.result.skipped.counts == {}
    assert scene.result.cursor == f"at://{scene.alice[1]}/{POST}/{rkey(scene.uris['v1'])}"


def test_facets_become_spans_over_the_text_in_code_points(scene):
    p = scene.posts["t1"]
    start = len(PREFIX)  # code points, not the facet's UTF-8 bytes
    assert p.links == (LinkSpan(start, start + len(SHOWN), FULL_URL),)
    assert p.text[p.links[0].start:p.links[0].end] == SHOWN
    handle, did, _ = scene.bob
    m_start = p.text.index(f"@{handle}")
    assert p.mentions == (MentionSpan(m_start, m_start + 1 + len(handle), handle,
                                      f"https://bsky.app/profile/{did}", did),)
    assert "#日本語" in p.text  # the tag is text; no span for it


def test_images_video_and_alt_text(scene):
    t1 = scene.posts["t1"]
    assert [(m.kind, m.alt, m.mime_type) for m in t1.media] == [
        ("image", "Ein rotes Quadrat 🟥", "image/png"), ("image", "", "image/png")]
    key = rkey(t1.id)
    assert [m.filename for m in t1.media] == [f"{key}-0.png", f"{key}-1.png"]
    assert [m.size for m in t1.media] == [len(scene.blobs[m.fetch]) for m in t1.media]
    assert [m.alt for m in scene.posts["t2"].media] == ["Alt mit\nZeilenumbruch & <b>"]
    video = scene.posts["v1"].media
    assert [(m.kind, m.alt, m.mime_type, m.filename) for m in video] == [
        ("video", "Wellen am Strand", "video/mp4", f"{rkey(scene.uris['v1'])}-0.mp4")]
    assert scene.posts["v1"].attachments == ()


def test_media_bytes_are_exactly_the_uploaded_bytes(scene, pds):
    media = [m for p in scene.result.posts for m in p.media]
    assert len(media) == 5
    for m in media:
        data = scene.reader.fetch_media(m)
        assert data == scene.blobs[m.fetch]
        assert data == pds.get_blob(scene.alice[1], m.fetch)


def test_quotes_and_link_cards_are_kept_as_links(scene):
    bob_did = scene.bob[1]
    assert scene.posts["q1"].attachments == (f"https://bsky.app/profile/{bob_did}/post/{rkey(scene.uris['b1'])}",)
    assert scene.posts["c1"].attachments == ("https://example.org/card?a=1",)
    assert scene.posts["c2"].attachments == ()  # the card's URL is already the text's link
    assert scene.posts["c2"].links == (LinkSpan(9, 9 + len("example.org/artikel"), "https://example.org/artikel"),)
    qm = scene.posts["qm"]
    assert qm.attachments == (f"https://bsky.app/profile/{scene.alice[1]}/post/{rkey(scene.uris['t1'])}",)
    assert [(m.kind, m.alt) for m in qm.media] == [("image", "zitiertes Bild")]


def test_replies_and_the_threads_they_make(scene):
    u, p = scene.uris, scene.posts
    assert (p["t1"].reply_to, p["t1"].root_id, p["t1"].reply_to_self) == (None, None, False)
    assert (p["t2"].reply_to, p["t2"].root_id, p["t2"].reply_to_self) == (u["t1"], u["t1"], True)
    assert (p["t3"].reply_to, p["t3"].root_id, p["t3"].reply_to_self) == (u["t2"], u["t1"], True)
    assert (p["r1"].reply_to, p["r1"].root_id, p["r1"].reply_to_self) == (u["b1"], u["b1"], False)
    # a reply to oneself inside somebody else's conversation: not the person's thread, even when the
    # first reply is outside the window an incremental read sees (then nothing else would tell)
    assert (p["r2"].reply_to, p["r2"].root_id, p["r2"].reply_to_self) == (u["r1"], u["b1"], False)
    alone = build_threads([p["r2"]], Skipped())
    assert alone == []

    skipped = scene.result.skipped
    threads = build_threads(scene.result.posts, skipped)
    assert [t.ids for t in threads] == [[u["t1"], u["t2"], u["t3"]], [u["q1"]], [u["c1"]], [u["c2"]],
                                        [u["qm"]], [u["v1"]]]
    assert skipped.counts == {"replies to other accounts": 2}


def test_small_pages_read_the_same_posts(scene):
    pages: list[int] = []
    small = BlueskyReader(adapter=scene.reader._adapter, page_size=3)
    result = small.read(on_page=pages.append)
    n = len(scene.result.posts)  # 10: pages of 3, 3, 3, 1
    assert [p.id for p in result.posts] == [p.id for p in scene.result.posts]
    assert pages == [3, 3, 3, 1] and n == 10
    assert result.requests == 4
    assert result.cursor == scene.result.cursor


# --------------------------------------------------------------------------- paging, cursor, since


def test_more_than_one_page_of_a_hundred(pds, tmp_path):
    handle, did, password = account = pds.create_account("many")
    token = raw_token(pds, handle, password)
    texts = [f"Beitrag {i:03d} 🙂" for i in range(150)]
    from crossposter.platforms.bluesky import new_tid

    writes = [{"$type": "com.atproto.repo.applyWrites#create", "collection": POST, "rkey": new_tid(),
               "value": {"$type": POST, "text": t, "createdAt": "2024-05-01T10:00:00.000Z"}} for t in texts]
    r = pds.xrpc_post("com.atproto.repo.applyWrites", {"repo": did, "writes": writes}, token)
    assert r.status_code == 200, r.text
    pages: list[int] = []
    result = reader_for(pds, account, tmp_path / "st").read(on_page=pages.append)
    assert [p.text for p in result.posts] == texts  # oldest first, by record key
    assert pages == [100, 50] and result.requests == 2
    assert result.cursor == f"at://{did}/{POST}/{writes[-1]['rkey']}"


def test_cursor_returns_only_newer_posts_and_late_self_replies(pds, tmp_path):
    account = pds.create_account("cursor")
    handle, did, password = account
    client = sdk_client(pds, handle, password)
    reader = reader_for(pds, account, tmp_path / "st")
    old1 = send(client, did, "Alter Faden, Teil 1")
    old2 = send(client, did, "Alter Faden, Teil 2", reply=reply_ref(old1, old1))
    first = reader.read()
    assert [p.id for p in first.posts] == [old1.uri, old2.uri]

    again = reader.read(cursor=first.cursor)
    assert again.posts == [] and again.cursor == first.cursor and again.requests == 1

    new = send(client, did, "Neuer Beitrag")
    late = send(client, did, "Später Nachtrag zum alten Faden", reply=reply_ref(old1, old2))
    second = reader.read(cursor=first.cursor)
    assert [p.id for p in second.posts] == [new.uri, late.uri]
    late_post = second.posts[1]
    assert (late_post.reply_to, late_post.root_id, late_post.reply_to_self) == (old2.uri, old1.uri, True)
    assert second.cursor == f"at://{did}/{POST}/{rkey(late.uri)}"
    assert reader.read(cursor=second.cursor).posts == []
    # a bare record key is the same cursor
    assert [p.id for p in reader.read(cursor=rkey(first.cursor)).posts] == [new.uri, late.uri]


def test_since_starts_at_the_date_and_skips_backdated_posts(pds, tmp_path):
    account = pds.create_account("since")
    handle, did, password = account
    client = sdk_client(pds, handle, password)
    send(client, did, "vor dem Stichtag")
    time.sleep(0.05)
    since = datetime.now(UTC)
    time.sleep(0.05)
    after = send(client, did, "nach dem Stichtag")
    token = raw_token(pds, handle, password)
    raw_create(pds, token, did, {"text": "rückdatiert", "createdAt": "2019-01-01T00:00:00Z"}, validate=True)
    result = reader_for(pds, account, tmp_path / "st").read(since=since)
    assert [p.id for p in result.posts] == [after.uri]
    assert result.skipped.counts == {"posts dated before --since": 1}
    assert result.requests == 1
    with pytest.raises(ValueError, match="aware"):
        reader_for(pds, account, tmp_path / "st").read(since=since.replace(tzinfo=None))


def test_cursor_of_another_account_reads_everything_and_garbage_is_an_error(pds, tmp_path, caplog):
    account = pds.create_account("other")
    handle, did, password = account
    client = sdk_client(pds, handle, password)
    one = send(client, did, "eins")
    reader = reader_for(pds, account, tmp_path / "st")
    foreign = f"at://did:plc:someoneelse234567abcd/{POST}/3zzzzzzzzzzzz"
    assert [p.id for p in reader.read(cursor=foreign).posts] == [one.uri]
    assert "belongs to did:plc:someoneelse" in caplog.text
    for bad in ("", "../etc", "at://x/y", "é"):
        with pytest.raises(ValueError, match="not a Bluesky backup cursor"):
            reader.read(cursor=bad)


# --------------------------------------------------------------------------- failures


def test_a_record_the_reader_fails_on_is_counted_and_the_rest_is_read(pds, tmp_path, monkeypatch, caplog):
    import crossposter.backup.bluesky as module

    account = pds.create_account("bug")
    handle, did, password = account
    client = sdk_client(pds, handle, password)
    first, second = send(client, did, "eins").uri, send(client, did, "zwei").uri
    real = module.post_from_record

    def flaky(record, *a):
        if record["uri"] == first:
            raise KeyError("a bug")
        return real(record, *a)

    monkeypatch.setattr(module, "post_from_record", flaky)
    result = reader_for(pds, account, tmp_path / "st").read()
    assert [p.id for p in result.posts] == [second]
    assert result.skipped.counts == {"unreadable records": 1}
    assert result.cursor == f"at://{did}/{POST}/{rkey(second)}"
    assert "please report" in caplog.text


def test_rate_limit_in_the_middle_is_resumable_without_gaps_or_duplicates(pds, tmp_path):
    account = pds.create_account("limited")
    handle, did, password = account
    client = sdk_client(pds, handle, password)
    uris = [send(client, did, f"Nummer {i}").uri for i in range(5)]
    reset = int(time.time()) + 120

    def fault(request: httpx.Request, calls: int) -> httpx.Response | None:
        if request.url.path.endswith("listRecords") and calls == 2:
            return httpx.Response(429, headers={"ratelimit-reset": str(reset), "content-type": "application/json"},
                                  json={"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"})
        return None

    reader = reader_for(pds, account, tmp_path / "st", transport=Proxy(fault), page_size=2)
    with pytest.raises(RateLimitedError) as info:
        reader.read()
    assert info.value.reset_at == datetime.fromtimestamp(reset, UTC)
    partial = info.value.partial
    assert [p.id for p in partial.posts] == uris[:2] and partial.requests == 1
    rest = reader.read(cursor=partial.cursor)
    assert [p.id for p in rest.posts] == uris[2:]

    # a failure on the first page has nothing to resume from
    reader = reader_for(pds, account, tmp_path / "st2", page_size=2,
                        transport=Proxy(lambda r, n: fault(r, n + 1)))
    with pytest.raises(RateLimitedError) as info:
        reader.read()
    assert not hasattr(info.value, "partial")


@pytest.mark.parametrize("answer, kind", [
    (lambda: httpx.Response(502, text="bad gateway"), TransientError),
    (lambda: httpx.Response(503, json={"error": "Unavailable"}), TransientError),
    (lambda: httpx.Response(401, json={"error": "AuthenticationRequired"}), UnauthorizedError),
    (lambda: httpx.Response(400, json={"error": "ExpiredToken", "message": "expired"}), UnauthorizedError),
    (lambda: httpx.Response(200, json={"nothing": "here"}), TransientError),
    (lambda: httpx.Response(200, text="<html>proxy page</html>", headers={"content-type": "text/html"}),
     TransientError),
])
def test_server_failures_become_platform_errors(pds, tmp_path, answer, kind):
    account = pds.create_account("fails")

    def fault(request: httpx.Request, calls: int) -> httpx.Response | None:
        return answer() if request.url.path.endswith("listRecords") else None

    with pytest.raises(kind) as info:
        reader_for(pds, account, tmp_path / "st", transport=Proxy(fault)).read()
    assert info.value.platform == "bluesky" and account[2] not in str(info.value)


def test_network_failure_is_transient(pds, tmp_path):
    account = pds.create_account("net")

    def fault(request: httpx.Request, calls: int) -> httpx.Response | None:
        if request.url.path.endswith("listRecords"):
            raise httpx.ConnectError("connection refused", request=request)
        return None

    with pytest.raises(TransientError, match="network error"):
        reader_for(pds, account, tmp_path / "st", transport=Proxy(fault)).read()


def test_a_blob_that_does_not_match_its_cid_is_never_returned(pds, tmp_path):
    account = pds.create_account("blob")
    handle, did, password = account
    client = sdk_client(pds, handle, password)
    data = png((1, 2, 3))
    ref = upload(client, data)
    from atproto import models

    send(client, did, "Bild", embed=models.AppBskyEmbedImages.Main(
        images=[models.AppBskyEmbedImages.Image(alt="x", image=ref)]))

    def truncate(request: httpx.Request, calls: int) -> httpx.Response | None:
        if request.url.path.endswith("getBlob"):
            return httpx.Response(200, content=data[:-3], headers={"content-type": "image/png"})
        return None

    reader = reader_for(pds, account, tmp_path / "st", transport=Proxy(truncate))
    [post] = reader.read().posts
    with pytest.raises(TransientError, match="do not match the blob's CID"):
        reader.fetch_media(post.media[0])
    assert reader_for(pds, account, tmp_path / "st").fetch_media(post.media[0]) == data
    with pytest.raises(RejectedError, match="not a blob CID"):
        reader.fetch_media(SourceMedia(kind="image", fetch="not-a-cid", filename="x.png"))
    # a blob the PDS does not have
    other = SourceMedia(kind="image", fetch="bafkreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm",
                        filename="y.png")
    with pytest.raises(RejectedError):
        reader_for(pds, account, tmp_path / "st").fetch_media(other)


# --------------------------------------------------------------------------- records from other clients


def test_forged_records_are_read_with_notes_never_a_crash(pds, tmp_path):
    account = pds.create_account("forged")
    handle, did, password = account
    token = raw_token(pds, handle, password)
    text = "€ link @bob #t end"
    link, mention, tag = utf8_offset(text, "link"), utf8_offset(text, "@bob"), utf8_offset(text, "#t")

    def facet(rng, *features):
        return {"index": {"byteStart": rng[0], "byteEnd": rng[1]}, "features": list(features)}

    L = "app.bsky.richtext.facet#link"
    facets = [
        facet(link, {"$type": L, "uri": "https://ok.example/"}),
        facet((1, 5), {"$type": L, "uri": "https://mid-char.example/"}),
        facet((0, 999), {"$type": L, "uri": "https://out-of-range.example/"}),
        facet(mention, {"$type": "app.bsky.richtext.facet#mention", "did": "did:plc:bobbobbobbob"}),
        facet((link[0], mention[0] + 2), {"$type": L, "uri": "https://overlaps.example/"}),
        facet(tag, {"$type": "com.example.facet#weird", "x": 1}),
        {"index": {"byteStart": 0, "byteEnd": 3}, "features": []},
        {"features": [{"$type": L, "uri": "https://no-index.example/"}]},
        facet(tag, {"$type": "app.bsky.richtext.facet#tag", "tag": "other"}),
        facet(tag, {"$type": "app.bsky.richtext.facet#tag", "tag": "t"}),
        {"index": {"byteStart": True, "byteEnd": "3"}, "features": [{"$type": L, "uri": "https://bool.example/"}]},
        facet((5, 2), {"$type": L, "uri": "https://reversed.example/"}),
        facet(link, {"uri": "https://ok.example/"}),  # the same link, without $type: a duplicate
        "not a facet",
    ]
    u1 = raw_create(pds, token, did, {
        "text": text, "facets": facets, "createdAt": "2024-02-13 21:25:00",
        "labels": {"$type": "com.atproto.label.defs#selfLabels", "values": [{"val": "nudity"}]},
        "tags": ["extra"], "embed": {"$type": "com.example.embed", "x": 1}, "langs": "de"})
    u2 = raw_create(pds, token, did, {
        "text": 42, "reply": {"parent": {"uri": "garbage", "cid": "x"},
                              "root": {"uri": f"at://{did}/{POST}/3kabcdefghijk", "cid": "x"}}})
    u3 = raw_create(pds, token, did, {
        "text": "Bilder kaputt", "facets": "oops", "createdAt": "9999-12-31T23:59:59Z",
        "embed": {"$type": "app.bsky.embed.images", "images": [{"alt": "a", "image": {"foo": 1}}, "x"]}})
    u4 = raw_create(pds, token, did, {"text": "klein geschrieben", "createdAt": "2024-02-13t21:25:00.123456789z",
                                      "reply": {"parent": {"uri": 7}}})
    u5 = raw_create(pds, token, did, {"text": "Feed zitiert", "createdAt": "2024-01-01T00:00:00+05:30",
                                      "embed": {"$type": "app.bsky.embed.record", "record": {
                                          "uri": f"at://{did}/app.bsky.feed.generator/katzen", "cid": "x"}}})
    u6 = raw_create(pds, token, did, {"text": "Unbekanntes zitiert", "createdAt": "2024-01-01T00:00:00Z",
                                      "embed": {"$type": "app.bsky.embed.record", "record": {
                                          "uri": f"at://{did}/com.example.thing/abc", "cid": "x"}}})

    result = reader_for(pds, account, tmp_path / "st").read()
    posts = {p.id: p for p in result.posts}
    assert list(posts) == [u1, u2, u3, u4, u5, u6]

    p1 = posts[u1]
    assert p1.text == text
    assert p1.links == (LinkSpan(2, 6, "https://ok.example/"),)
    assert p1.text[2:6] == "link"
    assert p1.mentions == (MentionSpan(7, 11, "bob", "https://bsky.app/profile/did:plc:bobbobbobbob",
                                       "did:plc:bobbobbobbob"),)
    # every link that could not be placed is kept after the post, in record order
    assert p1.attachments == ("https://mid-char.example/", "https://out-of-range.example/",
                              "https://overlaps.example/", "https://no-index.example/", "https://bool.example/",
                              "https://reversed.example/")
    notes = "\n".join(p1.notes)
    for expected in ("cuts through a character", "outside the text", "overlaps", "unknown feature",
                     "no features", "no byte range", "tag 'other' over '#t'", "no time zone",
                     "self-labels (content warnings set by the author): nudity", "tags not in the text: #extra",
                     "embed com.example.embed", "facet 14"):
        assert expected in notes, expected
    assert not any(n.startswith("facet 13") for n in p1.notes)  # a repeated facet is no problem
    assert p1.created_at == datetime(2024, 2, 13, 21, 25, tzinfo=UTC)
    assert p1.language is None

    p2 = posts[u2]
    assert p2.text == "" and any("not a string" in n for n in p2.notes)
    assert p2.created_at == tid_time(rkey(u2)) and any("record key" in n for n in p2.notes)
    assert (p2.reply_to, p2.root_id, p2.reply_to_self) == (f"at://{did}/{POST}/3kabcdefghijk",) * 2 + (True,)

    p3 = posts[u3]
    assert p3.media == () and p3.created_at.year == 9999
    assert sum("no readable blob" in n for n in p3.notes) == 2 and any("not a list" in n for n in p3.notes)

    p4 = posts[u4]
    assert p4.created_at == datetime(2024, 2, 13, 21, 25, 0, 123456, tzinfo=UTC)
    assert p4.reply_to is None and any("parent cannot be read" in n for n in p4.notes)

    assert posts[u5].attachments == (f"https://bsky.app/profile/{did}/feed/katzen",)
    assert posts[u5].created_at == datetime(2023, 12, 31, 18, 30, tzinfo=UTC)
    assert posts[u6].attachments == (f"at://{did}/com.example.thing/abc",)
    assert any("no page" in n for n in posts[u6].notes)
    assert result.skipped.counts == {}


def test_an_edited_record_is_read_as_it_is_now_with_its_new_cid(pds, tmp_path):
    account = pds.create_account("edit")
    handle, did, password = account
    token = raw_token(pds, handle, password)
    uri = raw_create(pds, token, did, {"text": "erste Fassung", "createdAt": "2024-03-01T12:00:00Z"}, validate=True)
    reader = reader_for(pds, account, tmp_path / "st")
    before = reader.read().posts[0]
    r = pds.xrpc_post("com.atproto.repo.putRecord", {
        "repo": did, "collection": POST, "rkey": rkey(uri),
        "record": {"$type": POST, "text": "zweite Fassung", "createdAt": "2024-03-01T12:00:00Z"}}, token)
    assert r.status_code == 200, r.text
    after = reader.read().posts[0]
    assert (before.id, before.text) == (uri, "erste Fassung")
    assert (after.id, after.text, after.cid) == (uri, "zweite Fassung", r.json()["cid"])
    assert after.cid != before.cid


# --------------------------------------------------------------------------- login


def test_reader_from_config_logs_in_like_the_adapter_and_reuses_its_session(pds, tmp_path, monkeypatch):
    from atproto import Client

    from crossposter.config import Config

    handle, did, password = pds.create_account("config")
    cfg = Config.model_validate({"state_dir": "st", "base_dir": tmp_path,
                                 "platforms": {"bluesky": {"handle": handle, "service": pds.url}}})
    monkeypatch.setenv("CROSSPOSTER_BLUESKY_PASSWORD", password)
    reader = BlueskyReader(cfg)
    assert reader.read().posts == []
    session_file = tmp_path / "st" / f"bluesky-session-{handle}"
    assert session_file.is_file() and oct(session_file.stat().st_mode & 0o777) == "0o600"
    assert password not in repr(reader)

    def refuse(self, *a, **k):
        raise AssertionError("createSession was called: the saved session was not reused")

    monkeypatch.setattr(Client, "_get_and_set_session", refuse)
    monkeypatch.setenv("CROSSPOSTER_BLUESKY_PASSWORD", "wrong-but-unused")
    assert BlueskyReader(cfg).read().requests == 1


def test_wrong_password_is_unauthorized(pds, tmp_path):
    handle, did, _ = pds.create_account("wrongpw")
    with pytest.raises(UnauthorizedError):
        reader_for(pds, (handle, did, "not-the-password"), tmp_path / "st").read()


def test_constructor_needs_a_source_and_a_sane_page_size():
    with pytest.raises(ValueError, match="config or an adapter"):
        BlueskyReader()
    adapter = BlueskyAdapter("x.test", None, Path("/nonexistent"))
    for size in (0, 101):
        with pytest.raises(ValueError, match="page_size"):
            BlueskyReader(adapter=adapter, page_size=size)


def test_importing_the_reader_does_not_import_the_sdk():
    code = ("import sys, crossposter.backup.bluesky; "
            "print(sorted(m for m in ('atproto', 'atproto_client', 'pydantic', 'httpx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --------------------------------------------------------------------------- offsets: properties


TEXT_PIECES = st.sampled_from(["a", " ", "\n", "é", "€", "家", "👩\u200d👩\u200d👧", "🇩🇪", "\u0301", "🏳️\u200d🌈",
                               "\U0001f600", "ß", "ا", "#", "@", "\u200b"])
TEXTS = st.one_of(st.lists(TEXT_PIECES, max_size=40).map("".join), st.text(max_size=60))


def utf8_len(s: str) -> int:
    return len(s.encode("utf-8"))


@settings(max_examples=300, deadline=None)
@given(TEXTS, st.data())
def test_valid_byte_offsets_convert_exactly(text, data):
    i = data.draw(st.integers(0, len(text)))
    j = data.draw(st.integers(i, len(text)))
    bi, bj = utf8_len(text[:i]), utf8_len(text[:j])
    assert byte_to_str_offsets(text, [bj, bi]) == {bi: i, bj: j}


@settings(max_examples=300, deadline=None)
@given(TEXTS)
def test_every_offset_is_either_a_boundary_or_left_out(text):
    size = utf8_len(text)
    boundaries = {utf8_len(text[:i]): i for i in range(len(text) + 1)}
    assert byte_to_str_offsets(text, range(-3, size + 4)) == boundaries


@settings(max_examples=300, deadline=None)
@given(TEXTS, st.data())
def test_valid_link_and_mention_facets_become_exact_spans(text, data):
    """Non-overlapping facets made from code-point spans come back as exactly those spans."""
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=8, unique=True)))
    facets, expected_links, expected_mentions = [], [], []
    for n, (i, j) in enumerate(zip(cuts[::2], cuts[1::2], strict=False)):
        if i == j:
            continue
        index = {"byteStart": utf8_len(text[:i]), "byteEnd": utf8_len(text[:j])}
        if n % 2:
            did = f"did:plc:p{n}"
            facets.append({"index": index, "features": [{"$type": "app.bsky.richtext.facet#mention", "did": did}]})
            if text[i:j].removeprefix("@").strip():
                expected_mentions.append((i, j, did))
        else:
            facets.append({"index": index, "features": [{"$type": "app.bsky.richtext.facet#link",
                                                          "uri": f"https://e.example/{n}"}]})
            expected_links.append(LinkSpan(i, j, f"https://e.example/{n}"))
    spans = spans_from_facets(text, list(reversed(facets)))
    assert spans.links == expected_links
    assert [(m.start, m.end, m.account_id) for m in spans.mentions] == expected_mentions
    assert spans.orphan_urls == []


LINK, MENTION, TAG = (f"app.bsky.richtext.facet#{k}" for k in ("link", "mention", "tag"))
FEATURES = st.one_of(
    st.builds(lambda u: {"$type": LINK, "uri": u}, st.text(max_size=10)),
    st.builds(lambda d: {"$type": MENTION, "did": d}, st.sampled_from(["did:plc:x", "x", "", 3])),
    st.builds(lambda t: {"$type": TAG, "tag": t}, st.sampled_from(["", "a", "t", "家", None])),
    st.dictionaries(st.sampled_from(["$type", "a", "index"]), st.integers() | st.text(max_size=5), max_size=3),
    st.integers(), st.none(),
)
RAW_FACETS = st.lists(st.one_of(
    st.builds(lambda s, e, f: {"index": {"byteStart": s, "byteEnd": e}, "features": f},
              st.integers(-5, 80), st.integers(-5, 80), st.lists(FEATURES, max_size=3)),
    st.builds(lambda i, f: {"index": i, "features": f},
              st.none() | st.dictionaries(st.sampled_from(["byteStart", "byteEnd"]), st.booleans() | st.text()),
              st.lists(FEATURES, max_size=2)),
    st.dictionaries(st.sampled_from(["index", "features", "x"]), st.integers() | st.text(max_size=5), max_size=3),
    st.integers(), st.text(max_size=5), st.none(),
), max_size=10)


def well_formed(text: str, facet: Any) -> bool:
    """The test's own idea of a facet that needs no note: on character boundaries, every feature usable."""
    data = text.encode("utf-8")
    if not isinstance(facet, dict) or not isinstance(facet.get("index"), dict):
        return False
    s, e = facet["index"].get("byteStart"), facet["index"].get("byteEnd")
    if type(s) is not int or type(e) is not int or not 0 <= s < e <= len(data):
        return False
    try:
        shown = data[s:e].decode("utf-8")
        data[:s].decode("utf-8")
    except UnicodeDecodeError:
        return False
    features = facet.get("features")
    if not isinstance(features, list) or not features:
        return False
    for f in features:
        if not isinstance(f, dict):
            return False
        kind = f.get("$type")
        if kind == LINK:
            ok = isinstance(f.get("uri"), str) and f["uri"] != ""
        elif kind == MENTION:
            ok = isinstance(f.get("did"), str) and f["did"].startswith("did:") and shown.removeprefix("@").strip() != ""
        elif kind == TAG:
            ok = isinstance(f.get("tag"), str) and shown in ("#" + f["tag"], "＃" + f["tag"])
        else:
            ok = False
        if not ok:
            return False
    return True


@settings(max_examples=500, deadline=None)
@given(TEXTS, RAW_FACETS)
def test_any_facets_never_crash_and_nothing_is_lost_without_a_note(text, facets):
    data = text.encode("utf-8")
    spans = spans_from_facets(text, facets)
    placed = sorted([*spans.links, *spans.mentions], key=lambda s: s.start)
    for span in placed:  # within the text, on character boundaries by construction of str indices
        assert 0 <= span.start < span.end <= len(text)
    assert all(a.end <= b.start for a, b in zip(placed, placed[1:], strict=False))  # no overlaps
    # every link URL of a facet is a span or kept after the post
    urls = [f["uri"] for facet in facets if isinstance(facet, dict) and isinstance(facet.get("features"), list)
            for f in facet["features"] if isinstance(f, dict) and f.get("$type") == LINK
            and isinstance(f.get("uri"), str) and f["uri"]]
    kept = [s.url for s in spans.links] + spans.orphan_urls
    assert all(url in kept for url in urls)
    # every facet that is not well formed is named in a note
    notes = "\n".join(spans.notes)
    for n, facet in enumerate(facets, 1):
        if not well_formed(text, facet):
            assert re.search(rf"^facet {n}\b", notes, re.M), (n, facet, spans.notes)
    # a placed link shows exactly the bytes its facet covered
    for facet in facets:
        if well_formed(text, facet) and facet["features"][0].get("$type") == LINK:
            s, e = facet["index"]["byteStart"], facet["index"]["byteEnd"]
            match = [x for x in spans.links if (utf8_len(text[:x.start]), utf8_len(text[:x.end])) == (s, e)]
            assert match or facet["features"][0]["uri"] in spans.orphan_urls
            for x in match:
                assert text[x.start:x.end].encode("utf-8") == data[s:e]


def test_notes_stay_short_whatever_the_record_holds():
    """A note quotes the facet's text: over a megabyte of text that once made every note a megabyte long."""
    big = "é" * 500_000
    size = len(big.encode("utf-8"))
    facets = [{"index": {"byteStart": 0, "byteEnd": size}, "features": [{"$type": LINK, "uri": f"https://x/{i}"}]}
              for i in range(50)]
    facets += [{"index": {"byteStart": 0, "byteEnd": 2}, "features": [{"$type": TAG, "tag": "t" * 100_000}]},
               {"index": {"byteStart": 1, "byteEnd": 5}, "features": [{"$type": "x" * 100_000}]},
               {"index": "i" * 100_000, "features": [{"$type": "y" * 100_000}]}]
    spans = spans_from_facets(big, facets)
    assert len(spans.notes) == 52 and max(len(n) for n in spans.notes) < 400
    post = post_from_record(record({"text": big, "createdAt": "z" * 100_000, "tags": ["u" * 1000] * 1000,
                                    "labels": {"values": [{"val": "v" * 1000}] * 1000}}), "did:plc:me", "me.test")
    assert post is not None and post.text == big
    assert max(len(n) for n in post.notes) < 2000


def test_facets_that_are_not_a_list_are_noted():
    assert spans_from_facets("abc", {"x": 1}).notes and spans_from_facets("abc", None).notes == []


# --------------------------------------------------------------------------- record parts (no server)


def record(value: dict, did: str = "did:plc:me", key: str = "3kabcdefghijk") -> dict:
    return {"uri": f"at://{did}/{POST}/{key}", "cid": "bafyreicid", "value": {"$type": POST, **value}}


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                        st.sampled_from(["$type", "uri", "cid", "ref", "$link", "alt", "image", "images", "video",
                                         "external", "record", "media", "parent", "root", "values", "val", "x"]),
                        inner, max_size=4), max_leaves=12)
BLOB = {"$type": "blob", "ref": {"$link": "bafkreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"},
        "mimeType": "image/png", "size": 3}
EMBEDS = st.one_of(JSON, st.builds(lambda t, rest: {"$type": t, **rest}, st.sampled_from([
    "app.bsky.embed.images", "app.bsky.embed.video", "app.bsky.embed.external", "app.bsky.embed.record",
    "app.bsky.embed.recordWithMedia", "x"]), st.dictionaries(st.sampled_from(
        ["images", "video", "external", "record", "media", "alt", "captions"]),
        JSON | st.just(BLOB) | st.just([{"image": BLOB, "alt": "a"}]) | st.just({"uri": "at://did:plc:a/b.c/d"}),
        max_size=3)))
VALUES = st.fixed_dictionaries({}, optional={
    "text": st.text(max_size=20) | JSON, "facets": RAW_FACETS | JSON, "embed": EMBEDS, "reply": JSON,
    "createdAt": st.sampled_from(["2024-01-01T00:00:00Z", "2024-01-01", "x", ""]) | JSON, "langs": JSON,
    "labels": JSON, "tags": JSON, "$type": JSON})


@settings(max_examples=500, deadline=None)
@given(VALUES)
def test_any_record_value_gives_a_post_never_an_exception(value):
    post = post_from_record({"uri": "at://did:plc:me/app.bsky.feed.post/3kabcdefghijk", "cid": "c", "value": value},
                            "did:plc:me", "me.test")
    assert post is not None and post.created_at.tzinfo is not None
    assert post.text == (value["text"] if isinstance(value.get("text"), str) else "")


def test_unreadable_records_are_none():
    for bad in (None, "x", {}, {"uri": "at://did:plc:me/app.bsky.feed.post/k"},
                record({"text": "x"}, did="did:plc:other"),
                {"uri": "at://did:plc:me/app.bsky.feed.like/k", "value": {}},
                {"uri": "at://did:plc:me/app.bsky.feed.post/k", "value": ["x"]}):
        assert post_from_record(bad, "did:plc:me", "me.test") is None


@pytest.mark.parametrize("value, expected", [
    ("2024-02-13T21:25:00.000Z", datetime(2024, 2, 13, 21, 25, tzinfo=UTC)),
    ("2024-02-13T21:25:00Z", datetime(2024, 2, 13, 21, 25, tzinfo=UTC)),
    ("2024-02-13T22:25:00+01:00", datetime(2024, 2, 13, 21, 25, tzinfo=UTC)),
    ("2024-02-13T21:25:00.123456789Z", datetime(2024, 2, 13, 21, 25, 0, 123456, tzinfo=UTC)),
    ("2024-02-13t21:25:00z", datetime(2024, 2, 13, 21, 25, tzinfo=UTC)),
    (" 2024-02-13T21:25:00Z\n", datetime(2024, 2, 13, 21, 25, tzinfo=UTC)),
])
def test_created_at_formats_clients_write(value, expected):
    assert parse_created_at(value) == (expected, None)


@pytest.mark.parametrize("value", [None, "", 17, "gestern", "2024-02-30T00:00:00Z", "2024-02-13T21:25:00+25:00"])
def test_unusable_created_at_is_none_with_a_note(value):
    when, note = parse_created_at(value)
    assert when is None and note


@settings(max_examples=200)
@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)))
def test_tid_before_is_the_last_key_before_the_time(when):
    key = tid_before(when)
    assert key is not None and tid_time(key) == when - timedelta(microseconds=1)
    assert key < _tid_at(when, 0)


def _tid_at(when: datetime, clock: int) -> str:
    us = int((when - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1))
    value = (us << 10) | clock
    return "".join("234567abcdefghijklmnopqrstuvwxyz"[(value >> (5 * i)) & 31] for i in range(12, -1, -1))


def test_media_filenames_are_stable_and_safe():
    assert media_filename("3kabcdefghijk", 2, "image/jpeg") == "3kabcdefghijk-2.jpg"
    assert media_filename("3kabcdefghijk", 0, "IMAGE/PNG; charset=x") == "3kabcdefghijk-0.png"
    assert media_filename("3kabcdefghijk", 0, None) == "3kabcdefghijk-0.bin"
    odd = [media_filename(k, 0, "image/png") for k in ("a.b", "a_b", "a:b", "..", "x" * 512)]
    assert len(set(odd)) == len(odd)
    assert all("/" not in n and ":" not in n and not n.startswith(".") and len(n) < 100 for n in odd)
    assert odd[0] == media_filename("a.b", 0, "image/png")


def test_web_urls_of_quotable_records():
    assert web_url("at://did:plc:a/app.bsky.feed.post/3k") == "https://bsky.app/profile/did:plc:a/post/3k"
    assert web_url("at://did:plc:a/app.bsky.graph.list/l") == "https://bsky.app/profile/did:plc:a/lists/l"
    assert web_url("at://did:plc:a/app.bsky.graph.starterpack/s") == "https://bsky.app/starter-pack/did:plc:a/s"
    assert web_url("at://did:plc:a/com.example.x/1") is None
    assert web_url("https://bsky.app/x") is None
