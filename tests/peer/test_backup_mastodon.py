"""Mastodon backup reader: statuses → SourcePosts, exact typed text from `content` HTML, paging, errors, media.

The HTML conversion is checked as a property against a test-side encoder that follows Mastodon's
own formatter (app/lib/text_formatter.rb and Rails' simple_format), written from those rules and
not from the decoder; hand-written fixtures cover the formatter spec's inputs, the documentation's
examples and other servers' markup; paging and failures use `responses`; the whole path runs
against mastodon-mock.
"""

from __future__ import annotations

import copy
import io
import json
import re
import subprocess
import sys
import traceback
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
import responses
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image
from pydantic import SecretStr
from responses import matchers

from crossposter.backup.mastodon import (
    SKIP_DIRECT,
    SKIP_OTHER_ACCOUNT,
    SKIP_PRIVATE,
    MastodonReader,
    status_to_post,
)
from crossposter.backup.mastodon_html import align_to_source, decode_content
from crossposter.backup.source import SourceMedia, build_threads
from crossposter.platforms.base import RateLimitedError, RejectedError, TransientError, UnauthorizedError
from crossposter.platforms.mastodon import MastodonAdapter

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "backup" / "mastodon"
LOCAL = "masto.example"
INSTANCE = f"https://{LOCAL}"
TOKEN = "tok-secret-1234567890"
ME = {"id": "42", "username": "me", "acct": "me", "url": f"{INSTANCE}/@me"}


# =========================================================================== a test-side Mastodon formatter
# Follows app/lib/text_formatter.rb: rewrite() escapes the text between entities with ERB's h(),
# link_to_url / link_to_hashtag / link_to_mention build the markup, simple_format(…).delete("\n")
# makes paragraphs and line breaks; Status#prepare_contents strips the text before all of it.


@dataclass(frozen=True)
class Acct:
    id: str
    username: str
    domain: str | None  # None: an account of this instance

    @property
    def url(self) -> str:
        return f"https://{self.domain or LOCAL}/@{self.username}"

    @property
    def pretty_acct(self) -> str:
        return self.username if self.domain is None else f"{self.username}@{self.domain}"

    def mention_json(self) -> dict:
        return {"id": self.id, "username": self.username, "url": self.url, "acct": self.pretty_acct}


AUTHOR = Acct("42", "me", None)
POOL = [
    Acct("3", "alice", None),
    Acct("4", "alice", "remote.example"),
    Acct("5", "Bob_2", "other.example"),
    Acct("6", "me", "elsewhere.example"),  # same username as the author
    Acct("7", "carol", None),
]


def h(s: str) -> str:
    """ERB::Util.html_escape."""
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#39;"))


def link_to_url(url: str) -> str:
    m = re.match(r"(https?://(www\.)?|xmpp:)", url)
    prefix = m.group(0) if m else ""
    rest = url[len(prefix):]
    cutoff = len(rest) > 30
    return (f'<a href="{h(url)}" target="_blank" rel="nofollow noopener noreferrer">'
            f'<span class="invisible">{h(prefix)}</span><span class="{"ellipsis" if cutoff else ""}">'
            f'{h(rest[:30])}</span><span class="invisible">{h(rest[30:])}</span></a>')


def link_to_hashtag(tag: str) -> str:
    return (f'<a href="{h(INSTANCE + "/tags/" + quote(tag, safe=""))}" class="mention hashtag" rel="tag">'
            f'#<span>{h(tag)}</span></a>')


def link_to_mention(screen_name: str, preloaded: list[Acct], h_card: str) -> str:
    username, _, domain = screen_name.partition("@")
    dom: str | None = domain or None
    if dom is not None and dom.lower() == LOCAL:
        dom = None
    hits, account = 0, None
    for other in preloaded:
        same_username = other.username.lower() == username.lower()
        same_domain = dom is None if other.domain is None else (dom is not None and other.domain.lower() == dom.lower())
        if same_username and not same_domain:
            hits += 1
        elif same_username and same_domain:
            account = other
    if account is None:
        return "@" + h(screen_name)
    display = account.pretty_acct if hits else account.username
    inner = f'<a href="{h(account.url)}" class="u-url mention">@<span>{h(display)}</span></a>'
    wrapper = {"h-card": '<span class="h-card">', "translate": '<span class="h-card" translate="no">'}.get(h_card)
    return f"{wrapper}{inner}</span>" if wrapper else inner


def ruby_strip(s: str) -> str:
    return s.strip(" \t\n\v\f\r\0")


def simple_format_and_delete_newlines(html: str) -> str:
    """Rails' simple_format(html, {}, sanitize: false) followed by .delete("\\n")."""
    text = re.sub(r"\r\n?", "\n", html)
    paragraphs = re.split(r"\n\n+", text)
    while paragraphs and paragraphs[-1] == "":  # Ruby's split drops trailing empty fields
        paragraphs.pop()
    paragraphs = [re.sub(r"([^\n]\n)(?=[^\n])", r"\1<br />", p) for p in paragraphs]
    out = "\n\n".join(f"<p>{p}</p>" for p in paragraphs) if paragraphs else "<p></p>"
    return out.replace("\n", "")


