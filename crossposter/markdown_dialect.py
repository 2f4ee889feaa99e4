"""The project's one markdown-it parser: CommonMark, plus guards so that no text silently disappears.

markdown-it follows CommonMark, and three of its rules can make a person's text vanish without a word:

* **Nesting depth.** At nesting level 20 its block tokenizer skips the whole *rest of the document*
  (a 10-deep list, a 20-deep quote). Here a rule placed before all others takes over at that depth: each
  deeper line becomes a ``crossposter_too_deep`` token (the renderer reports it), and the lists and quotes
  around it close as usual, so everything after the deep part is parsed normally.
* **Unclosed blocks.** An HTML comment ``<!--`` (and the other HTML blocks that wait for a closing
  sequence) or a code fence that is never closed runs to the end of the document: every later ``##``
  thread would be swallowed. When such a block at the top level can never close (no closing sequence
  anywhere after it in the file), it is cut at the next ``#``/``##`` heading line instead and marked
  (``token.meta["crossposter_unclosed"]``); the archive marks every thread after it with an error and
  the renderer reports the block itself. A block that does close later (a comment that comments out a
  thread on purpose, a code sample holding a ``##`` line) keeps CommonMark's meaning; an HTML block that
  hides heading lines is noted (`Layout.hidden`), and the archive warns about it.
* **Refused links.** Its ``validateLink`` keeps ``javascript:``, ``vbscript:``, ``file:`` and ``data:``
  links from becoming links, so ``![](file:///etc/passwd)`` stayed literal text and would be posted as
  such. Here every link parses; the renderer refuses those with an error at their line.

Link reference definitions become ``definition`` tokens (markdown-it's ``inline_definitions``), so every
source line of a thread is accounted for by some token.

Structure still comes from markdown-it alone: the guards only bound the line range a rule may take, and
the file-wide facts they need (where the headings and closing sequences are) are found once per file,
only when a block is unclosed.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from typing import TYPE_CHECKING, Any

from markdown_it import MarkdownIt

if TYPE_CHECKING:
    from collections.abc import Callable

    from markdown_it.rules_block import StateBlock

__all__ = ["MAX_NESTING", "markdown_parser", "block_parser", "Layout", "Extend", "LAYOUT_KEY"]

#: Nesting level (a list counts two: the list and its item; a quote one) below which text is posted.
#: markdown-it's CommonMark preset stops at the same level, so nothing it parsed before parses differently.
MAX_NESTING = 20

#: Where a parse keeps its `Layout` in markdown-it's `env`.
LAYOUT_KEY = "crossposter_layout"

_UNCLOSED = "crossposter_unclosed"
_METADATA = "<!-- crossposter"
_BLANK_LINE = re.compile(r"^[ \t]*$", re.M)
#: A heading line, blank lines, then the opening line of a metadata block (as `archive._is_block_open` reads it).
_METADATA_AFTER = re.compile(r"[^\n]*\n(?:[ \t]*\n)* {0,3}<!-- crossposter(?:[ \t]|-->|$)", re.M)

#: Headings that end a thread: `#` or `##`, at most 3 spaces in (markdown-it's `heading` rule decides the rest).
_HEADING_LINE = re.compile(r"^( {0,3})#{1,2}(?=[ \t]|$)", re.M)
#: A line that can close a code fence (CommonMark: up to 3 spaces, 3+ backticks or tildes, then only blanks).
_FENCE_CLOSE_LINE = re.compile(r"^ {0,3}(`{3,}|~{3,})[ \t]*$", re.M)


class Extend(Exception):
    """A block at the end of a parsed slice of the file closes later: parse a longer slice (past `line`)."""

    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


class Layout:
    """File-wide facts the guards need while markdown-it parses one slice of a file, found on first use.

    `offset` and `base` are the file line and character offset where the slice being parsed starts; guards
    translate markdown-it's slice-relative lines with them. What the guards find (swallowed and hidden
    headings) is kept by file line, so a slice parsed twice (see `Extend`) records each thing once.
    """

    def __init__(self, src: str) -> None:
        self.src = src
        self.offset = 0
        self.base = 0
        self.chunked = False  # True while parsing a slice that is not the whole file
        self._headings: list[int] | None = None  # lines of `#`/`##` heading lines (any indent up to 3)
        self._heading_at: list[int] = []  # and where each starts
        self._col0_lines: list[int] = []  # those at column 0, and where they start
        self._col0_pos: list[int] = []
        self._html_none: dict[int, int] = {}  # HTML block type -> no closing sequence at or after this offset
        self._fences: dict[str, tuple[list[int], list[int], list[int]]] | None = None
        #: blocks cut at a heading line: block line -> (line where CommonMark would end it, None for the end of
        #: the file; what it is). Every heading line in between belongs to a thread with an error.
        self.spans: dict[int, tuple[int | None, str]] = {}
        #: closed HTML blocks that hide heading lines (of no thread crossposter knows): line -> (what, headings)
        self.hidden: dict[int, tuple[str, list[int]]] = {}

    # ------------------------------------------------------------------ file-wide indexes

    def _index_headings(self) -> list[int]:
        lines: list[int] = []
        last_pos = last_line = 0
        src = self.src
        for m in _HEADING_LINE.finditer(src):
            pos = m.start()
            last_line += src.count("\n", last_pos, pos)
            last_pos = pos
            lines.append(last_line)
            self._heading_at.append(pos)
            if not m.group(1):
                self._col0_lines.append(last_line)
                self._col0_pos.append(pos)
        self._headings = lines
        return lines

    def next_heading(self, after: int) -> int | None:
        """The first line after file line `after` that would be a `#`/`##` heading at the top level."""
        headings = self._headings if self._headings is not None else self._index_headings()
        i = bisect_right(headings, after)
        return headings[i] if i < len(headings) else None

    def headings_between(self, start: int, stop: int) -> list[int]:
        """Heading lines in the open range (`start`, `stop`) of file lines."""
        headings = self._headings if self._headings is not None else self._index_headings()
        i, j = bisect_right(headings, start), bisect_left(headings, stop)
        return headings[i:j]

    def known(self, heading: int) -> bool:
        """Whether the heading at file line `heading` has a crossposter metadata block under it: a thread
        crossposter schedules or has posted, which no comment or code block may hide."""
        headings = self._headings if self._headings is not None else self._index_headings()
        i = bisect_left(headings, heading)
        if i >= len(headings) or headings[i] != heading:
            return False
        m = _METADATA_AFTER.match(self.src, self._heading_at[i])
        return m is not None

    def boundary(self, pos: int, after_line: int = -1) -> tuple[int, int] | None:
        """(line, char offset) of the first `#`/`##` heading at column 0 that starts at or after offset `pos`
        and after file line `after_line`: where a slice of the file may end. No list, quote or paragraph
        continues over such a line; a fence or HTML block still open there is the guards' to catch."""
        if self._headings is None:
            self._index_headings()
        i = max(bisect_left(self._col0_pos, pos), bisect_right(self._col0_lines, after_line))
        if i < len(self._col0_lines):
            return self._col0_lines[i], self._col0_pos[i]
        return None

    def blank_line(self, pos: int) -> int:
        """File line of the first blank line at or after offset `pos` (the number of lines if none)."""
        m = _BLANK_LINE.search(self.src, pos)
        return self.src.count("\n", 0, m.start() if m else len(self.src))

    def html_close_line(self, kind: int, pos: int) -> int | None:
        """File line of the first closing sequence of HTML block type `kind` at or after offset `pos`."""
        none_after = self._html_none.get(kind)
        if none_after is not None and pos >= none_after:
            return None
        from markdown_it.rules_block.html_block import HTML_SEQUENCES

        m = HTML_SEQUENCES[kind][1].search(self.src, pos)
        if m is None:
            self._html_none[kind] = pos if none_after is None else min(pos, none_after)
            return None
        return self.src.count("\n", 0, m.start())

    def fence_close_line(self, marker: str, length: int, line: int) -> int | None:
        """The first file line after `line` that closes a fence opened with `length` times `marker`."""
        if self._fences is None:
            found: dict[str, tuple[list[int], list[int]]] = {"`": ([], []), "~": ([], [])}
            last_pos = last_line = 0
            src = self.src
            for m in _FENCE_CLOSE_LINE.finditer(src):
                last_line += src.count("\n", last_pos, m.start())
                last_pos = m.start()
                run = m.group(1)
                found[run[0]][0].append(last_line)
                found[run[0]][1].append(len(run))
            self._fences = {}
            for mark, (lines, lengths) in found.items():
                longest = lengths[:]  # longest[i]: the longest closing line from entry i on
                for i in range(len(longest) - 2, -1, -1):
                    longest[i] = max(longest[i], longest[i + 1])
                self._fences[mark] = (lines, lengths, longest)
        lines, lengths, longest = self._fences[marker]
        i = bisect_right(lines, line)
        if i >= len(lines) or longest[i] < length:
            return None
        while lengths[i] < length:
            i += 1
        return lines[i]


