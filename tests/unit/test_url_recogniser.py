"""One URL recogniser: what the previews highlight as a link is exactly what the count weighs as a URL."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crossposter import counting, split
from crossposter.preview_html import counted_url_spans, written_out_spans
from tests.unit.test_split_exact import _text

_more = st.sampled_from(["https://a.org/x.", "https://a.org/(x)", "https://a.org/x)", "(https://a.org/y)",
                         "http://ex.com/a_b?c=d&e=f#g,", "https://例え.jp/パス", "example.com", "t.co/abc",
                         "https://e.org/x'y", "https://e.org/…", "@bob@mastodon.social", "#tag"])
_texts = st.one_of(_text, st.lists(st.one_of(_more, _text), min_size=1, max_size=8).map(" ".join))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_texts, platform=st.sampled_from(["mastodon", "x"]))
def test_highlighted_links_are_the_counted_urls(text: str, platform: str) -> None:
    links = [(s, e) for s, e, kind, _ in written_out_spans(text, [], platform) if kind == "link"]
    assert links == counted_url_spans(text, platform)
    if platform == "mastodon" or unicodedata.is_normalized("NFC", text):
        assert links == counting.url_spans(platform, text)


@pytest.mark.parametrize(("platform", "text", "url"), [
    ("x", "see example.com today", "example.com"),  # X counts a URL without a scheme as 23
    ("mastodon", "see example.com today", None),  # Mastodon does not
    ("mastodon", "(https://a.org/y) ok", "https://a.org/y"),
])
def test_known_urls(platform: str, text: str, url: str | None) -> None:
    links = [text[s:e] for s, e, kind, _ in written_out_spans(text, [], platform) if kind == "link"]
    assert links == ([url] if url else [])


def test_bluesky_byte_cap_is_defined_once() -> None:
    assert split.BLUESKY_MAX_BYTES is counting.BLUESKY_MAX_BYTES


# --- the renderer's links and facets come from the same recogniser (per dialect) -------------------------

def _one_post(markdown: str, platform: str):
    from tests.unit.test_split import posts_of

    (post,) = posts_of(markdown, platform).posts
    return post


def _facets(post) -> list[tuple[str, str, str]]:
    raw = post.text.encode()
    return [(f.kind, raw[f.byte_start:f.byte_end].decode(), f.value) for f in post.facets]


WIKI = "https://en.wikipedia.org/wiki/Foo_(bar)"


@pytest.mark.parametrize("platform", ["bluesky", "mastodon", "x"])
def test_a_bare_url_ending_in_a_parenthesis_is_linked_whole(platform: str) -> None:
    post = _one_post(f"Read {WIKI} now", platform)
    assert post.links == [WIKI]  # the old pattern dropped the ")": .../Foo_(bar
    if platform == "bluesky":
        assert [(k, v) for k, _, v in _facets(post)] == [("link", WIKI)]


@pytest.mark.parametrize("platform", ["mastodon", "x"])
def test_what_the_count_does_not_weigh_as_a_url_is_no_link(platform: str) -> None:
    # Mastodon and X need a known TLD: the count weighs this URL as its 23 characters, so it is no link there.
    text = "Run it on http://localhost:8000/x today"
    post = _one_post(text, platform)
    assert post.links == []
    assert counting.url_spans(platform, post.text) == []


def test_bluesky_links_what_its_app_links() -> None:
    # detectFacets links any http(s) URL and a domain with a known TLD, after white space or "(".
    post = _one_post("Run http://localhost:8000/x, see example.com. (also https://a.org/y) but not my-site.com", "bluesky")
    assert [(k, shown, v) for k, shown, v in _facets(post)] == [
        ("link", "localhost:8000/x", "http://localhost:8000/x"),  # shown short like the app's bare URLs
        ("link", "example.com", "https://example.com"),
        ("link", "a.org/y", "https://a.org/y"),
    ]


def test_bluesky_links_leave_trailing_punctuation_out() -> None:
    # the app drops one ".,;:!?" and one ")": it would link https://a.org/x! here; crossposter drops them all
    post = _one_post("Read https://a.org/x!: and (see https://b.org/y.)", "bluesky")
    assert [v for _, _, v in _facets(post)] == ["https://a.org/x", "https://b.org/y"]


def test_x_links_a_url_without_a_scheme_and_mastodon_does_not() -> None:
    text = "see example.com and t.co/abc today"
    assert _one_post(text, "x").links == ["https://example.com", "https://t.co/abc"]
    assert _one_post(text, "mastodon").links == []


def test_a_mastodon_url_running_over_u3000_is_never_cut() -> None:
    # Mastodon's query characters include U+3000 and CJK: this is one URL there (counted 23), and a cut at
    # the U+3000 would leave a post listing a URL it does not hold
    from tests.unit.test_split import posts_of

    text = "Some words here http://x.org/a_b?c=d#f\u3000中文，测试！ and more words after it"
    url = "http://x.org/a_b?c=d#f\u3000中文，测试！"
    assert counting.url_spans("mastodon", text) == [(16, 16 + len(url))]
    posts = posts_of(text, "mastodon", 20).posts
    assert any(url in p.text for p in posts)  # whole, in one post
    for p in posts:
        assert p.links == [p.text[s:e] for s, e in counting.url_spans("mastodon", p.text)]


_word = st.sampled_from(["example.com", WIKI, "http://localhost:8000/x", "(https://a.org/y)", "https://a.org/x.",
                         "t.co/abc", "e.g.", "日本語example.com", "x.org/a_b?c=d", "file.txt", "https://例え.jp/パス",
                         "word", "words", "ok,", "end.", "日本語の文章です。", "🧵", "3.5", "“https://e.org/q”",
                         # Mastodon's query runs on over U+3000 (and into the CJK after it)
                         "http://x.org/a_b?c=d#f\u3000中文，测试！"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(words=st.lists(_word, min_size=1, max_size=30), platform=st.sampled_from(["mastodon", "x"]),
       limit=st.sampled_from([40, 80, 280]))
def test_a_posts_links_are_the_urls_its_count_weighs(words: list[str], platform: str, limit: int) -> None:
    """Mastodon and X find URLs in the text themselves: the links a post lists are exactly those (never a
    link the count ignores or a URL it weighs 23 that the post does not list), and none is cut."""
    from tests.unit.test_split import posts_of

    text = " ".join(words)
    result = posts_of(text, platform, limit)
    for post in result.posts:
        found = [post.text[s:e] for s, e in counting.url_spans_as_written(platform, post.text)]
        assert post.links == [u if "://" in u else f"https://{u}" for u in found]
    every = [text[s:e] for s, e in counting.url_spans_as_written(platform, text)]
    kept = [u for post in result.posts for u in
            (post.text[s:e] for s, e in counting.url_spans_as_written(platform, post.text))]
    assert kept == every


def _bluesky_by_the_pattern(text: str) -> list[tuple[int, int]]:
    """detectFacets' loop as written: the URL pattern run over the whole text (slow, obviously the rule)."""
    tlds = set(counting._GTLDS.split()) | set(counting._CCTLDS.split())
    spans = []
    for m in counting._bluesky_url_re().finditer(text):
        a, b = m.span()
        if m.group("proto") is None and m.group("domain").rsplit(".", 1)[1] not in tlds:
            continue
        while text[b - 1] in ".,;:!?" or text[b - 1] == ")" and "(" not in text[a:b]:
            b -= 1
        if b > a + len(m.group("proto") or ""):
            spans.append((a, b))
    return spans