def mastodon_content(tokens: list[tuple], h_card: str) -> tuple[str, list[dict], str]:
    """(content HTML, mentions JSON, stored text) of a status typed as `tokens`.

    Tokens: ("text", s), ("url", u), ("tag", name), ("mention", Acct), ("unknown", screen_name).
    """
    typed = []
    merged: list[tuple] = []
    for tok in tokens:
        if tok[0] == "text" and merged and merged[-1][0] == "text":
            merged[-1] = ("text", merged[-1][1] + tok[1])
        else:
            merged.append(tok)
    if merged and merged[0][0] == "text":
        merged[0] = ("text", merged[0][1].lstrip(" \t\n\v\f\r\0"))
    if merged and merged[-1][0] == "text":
        merged[-1] = ("text", merged[-1][1].rstrip(" \t\n\v\f\r\0"))
    mentioned = [t[1] for t in merged if t[0] == "mention"]
    preloaded = [AUTHOR, *dict.fromkeys(mentioned)]
    html = []
    for tok in merged:
        kind = tok[0]
        if kind == "text":
            typed.append(tok[1])
            html.append(h(tok[1]))
        elif kind == "url":
            typed.append(tok[1])
            html.append(link_to_url(tok[1]))
        elif kind == "tag":
            typed.append("#" + tok[1])
            html.append(link_to_hashtag(tok[1]))
        elif kind == "mention":
            typed.append("@" + tok[1].pretty_acct)
            html.append(link_to_mention(tok[1].pretty_acct, preloaded, h_card))
        else:
            typed.append("@" + tok[1])
            html.append("@" + h(tok[1]))
    stored = "".join(typed)
    content = "" if not stored or stored.isspace() else simple_format_and_delete_newlines("".join(html))
    return content, [a.mention_json() for a in dict.fromkeys(mentioned)], stored


def canonical(stored: str) -> str:
    """What simple_format keeps of a stored text: \\r\\n as \\n, a run of blank lines as one."""
    if not stored or stored.isspace():
        return ""
    return re.sub(r"\n\n+", "\n\n", re.sub(r"\r\n?", "\n", stored))


# --------------------------------------------------------------------------- strategies

SPECIAL_TEXT = ["<", ">", "&", "&amp;", '"', "'", "\n", "\n\n", "\n\n\n", "\r\n", "  ", " ", "   leading",
                "👩‍👩‍👧", "👍🏽", "🇩🇪", "日本語の文", "שלום עולם", "مرحبا", ":blobcat:", "#", "@", "a@b", "e\u0301",
                "\u00a0", "\u3000", "&lt;b&gt;", "<p>", "<br>", "</span>", "(", ")", "…", "\u200d"]
_plain = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12)
texts = st.one_of(_plain, st.sampled_from(SPECIAL_TEXT))
_seg = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.~()!*'+,;=:@%日本", min_size=1, max_size=12)
urls = st.builds(
    lambda scheme, host, segs, query: scheme + host + "".join("/" + s for s in segs) + query,
    st.sampled_from(["https://", "http://", "https://www.", "http://www."]),
    st.sampled_from(["example.org", "a.b.example.com", "nic.みんな", "xn--n3h.example", "localhost:8080"]),
    st.lists(_seg, max_size=6),
    st.one_of(st.just(""), st.builds(lambda kv: "?" + "&".join(f"{k}={v}" for k, v in kv),
                                     st.lists(st.tuples(_seg, _seg), min_size=1, max_size=3))),
) | st.sampled_from(["xmpp:muc@instance.com?join", "magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a",
                     "https://en.wikipedia.org/wiki/Diaspora_(software)",
                     "https://example.org/" + "very-long-path/" * 12])
tags = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCXYZ_0123456789タグ", min_size=1, max_size=15).filter(
    lambda t: not t.isdigit())
tokens = st.lists(st.one_of(
    st.tuples(st.just("text"), texts),
    st.tuples(st.just("url"), urls),
    st.tuples(st.just("tag"), tags),
    st.tuples(st.just("mention"), st.sampled_from(POOL)),
    st.tuples(st.just("unknown"), st.sampled_from(["nobody", "ghost@nowhere.example"])),
), max_size=14)


def _expected_spans(tokens_: list[tuple], text: str) -> tuple[list[tuple], list[tuple]]:
    """Links and mentions where the canonical text should have them, found by walking the typed tokens."""
    links, mentions = [], []
    pos = 0
    for tok in tokens_:
        typed = {"url": lambda t: t[1], "tag": lambda t: "#" + t[1], "mention": lambda t: "@" + t[1].pretty_acct,
                 "unknown": lambda t: "@" + t[1]}.get(tok[0])
        if typed is None:
            continue
        piece = typed(tok)
        at = text.find(piece, pos)
        assert at >= 0, (piece, text)
        if tok[0] == "url":
            links.append((at, at + len(piece), tok[1]))
        elif tok[0] == "mention":
            a = tok[1]
            mentions.append((at, at + len(piece), a.pretty_acct, a.url, a.id))
        pos = at + len(piece)
    return links, mentions


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tokens, st.sampled_from(["h-card", "translate", "bare"]))
def test_decoding_inverts_mastodons_formatter(toks: list[tuple], h_card: str) -> None:
    content, mentions, stored = mastodon_content(toks, h_card)
    decoded = decode_content(content, mentions, instance=INSTANCE)
    expected = canonical(stored)
    assert decoded.text == expected
    links, found = _expected_spans(toks, expected)
    assert [(s.start, s.end, s.url) for s in decoded.links] == links
    assert [(m.start, m.end, m.handle, m.profile_url, m.account_id) for m in decoded.mentions] == found
    assert decoded.notes == ()