# --------------------------------------------------------------------------- the guards


def _layout(state: StateBlock) -> Layout:
    layout = state.env.get(LAYOUT_KEY)
    if layout is None:  # a parse of a text on its own (a thread body): the text is the whole "file"
        layout = state.env[LAYOUT_KEY] = Layout(state.src)
    return layout


def _too_deep(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    """At `MAX_NESTING` and deeper, each line is a `crossposter_too_deep` token (see the module docstring)."""
    if state.level < MAX_NESTING or silent:
        return False
    state.line = start + 1
    token = state.push("crossposter_too_deep", "", 0)
    token.map = [start, start + 1]
    token.content = state.getLines(start, start + 1, state.blkIndent, False)
    return True


def _html_kind(state: StateBlock, line: int) -> int:
    from markdown_it.rules_block.html_block import HTML_SEQUENCES

    text = state.src[state.bMarks[line] + state.tShift[line]:state.eMarks[line]]
    for kind, seq in enumerate(HTML_SEQUENCES):
        if seq[0].search(text):
            return kind
    return -1


def _guarded(rule: Callable[..., bool], name: str) -> Callable[..., bool]:
    """`rule` (fence or html_block), bounded at the top level as the module docstring says."""

    def guarded(state: StateBlock, start: int, end: int, silent: bool) -> bool:
        if silent or state.level:  # a terminator check, or inside a list or quote (which ends it first)
            return rule(state, start, end, silent)
        first = len(state.tokens)
        if not rule(state, start, end, False):
            return False
        _bound(state, rule, name, first, start, end)
        return True

    guarded.__name__ = name
    return guarded


def _bound(state: StateBlock, rule: Callable[..., bool], name: str, first: int, start: int, end: int) -> None:
    """After `rule` made a top-level block: cut it at a heading line it must not hide (module docstring)."""
    token = state.tokens[-1]
    layout = _layout(state)
    at = layout.offset + start  # file line of the block
    ran_out = state.line >= end
    if name == "fence":
        closed = not ran_out or token.map[1] - token.map[0] == token.content.count("\n") + 2
        if closed and "#" not in token.content:
            return  # the common case: closed by its fence line, no heading line inside
        what = "code block"
    else:
        if not ran_out and "#" not in token.content or token.content.startswith(_METADATA):
            return  # ended by itself with no heading line inside, or crossposter's own block
        kind = _html_kind(state, start)
        if kind >= 5:  # types 6 and 7 (`<div>`, any tag alone on a line) end at a blank line
            if ran_out and layout.base + len(state.src) < len(layout.src):
                raise Extend(layout.blank_line(layout.base + len(state.src)))  # runs on into the next slice
            closed = True
        else:
            closed = not ran_out or _html_closed(token, kind)
        what = "HTML comment" if kind == 1 else "HTML block"
    if closed:
        until: int | None = layout.offset + state.line  # where CommonMark ends it
        heads = layout.headings_between(at, until)
        if not heads:
            return
        if not any(layout.known(h) for h in heads):
            if name != "fence":  # a code block shows its heading lines; an HTML block hides them
                layout.hidden[at] = (what, heads)
            return
    else:
        if name == "fence":
            closes = layout.fence_close_line(token.markup[0], len(token.markup), at)
        else:
            closes = layout.html_close_line(kind, layout.base + state.eMarks[start])
        if closes is not None and layout.chunked and closes >= layout.offset + end:
            raise Extend(closes)  # it closes in a later part of the file: this slice must reach that far
        heading = layout.next_heading(at)
        if heading is None:
            token.meta[_UNCLOSED] = {"heading": None, "until": None}  # only its own thread's text after it
            return
        heads, until = [heading], None
    layout.spans[at] = (until, what)
    if heads[0] < layout.offset + end:
        del state.tokens[first:]
        rule(state, start, heads[0] - layout.offset, False)
    state.tokens[-1].meta[_UNCLOSED] = {"heading": heads[0], "until": until}


def _html_closed(token: Any, kind: int) -> bool:
    from markdown_it.rules_block.html_block import HTML_SEQUENCES

    return HTML_SEQUENCES[kind][1].search(token.content) is not None


def _accept_every_link(url: str) -> bool:
    """Every destination makes a link; the renderer refuses the dangerous ones with an error at their line."""
    return True


def _configure(md: MarkdownIt) -> MarkdownIt:
    md.options["maxNesting"] = MAX_NESTING + 10  # never reached: `_too_deep` takes over at MAX_NESTING
    md.options["inline_definitions"] = True
    md.validateLink = _accept_every_link  # type: ignore[method-assign]
    ruler = md.block.ruler
    for rule in ruler.__rules__:
        if rule.name in ("fence", "html_block"):
            ruler.at(rule.name, _guarded(rule.fn, rule.name), {"alt": list(rule.alt)})
    first = next(rule.name for rule in ruler.__rules__ if rule.enabled)
    ruler.before(first, "crossposter_too_deep", _too_deep)
    return md


_BLOCK_MD: MarkdownIt | None = None
_FULL_MD: MarkdownIt | None = None


def markdown_parser() -> MarkdownIt:
    """The one Markdown dialect of the project (CommonMark plus the guards), shared so archive and renderer
    agree."""
    global _FULL_MD
    if _FULL_MD is None:
        _FULL_MD = _configure(MarkdownIt("commonmark"))
    return _FULL_MD


def block_parser() -> MarkdownIt:
    """The same dialect without its inline half (the archive parses inline content per thread, on demand)."""
    global _BLOCK_MD
    if _BLOCK_MD is None:
        _BLOCK_MD = _configure(MarkdownIt("commonmark")).disable(["inline", "text_join"])
    return _BLOCK_MD
