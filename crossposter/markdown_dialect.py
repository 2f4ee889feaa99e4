"""The project's one markdown-it parser: CommonMark, plus guards so that no text silently disappears.

markdown-it follows CommonMark, and three of its rules can make a person's text vanish without a word:

* **Nesting depth.** At nesting level 20 its block tokenizer skips the whole *rest of the document*
  (a 10-deep list, a 20-deep quote). Here a rule placed before all others takes over at that depth: each
  deeper line becomes a ``crossposter_too_deep`` token (the renderer reports it), and the lists and quotes
  around it close as usual, so everything after the deep part is parsed normally.
* **Unclosed blocks.** An HTML comment ``<!--`` (and the other HTML blocks that wait for a closing
  sequence) or a code fence that is never closed runs to the end of the document: every later ``##``
  thread would be swallowed. When such a block at the top level can never close (no closing sequence
  anywhere after it in the file), or would close only past a *known thread* (a heading with a crossposter
  metadata block under it: a thread crossposter schedules or has posted, which no comment or code block
  may hide), it is cut at the next ``#``/``##`` heading line instead and marked
  (``token.meta["crossposter_unclosed"]``); the archive marks every thread CommonMark would have hidden
  with an error and the renderer reports the block itself. A block that closes before any known thread
  (a comment that comments out a draft, a code sample holding a ``##`` line) keeps CommonMark's meaning;
  an HTML block that hides heading lines is noted (`Layout.hidden`), and the archive warns about it.
  A block is first parsed only up to the next heading line and settled from file-wide indexes, so a
  file of many unclosed blocks costs time linear in the file.
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
from array import array
from bisect import bisect_left, bisect_right
from typing import TYPE_CHECKING, Any

from markdown_it import MarkdownIt

if TYPE_CHECKING:
    from collections.abc import Callable

    from markdown_it.rules_block import StateBlock

__all__ = ["MAX_NESTING", "markdown_parser", "block_parser", "href_as_typed", "Layout", "Extend", "LAYOUT_KEY"]

#: Nesting level (a list counts two: the list and its item; a quote one) below which text is posted.
#: markdown-it's CommonMark preset stops at the same level, so nothing it parsed before parses differently.
MAX_NESTING = 20

#: Where a parse keeps its `Layout` in markdown-it's `env`.
LAYOUT_KEY = "crossposter_layout"

_UNCLOSED = "crossposter_unclosed"
_METADATA = "<!-- crossposter"
_BLANK_LINE = re.compile(r"^[ \t]*$", re.M)
#: A `#`/`##` heading line, blank lines, then the first line of a metadata block (as `archive._is_block_open`).
_KNOWN_HEADING = re.compile(r"^ {0,3}#{1,2}(?:[ \t][^\n]*)?\n(?:[ \t]*\n)* {0,3}<!-- crossposter(?:[ \t]|-->|$)",
                            re.M)

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
        self._searches: dict[object, tuple[int, int, int]] = {}  # see `_search`
        self._fences: dict[str, tuple[list[int], list[int], list[int]]] | None = None
        self._known: list[int] | None = None  # lines of headings with a metadata block under them
        self._newlines: array[int] | None = None  # offsets of the line breaks (see `line_of`)
        self.forget_findings()

    def forget_findings(self) -> None:
        """Start recording afresh (the file is about to be parsed again from its start)."""
        #: blocks cut at a heading line: block line -> (line where CommonMark would end it, None for the end of
        #: the file; what it is). Every heading line in between belongs to a thread with an error.
        self.spans: dict[int, tuple[int | None, str]] = {}
        #: closed HTML blocks that hide heading lines (of no thread crossposter knows): line -> (what, headings)
        self.hidden: dict[int, tuple[str, list[int]]] = {}
        #: the first block never closed (file line, what): every thread after it is hidden by CommonMark
        self.swallowed_from: tuple[int, str] | None = None
        #: spans found in earlier slices that reach into later ones
        self.carried: list[tuple[int, tuple[int | None, str]]] = []
        self._new_spans: list[int] = []
        self._new_hidden: list[int] = []

    def add_span(self, at: int, until: int | None, what: str) -> None:
        if at not in self.spans:
            self._new_spans.append(at)
        self.spans[at] = (until, what)

    def add_hidden(self, at: int, what: str, headings: list[int]) -> None:
        if at not in self.hidden:
            self._new_hidden.append(at)
        self.hidden[at] = (what, headings)

    def take_new(self) -> tuple[list[tuple[int, tuple[int | None, str]]], list[tuple[int, tuple[str, list[int]]]]]:
        """The spans and hidden headings found since the last call (a slice's), in file order.

        A span that runs to the end of the file is also remembered in `swallowed_from`, for later slices."""
        spans = [(at, self.spans[at]) for at in sorted(self._new_spans)]
        hidden = [(at, self.hidden[at]) for at in sorted(self._new_hidden)]
        self._new_spans.clear()
        self._new_hidden.clear()
        for at, (until, what) in spans:
            if until is None and self.swallowed_from is None:
                self.swallowed_from = (at, what)
        return spans, hidden

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

    def known_between(self, start: int, stop: int) -> bool:
        """Whether a heading in the open range (`start`, `stop`) of file lines has a crossposter metadata block
        under it: a thread crossposter schedules or has posted, which no comment or code block may hide."""
        if self._known is None:
            known: list[int] = []
            last_pos = last_line = 0
            for m in _KNOWN_HEADING.finditer(self.src):
                last_line += self.src.count("\n", last_pos, m.start())
                last_pos = m.start()
                known.append(last_line)
            self._known = known
        i = bisect_right(self._known, start)
        return i < len(self._known) and self._known[i] < stop

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
        return self._search(_BLANK_LINE, pos, "blank")

    def html_close_line(self, kind: int, pos: int) -> int | None:
        """File line of the first closing sequence of HTML block type `kind` at or after offset `pos`."""
        from markdown_it.rules_block.html_block import HTML_SEQUENCES

        line = self._search(HTML_SEQUENCES[kind][1], pos, kind)
        return None if line < 0 else line

    def line_of(self, pos: int) -> int:
        """File line of character offset `pos`, from an index of the line breaks built on first use: counting
        from the start of the file each time made a file of many unclosed blocks quadratic."""
        if self._newlines is None:
            self._newlines = array("q", (m.start() for m in re.finditer("\n", self.src)))
        return bisect_left(self._newlines, pos)

    def _search(self, pattern: re.Pattern[str], pos: int, key: object) -> int:
        """File line of `pattern`'s first match at or after offset `pos` (-1 for none; for "blank", the number
        of lines). The last answer is remembered: a later search starting before that match finds the same
        one, so many blocks waiting for one far-away close cost one scan, not one each."""
        memo = self._searches.get(key)
        if memo is not None and memo[0] <= pos <= memo[1]:
            return memo[2]
        m = pattern.search(self.src, pos)
        found = m.start() if m else len(self.src)
        if m is not None:
            line = self.line_of(found)
        else:  # no match: -1, or for a blank line the end of the file (the number of lines)
            line = -1 if key != "blank" else self.src.count("\n") + (not self.src.endswith("\n"))
        self._searches[key] = (pos, found, line)
        return line

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


#: The first characters (after indentation) of the lines each guarded rule can open a block at: markdown-it's
#: fence rule takes only its markers, its html_block rule only "<" (both return False on any other line).
_OPENERS = {"fence": ("`", "~"), "html_block": ("<",)}


def _guarded(rule: Callable[..., bool], name: str) -> Callable[..., bool]:
    """`rule` (fence or html_block), bounded at the top level as the module docstring says.

    The rule first may not run past the next heading line: a block that does not end by itself before it
    (rare) is settled by `_settle`. So a file of many unclosed blocks costs a scan to the next heading each,
    never one to the end of the file each.
    """

    opener = _OPENERS[name]

    def guarded(state: StateBlock, start: int, end: int, silent: bool) -> bool:
        if silent or state.level:  # a terminator check, or inside a list or quote (which ends it first)
            return rule(state, start, end, silent)
        # Most lines open no such block: the rule itself says no at their first character, so neither
        # may the guard spend a heading lookup on them (it runs for every top-level block of the file).
        at = state.bMarks[start] + state.tShift[start]
        if state.src[at:at + 1] not in opener:
            return False
        layout = _layout(state)
        heading = layout.next_heading(layout.offset + start)
        bound = end if heading is None else min(end, heading - layout.offset)
        first = len(state.tokens)
        if not rule(state, start, bound, False):
            return False
        if state.line < bound:
            return True  # ended by itself before any heading line
        _settle(state, rule, name, layout, first, start, end, heading)
        return True

    guarded.__name__ = name
    return guarded


def _settle(state: StateBlock, rule: Callable[..., bool], name: str, layout: Layout, first: int, start: int,
            end: int, heading: int | None) -> None:
    """A top-level block ran up to the next heading line (or the slice's end): how far CommonMark runs it,
    and whether crossposter cuts it at the heading instead (module docstring)."""
    token = state.tokens[-1]
    at = layout.offset + start  # file lines from here on
    stop = layout.offset + end  # the slice's end
    if name == "fence":
        if token.map[1] - token.map[0] == token.content.count("\n") + 2:
            return  # closed by its fence line, just before the heading
        what = "code block"
        closes = layout.fence_close_line(token.markup[0], len(token.markup), at)
        until = None if closes is None else closes + 1
    else:
        kind = _html_kind(state, start)
        what = "HTML comment" if kind == 1 else "HTML block"
        if kind >= 5:  # types 6 and 7 (`<div>`, any tag alone on a line) end at a blank line
            until = layout.blank_line(layout.base + state.bMarks[state.line] if state.line < state.lineMax
                                      else layout.base + len(state.src))
        elif _html_closed(token, kind):
            return  # closed on its last line, just before the heading
        else:
            closes = layout.html_close_line(kind, layout.base + state.eMarks[start])
            until = None if closes is None else closes + 1
    if until is not None and heading is not None and heading < until and layout.known_between(at, until):
        # it would hide a thread crossposter knows: cut at the heading
        layout.add_span(at, until, what)
        token.meta[_UNCLOSED] = {"heading": heading, "until": until}
        return
    if until is not None and until > stop and layout.chunked:
        raise Extend(until - 1)  # it ends in a later part of the file: this slice must reach that far
    if until is not None and until <= layout.offset + state.line:
        until = None  # markdown-it did not end it where its closing line is: take it as never closed
    if until is None:
        if heading is None:
            token.meta[_UNCLOSED] = {"heading": None, "until": None}  # only its own thread's text after it
            return
        layout.add_span(at, None, what)
        token.meta[_UNCLOSED] = {"heading": heading, "until": None}
        return
    del state.tokens[first:]  # CommonMark's meaning: the whole block
    rule(state, start, until - layout.offset, False)
    # a code block shows its heading lines; an HTML block hides them (in crossposter's own block, a `#` line
    # is a YAML comment: a block left open is the archive's error, which reads it)
    if name != "fence" and not token.content.startswith(_METADATA):
        hidden = layout.headings_between(at, layout.offset + state.line)
        if hidden:
            layout.add_hidden(at, what, hidden)


def _html_closed(token: Any, kind: int) -> bool:
    from markdown_it.rules_block.html_block import HTML_SEQUENCES

    return HTML_SEQUENCES[kind][1].search(token.content) is not None


def _accept_every_link(url: str) -> bool:
    """Every destination makes a link; the renderer refuses the dangerous ones with an error at their line."""
    return True


def href_as_typed(url: str) -> str:
    """A link destination as the author typed it (after Markdown's own escapes), for markdown-it's
    `normalizeLink`.

    markdown-it percent-encodes destinations and converts host names to punycode (`ü` → `%C3%BC`), which
    would post a different URL than the one typed and break the backup round trip of Bluesky link facets
    (Bluesky's own app puts the URL in the facet exactly as it appears in the text, `@atproto/api`'s
    `detectFacets`). Only what can never be part of a URI is encoded: white space (an `<a b>` destination)
    and invisible control and format characters.
    """
    if url.isprintable() and " " not in url:
        return url
    return "".join(c if c.isprintable() and c != " " else "".join(f"%{b:02X}" for b in c.encode()) for c in url)


def _configure(md: MarkdownIt) -> MarkdownIt:
    md.options["maxNesting"] = MAX_NESTING + 10  # never reached: `_too_deep` takes over at MAX_NESTING
    md.options["inline_definitions"] = True
    md.validateLink = _accept_every_link  # type: ignore[method-assign]
    md.normalizeLink = href_as_typed  # type: ignore[method-assign]  # links posted as typed
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
