"""X readers: archive zips built here in X's documented format, and the v2 API with `responses`.

`x_store` is the test's model of how X stores a typed post (escape ``&<>``, every link → a t.co
link, offsets = code points of the escaped text, a reply's ``@handles`` in front and outside
`display_text_range`, media links after it): the readers must give the typed text back exactly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crossposter.backup.source import Skipped, build_threads
from crossposter.backup.x_api import XApiReader, XReadAccessError
from crossposter.backup.x_archive import XArchiveError, XArchiveReader, parse_x_time
from crossposter.platforms.base import RateLimitedError, RejectedError

OWN_ID, OWN = "1111", "me_writes"
T0 = "Wed Oct 10 20:19:24 +0000 2018"


# --------------------------------------------------------------------------- X's way of storing a post


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def x_store(body: list, *, reply_to: tuple[str, ...] = (), quote: str | None = None,
            media: str | None = None) -> tuple[str, dict, list[int], str]:
    """(full_text, entities, display_text_range, the typed text) for typed `body` parts.

    Parts: a str (typed text), ("url", typed URL, t.co link), ("@", handle, user id).
    `reply_to` handles go in front, hidden; `quote` (a status URL) is appended as X does, inside
    the range; `media` (the media t.co link) after the range.
    """
    text, urls, mentions, typed = "", [], [], ""

    def mention(handle: str, uid: str) -> None:
        nonlocal text
        mentions.append({"name": handle.title(), "screen_name": handle, "indices": [str(len(text)),
                         str(len(text) + 1 + len(handle))], "id_str": uid, "id": uid})
        text += "@" + handle

    for handle in reply_to:
        mention(handle, str(abs(hash(handle)) % 10**9))
        text += " "
    start = len(text)
    for part in body:
        if isinstance(part, str):
            text += _esc(part)
            typed += part
        elif part[0] == "url":
            urls.append({"url": part[2], "expanded_url": part[1], "display_url": part[1][8:30],
                         "indices": [str(len(text)), str(len(text) + len(part[2]))]})
            text += part[2]
            typed += part[1]
        else:
            mention(part[1], part[2])
            typed += "@" + part[1]
    if quote:
        tco = "https://t.co/QuOtE0001"
        text += " "
        urls.append({"url": tco, "expanded_url": quote, "display_url": quote[8:30],
                     "indices": [str(len(text)), str(len(text) + len(tco))]})
        text += tco
    end = len(text)
    if media:
        text += " " + media
    return text, {"hashtags": [], "symbols": [], "user_mentions": mentions, "urls": urls}, [start, end], typed


def tweet(tid: str, body: list | str, *, created: str = T0, reply_to_status: str | None = None,
          reply_to_user: str | None = None, reply_to: tuple[str, ...] = (), quote: str | None = None,
          media: list[dict] | None = None, wrap: bool = True, **extra: object) -> dict:
    """One tweets.js item as X writes it (numbers as strings, `display_text_range`, `edit_info`)."""
    tco_media = "https://t.co/MeDiA" + tid[-4:] if media else None
    full, entities, rng, _ = x_store([body] if isinstance(body, str) else body, reply_to=reply_to, quote=quote,
                                     media=tco_media)
    t: dict = {
        "edit_info": {"initial": {"editTweetIds": [tid], "editableUntil": "2018-10-10T21:19:24.000Z",
                                  "editsRemaining": "5", "isEditEligible": False}},
        "retweeted": False, "source": "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
        "entities": entities, "display_text_range": [str(rng[0]), str(rng[1])], "favorite_count": "3",
        "id_str": tid, "truncated": False, "retweet_count": "0", "id": tid, "created_at": created,
        "favorited": False, "full_text": full, "lang": "en",
    }
    if reply_to_status:
        t["in_reply_to_status_id_str"] = t["in_reply_to_status_id"] = reply_to_status
    if reply_to_user:
        t["in_reply_to_user_id_str"] = t["in_reply_to_user_id"] = reply_to_user
    if media:
        for m in media:
            m.setdefault("url", tco_media)
            m.setdefault("indices", [str(len(full) - len(tco_media)), str(len(full))])
            m.setdefault("expanded_url", f"https://x.com/{OWN}/status/{tid}/photo/1")
        t["entities"]["media"] = [dict(media[0])]
        t["extended_entities"] = {"media": media}
    t.update(extra)
    return {"tweet": t} if wrap else t


def photo(name: str, alt: str | None = None) -> dict:
    m = {"id_str": "9" + name[:3].encode().hex(), "media_url_https": f"https://pbs.twimg.com/media/{name}",
         "media_url": f"http://pbs.twimg.com/media/{name}", "type": "photo"}
    if alt is not None:
        m["ext_alt_text"] = alt
    return m


def video(kind: str, names: list[tuple[str, int]]) -> dict:
    return {"type": kind, "media_url_https": "https://pbs.twimg.com/ext_tw_video_thumb/1/pu/img/thumb.jpg",
            "video_info": {"aspect_ratio": ["16", "9"], "variants": [
                {"bitrate": str(b), "content_type": "video/mp4",
                 "url": f"https://video.twimg.com/ext_tw_video/1/pu/vid/{b}/{n}?tag=12"} for n, b in names] + [
                {"content_type": "application/x-mpegURL", "url": "https://video.twimg.com/ext_tw_video/1/pu/pl/x.m3u8"}]}}


def ytd(kind: str, items: list, part: int = 0) -> str:
    return f"window.YTD.{kind}.part{part} = " + json.dumps(items, indent=2, ensure_ascii=False, separators=(",", " : "))


def make_zip(path: Path, tweets: list | None = None, *, files: dict[str, str | bytes] | None = None,
             account: bool = True, notes: list | None = None, media: dict[str, bytes] | None = None,
             tweets_name: str = "data/tweets.js") -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        if account:
            z.writestr("data/account.js", ytd("account", [{"account": {
                "email": "me@example.org", "createdVia": "web", "username": OWN, "accountId": OWN_ID,
                "createdAt": "2011-06-23T13:04:14.000Z", "accountDisplayName": "Me"}}]))
        if tweets is not None:
            kind = "tweet" if tweets_name.endswith("/tweet.js") else "tweets"
            z.writestr(tweets_name, ytd(kind, tweets))
        if notes is not None:
            z.writestr("data/note-tweet.js", ytd("note_tweet", notes))
        for name, data in (media or {}).items():
            z.writestr(f"data/tweets_media/{name}", data, compress_type=zipfile.ZIP_STORED)
        for name, data in (files or {}).items():
            z.writestr(name, data)
    return path


def read(tmp_path: Path, tweets: list, **kw: object):
    with XArchiveReader(make_zip(tmp_path / "archive.zip", tweets, **kw)) as reader:
        return reader.read()


def by_id(result) -> dict:
    return {p.id: p for p in result.posts}


# --------------------------------------------------------------------------- texts and spans


def test_links_mentions_emoji_and_escapes_come_back_as_typed(tmp_path: Path) -> None:
    body = ["AT&T 🇧🇹👍🏽 said <b>no</b> &amp; ", ("url", "https://example.org/a?b=1&c=2", "https://t.co/AbC1"),
            " then 😀 ", ("@", "Alice_x", "42"), " & ", ("url", "http://日本.example/パス", "https://t.co/AbC2"), "!"]
    result = read(tmp_path, [tweet("100", body)])
    post = by_id(result)["100"]
    assert post.text == ("AT&T 🇧🇹👍🏽 said <b>no</b> &amp; https://example.org/a?b=1&c=2 then 😀 @Alice_x & "
                         "http://日本.example/パス!")
    assert [post.text[s.start:s.end] for s in post.links] == ["https://example.org/a?b=1&c=2",
                                                             "http://日本.example/パス"]
    assert [s.url for s in post.links] == ["https://example.org/a?b=1&c=2", "http://日本.example/パス"]
    (m,) = post.mentions
    assert post.text[m.start:m.end] == "@Alice_x"
    assert (m.handle, m.profile_url, m.account_id) == ("Alice_x", "https://x.com/Alice_x", "42")
    assert post.url == f"https://x.com/{OWN}/status/100"
    assert post.created_at == datetime(2018, 10, 10, 20, 19, 24, tzinfo=UTC)
    assert (post.repost, post.reply_to, post.media, post.attachments, post.notes) == (False, None, (), (), ())


def test_offsets_count_code_points_of_the_escaped_text(tmp_path: Path) -> None:
    """The WHO tweet Twitter served (874656370829799424): `#Maldives` after `🇧🇹 &amp;` is at 28."""
    full = ("GREAT NEWS! #Bhutan🇧🇹 &amp; #Maldives🇲🇻 eliminated #measles!\nA landmark achievement, "
            "congratulations https://t.co/ywbgldKm1A via @WHOSEARO https://t.co/kJ5dcRR02G")
    t = {"id_str": "874656370829799424", "created_at": "Tue Jun 13 16:04:37 +0000 2017", "full_text": full,
         "display_text_range": ["0", "138"],
         "entities": {"hashtags": [{"text": "Maldives", "indices": ["28", "37"]}],
                      "urls": [{"url": "https://t.co/ywbgldKm1A", "expanded_url": "http://bit.ly/MeaslesBTNMDV",
                                "indices": ["101", "124"]}],
                      "user_mentions": [{"screen_name": "WHOSEARO", "id_str": "1545915336", "indices": ["129", "138"]}],
                      "media": [{"url": "https://t.co/kJ5dcRR02G", "indices": ["139", "162"], "type": "photo",
                                 "media_url_https": "https://pbs.twimg.com/media/DCNm5P-XkAMGDy8.jpg"}]}}
    post = by_id(read(tmp_path, [{"tweet": t}]))["874656370829799424"]
    assert post.text == ("GREAT NEWS! #Bhutan🇧🇹 & #Maldives🇲🇻 eliminated #measles!\nA landmark achievement, "
                         "congratulations http://bit.ly/MeaslesBTNMDV via @WHOSEARO")
    assert post.text[post.links[0].start:post.links[0].end] == "http://bit.ly/MeaslesBTNMDV"
    assert post.text[post.mentions[0].start:post.mentions[0].end] == "@WHOSEARO"
    # the photo file is not in this zip: said, and kept as a link
    assert post.media == () and "not in the archive" in post.notes[0]


@pytest.mark.parametrize("convention", ["utf16", "unescaped", "missing"])
def test_offsets_x_got_wrong_are_found_by_their_text(tmp_path: Path, convention: str) -> None:
    full = "😀😀 a &amp; b https://t.co/Zz9 @bob c"
    true_start = full.index("https://t.co/Zz9")
    m_start = full.index("@bob")
    if convention == "utf16":  # what JavaScript would count: two units per emoji
        url_idx, m_idx = [true_start + 2, true_start + 18], [m_start + 2, m_start + 6]
    elif convention == "unescaped":  # offsets into "😀😀 a & b …"
        url_idx, m_idx = [true_start - 4, true_start + 12], [m_start - 4, m_start]
    else:
        url_idx, m_idx = None, None
    t = tweet("101", "x")["tweet"]
    t.update(full_text=full, display_text_range=["0", str(len(full))], entities={
        "urls": [{"url": "https://t.co/Zz9", "expanded_url": "https://example.org/", "indices": url_idx}],
        "user_mentions": [{"screen_name": "bob", "id_str": "7", "indices": m_idx}]})
    post = by_id(read(tmp_path, [{"tweet": t}]))["101"]
    assert post.text == "😀😀 a & b https://example.org/ @bob c"
    assert post.text[post.links[0].start:post.links[0].end] == "https://example.org/"
    assert post.text[post.mentions[0].start:post.mentions[0].end] == "@bob"


def test_typed_entities_and_a_lone_ampersand_survive(tmp_path: Path) -> None:
    """A typed `&amp;` is stored `&amp;amp;`: one pass of unescaping, `&amp;` last, gives it back."""
    post = by_id(read(tmp_path, [tweet("102", "I typed &amp; and &lt;3 & <3 &#39; &copy;")]))["102"]
    assert post.text == "I typed &amp; and &lt;3 & <3 &#39; &copy;"


@st.composite
def typed_posts(draw: st.DrawFn) -> tuple[list, bool, bool, bool]:
    alphabet = st.sampled_from(list("ab &<>;#*_[]()\n\t ") + ["😀", "🇧🇹", "👍🏽", "👨‍👩‍👧", "日本", "مرحبا", "&amp;",
                                                            "&lt;", "é", "\u200d", "\u3000", "@", "…"])
    text = st.lists(alphabet, max_size=8).map("".join)
    url = st.tuples(st.just("url"), st.sampled_from(["https://example.org/a_(b)?q=1&r=2", "http://ex.am/ple",
                                                     "https://例え.jp/パス", "https://x.org/😀"]),
                    st.integers(1000, 9999).map(lambda n: f"https://t.co/L{n}"))
    mention = st.tuples(st.just("@"), st.sampled_from(["alice", "Bob_99", "c"]), st.sampled_from(["5", "6"]))
    parts = draw(st.lists(st.one_of(text, url, mention), max_size=8))
    tcos = [p[2] for p in parts if isinstance(p, tuple) and p[0] == "url"]
    if len(tcos) != len(set(tcos)):
        parts = [p for p in parts if not (isinstance(p, tuple) and p[0] == "url")]
    parts = [p for p in parts if p != ""]
    # X trims what it stores: white space at either end, however many text parts it spans
    while parts and isinstance(parts[0], str) and parts[0] != parts[0].lstrip():
        parts[0] = parts[0].lstrip()
        parts = parts if parts[0] else parts[1:]
    while parts and isinstance(parts[-1], str) and parts[-1] != parts[-1].rstrip():
        parts[-1] = parts[-1].rstrip()
        parts = parts if parts[-1] else parts[:-1]
    if not parts:
        parts = ["x"]
    return parts, draw(st.booleans()), draw(st.booleans()), draw(st.booleans())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(typed_posts())
def test_property_any_typed_text_comes_back_exactly(tmp_path: Path, case: tuple[list, bool, bool, bool]) -> None:
    parts, as_reply, with_quote, with_media = case
    quote = "https://twitter.com/someone/status/4242" if with_quote else None
    media = [photo("PhOtO1.jpg", "alt")] if with_media else None
    t = tweet("103", parts, reply_to=("alice", OWN) if as_reply else (), quote=quote, media=media)
    _, _, _, typed = x_store(parts)
    files = {"PhOtO1.jpg": b"jpeg"} if with_media else {}
    post = by_id(read(tmp_path, [t], media={f"103-{k}": v for k, v in files.items()}))["103"]
    assert post.text == typed
    links = [p for p in parts if isinstance(p, tuple) and p[0] == "url"]
    assert [(post.text[s.start:s.end], s.url) for s in post.links] == [(p[1], p[1]) for p in links]
    ments = [p for p in parts if isinstance(p, tuple) and p[0] == "@"]
    assert [(post.text[m.start:m.end], m.handle, m.account_id) for m in post.mentions] == \
        [("@" + p[1], p[1], p[2]) for p in ments]
    assert post.attachments == ((quote,) if quote else ())
    assert len(post.media) == (1 if with_media else 0)


# --------------------------------------------------------------------------- media


def test_photos_gifs_and_videos_from_tweets_media(tmp_path: Path) -> None:
    media_files = {"200-AbC_1.jpg": b"\xff\xd8jpeg-one", "200-DeF-2.png": b"\x89PNGtwo",
                   "201-gifmp4.mp4": b"gif-as-mp4", "202-mid.mp4": b"the middle bitrate file",
                   "202-low.mp4": b"a worse copy"}
    tweets = [
        tweet("200", "two photos", media=[photo("AbC_1.jpg", "A red door"), photo("DeF-2.png")]),
        tweet("201", "a gif", media=[video("animated_gif", [("gifmp4.mp4", 0)])]),
        # X keeps a variant of a video, not always the best one: the best one present is taken
        tweet("202", "a video", media=[video("video", [("best.mp4", 2176000), ("mid.mp4", 832000),
                                                        ("low.mp4", 256000)])]),
        tweet("203", "gone", media=[photo("missing.jpg", "lost")]),
    ]
    path = make_zip(tmp_path / "a.zip", tweets, media=media_files)
    with XArchiveReader(path) as reader:
        posts = by_id(reader.read())
        p200 = posts["200"]
        assert p200.text == "two photos"  # the media t.co link is not typed text
        assert [(m.kind, m.filename, m.alt, m.mime_type, m.size) for m in p200.media] == [
            ("image", "200-AbC_1.jpg", "A red door", "image/jpeg", len(media_files["200-AbC_1.jpg"])),
            ("image", "200-DeF-2.png", "", "image/png", len(media_files["200-DeF-2.png"]))]
        assert reader.fetch_media(p200.media[0]) == b"\xff\xd8jpeg-one"
        (gif,) = posts["201"].media
        assert (gif.kind, gif.filename, gif.mime_type) == ("gif", "201-gifmp4.mp4", "video/mp4")
        (vid,) = posts["202"].media
        assert (vid.kind, vid.filename) == ("video", "202-mid.mp4")
        assert reader.fetch_media(vid) == b"the middle bitrate file"
        p203 = posts["203"]
        assert p203.media == () and p203.attachments == (f"https://x.com/{OWN}/status/203/photo/1",)
        assert "not in the archive's tweets_media folder" in p203.notes[0]


def test_a_video_named_unlike_its_variants_is_still_found(tmp_path: Path) -> None:
    t = tweet("210", "clip", media=[video("video", [("aaa.mp4", 100)])])
    with XArchiveReader(make_zip(tmp_path / "a.zip", [t], media={"210-zzz.mp4": b"v"})) as reader:
        (m,) = by_id(reader.read())["210"].media
        assert m.filename == "210-zzz.mp4" and reader.fetch_media(m) == b"v"


def test_a_forged_media_name_is_never_handed_on(tmp_path: Path) -> None:
    t = tweet("211", "x", media=[photo("..%2f..%2fevil.jpg")])
    t["tweet"]["extended_entities"]["media"][0]["media_url_https"] = "https://pbs.twimg.com/media/.hidden"
    with XArchiveReader(make_zip(tmp_path / "a.zip", [t], media={"211-.hidden": b"x"})) as reader:
        post = by_id(reader.read())["211"]
    assert post.media == () and "unsafe" in post.notes[0]


def test_a_damaged_media_file_is_rejected_not_returned(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "a.zip", [tweet("212", "p", media=[photo("ok.jpg")])],
                    media={"212-ok.jpg": b"A" * 200})
    data = bytearray(path.read_bytes())
    at = data.find(b"A" * 200)
    data[at + 50] = ord("B")  # stored, so the byte is the file's: only the CRC can tell
    path.write_bytes(bytes(data))
    with XArchiveReader(path) as reader:
        (m,) = by_id(reader.read())["212"].media
        with pytest.raises(RejectedError, match=r"212-ok\.jpg.*damaged"):
            reader.fetch_media(m)


# --------------------------------------------------------------------------- what is and is not a thread


def test_threads_reposts_replies_and_quotes(tmp_path: Path) -> None:
    q = "https://twitter.com/someone/status/999"
    tweets = [
        tweet("300", ["Thread start ", ("url", "https://example.org", "https://t.co/T1")], created=T0),
        tweet("302", "part three", created="Wed Oct 10 20:21:00 +0000 2018", reply_to_status="301",
              reply_to_user=OWN_ID),
        tweet("301", "part two, quoting", created="Wed Oct 10 20:20:00 +0000 2018", reply_to_status="300",
              reply_to_user=OWN_ID, quote=q),
        tweet("303", ["RT ", ("@", "bob", "77"), ": their words…"], created="Thu Oct 11 08:00:00 +0000 2018"),
        tweet("304", "yes, agreed", created="Thu Oct 11 09:00:00 +0000 2018", reply_to_status="8888",
              reply_to_user="77", reply_to=("bob",)),
        tweet("305", "and a follow-up of mine", created="Thu Oct 11 09:01:00 +0000 2018", reply_to_status="304",
              reply_to_user=OWN_ID),
        tweet("306", "I retweeted my own post later", created="Fri Oct 12 10:00:00 +0000 2018", retweeted=True),
    ]
    result = read(tmp_path, tweets)
    posts = by_id(result)
    assert posts["303"].repost and not posts["306"].repost
    assert posts["301"].text == "part two, quoting" and posts["301"].attachments == (q,)
    assert posts["304"].text == "yes, agreed" and not posts["304"].reply_to_self
    assert posts["304"].notes == ("reply addressed to @bob (X hides these; not part of the text)",)
    assert posts["305"].reply_to_self and posts["305"].reply_to == "304"
    skipped = Skipped()
    threads = build_threads(result.posts, skipped)
    assert [t.ids for t in threads] == [["300", "301", "302"], ["306"]]
    assert threads[0].posts[0].text == "Thread start https://example.org"
    assert skipped.counts == {"reposts": 1, "replies to other accounts": 1,
                              "self-replies below a reply to another account": 1}


def test_self_replies_are_known_without_account_js(tmp_path: Path) -> None:
    """The archive holds only the owner's posts: a reply to one of them is a self-reply."""
    tweets = [tweet("400", "one"), tweet("401", "two", reply_to_status="400", reply_to_user="5555")]
    result = read(tmp_path, tweets, account=False)
    assert by_id(result)["401"].reply_to_self
    assert by_id(result)["401"].url == "https://x.com/i/web/status/401"


