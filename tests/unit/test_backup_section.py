"""`backup.section`: headings, date lines, posts and whole sections, read back with the archive parser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from crossposter.archive import markdown_parser, parse_archive
from crossposter.backup.section import (
    HEADING_MAX,
    append_posts_markdown,
    date_line,
    heading_for,
    post_markdown,
    section_markdown,
)
from crossposter.backup.source import LinkSpan, MentionSpan, SourceMedia, SourcePost, SourceThread
from crossposter.metadata import render_block

T0 = datetime(2024, 7, 1, 22, 30, tzinfo=UTC)


def post(text: str, n: int = 1, **kw: object) -> SourcePost:
    return SourcePost("bluesky", f"at://did:plc:abc/app.bsky.feed.post/3kabc{n:08d}", f"https://bsky.app/p/{n}",
                      T0 + timedelta(minutes=n), text, **kw)


def read_title(title: str) -> str:
    (thread,) = parse_archive(f"## {title}\n\nbody\n", Path("t.md")).threads
    return thread.title


def test_heading_is_the_opening_words_cut_at_a_word() -> None:
    words = "Das ist ein ziemlich langer erster Beitrag, der viel mehr als achtzig Zeichen hat und weitergeht"
    title = heading_for(post(words), set(), "UTC")
    assert title == "Das ist ein ziemlich langer erster Beitrag, der viel mehr als achtzig Zeichen"  # + " hat": 81
    assert len(title) <= HEADING_MAX and words.startswith(title)


def test_heading_leaves_out_urls_and_markup_but_keeps_words_apart() -> None:
    assert heading_for(post("*Wow*, see https://example.org/x?y=1 now #tag a|b"), set(), "UTC") == "Wow, see now tag a b"


def test_heading_is_unique_ignoring_case_and_spacing() -> None:
    taken = {"Hello   world", "hello world (2)"}
    assert heading_for(post("hello world"), taken, "UTC") == "hello world (3)"


def test_heading_of_a_post_without_words_is_its_date() -> None:
    assert heading_for(post("https://example.org"), set(), "Europe/Berlin") == "Post of 2024-07-02 00:31"
    assert heading_for(post("..."), set(), "UTC") == "Post of 2024-07-01 22:31"


def test_heading_of_one_very_long_word_is_cut() -> None:
    title = heading_for(post("a" * 300), set(), "UTC")
    assert title == "a" * (HEADING_MAX - 1) + "…"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200), st.sets(st.text(min_size=1, max_size=20).map(lambda s: " ".join(s.split())),
                                      max_size=3))
def test_property_any_heading_reads_back_as_itself_and_is_new(text: str, taken: set[str]) -> None:
    taken = {t for t in taken if t}
    title = heading_for(post(text), taken, "UTC")
    assert title and read_title(title) == title
    assert " ".join(title.split()).casefold() not in {" ".join(t.split()).casefold() for t in taken}


def test_date_line_is_in_the_zone() -> None:
    assert date_line(T0, "Europe/Berlin") == "2024-07-02 00:30"
    assert date_line(T0, "America/New_York") == "2024-07-01 18:30"


def test_post_with_link_mention_images_video_and_attachment() -> None:
    text = "see example.org/x… and @bob.bsky.social"
    p = post(text, links=(LinkSpan(4, 18, "https://example.org/x/long"),),
             mentions=(MentionSpan(23, 39, "bob.bsky.social", "https://bsky.app/profile/did:plc:bob"),),
             attachments=("https://bsky.app/profile/did:plc:x/post/3kq",),
             media=(SourceMedia("image", "c1", "a.png", alt="A [red]\nsquare"),
                    SourceMedia("video", "c2", "b.mp4", alt="waves"),
                    SourceMedia("image", "c3", "c.png")))
    md = post_markdown(p, lambda i: f"media/bluesky/{'abc'[i]}.{'pmp'[i]}{'npn'[i]}{'g4g'[i]}")
    assert md == ("see [example.org/x…](https://example.org/x/long) and "
                  "[@bob.bsky.social](https://bsky.app/profile/did:plc:bob)\n\n"
                  "https://bsky.app/profile/did:plc:x/post/3kq\n\n"
                  "[Video: waves](media/bluesky/b.mp4)\n\n"
                  "![A \\[red\\] square](media/bluesky/a.png)\n![](media/bluesky/c.png)")


def test_media_not_stored_is_left_out_of_the_post() -> None:
    p = post("text", media=(SourceMedia("image", "c1", "a.png"),))
    assert post_markdown(p, lambda i: None) == "text"


def test_section_and_appended_posts_read_back_as_one_thread() -> None:
    thread = SourceThread([post("First", 1), post("Second", 2)])
    meta = {"source": "bluesky", "bluesky": [{"id": p.id} for p in thread.posts]}
    for eol in ("\n", "\r\n"):
        text = section_markdown(thread, "First", "UTC", render_block(meta), lambda p, i: None, eol)
        assert "\n" not in text.replace(eol, "")
        text += append_posts_markdown([post("Third", 3)], lambda p, i: None, eol)
        (t,) = parse_archive(text, Path("a.md")).threads
        assert (t.title, t.date, t.metadata) == ("First", "2024-07-01 22:31", meta)
        assert t.body == "First\n\n---\n\nSecond\n\n---\n\nThird\n"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=120), min_size=1, max_size=4))
def test_property_any_posts_make_one_section_with_one_break_between_posts(texts: list[str]) -> None:
    thread = SourceThread([post(t, i) for i, t in enumerate(texts)])
    meta = {"source": "bluesky", "bluesky": [{"id": p.id} for p in thread.posts]}
    title = heading_for(thread.root, set(), "UTC")
    text = section_markdown(thread, title, "UTC", render_block(meta), lambda p, i: None)
    (t,) = parse_archive(text, Path("a.md")).threads
    assert (t.title, t.metadata, t.date) == (title, meta, date_line(thread.root.created_at, "UTC"))
    breaks = [tok for tok in markdown_parser().parse(t.body) if tok.type == "hr" and tok.level == 0]
    assert len(breaks) == len(texts) - 1