@settings(max_examples=300, deadline=None)
@given(tokens)
def test_text_without_formatter_losses_comes_back_exactly(toks: list[tuple]) -> None:
    """No runs of blank lines, no CR, no surrounding white space: then decoding is the identity."""
    content, mentions, stored = mastodon_content(toks, "h-card")
    if "\r" in stored or "\n\n\n" in stored or stored != ruby_strip(stored) or stored.isspace():
        return
    assert decode_content(content, mentions, instance=INSTANCE).text == stored


def test_the_test_encoder_matches_the_formatter_spec() -> None:
    """The encoder above reproduces text_formatter_spec.rb's expectations (so the property tests Mastodon's shapes)."""
    assert mastodon_content([("text", "text")], "h-card")[0] == "<p>text</p>"
    assert "\n" not in mastodon_content([("text", "line\nfeed")], "h-card")[0]
    html = mastodon_content([("mention", POOL[0])], "h-card")[0]
    assert '<a href="https://masto.example/@alice" class="u-url mention">@<span>alice</span></a></span>' in html
    assert 'href="https://nic.みんな/"' in mastodon_content([("url", "https://nic.みんな/")], "")[0]
    assert '<span class="">nic.みんな/</span>' in mastodon_content([("url", "https://nic.みんな/")], "")[0]
    q = mastodon_content([("url", "https://www.ruby-toolbox.com/search?utf8=%E2%9C%93&q=autolink")], "")[0]
    assert 'href="https://www.ruby-toolbox.com/search?utf8=%E2%9C%93&amp;q=autolink"' in q
    assert (mastodon_content([("text", '<script>alert("Hello")</script>')], "")[0]
            == "<p>&lt;script&gt;alert(&quot;Hello&quot;)&lt;/script&gt;</p>")
    assert (mastodon_content([("text", """<img src="javascript:alert('XSS');">""")], "")[0]
            == "<p>&lt;img src=&quot;javascript:alert(&#39;XSS&#39;);&quot;&gt;</p>")
    assert ('/tags/hashtag%E3%82%BF%E3%82%B0" class="mention hashtag" rel="tag">#<span>hashtagタグ</span></a>'
            in mastodon_content([("tag", "hashtagタグ")], "")[0])
    assert mastodon_content([("text", "a\n\n\nb\nc")], "")[0] == "<p>a</p><p>b<br />c</p>"


# =========================================================================== hand-written real-world HTML


def _cases() -> list[dict]:
    return json.loads((FIXTURES / "content_cases.json").read_text(encoding="utf-8"))["cases"]


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c["name"])
def test_real_world_content(case: dict) -> None:
    instance = case.get("instance", INSTANCE)
    decoded = decode_content(case["content"], case.get("mentions", []), instance=instance)
    assert decoded.text == case["text"]
    assert [(decoded.text[s.start:s.end], s.url) for s in decoded.links] == [tuple(x) for x in case.get("links", [])]
    assert [(decoded.text[m.start:m.end], m.handle, m.profile_url, m.account_id) for m in decoded.mentions] == [
        tuple(x) for x in case.get("mention_spans", [])]
    for wanted in case.get("notes", []):
        assert any(wanted in note for note in decoded.notes), (wanted, decoded.notes)
    if not case.get("notes"):
        assert decoded.notes == ()
    assert list(decoded.quote_urls) == case.get("quote_urls", [])


def test_hostile_markup_never_loses_the_text_after_it() -> None:
    deep = "<blockquote>" * 300 + "deep" + "</blockquote>" * 300
    assert decode_content(deep).text.endswith("deep")
    assert decode_content("<embed src=x>after").text == "after"  # a void "dropped" element ends at once
    d = decode_content("<p>before<script>alert(1)</script>after</p>")
    assert d.text == "beforeafter"
    assert any("<script>" in n for n in d.notes)
    d = decode_content('<p>a <span class="quote-inline">RE: <a href="https://q.example/1">q</a> and then the rest')
    assert d.text == "a "
    assert d.quote_urls == ("https://q.example/1",)
    assert any("and then the rest" in n for n in d.notes)  # never silently: the unclosed fallback is named
    assert decode_content(f'<ol start="{"9" * 5000}"><li>x</li></ol><ol start="²"><li>y</li></ol>').text == "1. x\n\n1. y"
    big = "<p>" + "x&amp;" * 200_000 + "</p>"
    assert decode_content(big).text == "x&" * 200_000