def test_manifest_stands_in_for_account_js(tmp_path: Path) -> None:
    manifest = "window.__THAR_CONFIG = " + json.dumps({"userInfo": {"accountId": OWN_ID, "userName": OWN,
                                                                    "displayName": "Me"}})
    result = read(tmp_path, [tweet("402", "hi"), tweet("403", "to my deleted post", reply_to_status="1",
                                                       reply_to_user=OWN_ID)],
                  account=False, files={"data/manifest.js": manifest})
    posts = by_id(result)
    assert posts["402"].url == f"https://x.com/{OWN}/status/402"
    assert posts["403"].reply_to_self  # parent deleted, but X says it was the owner's
    assert [t.ids for t in build_threads(result.posts)] == [["402"], ["403"]]


def test_edited_post_keeps_its_last_version_and_first_time(tmp_path: Path) -> None:
    v1 = tweet("500", "tyop", created="Mon Jan 02 10:00:00 +0000 2023")
    v1["tweet"]["edit_info"] = {"initial": {"editTweetIds": ["500", "501"], "editableUntil": "x",
                                            "editsRemaining": "4", "isEditEligible": True}}
    v2 = tweet("501", "typo fixed", created="Mon Jan 02 10:05:00 +0000 2023")
    v2["tweet"]["edit_info"] = {"edit": {"initialTweetId": "500", "editControlInitial": {
        "editTweetIds": ["500", "501"], "editableUntil": "x", "editsRemaining": "4", "isEditEligible": True}}}
    reply = tweet("502", "and more", created="Mon Jan 02 10:01:00 +0000 2023", reply_to_status="500",
                  reply_to_user=OWN_ID)
    result = read(tmp_path, [v1, v2, reply])
    posts = by_id(result)
    assert set(posts) == {"501", "502"}
    assert posts["501"].text == "typo fixed"
    assert posts["501"].created_at == datetime(2023, 1, 2, 10, 0, tzinfo=UTC)
    assert posts["501"].edited_at == datetime(2023, 1, 2, 10, 5, tzinfo=UTC)
    assert posts["502"].reply_to == "501"
    assert [t.ids for t in build_threads(result.posts)] == [["501", "502"]]
    assert result.skipped.counts == {"earlier versions of edited posts": 1}


