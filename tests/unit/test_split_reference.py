"""The fast splitter against its slow reference (`crossposter.split_reference`) on generated archives.

Where every count the reference made equals the summed token counts (`additive`), the fast path must
produce exactly the reference's posts; elsewhere both must keep every token in order and fit every post.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from crossposter import counting
from crossposter.render import blocks, tokenize
from crossposter.split import split
from crossposter.split_reference import reference_split
from tests.unit.test_split import _thread
from tests.unit.test_split_exact import _text

PLATFORMS = ("bluesky", "mastodon", "x")

_image = st.sampled_from(["![a](img1.png)", "![](img2.png)", "![b](img3.png)"])
_extra = st.sampled_from(["---", "### Sub", "1. one\n2. two", "> quoted. text, here", "```\ncode line\n```",
                          "Intro:", "[a link](https://example.com/x) and more", "e.g. J. Smith said so."])
_archive = st.lists(st.one_of(_thread, _text, _image, _extra, st.lists(_image, min_size=2, max_size=6).map("\n".join)),
                    min_size=1, max_size=6).map("\n\n".join)


def _fits(platform: str, text: str, limit: int) -> bool:
    if platform == "bluesky" and len(text.encode("utf-8")) > counting.BLUESKY_MAX_BYTES:
        return False
    return counting.length(platform, text) <= limit


def _compare(markdown: str, platform: str, limit: int, numbering: bool, *, in_hypothesis: bool = True) -> None:
    rendered = blocks(markdown, 1, Path("/nonexistent"))
    tokens = tokenize(rendered, platform)
    fast = split(tokens, platform, limit, numbering=numbering)
    ref = reference_split(tokens, platform, limit, numbering=numbering)
    fast_texts = [p.text for p in fast.posts]
    ref_texts = [p.text for p in ref.posts]
    if in_hypothesis:
        event(f"additive={ref.additive}")
    if ref.additive:
        assert fast_texts == ref_texts
        assert [len(p.images) for p in fast.posts] == [p.images for p in ref.posts]
        assert {e.line for e in fast.errors} >= {tokens[i].line for i in ref.too_long}
    else:
        # Not additive: only the properties both must hold.
        # joined with a space: a post may start with a combining mark that would fuse with the last word
        assert " ".join(fast_texts).split() == " ".join(ref_texts).split() or numbering
        assert sum(len(p.images) for p in fast.posts) == sum(p.images for p in ref.posts)
    if not fast.errors:
        assert all(_fits(platform, t, limit) for t in fast_texts)
    if not ref.too_long:
        assert all(_fits(platform, t, limit) for t in ref_texts)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(markdown="word 日本.com 語。 \u0308  wordword", platform="bluesky", limit=25, numbering=False)
@given(markdown=_archive, platform=st.sampled_from(PLATFORMS), limit=st.sampled_from([25, 40, 60, 120, 300]),
       numbering=st.booleans())
def test_fast_split_matches_the_reference(markdown: str, platform: str, limit: int, numbering: bool) -> None:
    _compare(markdown, platform, limit, numbering)


def test_reference_is_exact_on_known_cases() -> None:
    """A few fixed inputs, so a regression names its case without shrinking."""
    for md in ("one two three. four five six, seven eight nine ten eleven twelve.",
               "Intro:\n\n- a b c\n- d e f g h\n\n### Sub\n\nmore words here and there",
               "日本語の文章です。これはテスト？" * 5):
        for platform in PLATFORMS:
            for numbering in (False, True):
                _compare(md, platform, 25, numbering, in_hypothesis=False)