def test_source_text_wins_and_spans_are_found_in_it() -> None:
    """GoToSocial and others send `text`: the Markdown the author typed; spans move onto it."""
    content = ('<p><strong>hi</strong> <a href="https://example.org/x">site</a> '
               '<span class="h-card"><a href="https://gts.example/@alice" class="mention">@<span>alice</span></a></span>'
               '</p>')
    mentions = [{"id": "01A", "username": "alice", "acct": "alice", "url": "https://gts.example/@alice"}]
    decoded = decode_content(content, mentions, instance="https://gts.example")
    source = "**hi** [site](https://example.org/x) @alice@gts.example"
    aligned = align_to_source(source, decoded)
    assert aligned.text == source
    assert [(source[s.start:s.end], s.url) for s in aligned.links] == [("https://example.org/x", "https://example.org/x")]
    assert [(source[m.start:m.end], m.handle, m.account_id) for m in aligned.mentions] == [
        ("@alice@gts.example", "alice", "01A")]
    assert not any("flattened" in n for n in aligned.notes)  # the source kept the markup: nothing was lost
    missing = align_to_source("no links here", decoded)
    assert missing.links == () and missing.mentions == ()
    assert any("https://example.org/x" in n for n in missing.notes)


# =========================================================================== status → SourcePost


def _docs_status() -> dict:
    return json.loads((FIXTURES / "docs_status_example.json").read_text(encoding="utf-8"))


def _status(sid: str, content: str = "<p>hi</p>", *, reply_to: str | None = None, reply_account: str | None = None,
            visibility: str = "public", created: str = "2026-01-02T10:00:00.000Z", **extra) -> dict:
    s = {"id": sid, "created_at": created, "in_reply_to_id": reply_to, "in_reply_to_account_id": reply_account,
         "sensitive": False, "spoiler_text": "", "visibility": visibility, "language": "en",
         "uri": f"{INSTANCE}/users/me/statuses/{sid}", "url": f"{INSTANCE}/@me/{sid}", "content": content,
         "reblog": None, "account": ME, "media_attachments": [], "mentions": [], "tags": [], "emojis": [],
         "card": None, "poll": None, "edited_at": None}
    s.update(extra)
    return s


def test_documentation_status_example() -> None:
    status = _docs_status()
    post = status_to_post(status, account_id="1", instance="https://mastodon.social")
    assert post.id == "103270115826048975"
    assert post.url == "https://mastodon.social/@Gargron/103270115826048975"
    assert post.created_at == datetime(2019, 12, 8, 3, 48, 33, 901000, tzinfo=UTC)
    assert post.text.startswith('"I lost my inheritance with one wrong digit on my sort code"\n\nhttps://www.the')
    assert post.links[0].url == status["card"]["url"]
    assert post.attachments == ()  # the card is the link already in the text
    assert post.language == "en" and post.content_warning is None and post.reply_to is None
    assert not post.repost and post.media == ()


def test_media_attachments_from_the_documentation() -> None:
    media = json.loads((FIXTURES / "docs_media_examples.json").read_text(encoding="utf-8"))
    media.append({"id": "9", "type": "unknown", "url": None,
                  "remote_url": "https://remote.example/files/report.pdf?sig=abc", "description": "the report"})
    media.append({"id": "10", "type": "image", "url": None, "remote_url": None, "description": "processing"})
    media.append({"id": "11", "type": "image", "url": "https://files.example/media/noext", "description": ""})
    post = status_to_post(_status("777", media_attachments=media), account_id="42", instance=INSTANCE)
    got = [(m.kind, m.fetch, m.filename, m.alt, m.mime_type) for m in post.media]
    assert got == [
        ("image", media[0]["url"], "777-1.jpeg", "test media description", "image/jpeg"),
        ("video", media[1]["url"], "777-2.mp4", "", "video/mp4"),
        ("gif", media[2]["url"], "777-3.mp4", "", "video/mp4"),
        ("audio", media[3]["url"], "777-4.mp3", "", "audio/mpeg"),
        ("file", "https://remote.example/files/report.pdf?sig=abc", "777-5.pdf", "the report", "application/pdf"),
        ("image", "https://files.example/media/noext", "777-7.bin", "", None),
    ]
    assert any("attachment 6" in n for n in post.notes)  # no URL: said, not dropped silently


def test_reply_warning_language_edit_poll_card_and_quotes() -> None:
    status = _status(
        "900", "<p>hello</p>", reply_to="899", reply_account="42", spoiler_text="spoilers ahead", language="de",
        edited_at="2026-01-02T11:00:00.000Z",
        poll={"id": "1", "multiple": False, "options": [{"title": "yes", "votes_count": 1},
                                                        {"title": "no", "votes_count": 0}]},
        card={"url": "https://card.example/page", "title": "t"},
        quote={"state": "accepted", "quoted_status": {"id": "5", "url": "https://other.example/@x/5"}},
    )
    post = status_to_post(status, account_id="42", instance=INSTANCE)
    assert post.reply_to == "899" and post.reply_to_self
    assert post.content_warning == "spoilers ahead"
    assert post.language == "de"
    assert post.edited_at == datetime(2026, 1, 2, 11, 0, tzinfo=UTC)
    assert post.attachments == ("https://other.example/@x/5", "https://card.example/page", f"{INSTANCE}/@me/900")
    assert any("'yes' / 'no'" in n for n in post.notes)
    other = status_to_post(_status("901", reply_to="5", reply_account="77"), account_id="42", instance=INSTANCE)
    assert other.reply_to == "5" and not other.reply_to_self
    shallow = status_to_post(_status("902", quote={"state": "pending", "quoted_status_id": "55"}),
                             account_id="42", instance=INSTANCE)
    assert shallow.attachments == ()
    assert any("pending" in n and "55" in n for n in shallow.notes)
    akkoma = status_to_post(_status("903", quote={"id": "7", "url": "https://ak.example/notice/7", "content": ""},
                                    quote_url="https://ak.example/notice/7"), account_id="42", instance=INSTANCE)
    assert akkoma.attachments == ("https://ak.example/notice/7",)