# --------------------------------------------------------------------------- file shapes


def test_split_tweets_parts_are_all_read(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "a.zip", None, files={
        "data/tweets-part1.js": ytd("tweets", [tweet("600", "first part")], 1),
        "data/tweets-part2.js": ytd("tweets", [tweet("601", "second"), tweet("602", "third")], 2)})
    pages: list[int] = []
    with XArchiveReader(path) as reader:
        result = reader.read(on_page=pages.append)
    assert sorted(by_id(result)) == ["600", "601", "602"] and pages == [1, 2]
    assert result.cursor == "602" and result.requests == 0


def test_older_tweet_js_with_bare_items(tmp_path: Path) -> None:
    items = [tweet("700", "old format &amp; bare", wrap=False)]
    result = read(tmp_path, items, tweets_name="data/tweet.js")
    assert by_id(result)["700"].text == "old format &amp; bare"


def test_a_zip_of_the_unpacked_folder_is_read(tmp_path: Path) -> None:
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("twitter-2024-01-01-abc/data/tweets.js", ytd("tweets", [tweet("710", "nested")]))
        z.writestr("twitter-2024-01-01-abc/data/tweets_media/710-p.jpg", b"img")
    t = tweet("711", "nested media", media=[photo("p.jpg")])
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("twitter-2024-01-01-abc/data/tweets-part1.js", ytd("tweets", [t], 1))
    with XArchiveReader(path) as reader:
        posts = by_id(reader.read())
        assert posts["710"].text == "nested"