_bsky_piece = st.sampled_from(["a", "b.c", "x.org", "https://", "http://y.io/p", "(", ")", ".", "!", ":", "-", "é",
                               " ", "\n", "\t", "\u3000", "\u2003", "\xa0", "\ufeff", "www.example.com", "3.5", "@"])


@settings(max_examples=300, deadline=None)
@given(text=st.lists(_bsky_piece, max_size=25).map("".join))
def test_bluesky_spans_scan_only_candidate_words_yet_match_the_pattern(text: str) -> None:
    assert counting.url_spans("bluesky", text) == _bluesky_by_the_pattern(text)


_any_piece = st.one_of(_bsky_piece, st.sampled_from(["example.com-x", "a.xn--p1ai", "b.ಭಾರತ", "c.comです", "d.com_x",
                                                     "e.g.", "f.COM", "g.co/x", "h.i.j", "日本.jp", "k.みんな"]))


@settings(max_examples=300, deadline=None)
@given(text=st.lists(_any_piece, max_size=12).map("".join))
def test_the_quick_no_url_test_never_hides_a_url(text: str) -> None:
    """`may_hold_url` lets the renderer skip the recognisers: it may say yes wrongly, never no wrongly."""
    if not counting.may_hold_url(text):
        assert counting.url_spans("x", text) == counting.url_spans("mastodon", text) == []
        assert counting.url_spans("bluesky", text) == []
