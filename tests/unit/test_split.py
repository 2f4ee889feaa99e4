"""Splitting: properties over generated Markdown, and examples whose expectations are worked out by hand."""

from __future__ import annotations

from pathlib import Path

import pytest
import regex
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from crossposter import counting
from crossposter.render import blocks, short_url, tokenize
from crossposter.split import split

PLATFORMS = {"bluesky": 300, "mastodon": 500, "x": 280}


def posts_of(markdown: str, platform: str, limit: int | None = None, numbering: bool = False,
             folder: Path = Path("/tmp")):
    rendered = blocks(markdown, 1, folder)
    result = split(tokenize(rendered, platform), platform, limit or PLATFORMS[platform], numbering=numbering)
    return result


def within_limit(platform: str, text: str, limit: int) -> bool:
    if platform == "bluesky" and len(text.encode("utf-8")) > 3000:
        return False
    return counting.length(platform, text) <= limit


# --------------------------------------------------------------------------- generated input

_words = st.sampled_from(
    ["the", "model", "Würstchen", "naïve", "e\u0301clair", "🇩🇪", "👩‍👩‍👧", "日本語", "テスト", "données",
     "x", "a", "GPU", "(!)", "->", "25K", "2.1", "end.", "clause,", "why?", "ok!", "שלום", "مرحبا", "🧵",
     "supercalifragilistic", "#hashtag", "@alice.bsky.social"]
)
_urls = st.sampled_from(
    ["https://arxiv.org/abs/2401.04088", "https://example.com/a/very/long/path/that/keeps/going/on/and/on",
     "http://pkamath.com/publications/papers/tsp-isca20.pdf", "https://x.com/dylan522p/status/1766656181886750782"]
)
_word_or_url = st.one_of(_words, _words, _words, _words, _urls)
_line = st.lists(_word_or_url, min_size=1, max_size=40).map(" ".join)
_paragraph = st.lists(_line, min_size=1, max_size=4).map("\n".join)
_item = st.lists(_word_or_url, min_size=1, max_size=30).map(lambda ws: "- " + " ".join(ws))
_list = st.lists(_item, min_size=1, max_size=6).map("\n".join)
_block = st.one_of(_paragraph, _paragraph, _list)
_section = st.lists(_block, min_size=1, max_size=6).map("\n\n".join)
_thread = st.lists(_section, min_size=1, max_size=3).map(
    lambda secs: secs[0] + "".join(f"\n\n### Part {i}\n{s}" for i, s in enumerate(secs[1:], 1))
)


def _source_words(markdown: str) -> list[str]:
    """The words a reader sees, in order: Markdown heading markers removed, nothing else touched."""
    words = []
    for line in markdown.split("\n"):
        if line.startswith("### "):
            line = line[4:]
        words.extend(line.split())
    return words


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_thread, st.sampled_from(sorted(PLATFORMS)), st.booleans())
def test_every_post_fits_and_no_word_is_lost_or_reordered(markdown: str, platform: str, numbering: bool) -> None:
    result = posts_of(markdown, platform, numbering=numbering)
    limit = PLATFORMS[platform]
    assert not result.errors
    for post in result.posts:
        assert within_limit(platform, post.text, limit), post.text
        assert counting.length(platform, post.text) == post.length
    out_words = []
    n = len(result.posts)
    for i, post in enumerate(result.posts, 1):
        text = post.text
        if numbering and n > 1:
            suffix = f"\n{i}/{n}"
            assert text.endswith(suffix)
            text = text[: -len(suffix)]
        out_words.extend(text.split())
    expected = _source_words(markdown)
    if platform == "bluesky":
        # Bluesky shows bare URLs shortened (the full URL is in the link facet).
        expected = [short_url(w) if w.startswith("http") else w for w in expected]
    _assert_same_words(out_words, expected)


_CJK_CHAR = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\u3000-\u303f\uff00-\uffef]")


def _assert_same_words(out_words: list[str], expected: list[str]) -> None:
    """The words come out complete and in order; CJK text, written without spaces, may be cut between two
    posts next to a CJK character ("日本語" -> "日" | "本語"), nowhere else."""
    out, want = " ".join(out_words), " ".join(expected)
    i = j = 0
    while i < len(out) or j < len(want):
        if i < len(out) and j < len(want) and out[i] == want[j]:
            i += 1
            j += 1
            continue
        # an extra space in the output must be a cut inside a word, beside a CJK character
        assert i < len(out) and out[i] == " " and 0 < i < len(out) - 1, (out, want)
        assert _CJK_CHAR.match(out[i - 1]) or _CJK_CHAR.match(out[i + 1]), (out[max(0, i - 20):i + 20], want)
        i += 1