def test_long_posts_take_their_text_from_note_tweet_js(tmp_path: Path) -> None:
    whole = ("This is the whole long story & more. " * 9) + "Read https://t.co/NoTe1 and ask @carol 😀 " + \
            "end of it."
    cut = whole[:270].rstrip()
    created = "Wed Feb 08 15:12:34 +0000 2023"
    long_post = tweet("800", [cut + "… ", ("url", "https://twitter.com/i/web/status/800",
                                                   "https://t.co/SeLf")], created=created)
    same_second = tweet("801", "Unrelated short post", created=created)
    escaped_whole = _esc(whole)
    notes = [
        {"noteTweet": {"noteTweetId": "1624", "updatedAt": "2023-02-08T15:12:34.000Z",
                       "lifecycle": {"value": "1", "name": "Active", "originalName": "Active", "annotations": {}},
                       "createdAt": "2023-02-08T15:12:34.000Z",
                       "core": {"styletags": [], "cashtags": [], "hashtags": [],
                                "urls": [{"shortUrl": "https://t.co/NoTe1", "expandedUrl": "https://example.org/long",
                                          "displayUrl": "example.org/long",
                                          "fromIndex": str(escaped_whole.index("https://t.co/NoTe1")),
                                          "toIndex": str(escaped_whole.index("https://t.co/NoTe1") + 18)}],
                                "mentions": [{"screenName": "carol",
                                              "fromIndex": str(escaped_whole.index("@carol")),
                                              "toIndex": str(escaped_whole.index("@carol") + 6)}],
                                "text": escaped_whole}}},
        {"noteTweet": {"noteTweetId": "1625", "createdAt": "2022-01-01T00:00:00.000Z",
                       "core": {"text": "a note whose post was deleted", "urls": [], "mentions": []}}},
    ]
    result = read(tmp_path, [long_post, same_second], notes=notes)
    posts = by_id(result)
    expected = whole.replace("https://t.co/NoTe1", "https://example.org/long")
    assert posts["800"].text == expected.rstrip()
    assert posts["800"].text[posts["800"].links[0].start:posts["800"].links[0].end] == "https://example.org/long"
    assert posts["800"].text[posts["800"].mentions[0].start:posts["800"].mentions[0].end] == "@carol"
    assert posts["801"].text == "Unrelated short post"
    assert result.skipped.counts == {"long-post texts in note-tweet.js matching no post": 1}


