"""The splitter trusts summed token lengths (and skips counting a post again) only where they are provably
exact: check that claim against `counting.length` on text built to break it.

Every post's reported `length` must be what the platform's own rule says of its text, whatever mix of
URLs, dots, emoji sequences, combining marks, CJK (cut without white space), U+3000 and mentions it holds.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crossposter import counting
from crossposter.render import blocks, tokenize
from crossposter.split import split

_PIECES = [
    "word", "e.g.", "example.com", "https://example.com/a?q=1", "a.b", "end.", "com", "日本語", "日本.com",
    "語。", "🧵", "👍🏽", "👨\u200d👩\u200d👧", "🇩🇪", "#\ufe0f\u20e3", "e\u0301", "\u0301x", "é", "A\u030a", "\u1100\u1161",
    "@user@mastodon.social", "@bob", "x@y.z", "://", ":", "/", "(!)", "naïve", "ﬁ", "©\ufe0f", "\u200d", "‼",
    "k.рф", "abc.日本", "a.com)", "(a.com", ".com", "x.", "..", "https://a.com/p(x)", "a.com?q=1", "「a.com」",
    "gopher://a.b", "\uff20user", "https://e.org/?q=日本", "www.日本.jp", "xn--p1ai.com", "ö.com", "\u0308",
    "a.みんな", "みんな",
]
_SEPS = [" ", "  ", "\n", "\u3000", " \u3000 ", "\t"]

_word = st.one_of(st.sampled_from(_PIECES), st.tuples(st.sampled_from(_PIECES), st.sampled_from(_PIECES)).map("".join))
_text = st.lists(st.tuples(_word, st.sampled_from(_SEPS)), min_size=1, max_size=40).map(
    lambda parts: "".join(w + s for w, s in parts).strip() or "x"
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_text, limit=st.integers(min_value=25, max_value=120), numbering=st.booleans())
def test_reported_length_is_the_platforms_count(text: str, limit: int, numbering: bool) -> None:
    rendered = blocks(text, 1, Path("/tmp"))
    for platform in ("bluesky", "mastodon", "x"):
        result = split(tokenize(rendered, platform), platform, limit, numbering=numbering)
        for post in result.posts:
            assert post.length == counting.length(platform, post.text), (platform, post.text)
            if not result.errors:
                assert post.length <= limit, (platform, post.text)


@pytest.mark.parametrize(("platform", "limit", "text"), [
    # each URL weighs 23 on its own and in the post; "e.g." is no URL either way
    ("x", 280, "see e.g. example.com and https://example.com/a?q=1 or 日本語 🧵 " * 12),
    # Mastodon's query characters include U+3000: "word" belongs to the URL in the post, not on its own
    ("mastodon", 100, "https://e.org/?q=日本\u3000word " * 30),
    # "a." and "みんな" are separate tokens (a cut may fall between CJK characters) but one URL together
    ("x", 100, "see a.みんな now " * 30),
], ids=["x-url-length-adds-up-across-tokens", "mastodon-query-runs-on-over-ideographic-space",
        "x-domain-across-a-cjk-cut"])
def test_url_lengths_add_up_across_tokens(platform: str, limit: int, text: str) -> None:
    result = split(tokenize(blocks(text, 1, Path("/tmp")), platform), platform, limit)
    assert len(result.posts) > 1
    for post in result.posts:
        assert post.length == counting.length(platform, post.text) <= limit