def test_same_words_allows_cuts_only_inside_cjk_words() -> None:
    _assert_same_words(["a", "日", "本語", "b"], ["a", "日本語", "b"])
    with pytest.raises(AssertionError):
        _assert_same_words(["a", "Würst", "chen"], ["a", "Würstchen"])
    with pytest.raises(AssertionError):
        _assert_same_words(["b", "a"], ["a", "b"])
    with pytest.raises(AssertionError):
        _assert_same_words(["a"], ["a", "b"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_thread)
def test_urls_are_never_cut_and_facets_point_at_their_text(markdown: str) -> None:
    urls_in = [w for w in _source_words(markdown) if w.startswith("http")]
    for platform in PLATFORMS:
        result = posts_of(markdown, platform)
        links_out = [url for post in result.posts for url in post.links]
        assert links_out == urls_in
        for post in result.posts:
            if platform != "bluesky":
                for url in post.links:
                    assert url in post.text
                continue
            data = post.text.encode("utf-8")
            for f in post.facets:
                shown = data[f.byte_start:f.byte_end].decode("utf-8")  # raises if an offset splits a character
                if f.kind == "link":
                    assert shown == short_url(f.value)
                elif f.kind == "tag":
                    assert shown == "#" + f.value
                else:
                    assert shown == "@" + f.value


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["e\u0301", "🇩🇪", "👩‍👩‍👧", "日", "a", "ü", "\u0915\u094d\u0937"]), min_size=1,
                max_size=400))
def test_graphemes_are_never_cut_in_cjk_like_runs(chars: list[str]) -> None:
    text = "".join(chars)
    assume(text.strip())
    for platform in PLATFORMS:
        result = posts_of(text, platform, limit=50)
        if result.errors:  # a run with no CJK and no space longer than a post is an error, not a cut
            assert not regex.search(r"\p{Han}", text) or len(result.posts) >= 1
            continue
        joined = "".join(p.text for p in result.posts)
        assert joined == text
        original = regex.findall(r"\X", text)
        rebuilt = [g for p in result.posts for g in regex.findall(r"\X", p.text)]
        assert rebuilt == original


# --------------------------------------------------------------------------- examples (expectations by hand)


def test_subsections_start_new_posts_and_keep_their_heading_as_first_line() -> None:
    md = "Opening words.\n\n### First part\nBody one.\n\n### Second part\nBody two."
    texts = [p.text for p in posts_of(md, "mastodon").posts]
    assert texts == ["Opening words.", "First part\nBody one.", "Second part\nBody two."]


def test_paragraph_boundary_is_preferred_over_a_sentence_boundary() -> None:
    # Two paragraphs of 150 chars each do not fit in 280 together: the cut is between them,
    # although a sentence boundary further on would fit more text in the first post.
    p1 = ("a" * 70 + ". ") + ("b" * 77) + "."  # 150 characters, two sentences
    p2 = ("c" * 70 + ". ") + ("d" * 77) + "."
    texts = [p.text for p in posts_of(f"{p1}\n\n{p2}", "x").posts]
    assert texts == [p1, p2]


def test_sentence_boundary_is_preferred_over_a_word_boundary() -> None:
    s1 = "word " * 30  # 150 chars with spaces
    text = s1.strip() + ". " + "more " * 40 + "end."
    posts = posts_of(text, "x").posts
    assert posts[0].text.endswith("word.")


def test_cjk_text_is_cut_after_a_sentence_end() -> None:
    # 100 CJK characters weigh 200 on X; two such sentences do not fit in 280 together.
    s1 = "日" * 99 + "。"
    s2 = "本" * 99 + "。"
    texts = [p.text for p in posts_of(s1 + s2, "x").posts]
    assert texts == [s1, s2]


def test_a_lonely_last_word_is_avoided() -> None:
    # 47 five-letter words: 47*6-1 = 281 characters, one more than X allows.
    # Greedy packing would post 46 words and then one lonely word; the split shares them out instead.
    words = " ".join(["abcde"] * 47)
    posts = posts_of(words, "x").posts
    assert len(posts) == 2
    assert min(len(p.text) for p in posts) > 100


def test_list_items_are_kept_whole_and_marker_stays_with_its_text() -> None:
    items = [f"- item {i} " + "word " * 12 for i in range(8)]
    md = "\n".join(i.strip() for i in items)
    posts = posts_of(md, "x").posts
    for post in posts:
        for line in post.text.split("\n"):
            assert line.startswith("- item ")
            assert line.endswith("word")


def test_a_word_longer_than_a_post_is_an_error_naming_its_line() -> None:
    md = "Fine first line.\n\n" + "z" * 400
    result = posts_of(md, "x")
    assert result.errors and result.errors[0].line == 3
    assert "longer than a whole x post" in result.errors[0].message


