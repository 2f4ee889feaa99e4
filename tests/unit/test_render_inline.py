"""The renderer reads plain-text paragraphs without markdown-it's inline parse: it must read them exactly as
the parse would (same text runs, same breaks, same lines), and hand everything else to the parse."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from crossposter.archive import parse_archive
from crossposter.render import (
    RenderedThread,
    _inline_runs,
    _plain_runs,
    _special_inline,
    blocks,
)

_MD = MarkdownIt("commonmark")

# Everything the inline rules look at, plus white space of every kind around line breaks.
_ALPHABET = st.sampled_from(list("ab Z1.,:;!?#@%$^=+-{}]()>'\"/|") + [" ", "  ", "\t", "\n", "\n  ", "  \n",
                                                                      "\\", "`", "*", "_", "[", "<", "&",
                                                                      "~", "\u3000", "é", "日", "🧵", "\u00a0"])


def _children_runs(content: str) -> list:
    """Runs from markdown-it's own children of the paragraph holding `content`."""
    tokens = _MD.parse(content)
    inline = next((t for t in tokens if t.type == "inline"), None)
    if inline is None:
        return []
    return _inline_runs(inline, 7, Path("/tmp"), RenderedThread(blocks=[])), inline.content


@settings(max_examples=3000, deadline=None)
@given(st.lists(_ALPHABET, min_size=1, max_size=30).map("".join))
def test_plain_runs_are_the_runs_of_the_parsed_children(source: str) -> None:
    got = _children_runs(source)
    if not got:
        return
    runs, content = got
    if _special_inline(content):
        return  # the parse decides: never read directly
    assert _plain_runs(content, 7) == runs


def test_special_characters_go_to_the_parse() -> None:
    for content in ["a *b*", "a_b_", "`x`", "[a](b)", "![a](b)", "<https://x.org>", "&amp;", "a\\*", "~~a~~"]:
        assert _special_inline(content), content
    assert not _special_inline("plain: text, (!) -> 25K #tag @me https://example.com/a?b=c")


def test_hard_and_soft_breaks_and_their_lines() -> None:
    runs = _plain_runs("one  \ntwo \n\t three\nfour\t", 10)
    assert [(r.kind, r.text, r.line) for r in runs] == [
        ("text", "one", 10), ("break", "", 10), ("text", "two", 11), ("break", "", 11), ("text", "three", 12),
        ("break", "", 12), ("text", "four\t", 13)]


def test_lazy_inline_parse_renders_like_the_full_parse(tmp_path: Path) -> None:
    text = ("## T\n\nplain line  \nnext line\n\n- item with [a link](https://x.org) and *emphasis*\n"
            "- plain item\n\n> quoted `code`\n\n[ref]: https://example.com/r\n\nsee [ref] here\n")
    full = parse_archive(text, tmp_path / "a.md")
    lazy = parse_archive(text, tmp_path / "a.md")
    thread_f, thread_l = full.threads[0], lazy.threads[0]
    want = blocks(thread_f.body, thread_f.body_line, tmp_path, tokens=full.body_tokens(thread_f))
    got = blocks(thread_l.body, thread_l.body_line, tmp_path, tokens=lazy.body_tokens(thread_l, inline=False),
                 inline=lazy.inline_children)
    assert got == want
    # the reference link resolved from the file's definitions, parsed on demand
    assert any(r.kind == "link" and r.url == "https://example.com/r" for b in got.blocks for r in b.runs)
    # and a later full request still parses each inline token once
    tokens = lazy.body_tokens(thread_l)
    assert [(t.type, [(c.type, c.content) for c in t.children or []]) for t in tokens] == \
        [(t.type, [(c.type, c.content) for c in t.children or []]) for t in full.body_tokens(thread_f)]