def test_reblog_is_a_repost() -> None:
    original = _status("50", "<p>theirs</p>", account={"id": "77"})
    post = status_to_post(_status("51", "", reblog=original), account_id="42", instance=INSTANCE)
    assert post.repost and post.text == ""


def test_unusable_status_ids_are_refused() -> None:
    with pytest.raises(ValueError):
        status_to_post(_status("../../etc/passwd"), account_id="42", instance=INSTANCE)
    with pytest.raises(ValueError):
        status_to_post(_status("12", created="not a date"), account_id="42", instance=INSTANCE)


# =========================================================================== paging with `responses`

STATUSES_URL = f"{INSTANCE}/api/v1/accounts/42/statuses"


def _reader(tmp_path: Path, **kw) -> MastodonReader:
    return MastodonReader(adapter=MastodonAdapter(INSTANCE, SecretStr(TOKEN), state_dir=tmp_path / "state"), **kw)


def _verify() -> None:
    responses.get(f"{INSTANCE}/api/v1/accounts/verify_credentials", json=ME)


def _link(next_max: str | None = None, prev_min: str | None = None) -> dict:
    parts = []
    if next_max:
        parts.append(f'<{STATUSES_URL}?limit=40&max_id={next_max}>; rel="next"')
    if prev_min:
        parts.append(f'<{STATUSES_URL}?limit=40&min_id={prev_min}>; rel="prev"')
    return {"Link": ", ".join(parts)} if parts else {}


def _page(params: dict, statuses: list[dict], headers: dict | None = None, status: int = 200, **kw) -> None:
    body = {"body": kw.pop("body")} if "body" in kw else {"json": statuses}
    responses.get(STATUSES_URL, status=status, headers=headers or {},
                  match=[matchers.query_param_matcher({"limit": "40", **params})], **body, **kw)


def _ids(n: int, start: int = 1000) -> list[str]:
    return [str(start + i) for i in range(n)]


def _made(ids: list[str]) -> list[dict]:
    """Statuses newest first, like the API, one minute apart."""
    return [_status(i, f"<p>post {i}</p>", created=f"2026-01-02T10:{int(i) % 60:02d}:00.000Z")
            for i in sorted(ids, key=int, reverse=True)]


def _queries() -> list[dict]:
    from urllib.parse import parse_qs, urlsplit
    return [{k: v[0] for k, v in parse_qs(urlsplit(c.request.url).query).items()}
            for c in responses.calls if "/statuses" in c.request.url]


@responses.activate
def test_first_run_pages_by_link_headers_then_walks_up_from_the_cursor(tmp_path: Path) -> None:
    _verify()
    a, b, c = _made(_ids(3, 1010)), _made(_ids(3, 1005)), _made(_ids(2, 1001))
    _page({}, a, _link("1010", "1012"))
    _page({"max_id": "1010"}, b, _link("1005", "1007"))
    _page({"max_id": "1005"}, c, _link(None, "1002"))  # Mastodon omits rel="next" on the last page
    pages: list[int] = []
    reader = _reader(tmp_path)
    result = reader.read(on_page=pages.append)
    assert [p.id for p in result.posts] == sorted(_ids(3, 1010) + _ids(3, 1005) + _ids(2, 1001), key=int)
    assert result.requests == 3 and pages == [3, 3, 2]
    assert [q.get("max_id") for q in _queries()] == [None, "1010", "1005"]
    assert all(q["limit"] == "40" for q in _queries())
    # the next run asks only for what is newer, and a run with nothing new keeps the cursor
    _page({"min_id": "1012"}, _made(["1014", "1013"]))
    _page({"min_id": "1014"}, [])
    again = reader.read(cursor=result.cursor)
    assert [p.id for p in again.posts] == ["1013", "1014"]
    assert again.requests == 2
    _page({"min_id": "1014"}, [])
    third = reader.read(cursor=again.cursor)
    assert third.posts == [] and third.cursor == again.cursor
    assert all("since_id" not in q for q in _queries())


@responses.activate
def test_rate_limit_mid_walk_keeps_what_was_read_and_resumes_without_a_gap(tmp_path: Path) -> None:
    _verify()
    first, rest = _made(_ids(3, 1010)), _made(_ids(3, 1005))
    _page({}, first, _link("1010", "1012"))
    _page({"max_id": "1010"}, [], status=429, headers={"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0",
                                                        "X-RateLimit-Reset": "2099-01-02T03:04:05.000Z"})
    reader = _reader(tmp_path)
    with pytest.raises(RateLimitedError) as info:
        reader.read()
    assert info.value.reset_at == datetime(2099, 1, 2, 3, 4, 5, tzinfo=UTC)
    partial = info.value.partial
    assert [p.id for p in partial.posts] == ["1010", "1011", "1012"]
    assert partial.cursor is not None and partial.requests == 1
    responses.reset()
    _verify()
    _page({"max_id": "1010"}, rest, _link(None, "1007"))  # the rest of the first walk
    _page({"min_id": "1012"}, _made(["1013"]))  # posted meanwhile
    _page({"min_id": "1013"}, [])
    resumed = reader.read(cursor=partial.cursor)
    assert [p.id for p in resumed.posts] == ["1005", "1006", "1007", "1013"]
    everything = [p.id for p in partial.posts + resumed.posts]
    assert len(everything) == len(set(everything))
    assert json.loads(resumed.cursor) == {"v": 1, "instance": INSTANCE, "account": "42", "newest": "1013"}