def test_a_cut_off_long_post_without_its_note_says_so(tmp_path: Path) -> None:
    t = tweet("810", ["start of a long text… ", ("url", "https://twitter.com/i/web/status/810", "https://t.co/S")])
    post = by_id(read(tmp_path, [t]))["810"]
    assert post.text == "start of a long text…"
    assert "only the first part of this long post" in post.notes[0]


def test_cursor_and_since_limit_what_is_returned(tmp_path: Path) -> None:
    tweets = [tweet("900", "old", created="Mon Jan 02 10:00:00 +0000 2017"),
              tweet("950", "newer", created="Mon Jan 02 10:00:00 +0000 2020"),
              tweet("990", "newest", created="Mon Jan 02 10:00:00 +0000 2021")]
    path = make_zip(tmp_path / "a.zip", tweets)
    with XArchiveReader(path) as reader:
        assert sorted(by_id(reader.read(cursor="900"))) == ["950", "990"]
        again = reader.read(cursor="990")
        assert again.posts == [] and again.cursor == "990"
        assert sorted(by_id(reader.read(since=datetime(2019, 1, 1, tzinfo=UTC)))) == ["950", "990"]
        with pytest.raises(ValueError, match="not a post id"):
            reader.read(cursor="garbage")


def test_x_times_parse_with_offsets_and_far_dates() -> None:
    assert parse_x_time("Wed Oct 10 20:19:24 +0000 2018") == datetime(2018, 10, 10, 20, 19, 24, tzinfo=UTC)
    assert parse_x_time("Wed Oct 10 20:19:24 +0130 2018") == datetime(2018, 10, 10, 18, 49, 24, tzinfo=UTC)
    assert parse_x_time("Fri Dec 31 23:59:59 -0500 9998") == datetime(9999, 1, 1, 4, 59, 59, tzinfo=UTC)
    assert parse_x_time("2023-02-08T15:12:34.000Z") == datetime(2023, 2, 8, 15, 12, 34, tzinfo=UTC)
    for bad in ("Wed Foo 10 20:19:24 +0000 2018", "Wed Oct 10 20:19:24 +0000 99999", "", None, 5):
        assert parse_x_time(bad) is None


def test_unreadable_entries_are_counted_with_where_they_are(tmp_path: Path) -> None:
    bad_time = tweet("1000", "when?", created="yesterday")
    result = read(tmp_path, [bad_time, {"tweet": {"full_text": "no id"}}, "not an object", tweet("1001", "fine"),
                             tweet("1001", "fine")])
    assert list(by_id(result)) == ["1001"]
    assert result.skipped.counts == {
        "entries listed twice in the archive": 1,
        "unreadable entry (data/tweets.js item 2: no post id)": 1,
        "unreadable entry (data/tweets.js item 3: no post id)": 1,
        "unreadable entry (post 1000: no usable created_at)": 1}


# --------------------------------------------------------------------------- bad archives


def _error(path: Path) -> XArchiveError:
    with pytest.raises(XArchiveError) as info, XArchiveReader(path) as reader:
        reader.read()
    assert str(path) in str(info.value) and info.value.fix
    return info.value


def test_not_a_zip_missing_file_and_not_a_regular_file(tmp_path: Path) -> None:
    text = tmp_path / "tweets.zip"
    text.write_text("hello")
    assert "not a zip file" in _error(text).problem
    assert "no such file" in _error(tmp_path / "nope.zip").problem
    assert "not a regular file" in _error(tmp_path).problem
    fifo = tmp_path / "fifo.zip"
    os.mkfifo(fifo)
    assert "not a regular file" in _error(fifo).problem


def test_a_zip_that_is_not_an_x_archive(tmp_path: Path) -> None:
    path = tmp_path / "photos.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("holiday/1.jpg", b"jpg")
    err = _error(path)
    assert "not an X archive" in err.problem and "Download an archive" in err.fix


def test_an_archive_without_tweets_file(tmp_path: Path) -> None:
    err = _error(make_zip(tmp_path / "a.zip", None))
    assert err.member == "data/tweets.js" and "no tweets file" in err.problem


def test_the_pre_2019_archive_format_is_named(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "a.zip", None, account=False,
                    files={"data/js/tweet_index.js": "var tweet_index = []", "data/js/tweets/2012_01.js": "x"})
    assert "pre-2019" in _error(path).problem


@pytest.mark.parametrize(("content", "problem"), [
    (b"var tweets = []", "does not start with `window.YTD.<name>.part0 = `"),
    (b"", "does not start with"),
    (b'window.YTD.tweets.part0 = [ {"tweet" : { "id_str" : "1", } } ]', "broken JSON at line 1, column"),
    (b"window.YTD.tweets.part0 = " + b"[" * 100_000 + b"]" * 100_000, "nested deeper"),
    (b'window.YTD.tweets.part0 = [ ]\nalert("hi")', "unexpected text after the data at line 1"),
    (b'window.YTD.tweets.part0 = {"tweet": 1}', "holds a JSON dict"),
    ('window.YTD.tweets.part0 = ["caf\u00e9"]'.encode("latin-1"), "not UTF-8 text"),
], ids=["no-prefix", "empty", "broken-json", "deep-nesting", "trailing-code", "not-a-list", "latin-1"])
def test_malformed_tweets_file(tmp_path: Path, content: bytes, problem: str) -> None:
    err = _error(make_zip(tmp_path / "a.zip", None, files={"data/tweets.js": content}))
    assert err.member == "data/tweets.js" and problem in err.problem


def test_a_corrupt_member_names_itself(tmp_path: Path) -> None:
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("data/tweets.js", ytd("tweets", [tweet("1", "hello world, a corrupt member")]))
    data = bytearray(path.read_bytes())
    at = data.find(b"corrupt member")
    data[at] = ord("K")
    path.write_bytes(bytes(data))
    err = _error(path)
    assert err.member == "data/tweets.js" and "damaged" in err.problem and "download the archive again" in err.fix


def test_a_huge_member_is_refused_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import crossposter.backup.x_archive as xa

    monkeypatch.setattr(xa, "MAX_MEMBER_BYTES", 1000)
    err = _error(make_zip(tmp_path / "a.zip", [tweet(str(n), "x" * 50) for n in range(1, 30)]))
    assert "more than this reader takes" in err.problem


