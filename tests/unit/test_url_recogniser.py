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
