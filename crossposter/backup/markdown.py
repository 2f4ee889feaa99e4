"""A backed-up post as Markdown that reads back as exactly the text the author typed.

The archive is meant to be read and edited by a person, so the Markdown is escaped as little as
possible: a character is escaped only where CommonMark would otherwise read it as markup. The
rules below are the ones of the CommonMark spec that can change text (everything else is text
already); `tests/unit/test_backup_markdown.py` checks them as a property over generated texts, through
the real renderer, for every platform:

* **Line starts** that open a block: ATX headings (`# `), block quotes (`>`), bullet and ordered
  list markers (`- `, `+ `, `* `, `1. `, `1) `), thematic breaks and setext underlines (`---`,
  `***`, `___`, `===`), fences (`` ``` ``, `~~~`): the marker character is backslash-escaped.
* **White space the parser strips**: the first space or tab of a line (it would be stripped, or
  make an indented code block) and the last one (trailing spaces are stripped, two of them make a
  hard break) are written as character references (`&#32;`, `&#9;`); so is a line that is only
  white space, which would otherwise end the paragraph.
* **Inline markup**: backslashes before punctuation or at a line end, backticks, `*` and `_` where
  they could open or close emphasis, `[` (links, images, reference definitions anywhere in the
  file), `<` before what could be an autolink or HTML, `&` before what could be a character
  reference.
* **Line breaks**: one line break stays a line break (the renderer keeps them); two are a blank
  line (a new paragraph) where the lines around it have no white space at that edge; anything
  else (three or more, or white space a paragraph would strip) is written as lines holding only a
  backslash (CommonMark's hard break), so "a\\n\\n\\nb" survives. A carriage return is `&#13;`.
  White space at the very start and end of a post is not kept: every platform strips it too.

Links and mentions are spans over the text (see `source.LinkSpan` / `MentionSpan`): a link whose
text differs from its URL, or any link of a platform that shows links shortened (Bluesky), is
written `[text](url)`; a mention is written as a link to the person's profile on the platform it
came from, `[@alice](https://mastodon.social/@alice)`, which is what keeps it from becoming a
mention of somebody else elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["escape_text", "link_destination", "Span", "to_markdown"]

_LEADING_WS = re.compile(r"^[ \t]")
_TRAILING_WS = re.compile(r"[ \t]$")
_ATX = re.compile(r"^#{1,6}(?=[ \t]|$)")
_BULLET = re.compile(r"^[-+*](?=[ \t]|$)")
_ORDERED = re.compile(r"^(\d{1,9})([.)])(?=[ \t]|$)")
_BREAK = re.compile(r"^(?:(?:-[ \t]*){3,}|(?:\*[ \t]*){3,}|(?:_[ \t]*){3,}|=+[ \t]*|-+[ \t]*)$")
_FENCE = re.compile(r"^(?:`{3,}|~{3,})")
_ENTITY = re.compile(r"&(?=#[0-9]{1,7};|#[xX][0-9a-fA-F]{1,6};|[A-Za-z][A-Za-z0-9]{1,31};)")
_ASCII_PUNCT = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
#: starts and ends the placeholder of a span in `_assemble` (markdown-it reads a NUL as U+FFFD: never text)
_MARK = "\x00"
_PLACEHOLDER = re.compile(f"{_MARK}[0-9]+{_MARK}")
_HTMLISH = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ/!?")


def _word(ch: str) -> bool:
    return ch.isalnum()


#: the only characters `_escape_inline` may change; everything else is copied as it is
_INLINE_SPECIAL = re.compile(r"[\\\r`\[_*<&!]")


def _spacing(ch: str, edge: bool) -> bool:
    """Whether the Markdown beside a `*` reads as white space there, the way markdown-it's emphasis rule asks.

    Its own predicate decides (Python's `isspace` also says yes to U+2028, U+0085 and U+001C..U+001F, which
    markdown-it reads as ordinary characters: a `*` beside them can open emphasis); a carriage return is
    written as `&#13;` and a line's leading or trailing blank as `&#32;`/`&#9;`, so beside those the `*`
    touches `;` or `&`, punctuation. `edge`: a line edge that stays a line edge (no reference put there).
    """
    from markdown_it.common.utils import isWhiteSpace

    return edge if ch == "" else ch != "\r" and isWhiteSpace(ord(ch))


def _escape_inline(line: str, lead: bool = False, trail: bool = False) -> str:
    """Backslash-escape the characters that could start inline markup in `line`.

    Each special character is decided from its neighbours in `line` (one regex pass: ordinary text,
    most of a post, is copied without a Python step per character). `lead`/`trail`: a character
    reference will stand before/after the line (see `_escape_line`).
    """
    n = len(line)

    def one(m: re.Match[str]) -> str:
        i = m.start()
        ch = line[i]
        prev = line[i - 1] if i else ""
        nxt = line[i + 1] if i + 1 < n else ""
        if ch == "\\":
            return "\\\\" if (nxt == "" or nxt in _ASCII_PUNCT or nxt in "\r" + _MARK) else "\\"
        if ch == "\r":
            return "&#13;"  # a lone carriage return is ordinary text in the archive, never a line end
        if ch in "`[":
            return "\\" + ch
        if ch == "_":
            # intraword underscores never open or close emphasis (snake_case stays readable)
            return "_" if (_word(prev) and _word(nxt)) else "\\_"
        if ch == "*":
            # a `*` with white space (or a line edge) on both sides is neither left- nor right-flanking
            return "*" if _spacing(prev, not (i == 0 and lead)) and _spacing(nxt, not (i == n - 1 and trail)) \
                else "\\*"
        if ch == "<":
            return "\\<" if nxt in _HTMLISH and nxt else "<"
        if ch == "&":
            return "\\&" if _ENTITY.match(line, i) else "&"
        return "\\!" if nxt == _MARK else "!"  # ch == "!": right before a link span it would make an image

    return _INLINE_SPECIAL.sub(one, line)


def _escape_line_start(line: str) -> str:
    """Neutralise a block marker at the start of an (already inline-escaped) line."""
    if not line:
        return line
    if _BREAK.match(line) or _ATX.match(line) or _BULLET.match(line) or line[0] in ">=" or _FENCE.match(line):
        return line if line.startswith("\\") else "\\" + line
    m = _ORDERED.match(line)
    if m:
        return m.group(1) + "\\" + line[m.end(1):]
    return line


def _ws_ref(ch: str) -> str:
    return "&#9;" if ch == "\t" else "&#32;"


def _escape_line(line: str) -> str:
    if line and not line.strip(" \t"):  # only white space: would end the paragraph
        return "".join(_ws_ref(c) for c in line)
    lead = ""
    trail = ""
    if _LEADING_WS.match(line):
        lead, line = _ws_ref(line[0]), line[1:]
    if _TRAILING_WS.search(line):
        trail, line = _ws_ref(line[-1]), line[:-1]
    core = _escape_inline(line, bool(lead), bool(trail))
    if not lead:
        core = _escape_line_start(core)
    return lead + core + trail


def escape_text(text: str) -> str:
    """Markdown for a plain text with no links: paragraphs, lines and every character kept."""
    return _assemble(text, [])


@dataclass(frozen=True)
class Span:
    """Replace `text[start:end]` by ready-made Markdown (a link): the caller decides what goes there."""

    start: int
    end: int
    markdown: str


def link_destination(url: str) -> str:
    """A link destination CommonMark reads back as `url`: bare when it can be, else in angle brackets."""
    escaped = url.replace("\\", "\\\\")
    depth = 0
    balanced = True
    for ch in url:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                balanced = False
                break
    if balanced and depth == 0 and not any(c.isspace() or ord(c) < 0x20 or c == "<" for c in url):
        return escaped
    return "<" + escaped.replace("<", "\\<").replace(">", "\\>") + ">"


def link_markdown(text: str, url: str) -> str:
    """`[text](url)` with the text escaped like any other text of the post.

    Link text can span lines (a Bluesky facet over a line break): each of its lines is escaped as a
    line, or a `# ` or `- ` after the break would start a heading or list and cut the link (and, for
    `#`, end the thread); an empty line inside it is a hard break line, as in `_assemble`.
    """
    if "\n" in text:
        lines = [_escape_line(line) if line else "\\" for line in text.split("\n")]
        inner = "\n".join(lines).replace("]", "\\]")
        return f"[{inner}]({link_destination(url)})"
    inner = _escape_inline(text).replace("]", "\\]")
    return f"[{inner}]({link_destination(url)})"


def _assemble(text: str, spans: Iterable[Span]) -> str:
    """Escape the text between spans, splice the spans in, and lay out lines and paragraphs."""
    placeholders: dict[str, str] = {}
    pieces: list[str] = []
    pos = 0
    for k, span in enumerate(sorted(spans, key=lambda s: s.start)):
        if span.start < pos:
            continue  # overlapping span: the text is kept, the link is not (callers note it)
        pieces.append(text[pos:span.start])
        mark = f"{_MARK}{k}{_MARK}"
        placeholders[mark] = span.markdown
        pieces.append(mark)
        pos = span.end
    pieces.append(text[pos:])
    lines = "".join(pieces).split("\n")

    out: list[str] = []
    prev = ""  # the last line with text, as typed
    breaks = 0  # line breaks since it
    for line in lines:
        if out or prev:
            breaks += 1
        if line == "":
            continue  # line breaks at the very start or end of a post are not kept (see the module docstring)
        if out:
            if breaks == 2 and not prev[-1:].isspace() and not line[:1].isspace():
                out.append("")  # a blank line: a new paragraph, shown as one empty line
            elif breaks >= 2:
                # more empty lines, or white space where a paragraph would strip it: hard breaks instead
                out.extend(["\\"] * (breaks - 1))
        breaks = 0
        prev = line
        escaped = _escape_line(line)
        if placeholders:
            # one left-to-right pass: `str.replace` per mark would also match across two marks and the text
            # between them (`NUL 1 NUL 0 NUL 2 NUL` holds mark 0)
            escaped = _PLACEHOLDER.sub(lambda m: placeholders.get(m.group(0), m.group(0)), escaped)
        out.append(escaped)
    return "\n".join(out)


def to_markdown(text: str, spans: Iterable[Span] = ()) -> str:
    """The post's Markdown: `text` escaped, each span replaced by its Markdown."""
    return _assemble(text, spans)