def test_archive_readers_do_not_import_tweepy() -> None:
    code = ("import sys, crossposter.backup.x_archive, crossposter.backup.x_api; "
            "print(sorted(m for m in ('tweepy', 'requests', 'pydantic') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- the API reader

API = "https://api.x.test"
ENV = {"CROSSPOSTER_X_CONSUMER_KEY": "ck-key", "CROSSPOSTER_X_CONSUMER_SECRET": "cs-secret",
       "CROSSPOSTER_X_ACCESS_TOKEN": "42-at-token", "CROSSPOSTER_X_ACCESS_TOKEN_SECRET": "ats-secret"}


@pytest.fixture
def api_reader(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> XApiReader:
    from crossposter.config import Config

    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
        monkeypatch.delenv(f"{name}_FILE", raising=False)
    cfg = Config(base_dir=tmp_path)
    cfg.platforms.x.api_base = API
    return XApiReader(cfg)


def _me() -> None:
    responses.get(f"{API}/2/users/me", json={"data": {"id": "42", "name": "Me", "username": OWN}})


def _query(call) -> dict[str, list[str]]:
    return parse_qs(urlparse(call.request.url).query)


def _v2(tid: str, text: str, **extra: object) -> dict:
    return {"id": tid, "text": text, "created_at": "2024-03-01T10:00:00.000Z", "edit_history_tweet_ids": [tid],
            "lang": "en", **extra}


@responses.activate
def test_api_request_shape_and_paging(api_reader: XApiReader) -> None:
    _me()
    page1 = {"data": [_v2("30", "newest"), _v2("20", "middle")],
             "meta": {"result_count": 2, "newest_id": "30", "oldest_id": "20", "next_token": "tok2"}}
    page2 = {"data": [_v2("10", "oldest")], "meta": {"result_count": 1, "newest_id": "10", "oldest_id": "10"}}
    responses.get(f"{API}/2/users/42/tweets", json=page1)
    responses.get(f"{API}/2/users/42/tweets", json=page2)
    pages: list[int] = []
    result = api_reader.read(on_page=pages.append)
    assert [p.id for p in result.posts] == ["10", "20", "30"]
    assert (result.cursor, result.requests, pages) == ("30", 2, [2, 1])
    first, second = (c for c in responses.calls if "/tweets" in c.request.url)
    q = _query(first)
    assert q["max_results"] == ["100"] and q["exclude"] == ["retweets"]
    assert set(q["tweet.fields"][0].split(",")) >= {"note_tweet", "entities", "referenced_tweets",
                                                    "display_text_range", "attachments", "in_reply_to_user_id"}
    assert set(q["expansions"][0].split(",")) == {"attachments.media_keys", "referenced_tweets.id",
                                                  "referenced_tweets.id.author_id"}
    assert "alt_text" in q["media.fields"][0] and "variants" in q["media.fields"][0]
    assert "pagination_token" not in q and "since_id" not in q
    assert _query(second)["pagination_token"] == ["tok2"]
    assert first.request.headers["Authorization"].startswith("OAuth ")


@responses.activate
def test_api_since_id_and_start_time(api_reader: XApiReader) -> None:
    _me()
    responses.get(f"{API}/2/users/42/tweets", json={"meta": {"result_count": 0}})
    result = api_reader.read(cursor="1234", since=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC))
    q = _query(responses.calls[-1])
    assert q["since_id"] == ["1234"] and q["start_time"][0].startswith("2024-01-02T03:04:05")
    assert result.posts == [] and result.cursor == "1234"


@responses.activate
def test_api_texts_media_replies_quotes_and_long_posts(api_reader: XApiReader) -> None:
    _me()
    text = "@me_writes AT&amp;T 😀 https://t.co/AA https://t.co/PIC"
    long_note = "A very long post &amp; more… " * 20 + "see https://t.co/LNG"
    page = {
        "data": [
            _v2("51", text, display_text_range=[11, 33], in_reply_to_user_id="42",
                referenced_tweets=[{"type": "replied_to", "id": "50"}], conversation_id="50",
                entities={"urls": [{"start": 24, "end": 36, "url": "https://t.co/AA",
                                    "expanded_url": "https://example.org/?a=1&b=2"},
                                   {"start": 37, "end": 52, "url": "https://t.co/PIC", "media_key": "3_1",
                                    "expanded_url": "https://x.com/me_writes/status/51/photo/1"}],
                          "mentions": [{"start": 0, "end": 10, "username": "me_writes", "id": "42"}]},
                attachments={"media_keys": ["3_1", "7_2"]}),
            _v2("52", "quoting this https://t.co/QQ", referenced_tweets=[{"type": "quoted", "id": "77"}],
                entities={"urls": [{"start": 13, "end": 28, "url": "https://t.co/QQ",
                                    "expanded_url": "https://twitter.com/bob/status/77"}]}),
            _v2("53", "A very long post &amp; more… A ve… https://t.co/SLF",
                note_tweet={"text": long_note, "entities": {"urls": [
                    {"start": len(long_note) - 16, "end": len(long_note), "url": "https://t.co/LNG",
                     "expanded_url": "https://example.org/long"}]}}),
            _v2("54", "@bob no", in_reply_to_user_id="9", display_text_range=[5, 7],
                referenced_tweets=[{"type": "replied_to", "id": "60"}]),
        ],
        "includes": {
            "media": [{"media_key": "3_1", "type": "photo", "url": "https://pbs.twimg.com/media/PiC.jpg",
                       "alt_text": "A red door"},
                      {"media_key": "7_2", "type": "video", "variants": [
                          {"bit_rate": 256000, "content_type": "video/mp4", "url": "https://video.twimg.com/v/lo.mp4?tag=1"},
                          {"bit_rate": 2176000, "content_type": "video/mp4", "url": "https://video.twimg.com/v/hi.mp4?tag=1"},
                          {"content_type": "application/x-mpegURL", "url": "https://video.twimg.com/v/pl.m3u8"}]}],
            "tweets": [{"id": "77", "text": "theirs", "author_id": "9", "edit_history_tweet_ids": ["77"]}],
            "users": [{"id": "9", "name": "Bob", "username": "bob"}]},
        "meta": {"result_count": 4},
    }
    responses.get(f"{API}/2/users/42/tweets", json=page)
    posts = by_id(api_reader.read())
    p51 = posts["51"]
    assert p51.text == "AT&T 😀 https://example.org/?a=1&b=2"
    assert p51.text[p51.links[0].start:p51.links[0].end] == "https://example.org/?a=1&b=2"
    assert (p51.reply_to, p51.reply_to_self, p51.root_id) == ("50", True, "50")
    assert [(m.kind, m.fetch, m.filename, m.alt) for m in p51.media] == [
        ("image", "https://pbs.twimg.com/media/PiC.jpg?name=orig", "51-PiC.jpg", "A red door"),
        ("video", "https://video.twimg.com/v/hi.mp4?tag=1", "51-hi.mp4", "")]
    assert posts["52"].text == "quoting this" and posts["52"].attachments == ("https://twitter.com/bob/status/77",)
    assert posts["53"].text == long_note.replace("&amp;", "&").replace("https://t.co/LNG", "https://example.org/long")
    assert posts["54"].text == "no" and posts["54"].reply_to_self is False
    threads = build_threads(posts.values())
    assert [t.ids for t in threads] == [["51"], ["52"], ["53"]]


@responses.activate
@pytest.mark.parametrize("body", [
    {"client_id": "123", "detail": "When authenticating requests to the Twitter API v2 endpoints, you must use keys "
     "and tokens from a Twitter developer App that is attached to a Project. You can create a project via the "
     "developer portal.", "registration_url": "https://developer.twitter.com/en/docs/projects/overview",
     "title": "Client Forbidden", "required_enrollment": "Appropriate Level of API Access",
     "reason": "client-not-enrolled", "type": "https://api.twitter.com/2/problems/client-forbidden"},
    {"errors": [{"message": "You currently have access to a subset of X API V2 endpoints and limited v1.1 "
                 "endpoints (e.g. media post, oauth) only. If you need access to this endpoint, you may need a "
                 "different access level. You can learn more here: https://developer.x.com/en/portal/product",
                 "code": 453}]},
])
def test_api_access_that_cannot_read_points_to_the_archive(api_reader: XApiReader, body: dict) -> None:
    _me()
    responses.get(f"{API}/2/users/42/tweets", status=403, json=body)
    with pytest.raises(XReadAccessError) as info:
        api_reader.read()
    message = str(info.value)
    assert "HTTP 403" in message and "--x-archive" in message and "cannot read" in message
    assert not any(v in message for v in ENV.values())


@responses.activate
def test_api_401_points_to_the_archive_and_other_403s_do_not(api_reader: XApiReader) -> None:
    responses.get(f"{API}/2/users/me", status=401, json={"title": "Unauthorized", "status": 401})
    with pytest.raises(XReadAccessError, match="--x-archive"):
        api_reader.read()
    responses.replace(responses.GET, f"{API}/2/users/me", json={"data": {"id": "42", "username": OWN, "name": "M"}})
    responses.get(f"{API}/2/users/42/tweets", status=403,
                  json={"title": "Forbidden", "detail": "User has been suspended: [42].", "status": 403})
    with pytest.raises(RejectedError) as info:
        api_reader.read()
    assert not isinstance(info.value, XReadAccessError) and "suspended" in str(info.value)


@responses.activate
def test_api_rate_limit_mid_paging_keeps_the_pages_read_and_resumes(api_reader: XApiReader) -> None:
    _me()
    responses.get(f"{API}/2/users/42/tweets", json={"data": [_v2("30", "newest")],
                                                    "meta": {"result_count": 1, "next_token": "tok2"}})
    responses.get(f"{API}/2/users/42/tweets", status=429, json={"title": "Too Many Requests", "status": 429},
                  headers={"x-rate-limit-limit": "5", "x-rate-limit-remaining": "0",
                           "x-rate-limit-reset": "1900000000"})
    with pytest.raises(RateLimitedError) as info:
        api_reader.read(cursor="5")
    assert info.value.reset_at == datetime.fromtimestamp(1900000000, tz=UTC)
    partial = info.value.partial
    assert [p.id for p in partial.posts] == ["30"] and partial.requests == 1
    responses.get(f"{API}/2/users/42/tweets", json={"data": [_v2("20", "older")], "meta": {"result_count": 1}})
    resumed = api_reader.read(cursor=partial.cursor)
    q = _query(responses.calls[-1])
    assert q["pagination_token"] == ["tok2"] and q["since_id"] == ["5"]
    assert [p.id for p in resumed.posts] == ["20"] and resumed.cursor == "30"


@responses.activate
def test_api_rate_limit_on_the_first_page(api_reader: XApiReader) -> None:
    _me()
    responses.get(f"{API}/2/users/42/tweets", status=429, json={"title": "Too Many Requests"},
                  headers={"x-rate-limit-reset": "1900000060"})
    with pytest.raises(RateLimitedError) as info:
        api_reader.read()
    assert info.value.reset_at == datetime.fromtimestamp(1900000060, tz=UTC)
    assert not hasattr(info.value, "partial")


@responses.activate
def test_api_fetch_media(api_reader: XApiReader) -> None:
    from crossposter.backup.source import SourceMedia

    responses.get("https://pbs.twimg.com/media/PiC.jpg?name=orig", body=b"\xff\xd8bytes")
    responses.get("https://pbs.twimg.com/media/gone.jpg", status=404)
    m = SourceMedia(kind="image", fetch="https://pbs.twimg.com/media/PiC.jpg?name=orig", filename="51-PiC.jpg")
    assert api_reader.fetch_media(m) == b"\xff\xd8bytes"
    assert "Authorization" not in responses.calls[0].request.headers
    with pytest.raises(RejectedError, match="HTTP 404"):
        api_reader.fetch_media(SourceMedia(kind="image", fetch="https://pbs.twimg.com/media/gone.jpg",
                                           filename="1-gone.jpg"))


def test_an_offset_into_the_unescaped_text_is_mapped_before_searching() -> None:
    """Nearest-occurrence search alone would pick the first `@bob` (0 is nearer 16 than 56 is)."""
    from crossposter.backup.x_text import MENTION, Entity, typed_text

    raw = "@bob " + "&amp;" * 10 + " @bob"
    typed = typed_text(raw, [Entity(MENTION, 16, 20, "bob", account_id="7")])
    (m,) = typed.mentions
    assert typed.text == "@bob " + "&" * 10 + " @bob" and (m.start, m.end) == (16, 20)


def _note(text: str, created: str) -> dict:
    return {"noteTweet": {"noteTweetId": str(abs(hash(text)) % 10**8), "createdAt": created,
                          "updatedAt": created, "core": {"text": text, "urls": [], "mentions": [], "hashtags": []}}}


def test_two_long_posts_in_the_same_second_get_their_own_notes(tmp_path: Path) -> None:
    first, second = "Alpha story, " * 30 + "the end.", "Beta story, " * 30 + "fin."
    created = "Wed Feb 08 15:12:34 +0000 2023"
    tweets = [tweet(tid, [text[:200] + "… ", ("url", f"https://twitter.com/i/web/status/{tid}", f"https://t.co/S{tid}")],
                    created=created) for tid, text in (("820", first), ("821", second))]
    notes = [_note(second, "2023-02-08T15:12:34.000Z"), _note(first, "2023-02-08T15:12:35.000Z")]
    posts = by_id(read(tmp_path, tweets, notes=notes))
    assert (posts["820"].text, posts["821"].text) == (first, second)


def test_a_long_self_reply_keeps_its_hidden_mention_out(tmp_path: Path) -> None:
    whole = "continuing the thread at length, " * 12 + "done"
    created = "Wed Feb 08 15:12:34 +0000 2023"
    t = tweet("830", [whole[:220] + "… ", ("url", "https://twitter.com/i/web/status/830", "https://t.co/S830")],
              created=created, reply_to=(OWN,), reply_to_status="829", reply_to_user=OWN_ID)
    post = by_id(read(tmp_path, [t], notes=[_note(f"@{OWN} " + whole, "2023-02-08T15:12:34.000Z")]))["830"]
    assert post.text == whole and post.reply_to_self and post.notes == ()


def test_an_encrypted_member_says_what_to_do(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "a.zip", [tweet("1", "secret")])
    data = bytearray(path.read_bytes())
    name = b"data/tweets.js"
    for signature, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # local header, central directory
        at = data.find(signature)
        while at != -1:
            name_at = at + (30 if signature == b"PK\x03\x04" else 46)
            if data[name_at:name_at + len(name)] == name:
                data[at + flag_at] |= 1
            at = data.find(signature, at + 4)
    path.write_bytes(bytes(data))
    err = _error(path)
    assert err.member == "data/tweets.js" and "encrypted" in err.problem and "without one" in err.fix


def test_since_must_be_aware(tmp_path: Path) -> None:
    with XArchiveReader(make_zip(tmp_path / "a.zip", [tweet("1", "x")])) as reader, \
            pytest.raises(ValueError, match="aware"):
        reader.read(since=datetime(2020, 1, 1))


@responses.activate
def test_api_since_before_x_timelines_is_not_sent(api_reader: XApiReader) -> None:
    _me()
    responses.get(f"{API}/2/users/42/tweets", json={"data": [_v2("30", "x")], "meta": {"result_count": 1}})
    result = api_reader.read(since=datetime(2006, 3, 21, tzinfo=UTC))
    assert "start_time" not in _query(responses.calls[-1]) and [p.id for p in result.posts] == ["30"]


def test_links_after_the_displayed_range_are_kept_as_attachments() -> None:
    """Some exports leave the quoted post's link, or the "show more" link, outside `display_text_range`."""
    from crossposter.backup.x_text import LINK, MEDIA, Entity, typed_text

    raw = "the text… https://t.co/Q https://t.co/S https://t.co/M"
    ents = [Entity(LINK, 10, 24, "https://t.co/Q", "https://x.com/bob/status/5"),
            Entity(LINK, 25, 39, "https://t.co/S", "https://twitter.com/i/web/status/99"),
            Entity(MEDIA, 40, 54, "https://t.co/M")]
    typed = typed_text(raw, ents, (0, 9), post_id="99")
    assert (typed.text, typed.attachments, typed.truncated) == ("the text…", ["https://x.com/bob/status/5"], True)


def test_a_forged_post_with_thousands_of_broken_mentions_is_read_in_bounds() -> None:
    from crossposter.backup.x_text import MAX_ENTITIES, MAX_SEARCHED, MENTION, Entity, typed_text

    raw = "@a " * 30_000
    typed = typed_text(raw, [Entity(MENTION, 10**6 + i, None, "a") for i in range(30_000)])
    assert typed.text == raw and len(typed.mentions) == MAX_SEARCHED
    assert typed.notes == [f"{30_000 - MAX_ENTITIES} of this post's 30000 links and mentions were not read "
                           "(more than any post can hold)",
                           f"{MAX_ENTITIES - MAX_SEARCHED} links and mentions of this post whose offsets X got "
                           "wrong were not looked for (too many)"]


@responses.activate
def test_api_no_access_already_at_login_points_to_the_archive(api_reader: XApiReader) -> None:
    responses.get(f"{API}/2/users/me", status=403, json={
        "title": "Client Forbidden", "reason": "client-not-enrolled", "type": "https://api.twitter.com/2/problems/client-forbidden",
        "detail": "When authenticating requests to the Twitter API v2 endpoints, you must use keys and tokens from a "
                  "Twitter developer App that is attached to a Project."})
    with pytest.raises(XReadAccessError, match="--x-archive"):
        api_reader.read()


def test_a_note_naming_its_post_is_used_even_when_the_post_does_not_look_cut(tmp_path: Path) -> None:
    note = {"noteTweet": {"noteTweetId": "9", "tweetId": "840", "noteTweetResults": {
        "text": "The complete text, longer than the post shows &amp; more.",
        "entitySet": {"hashtags": [], "symbols": [], "userMentions": [], "urls": []}}}}
    post = by_id(read(tmp_path, [tweet("840", "The complete text")], notes=[note]))["840"]
    assert post.text == "The complete text, longer than the post shows & more."


def test_what_a_post_lost_on_the_way_in_is_said_in_the_summary(tmp_path: Path) -> None:
    """A reader's note (here: a photo the zip does not hold, kept as its link) reaches the person, once per post.

    It used to stop at `SourcePost.notes`: the archive got the link, the summary said nothing.
    """
    from crossposter.backup.run import run_backup
    from crossposter.commands.backup import summary_lines
    from crossposter.config import Config

    tweets = [tweet("500", "One photo missing", media=[photo("gone.jpg")]),
              tweet("501", "Another missing", media=[photo("lost.jpg")], created="Thu Oct 11 20:19:24 +0000 2018"),
              tweet("502", "Nothing missing here", created="Fri Oct 12 20:19:24 +0000 2018")]
    config = Config(state_dir=tmp_path / "state", base_dir=tmp_path)
    with XArchiveReader(make_zip(tmp_path / "archive.zip", tweets)) as reader:
        outcome = run_backup(reader, config, account=OWN_ID, into=tmp_path / "x.md", archives=[])
    assert outcome.posts_added == 3
    assert outcome.notes == [
        f"https://x.com/{OWN}/status/500: an image of this post is not in the archive's tweets_media folder; kept "
        f"as a link: https://x.com/{OWN}/status/500/photo/1",
        f"https://x.com/{OWN}/status/501: an image of this post is not in the archive's tweets_media folder; kept "
        f"as a link: https://x.com/{OWN}/status/501/photo/1"]
    lines = summary_lines(outcome)
    assert sum("note:" in line for line in lines) == 2
    assert all(f"https://x.com/{OWN}/status/{n}/photo/1" in (tmp_path / "x.md").read_text() for n in ("500", "501"))
    # a rerun writes nothing, so it has nothing to say again
    with XArchiveReader(tmp_path / "archive.zip") as reader:
        again = run_backup(reader, config, account=OWN_ID, into=tmp_path / "x.md", archives=[])
    assert again.posts_added == 0 and again.notes == []


def test_one_note_said_of_many_posts_is_one_line() -> None:
    from crossposter.commands.backup import LISTED_MAX, note_lines

    same = [f"https://x.com/{OWN}/status/{n}: reply addressed to @bob (X hides these; not part of the text)"
            for n in range(5)]
    assert note_lines(same) == [f"  note: 5 posts (e.g. https://x.com/{OWN}/status/0): reply addressed to @bob "
                                "(X hides these; not part of the text)"]
    many = [f"https://x.com/{OWN}/status/{n}: kept as a link: https://example.org/{n}" for n in range(LISTED_MAX + 5)]
    lines = note_lines(many)
    assert len(lines) == LISTED_MAX and lines[-1] == "  note: … and 6 more notes"
    assert lines[0] == f"  note: https://x.com/{OWN}/status/0: kept as a link: https://example.org/0"