def test_bluesky_shows_a_long_bare_url_shortened_so_it_fits() -> None:
    url = "https://example.com/" + "p" * 400
    result = posts_of(f"see {url}", "bluesky")
    assert not result.errors
    (post,) = result.posts
    assert post.text == "see example.com/" + "p" * 12 + "..."  # 13 characters of the path, then '...'
    assert post.links == [url]


def test_facet_byte_offsets_after_multibyte_text() -> None:
    md = "Ü 🧵 [the paper](https://arxiv.org/abs/2402.08958) #quantization"
    (post,) = posts_of(md, "bluesky").posts
    assert post.text == "Ü 🧵 the paper #quantization"
    link, tag = sorted(post.facets, key=lambda f: f.byte_start)
    # "Ü" is 2 bytes, "🧵" 4, plus two spaces: the link text starts at byte 8.
    assert (link.byte_start, link.byte_end, link.value) == (8, 17, "https://arxiv.org/abs/2402.08958")
    assert (tag.byte_start, tag.byte_end, tag.value) == (18, 31, "quantization")


def test_mastodon_and_x_write_the_url_after_the_link_text() -> None:
    md = "Mixtral Instruct ranks 12 at [LMSys](https://huggingface.co/spaces/lmsys)"
    for platform in ("mastodon", "x"):
        (post,) = posts_of(md, platform).posts
        assert post.text == "Mixtral Instruct ranks 12 at LMSys https://huggingface.co/spaces/lmsys"
        # "Mixtral Instruct ranks 12 at LMSys " is 35 characters, then the URL counts 23
        assert post.length == 35 + 23


def test_emphasis_dropped_inline_code_kept_code_block_lines_kept() -> None:
    md = "Some *emphasis* and **strong** and `code_here()`.\n\n```\nline one\n  indented\n```"
    (post,) = posts_of(md, "mastodon").posts
    assert post.text == "Some emphasis and strong and code_here().\n\nline one\n  indented"


def test_at_most_four_images_per_post(tmp_path: Path) -> None:
    md = "Look:\n\n" + "\n\n".join(f"![picture {i}](img{i}.png)" for i in range(6))
    result = posts_of(md, "mastodon", folder=tmp_path)
    assert [len(p.images) for p in result.posts] == [4, 2]
    assert [img.alt for p in result.posts for img in p.images] == [f"picture {i}" for i in range(6)]


def test_image_attaches_to_the_post_holding_the_text_before_it(tmp_path: Path) -> None:
    md = "First paragraph.\n\n![a chart](chart.png)\n\n### Next\nOther text."
    posts = posts_of(md, "x", folder=tmp_path).posts
    assert [img.alt for img in posts[0].images] == ["a chart"]
    assert posts[1].images == []


def test_numbering_width_is_counted() -> None:
    # Forty 20-char sentences need several posts; with numbering each post still fits 280 *including* "\ni/n".
    text = " ".join(["Sentence number ok."] * 40)
    posts = posts_of(text, "x", numbering=True).posts
    n = len(posts)
    assert n > 1
    for i, post in enumerate(posts, 1):
        assert post.text.endswith(f"\n{i}/{n}")
        assert counting.length("x", post.text) <= 280


def test_blockquote_is_quoted_and_soft_breaks_are_kept() -> None:
    md = "> quoted line one\n> line two"
    (post,) = posts_of(md, "x").posts
    assert post.text == "“quoted line one\nline two”"


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_seed_thread_fits(platform: str, shared_dir: Path) -> None:
    from crossposter.archive import read_archive

    archive = read_archive(shared_dir / "seed" / "tweets.md")
    for thread in archive.threads:
        if thread.skipped:
            continue
        rendered = blocks(thread.body, thread.body_line, archive.path.parent)
        result = split(tokenize(rendered, platform), platform, PLATFORMS[platform])
        assert not result.errors
        for post in result.posts:
            assert within_limit(platform, post.text, PLATFORMS[platform])


def test_a_line_ending_in_a_colon_stays_with_what_it_introduces() -> None:
    # 241 + 1 + 19 characters of intro, 2 of paragraph break and 252 of quote: 515 > 500. The cut goes
    # before "My favourite quote:" (a line break), not between the colon and the quote.
    intro = "a" * 240 + ".\nMy favourite quote:"
    quote = "> " + "q" * 250
    posts = [p.text for p in posts_of(f"{intro}\n\n{quote}", "mastodon").posts]
    assert posts == ["a" * 240 + ".", "My favourite quote:\n\n“" + "q" * 250 + "”"]