@responses.activate
def test_an_interrupted_gap_walk_stays_bounded_by_since_id(tmp_path: Path) -> None:
    """A gap above an older cursor is read with since_id, so the walk never goes below what was read."""
    _verify()
    cursor = json.dumps({"v": 1, "instance": INSTANCE, "account": "42", "newest": "1020", "gap": ["1000", "1015"]})
    _page({"max_id": "1015", "since_id": "1000"}, _made(["1014", "1013"]), _link("1013", "1014"))
    _page({"max_id": "1013", "since_id": "1000"}, [], status=503, body="<html>down</html>")
    reader = _reader(tmp_path)
    with pytest.raises(TransientError) as info:
        reader.read(cursor=cursor)
    partial = info.value.partial
    assert [p.id for p in partial.posts] == ["1013", "1014"]
    assert json.loads(partial.cursor)["gap"] == ["1000", "1013"]
    assert json.loads(partial.cursor)["newest"] == "1020"


@responses.activate
def test_a_server_ignoring_since_id_is_stopped_at_the_floor(tmp_path: Path) -> None:
    _verify()
    cursor = json.dumps({"v": 1, "instance": INSTANCE, "account": "42", "newest": "1020", "gap": ["1000", "1003"]})
    _page({"max_id": "1003", "since_id": "1000"}, _made(["1002", "1001", "1000", "999"]), _link("999", "1002"))
    _page({"min_id": "1020"}, [])
    result = _reader(tmp_path).read(cursor=cursor)
    assert [p.id for p in result.posts] == ["1001", "1002"]  # 1000 and below were read by an earlier run
    assert result.requests == 2


@responses.activate
def test_a_page_without_ids_stops_instead_of_looping(tmp_path: Path) -> None:
    _verify()
    _page({}, [{"content": "<p>no id</p>"}], _link(None, None))
    with pytest.raises(TransientError, match="without ids"):
        _reader(tmp_path).read()


@responses.activate
def test_since_stops_the_walk_at_the_first_older_status(tmp_path: Path) -> None:
    _verify()
    page = [_status("1003", created="2026-03-01T00:00:00Z"), _status("1002", created="2026-02-01T00:00:00Z"),
            _status("1001", created="2025-12-01T00:00:00Z")]
    _page({}, page, _link("1001", "1003"))
    result = _reader(tmp_path).read(since=datetime(2026, 1, 1, tzinfo=UTC))
    assert [p.id for p in result.posts] == ["1002", "1003"]
    assert result.requests == 1  # the older status ends the walk: page 2 is never asked for
    assert json.loads(result.cursor)["newest"] == "1003"


@responses.activate
def test_a_server_without_link_headers_is_walked_until_an_empty_page(tmp_path: Path) -> None:
    _verify()
    _page({}, _made(["1004", "1003"]))
    _page({"max_id": "1003"}, _made(["1002"]))
    _page({"max_id": "1002"}, [])
    result = _reader(tmp_path).read()
    assert [p.id for p in result.posts] == ["1002", "1003", "1004"]


@responses.activate
def test_a_server_repeating_a_page_stops_with_an_error_not_a_loop(tmp_path: Path) -> None:
    _verify()
    page = _made(["1004", "1003"])
    _page({}, page, _link("1003", "1004"))
    _page({"max_id": "1003"}, page, _link("1003", "1004"))
    with pytest.raises(TransientError, match="already sent"):
        _reader(tmp_path).read()


@responses.activate
def test_visibility_decisions(tmp_path: Path) -> None:
    _verify()
    statuses = [_status("1006", visibility="public"), _status("1005", visibility="unlisted"),
                _status("1004", visibility="private"), _status("1003", visibility="direct"),
                _status("1002", visibility="local"), _status("1001", account={"id": "77"})]
    _page({}, statuses)
    _page({"max_id": "1001"}, [])
    result = _reader(tmp_path).read()
    assert [p.id for p in result.posts] == ["1005", "1006"]
    assert result.skipped.counts == {SKIP_PRIVATE: 1, SKIP_DIRECT: 1, "posts with visibility 'local'": 1,
                                     SKIP_OTHER_ACCOUNT: 1}
    _page({}, statuses)
    _page({"max_id": "1001"}, [])
    kept = _reader(tmp_path, include_private=True).read()
    assert [p.id for p in kept.posts] == ["1004", "1005", "1006"]


@responses.activate
def test_a_cursor_of_another_account_or_garbage_reads_everything(tmp_path: Path, caplog) -> None:
    _verify()
    for cursor in (json.dumps({"v": 1, "instance": INSTANCE, "account": "41", "newest": "1003"}),
                   "not json {", json.dumps({"v": 1, "instance": INSTANCE, "account": "42", "newest": 5}),
                   json.dumps({"v": 1, "instance": INSTANCE, "account": "42", "newest": "1&max_id=1"}),
                   json.dumps({"v": 1, "instance": INSTANCE, "account": "42", "newest": "9", "gap": [None, 3]})):
        _page({}, _made(["1001"]))
        _page({"max_id": "1001"}, [])
        result = _reader(tmp_path).read(cursor=cursor)
        assert [p.id for p in result.posts] == ["1001"]
    assert "reading the whole account again" in caplog.text


@responses.activate
def test_unauthorized_says_which_variable_and_never_the_token(tmp_path: Path) -> None:
    responses.get(f"{INSTANCE}/api/v1/accounts/verify_credentials", status=401,
                  json={"error": "The access token is invalid"})
    with pytest.raises(UnauthorizedError) as info:
        _reader(tmp_path).read()
    shown = "".join(traceback.format_exception(info.value)) + repr(info.value) + str(vars(info.value))
    assert "CROSSPOSTER_MASTODON_ACCESS_TOKEN" in str(info.value)
    assert TOKEN not in shown


@responses.activate
def test_server_and_network_errors_are_transient(tmp_path: Path) -> None:
    _verify()
    _page({}, [], status=502, body="bad gateway", headers={"Retry-After": "12"})
    with pytest.raises(TransientError) as info:
        _reader(tmp_path).read()
    assert info.value.retry_after == 12.0
    assert info.value.partial.posts == [] and info.value.partial.cursor is None
    responses.reset()
    _verify()
    _page({}, [], body=requests.ConnectionError("connection reset"))
    with pytest.raises(TransientError, match="network error"):
        _reader(tmp_path).read()


# =========================================================================== media downloads


def _media(url: str = "https://files.example/a/original/x.png") -> SourceMedia:
    return SourceMedia(kind="image", fetch=url, filename="1-1.png")


@responses.activate
def test_fetch_media_returns_the_bytes_as_served_without_the_token(tmp_path: Path) -> None:
    data = bytes(range(256)) * 1000
    responses.get("https://files.example/a/original/x.png", body=data, content_type="image/png")
    assert _reader(tmp_path).fetch_media(_media()) == data
    assert "Authorization" not in responses.calls[0].request.headers


@responses.activate
def test_fetch_media_errors(tmp_path: Path) -> None:
    url = "https://files.example/a/original/x.png?X-Amz-Signature=s3cr3t"
    reader = _reader(tmp_path)
    responses.get(url, status=429, headers={"X-RateLimit-Reset": "2099-05-06T07:08:09Z"})
    with pytest.raises(RateLimitedError) as rl:
        reader.fetch_media(_media(url))
    assert rl.value.reset_at == datetime(2099, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert "s3cr3t" not in str(rl.value)  # signed URLs keep their signature out of messages
    responses.replace(responses.GET, url, status=503, headers={"Retry-After": "5"})
    with pytest.raises(TransientError) as tr:
        reader.fetch_media(_media(url))
    assert tr.value.retry_after == 5.0
    responses.replace(responses.GET, url, status=404)
    with pytest.raises(RejectedError, match="404"):
        reader.fetch_media(_media(url))
    responses.replace(responses.GET, url, status=401)
    with pytest.raises(UnauthorizedError):
        reader.fetch_media(_media(url))
    responses.replace(responses.GET, url, body=requests.ConnectTimeout("slow"))
    with pytest.raises(TransientError, match="timed out"):
        reader.fetch_media(_media(url))
    with pytest.raises(RejectedError, match="not an http"):
        reader.fetch_media(_media("file:///etc/passwd"))


def test_reader_import_is_light() -> None:
    code = ("import sys, crossposter.backup.mastodon; "
            "print(sorted(m for m in ('mastodon', 'requests', 'pydantic') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# =========================================================================== against mastodon-mock


def _dev_user(server, name: str) -> tuple[str, str]:
    r = requests.post(f"{server.url}/api/v1/_mock/dev_user", json={"username": name}, timeout=10)
    r.raise_for_status()
    return r.json()["id"], r.json()["access_token"]


def _api(server, token: str):
    from mastodon import Mastodon

    api = Mastodon(access_token=token, api_base_url=server.url, version_check_mode="none")
    api.mastodon_major, api.mastodon_minor, api.mastodon_patch = 4, 0, 0
    return api


def test_self_thread_read_back_from_mastodon_mock(mastodon_server, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    me_id, me_token = _dev_user(mastodon_server, f"bk_me_{tag}")
    other_id, other_token = _dev_user(mastodon_server, f"bk_other_{tag}")
    me, other = _api(mastodon_server, me_token), _api(mastodon_server, other_token)
    buf = io.BytesIO()
    Image.new("RGB", (30, 20), (10, 200, 30)).save(buf, "PNG")
    png = buf.getvalue()

    theirs = other.status_post(f"their post {tag}")
    media = me.media_post(png, mime_type="image/png", description="a green rectangle")
    root_text = f"Root {tag}: see https://example.org/a?b=1&c=2 & <tags> 👩‍👩‍👧\n\nsecond paragraph"
    root = me.status_post(root_text, media_ids=[media["id"]])
    r1 = me.status_post("first reply\nline two", in_reply_to_id=root["id"], visibility="unlisted")
    r2 = me.status_post("שלום second reply 日本", in_reply_to_id=r1["id"])
    me.status_post(f"@bk_other_{tag} nice", in_reply_to_id=theirs["id"])
    me.status_post("just between us", visibility="direct")
    me.status_reblog(theirs["id"])

    adapter = MastodonAdapter(mastodon_server.url, SecretStr(me_token), state_dir=tmp_path / "state")
    reader = MastodonReader(adapter=adapter, page_size=2)
    result = reader.read()
    assert result.requests >= 3  # six statuses, two per page: paged by Link headers, not one request each
    skipped = copy.deepcopy(result.skipped)
    threads = build_threads(result.posts, skipped)
    assert len(threads) == 1
    posts = threads[0].posts
    assert [p.text for p in posts] == [root_text, "first reply\nline two", "שלום second reply 日本"]
    assert [p.id for p in posts] == [str(root["id"]), str(r1["id"]), str(r2["id"])]
    assert posts[0].links[0].url == "https://example.org/a?b=1&c=2"
    assert root_text[posts[0].links[0].start:posts[0].links[0].end] == "https://example.org/a?b=1&c=2"
    assert skipped.counts == {SKIP_DIRECT: 1, "replies to other accounts": 1, "reposts": 1}
    assert all(p.reply_to_self for p in posts[1:])
    (image,) = posts[0].media
    assert (image.kind, image.alt, image.filename) == ("image", "a green rectangle", f"{root['id']}-1.png")
    assert reader.fetch_media(image) == png
    assert str(me_id) == reader.account()["id"] and other_id != me_id

    r3 = me.status_post("third reply", in_reply_to_id=r2["id"])
    again = reader.read(cursor=result.cursor)
    assert [p.id for p in again.posts] == [str(r3["id"])]
    assert again.posts[0].reply_to == str(r2["id"]) and again.posts[0].reply_to_self
    quiet = reader.read(cursor=again.cursor)
    assert quiet.posts == [] and quiet.cursor == again.cursor and quiet.requests == 1


# =========================================================================== forged and broken input

_keys = st.sampled_from(["options", "title", "url", "uri", "id", "acct", "username", "state", "quoted_status",
                         "quoted_status_id", "type", "description", "remote_url", "multiple", "quote_url"])
_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys | st.text(max_size=8), inner,
                                                                                 max_size=4),
                     max_leaves=12)
_fields = ["content", "mentions", "media_attachments", "poll", "card", "quote", "quote_url", "spoiler_text",
           "language", "in_reply_to_id", "in_reply_to_account_id", "edited_at", "reblog", "text", "url", "pleroma"]


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(_fields), _json))
@example({"poll": {"options": 5}, "mentions": {"a": 1}, "media_attachments": "x", "quote": [], "card": "c",
          "spoiler_text": 3, "language": ["en"], "in_reply_to_id": 9, "content": 7})
def test_forged_status_fields_never_crash_the_conversion(fields: dict) -> None:
    status = {"id": "1", "created_at": "2026-01-01T00:00:00Z", **fields}
    post = status_to_post(status, account_id="42", instance=INSTANCE)
    assert isinstance(post.text, str)
    for span in (*post.links, *post.mentions):
        assert 0 <= span.start <= span.end <= len(post.text)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(
    st.text(max_size=10),
    st.sampled_from(["<p>", "</p>", "<br>", "<br/>", "<a href='https://x.example/'>", "</a>", '<a class="mention">',
                     '<span class="quote-inline">', "</span>", "<ul>", "<li>", "</ul>", "<blockquote>",
                     "</blockquote>", "<pre>", "</pre>", "<script>", "</script>", "&amp;", "&#x110000;", "<!--",
                     "-->", "<![CDATA[", "<", "</", "<img alt=':x:'>", '<a href="https://m.example/@a" class="u-url '
                     'mention">@<span>a</span></a>']),
), max_size=30))
def test_any_tag_soup_decodes_to_text_with_spans_inside_it(pieces: list[str]) -> None:
    decoded = decode_content("".join(pieces), [{"id": "1", "acct": "a", "username": "a", "url": "https://m.example/@a"}],
                             instance="https://m.example")
    for span in (*decoded.links, *decoded.mentions):
        assert 0 <= span.start <= span.end <= len(decoded.text)


def test_reader_from_config_uses_the_configured_instance_and_token(monkeypatch, tmp_path: Path) -> None:
    from crossposter.config import Config, ConfigError

    config = Config.model_validate({"platforms": {"mastodon": {"instance": "masto.example"}}, "base_dir": tmp_path})
    monkeypatch.delenv("CROSSPOSTER_MASTODON_ACCESS_TOKEN", raising=False)
    monkeypatch.delenv("CROSSPOSTER_MASTODON_ACCESS_TOKEN_FILE", raising=False)
    with pytest.raises(ConfigError):
        MastodonReader(config)
    monkeypatch.setenv("CROSSPOSTER_MASTODON_ACCESS_TOKEN", TOKEN)
    reader = MastodonReader(config)
    assert reader.adapter.instance == INSTANCE
    assert TOKEN not in repr(reader)
