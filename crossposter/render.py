"""Markdown → per-platform rich text, as a stream of unbreakable tokens for the splitter.

The Markdown is parsed once with markdown-it-py (never with regexes over raw
Markdown); `blocks()` turns the token tree into platform-neutral blocks, and
`tokenize()` writes those blocks the way one platform shows them:

* Bluesky keeps a link's text and carries the URL in a link facet; a bare URL
  is shown shortened like the official app does, the full URL in the facet;
  `#tags` become tag facets and `@handles` mention facets.
* Mastodon and X write the URL out after the link text (both count any URL as
  23 characters, so the short form would only hide where a link goes).

Every gap between two tokens carries a *strength*: how good a place it is to
cut the thread there (sub-section > paragraph > list item > line > sentence >
clause > word). The splitter only ever cuts at gaps, so a word, a URL or a
grapheme cluster is never cut by construction.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from functools import cached_property
from itertools import accumulate, compress
from operator import not_
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from crossposter.markdown_dialect import MAX_NESTING
from crossposter.memo import BoundedCache
from crossposter.model import Diagnostic, ImageRef
from crossposter.platforms import registry

if TYPE_CHECKING:
    from collections.abc import Callable

    from markdown_it.token import Token as MdToken

# Cut strengths: higher is a better place to cut.
GLUE = 0  # inside a link's text, right after a heading: only when nothing else fits
WORD = 1
CLAUSE = 2
SENTENCE = 3
LINE = 4
ITEM = 5
PARAGRAPH = 6
SECTION = 100  # a `###` sub-section: always a new post

#: The white space tokens are cut at (`_Patterns.ws_split`).
_WHITE_SPACE = " \t\n\r\f\v\u2028\u2029\u3000"


class _Patterns:
    """The renderer's patterns, each compiled on first use.

    Importing this module (every `crossposter preview` does) compiles nothing and imports no `regex`;
    a text needs each pattern only when it holds what the pattern looks for.
    """

    @cached_property
    def ws_split(self) -> re.Pattern[str]:
        # Tokens are the runs between these white space characters (re.split keeps the gaps: separators).
        return re.compile(r"([ \t\n\r\f\v\u2028\u2029\u3000]+)")

    @cached_property
    def tag(self):
        import regex

        return regex.compile(r"(?<![\p{L}\p{N}_&/#])#([\p{L}\p{M}\p{N}_]*\p{L}[\p{L}\p{M}\p{N}_]*)")

    @cached_property
    def mention(self):
        import regex

        return regex.compile(
            r"(?<![\p{L}\p{N}_@/])@([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)+)")

    @cached_property
    def sentence_end(self):
        import regex

        return regex.compile(r"(?:[.!?…]|[。！？])[\"'”’)\]»]*$")

    @cached_property
    def clause_end(self):
        import regex

        return regex.compile(r"[,;:—–、，；：][\"'”’)\]]*$")

    @cached_property
    def grapheme(self):
        import regex

        return regex.compile(r"\X")

    @cached_property
    def initial(self):
        import regex

        return regex.compile(r"\p{Lu}\.")  # "J." in "J. Smith" ends no sentence

    @cached_property
    def cjk(self):
        import regex

        return regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\u3000-\u303f\uff00-\uffef]")


_P = _Patterns()
_ABBREVIATIONS = frozenset(
    ["e.g.", "i.e.", "vs.", "cf.", "approx.", "dr.", "mr.", "mrs.", "ms.", "st.", "no.", "fig.", "al.", "ca.", "resp.", "incl.", "jr.", "sr.", "p.", "pp."]
)


@dataclass(frozen=True)
class Mention:
    """The account a mention link names: the platform that owns its profile URL, and who it is there.

    `account` is a Bluesky handle or DID, a Mastodon username, an X screen name; `host` is the Mastodon
    server the account lives on (from the profile URL).
    """

    platform: str
    account: str
    host: str = ""


@dataclass(frozen=True)
class Run:
    """A piece of inline content in a block."""

    kind: str  # "text", "code", "link", "break", "image"
    text: str = ""
    url: str = ""
    line: int = 0
    image: ImageRef | None = None
    autolink: bool = False  # `<url>` or `[](url)`: shown as the URL (shortened on Bluesky)
    #: `[url](url)`: the link text is the URL, shown in full as typed (on Mastodon and X written once)
    as_typed: bool = False
    #: a link whose whole text is one `@name`: whose mention it is (None: a profile URL of nobody we know,
    #: so a mention nowhere); unset (False) for any other link
    mention: Mention | None | bool = False


@dataclass
class Block:
    """A paragraph, list item, heading, quote paragraph or code block, in source order."""

    kind: str  # "heading" (### lead line), "paragraph", "item", "quote", "code", "title"
    runs: list[Run]
    line: int
    before: int  # strength of the gap before this block
    sep: str  # separator written before this block when it shares a post with the previous one
    prefix: str = ""  # list marker ("- ", "1. "): glued to the block's first word


@dataclass
class RenderedThread:
    """A thread's blocks (platform-neutral) plus what rendering found wrong."""

    blocks: list[Block]
    warnings: list[Diagnostic] = field(default_factory=list)
    errors: list[Diagnostic] = field(default_factory=list)
    #: the platform the thread was backed up from (metadata `source:`): its bare `@names` are that
    #: platform's accounts, so they are live mentions there only. None: bare mentions as typed everywhere.
    source: str | None = None
    #: whether a link's text is a mention (`[@alice](profile URL)`): Mastodon and X then read it differently
    mention_links: bool = False


class TokenFacet(NamedTuple):
    """A facet as it falls on one token: char offsets in the token's text."""

    start: int
    end: int
    kind: str  # "link", "url", "tag", "mention"
    value: str
    continues: bool  # the facet began in an earlier token (one link over several words)


class TextFacet(NamedTuple):
    """A facet in a block's text (char offsets), before the text is cut into tokens."""

    start: int
    end: int
    kind: str
    value: str


class BlockText(NamedTuple):
    """A block written for one platform: what `_split_block` cuts into tokens."""

    text: str
    facets: list[TextFacet]
    glue: list[tuple[int, int]]  # char ranges that are one link's text: cut inside only when nothing else fits
    images: list[tuple[int, ImageRef]]  # (char offset, image): the image follows the text before the offset
    lines: list[tuple[int, int]]  # (char offset, file line) where each source line starts


class BlockTokens(NamedTuple):
    """A block's tokens as parallel lists (what a `Stream` holds), facets and links by token index."""

    words: list[str]
    seps: list[str]
    strengths: list[int]
    lines: list[int]
    facets: dict[int, list[TokenFacet]]
    links: dict[int, list[str]]
    starts: list[int]  # each token's char offset in the block's text (anchors images)


class CjkPieces(NamedTuple):
    """A word with CJK text cut into pieces joined without a gap."""

    cuts: tuple[int, ...]
    pieces: tuple[str, ...]
    gaps: tuple[str, ...]  # "" before every piece but the first


@dataclass(slots=True)
class Token:
    """One unbreakable unit of a post on one platform."""

    text: str
    sep: str  # written before the token when the previous token is in the same post
    strength: int  # how good a cut is in the gap before this token
    line: int
    facets: list[TokenFacet] | None = None
    links: list[str] | None = None
    images: list[ImageRef] | None = None  # images attached to the post holding this token


class Stream:
    """One platform's tokens as parallel lists: what `split` reads, without an object per token.

    A thread has tens of thousands of tokens in a big archive; most never carry a facet, link or image,
    so those live in dicts by token index.
    """

    __slots__ = ("texts", "seps", "strengths", "lines", "facets", "links", "images")

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.seps: list[str] = []
        self.strengths: list[int] = []
        self.lines: list[int] = []
        self.facets: dict[int, list[TokenFacet]] = {}
        self.links: dict[int, list[str]] = {}
        self.images: dict[int, list[ImageRef]] = {}

    def __len__(self) -> int:
        return len(self.texts)

    def append(self, text: str, sep: str, strength: int, line: int, facets=None, links=None, images=None) -> None:
        i = len(self.texts)
        self.texts.append(text)
        self.seps.append(sep)
        self.strengths.append(strength)
        self.lines.append(line)
        if facets:
            self.facets[i] = facets
        if links:
            self.links[i] = links
        if images:
            self.images[i] = images

    @classmethod
    def of(cls, tokens: list[Token]) -> Stream:
        out = cls()
        for t in tokens:
            out.append(t.text, t.sep, t.strength, t.line, t.facets, t.links, t.images)
        return out

    def tokens(self) -> list[Token]:
        get_f, get_l, get_i = self.facets.get, self.links.get, self.images.get
        return [Token(text, sep, strength, line, get_f(i), get_l(i), get_i(i))
                for i, (text, sep, strength, line) in enumerate(zip(self.texts, self.seps, self.strengths,
                                                                    self.lines, strict=True))]


def _markdown():
    from crossposter.archive import markdown_parser

    return markdown_parser()


def has_opening_text(tokens: list[MdToken]) -> bool:
    """Whether anything comes before the first `###` (otherwise the `##` title opens the thread)."""
    for tok in tokens:
        if tok.type == "heading_open" and tok.tag == "h3":
            return False
        if tok.type in ("paragraph_open", "fence", "code_block", "bullet_list_open", "ordered_list_open",
                        "blockquote_open", "heading_open"):
            return True
    return False


# --------------------------------------------------------------------------- Markdown → blocks


def blocks(body: str, body_line: int, archive_dir: Path, *, title: str | None = None,
           title_line: int = 0, tokens: list[MdToken] | None = None,
           inline: Callable[[MdToken], list[MdToken]] | None = None, source: str | None = None) -> RenderedThread:
    """Parse a thread's Markdown once into platform-neutral blocks.

    `body_line` is the file line of the body's first line, so every block and
    image knows its line in the archive. `title`, when given, is posted as the
    thread's first line (config `split.post_title`, or a thread with no opening text).
    `tokens`, when given, are the body's markdown-it tokens from the archive's
    own parse (`Archive.body_tokens`), so the file is never parsed twice. With `inline` (tokens from
    `body_tokens(thread, inline=False)`, `inline=archive.inline_children`), an inline token that is plain
    text is read straight from its content, and any other gets its children from `inline`. `source` is the
    platform the thread was backed up from (see `RenderedThread.source`).

    A thematic break (`---`, `***`, `___`, at any depth: CommonMark decides what is one) is a "rule" block:
    a hard post boundary, never posted. `text` directly above `---` is a setext `##` heading instead; at the
    top level the archive reader starts a new thread there (as it does for every `##`), nested in a quote
    or list item it is a lead line like `####`.
    """
    out = RenderedThread(blocks=[], source=source)
    if tokens is None:
        tokens = _markdown().parse(body)
    if title is not None:
        out.blocks.append(Block("title", [Run("text", title, line=title_line)], title_line, SECTION, ""))
    list_stack: list[list] = []  # [ordered, next number, marker]
    quote_depth = 0
    item_first_para = False
    pending_item_prefix = ""
    next_before, next_sep = (GLUE, "\n") if title is not None else (SECTION, "")
    after_heading = title is not None
    deep_next = 0
    for i, tok in enumerate(tokens):
        t = tok.type
        if t == "heading_open":
            line = body_line + tok.map[0] if tok.map else body_line
            runs = _inline_runs(tokens[i + 1], line, archive_dir, out, inline)
            if tok.tag == "h3":
                before, sep = SECTION, ""
            else:  # #### and deeper: a lead line inside the post
                before, sep = PARAGRAPH, "\n\n"
            out.blocks.append(Block("heading", runs, line, before, sep))
            next_before, next_sep = GLUE, "\n"
            after_heading = True
        elif t in ("bullet_list_open", "ordered_list_open"):
            start = int(tok.attrs.get("start", 1) or 1) if t == "ordered_list_open" else 0
            list_stack.append([t == "ordered_list_open", start, tok.markup])
        elif t in ("bullet_list_close", "ordered_list_close"):
            list_stack.pop()
        elif t == "list_item_open":
            ordered, number, marker = list_stack[-1]
            if ordered:
                pending_item_prefix = f"{number}{marker or '.'} "
                list_stack[-1][1] = number + 1
            else:
                pending_item_prefix = f"{marker or '-'} "
            item_first_para = True
            if tokens[i + 1].type == "list_item_close" and tok.map:
                out.warnings.append(Diagnostic(body_line + tok.map[0], "empty list item: nothing of it is posted "
                                               "(write its text, or delete the marker)"))
        elif t == "blockquote_open":
            quote_depth += 1
        elif t == "blockquote_close":
            quote_depth -= 1
        elif t == "paragraph_open":
            line = body_line + tok.map[0] if tok.map else body_line
            runs = _inline_runs(tokens[i + 1], line, archive_dir, out, inline)
            if list_stack and item_first_para:
                kind, prefix = "item", pending_item_prefix
                depth = len(list_stack) - 1
                before = ITEM
                sep = "\n" + "  " * depth
                item_first_para = False
            elif list_stack:
                kind, prefix, before, sep = "item", "", ITEM, "\n" + "  " * len(list_stack)
            else:
                kind, prefix, before, sep = ("quote" if quote_depth else "paragraph"), "", PARAGRAPH, "\n\n"
            if quote_depth and runs:
                runs = [Run("text", "“", line=line), *runs, Run("text", "”", line=runs[-1].line)]
            if after_heading or (out.blocks and next_before == GLUE):
                before, sep = next_before, next_sep
                after_heading = False
            elif not out.blocks:
                before, sep = SECTION, ""
            next_before, next_sep = PARAGRAPH, "\n\n"
            out.blocks.append(Block(kind, runs, line, before, sep, prefix))
        elif t in ("fence", "code_block"):
            problem = _unclosed(tok, "code block", "a closing fence line", closed=True) if tok.meta else ""
            if problem:
                out.errors.append(Diagnostic(body_line + tok.map[0] if tok.map else body_line, problem))
            line = body_line + tok.map[0] + (1 if t == "fence" else 0) if tok.map else body_line
            content = tok.content.rstrip("\n")
            before, sep = (next_before, next_sep) if after_heading else (PARAGRAPH, "\n\n")
            if not out.blocks:
                before, sep = SECTION, ""
            after_heading = False
            out.blocks.append(Block("code", [Run("code", content, line=line)], line, before, sep))
        elif t == "hr":
            # `---`: the next post starts here, whatever comes next (see tokenize_streams)
            out.blocks.append(Block("rule", [], body_line + tok.map[0] if tok.map else body_line, SECTION, ""))
        elif t == "html_block":
            _html_block(tok, body_line, out)  # a closed comment is a note to self: never posted, no word
        elif t == "crossposter_too_deep":
            line = body_line + tok.map[0]
            if line != deep_next:  # one error for a run of deep lines
                out.errors.append(Diagnostic(line, _TOO_DEEP))
            deep_next = line + 1
    _check_coverage(tokens, body, body_line, out)
    _check_rules(out)
    return out


_TOO_DEEP = ("nested too deeply to post: lists and quotes inside one another go past Markdown's limit of "
             f"{MAX_NESTING} levels (a list level counts two, a quote one), so this text is not posted; "
             "flatten the nesting")


def _html_block(tok: MdToken, body_line: int, out: RenderedThread) -> None:
    """Comments are notes to self (never posted); raw HTML would be lost, and an unclosed block hides text."""
    line = body_line + tok.map[0] if tok.map else body_line
    content = tok.content
    if content.lstrip(" \t").startswith("<!--"):
        problem = _unclosed(tok, "HTML comment", "`-->`", closed="-->" in content)
        if problem:
            out.errors.append(Diagnostic(line, problem))
            return
        inner = content.lstrip(" \t")[4:].find("<!--")
        if inner >= 0 and "\n" in content:  # comments do not nest: the first one was likely left open
            at = line + content[:content.index("<!--") + 4 + inner].count("\n")
            out.errors.append(Diagnostic(line, (
                f"this HTML comment holds another `<!--` (line {at}): comments do not nest, so everything up to "
                "the first `-->` is one comment and is not posted; close the first comment with `-->` where it "
                "should end")))
        return
    message = ("raw HTML is not posted (crossposter posts text, not HTML): write it as Markdown, or wrap it in "
               "`<!--` … `-->` to keep it as a note")
    problem = _unclosed(tok, "HTML block", "its closing tag", closed=True)
    out.errors.append(Diagnostic(line, message + (f"; also, {problem[0].lower()}{problem[1:]}" if problem else "")))


def _unclosed(tok: MdToken, what: str, closer: str, closed: bool) -> str:
    """What is wrong with a block that does not end where it should (see `crossposter.markdown_dialect`)."""
    cut = tok.meta.get("crossposter_unclosed") if tok.meta else None
    if cut and cut["heading"] is not None and cut["until"] is not None:
        return (f"this {what} is not closed before the heading at line {cut['heading'] + 1}: Markdown runs it on "
                f"to line {cut['until']}, hiding the threads in between; add {closer} where it should end")
    if cut and cut["heading"] is not None:
        hidden = (" as code" if what == "code block" else "") + f", the threads from line {cut['heading'] + 1} on"
        return (f"this {what} is never closed: Markdown shows everything after it, to the end of the file, as "
                f"part of it{hidden}; add {closer} where it should end")
    if not closed:
        return (f"this {what} is never closed: everything after it in this thread is hidden and not posted; "
                f"add {closer} where it should end")
    return ""


def _check_coverage(tokens: list[MdToken], body: str, body_line: int, out: RenderedThread) -> None:
    """Every line of the body must be accounted for by a block the renderer read, else an error at its line.

    The safety net under every rule above: whatever markdown-it (or a rule here) drops without a token
    would otherwise vanish from the posts without a word. Blank lines, quote markers (`>`) and list
    markers alone on their line carry no text.
    """
    seen = 0  # body lines before this one are accounted for
    lines: list[str] | None = None
    missing: list[int] = []
    for tok in tokens:
        span = tok.map
        if span is None or tok.type not in _LEAVES:
            continue
        start, stop = span
        if tok.type == "list_item_open":
            stop = start + 1  # the marker line; the item's text is in its own blocks
        if start > seen:
            if lines is None:
                lines = body.split("\n")
            missing.extend(i for i in range(seen, start) if lines[i].strip(" \t\r>"))
        if stop > seen:
            seen = stop
    if lines is None:
        lines = body.split("\n")
    n = len(lines) - (1 if body.endswith("\n") else 0)
    missing.extend(i for i in range(seen, n) if lines[i].strip(" \t\r>"))
    if not missing:
        return
    runs: list[list[int]] = []
    for i in missing:
        if runs and runs[-1][1] == i - 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    for a, b in runs:
        where = f"line {body_line + a}" if a == b else f"lines {body_line + a}–{body_line + b}"
        out.errors.append(Diagnostic(body_line + a, (
            f"{where} did not become post text (the Markdown there was not read as any block crossposter "
            "posts), so it would be lost; rewrite the passage, and please report it as a crossposter bug")))


#: Tokens that account for their lines: what is posted, what is never posted by design (a thematic break,
#: a comment, a reference definition), and what the renderer reports itself (raw HTML, too deep).
_LEAVES = frozenset({"paragraph_open", "heading_open", "fence", "code_block", "hr", "html_block", "definition",
                     "crossposter_too_deep", "list_item_open"})


def _check_rules(out: RenderedThread) -> None:
    """A `---` with nothing to post before it (since the thread's start or the previous `---`) or after it
    makes no post: say so at its line rather than post an empty one or drop it without a word."""
    previous: int | None = None  # line of the last rule
    content = False  # anything posted since the last boundary
    for block in out.blocks:
        if block.kind != "rule":
            content = content or bool(block.runs)
            continue
        if not content:
            before = (f"the `---` at line {previous}" if previous is not None else "the start of the thread")
            out.warnings.append(Diagnostic(block.line, f"`---` right after {before}, with nothing between them: "
                                           "it starts no post (an empty post is never sent); remove one of them"))
        previous, content = block.line, False
    if previous is not None and not content:
        out.warnings.append(Diagnostic(previous, "`---` at the end of the thread, with nothing after it: it "
                                       "starts no post (an empty post is never sent); remove it"))


def _inline_runs(inline: MdToken, line: int, archive_dir: Path, out: RenderedThread,
                 parse: Callable[[MdToken], list[MdToken]] | None = None) -> list[Run]:
    if parse is None:
        children = inline.children or []
    elif not _special_inline(inline.content):
        return _plain_runs(inline.content, line)
    else:
        children = parse(inline)
    runs: list[Run] = []
    link: list[str] = []  # URL of the open link
    link_text: list[str] = []
    link_line = line
    for child in children:
        t = child.type
        if t == "text" or t == "html_inline" and not child.content.startswith("<!--"):
            if link:
                link_text.append(child.content)
            else:
                runs.append(Run("text", child.content, line=line))
        elif t == "code_inline":
            if link:
                link_text.append(child.content)
            else:
                runs.append(Run("code", child.content, line=line))
        elif t in ("softbreak", "hardbreak"):
            if link:
                link_text.append("\n")  # kept as typed, as a break outside a link is (a backed-up post round-trips)
            else:
                runs.append(Run("break", line=line))
            line += 1
        elif t == "link_open":
            link.append(child.attrs.get("href", "") or "")
            link_text.clear()
            link_line = line
        elif t == "link_close":
            url = link.pop() if link else ""
            if not _link_allowed(url):
                out.errors.append(Diagnostic(link_line, (
                    f"link to {url!r} is refused: a {_scheme(url) or 'such'} link runs code or opens a local "
                    "file, and Markdown viewers show it as plain text; link to an http(s) address instead")))
            text = "".join(link_text)
            if child.markup == "autolink" or text.strip() == "":
                runs.append(Run("link", text, url=url, line=link_line, autolink=True))
            elif text == url:  # `[url](url)`: the author typed the URL as the text to show
                runs.append(Run("link", text, url=url, line=link_line, as_typed=True))
            elif text == url.removeprefix("mailto:"):
                runs.append(Run("link", text, url=url, line=link_line, autolink=True))
            elif text[:1] in "@＠" and _is_mention_text(text):
                out.mention_links = True
                runs.append(Run("link", text, url=url, line=link_line, mention=mention_of(text, url)))
            else:
                runs.append(Run("link", text, url=url, line=link_line))
        elif t == "image":
            src = child.attrs.get("src", "") or ""
            if _scheme(src):
                out.errors.append(Diagnostic(line, (
                    f"image {src!r} is a URL, not a file: crossposter uploads images from the archive's folder; "
                    "save the image beside the archive and give its relative path")))
                continue
            alt = child.content or ""
            title = child.attrs.get("title") or None
            ref = ImageRef(src=src, path=_resolve(archive_dir, src), alt=alt, title=title, line=line)
            runs.append(Run("image", line=line, image=ref))
    return runs


def _scheme(url: str) -> str:
    """The URL's scheme (`https`, `file`…), or "" for a relative path (a drive letter `C:` is a path)."""
    colon = url.find(":")
    if colon < 2:
        return ""
    scheme = url[:colon]
    if not scheme.isascii() or not scheme[0].isalpha() or not all(c.isalnum() or c in "+.-" for c in scheme):
        return ""
    return scheme.lower()


def _link_allowed(url: str) -> bool:
    """What markdown-it itself would make a link (its `validateLink`: no javascript:, vbscript:, file:,
    non-image data:); the project's parser makes every destination a link so that these reach the renderer."""
    from markdown_it.common.normalize_url import validateLink

    return validateLink(url)


def _special_inline(content: str) -> bool:
    """Whether markdown-it's inline rules could make anything but text and line breaks of `content`.

    With CommonMark's rules only these characters start an inline construct: escapes, code spans,
    emphasis, links and images, autolinks and HTML, entities (and ~ for strikethrough, if it were on).
    """
    global _SPECIAL_INLINE
    if _SPECIAL_INLINE is None:
        _SPECIAL_INLINE = re.compile(r"[\\`*_\[<&~]")
    return _SPECIAL_INLINE.search(content) is not None


_SPECIAL_INLINE: re.Pattern[str] | None = None


def _plain_runs(content: str, line: int) -> list[Run]:
    """The runs `_inline_runs` makes of plain-text content, without markdown-it's inline parse.

    Follows markdown-it's `newline` rule: two or more spaces before a line break make it a hard break
    and are dropped, one is dropped before a soft break; spaces and tabs after a break are skipped.
    Both breaks are a "break" run.
    """
    if "\n" not in content:
        return [Run("text", content, line=line)] if content else []
    runs: list[Run] = []
    parts = content.split("\n")
    last = len(parts) - 1
    for k, part in enumerate(parts):
        if k:
            part = part.lstrip(" \t")
        if k < last and part.endswith(" "):
            part = part.rstrip(" ") if part.endswith("  ") else part[:-1]
        if part:
            runs.append(Run("text", part, line=line))
        if k < last:
            runs.append(Run("break", line=line))
            line += 1
    return runs


def _resolve(archive_dir: Path, src: str) -> Path:
    from urllib.parse import unquote

    return (archive_dir / unquote(src)).resolve()


# --------------------------------------------------------------------------- links and mentions


_X_HOSTS = frozenset({"x.com", "www.x.com", "mobile.x.com", "twitter.com", "www.twitter.com", "mobile.twitter.com"})


class _MentionPatterns:
    """The mention patterns, each compiled on first use (like `_Patterns`: importing compiles nothing)."""

    @cached_property
    def text(self) -> re.Pattern[str]:  # a link text that is one @name (or @name@host)
        return re.compile(r"[@＠][^\s@＠]+(?:[@＠][^\s@＠]+)?")

    @cached_property
    def did(self) -> re.Pattern[str]:
        return re.compile(r"did:[a-z]+:[A-Za-z0-9._:%-]{1,2040}")

    @cached_property
    def handle(self) -> re.Pattern[str]:
        return re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")

    @cached_property
    def x_profile(self) -> re.Pattern[str]:
        return re.compile(r"/([A-Za-z0-9_]{1,20})/?")

    @cached_property
    def bluesky_profile(self) -> re.Pattern[str]:
        return re.compile(r"/profile/([^/]+)/?")

    @cached_property
    def fedi_profile(self) -> re.Pattern[str]:
        return re.compile(r"/@([A-Za-z0-9_][A-Za-z0-9_.-]*)(?:@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+))?/?"
                          r"|/users/([A-Za-z0-9_][A-Za-z0-9_.-]*)/?")

    # Where X (twitter-text's `validMentionOrList`) and Mastodon (`Account::MENTION_RE`) start a mention: an
    # @ before a username character, not after a letter or digit (X also after "RT"/"RT:"; Mastodon also not
    # after "=" or "/"; X also for the full-width ＠).
    # (The @ is matched first and what comes before it checked behind it: the engine then only stops at @s.)
    _X_AT = (r"[@＠](?:(?<![A-Za-z0-9_!#$%&*@＠].)|(?<=(?<![A-Za-z0-9_+~.-])[Rr][Tt].)"
             r"|(?<=(?<![A-Za-z0-9_+~.-])[Rr][Tt]:.))")

    @cached_property
    def x_at(self) -> re.Pattern[str]:
        return re.compile(self._X_AT + r"(?=[A-Za-z0-9_])")

    @cached_property
    def mastodon_at(self) -> re.Pattern[str]:
        return re.compile(r"@(?<![=/\w].)(?=[A-Za-z0-9_])")

    @cached_property
    def x_mention(self) -> re.Pattern[str]:
        return re.compile(self._X_AT + r"([A-Za-z0-9_]{1,20})(?![A-Za-z0-9_@＠\u00c0-\u024f]|://)")

    @cached_property
    def mastodon_mention(self) -> re.Pattern[str]:
        return re.compile(r"@(?<![=/\w].)([a-z0-9_]+(?:[.-]+[a-z0-9_]+)*(?:@\w+(?:[.-]+\w+)*)?)", re.I)


_M = _MentionPatterns()
#: U+2060 WORD JOINER: written after an @ that must not mention anybody (see `inert`).
WORD_JOINER = "\u2060"


def _is_mention_text(text: str) -> bool:
    return _M.text.fullmatch(text) is not None


def mention_of(text: str, url: str) -> Mention | None:
    """Whose mention `[text](url)` is, when `text` is one `@name` and `url` that account's profile page.

    The forms (what `crossposter backup` writes, and what a person can type):

    * Bluesky: `[@alice.bsky.social](https://bsky.app/profile/alice.bsky.social)` (the text names the
      handle) or `[@anything](https://bsky.app/profile/did:plc:…)` (the DID decides; a handle can change).
    * Mastodon (and other fediverse servers): `[@alice](https://host/@alice)` or
      `[@alice@host](https://host/@alice)`, also `https://host/users/alice` and
      `https://host/@alice@home` (an account of `home` as `host` shows it).
    * X: `[@alice](https://x.com/alice)` (also twitter.com).

    The name in the text must be the URL's (case aside): a link whose text names somebody else, or whose
    URL is no profile page we know, gives None and is a mention nowhere.
    """
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host or "@" in parts.netloc:
        return None
    name = text[1:]
    if host == "bsky.app":
        m = _M.bluesky_profile.fullmatch(parts.path)
        if m is None:
            return None
        who = m.group(1)
        if _M.did.fullmatch(who):
            return Mention("bluesky", who)
        if _M.handle.fullmatch(who) and who.lower() == name.lower():
            return Mention("bluesky", who.lower())
        return None
    if host in _X_HOSTS:
        m = _M.x_profile.fullmatch(parts.path)
        if m is not None and m.group(1).lower() == name.lower():
            return Mention("x", m.group(1))
        return None
    m = _M.fedi_profile.fullmatch(parts.path)
    if m is None:
        return None
    user = m.group(1) or m.group(3)
    home = (m.group(2) or (host if port is None else f"{host}:{port}")).lower()
    if name.lower() in (user.lower(), f"{user}@{home}".lower()):
        return Mention("mastodon", user, home)
    return None


def _mention_starts(text: str) -> list[int]:
    """Offsets of the @s in `text` that Mastodon or X would read as the start of a mention."""
    starts = {m.start() for m in _M.x_at.finditer(text)}
    starts.update(m.start() for m in _M.mastodon_at.finditer(text))
    return sorted(starts)


def inert(text: str) -> str:
    """`text` with a WORD JOINER after every @ that Mastodon or X would read as a mention.

    Why a word joiner: it is invisible and keeps the text as typed to a reader, it is no white space (no
    line breaks at it, the mention stays one word), and both platforms' mention rules need a username
    character right after the @, so nobody is notified. The profile URL alone would change the words;
    `@alice@x.com` would still be a (federated) mention of whoever `x.com` says `alice` is. URLs in
    `text` are left alone. Counting: U+2060 is one grapheme on Bluesky and Mastodon and weighs 2 on X
    (twitter-text v3: outside the light ranges); `counting` counts it like any other character.
    """
    starts = _mention_starts(text)
    if not starts:
        return text
    if "://" in text or "." in text:  # an @ inside a URL either platform links is part of the URL
        urls = _written_url_spans("mastodon", text) + _written_url_spans("x", text)
        starts = [i for i in starts if not any(a <= i < b for a, b in urls)]
    out, last = [], 0
    for i in starts:
        out.append(text[last:i + 1])
        out.append(WORD_JOINER)
        last = i + 1
    out.append(text[last:])
    return "".join(out)


def live_code_mentions(rendered: RenderedThread, platforms: list[str]) -> list[Diagnostic]:
    """A warning for each `@name` in inline code or a code block that Mastodon or X makes a mention anyway.

    Bluesky mentions only what a facet says, and code gets none; Mastodon and X have no code formatting and
    find mentions in the plain text themselves, so `@name` notifies that account there. Code is not
    changed (it is meant to be copied as it is): the author is told, at the line, per platform.
    """
    rules = [(p, rule) for p, rule in (("mastodon", _M.mastodon_mention), ("x", _M.x_mention)) if p in platforms]
    out: list[Diagnostic] = []
    if not rules:
        return out
    for block in rendered.blocks:
        for run in block.runs:
            if run.kind != "code" or ("@" not in run.text and "＠" not in run.text):
                continue
            for k, code_line in enumerate(run.text.split("\n")):
                for platform, rule in rules:
                    for m in rule.finditer(code_line):
                        name = registry.display(platform)
                        out.append(Diagnostic(run.line + k, (
                            f"`{m.group(0)}` in code: {name} has no code formatting and makes it a live mention, "
                            f"so @{m.group(1)} is notified; if nobody should be, write it without the @"),
                            platform))
    return out


# --------------------------------------------------------------------------- blocks → tokens, per platform


def short_url(url: str) -> str:
    """How the Bluesky app shows a bare URL: no scheme, the path cut to 13 characters plus '...'.

    Mirrors `toShortUrl` in bluesky-social/social-app (src/lib/strings/url-helpers.ts).
    """
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return url
    path = ("" if parts.path == "/" else parts.path) + (f"?{parts.query}" if parts.query else "") + (
        f"#{parts.fragment}" if parts.fragment else ""
    )
    if len(path) > 15:
        return parts.netloc + path[:13] + "..."
    return parts.netloc + path


def tokenize(rendered: RenderedThread, platform: str) -> list[Token]:
    """Write the blocks as `platform` shows them, as unbreakable tokens with cut strengths between them."""
    return tokenize_all(rendered, [platform])[platform]


#: (dialect, text) -> its URL spans: a block's reading and its text on each platform ask for the same ones.
_URL_SPANS: BoundedCache[tuple[str, str], list[tuple[int, int]]] = BoundedCache(20_000)


def _written_url_spans(dialect: str, text: str) -> list[tuple[int, int]]:
    """The URLs `dialect` links in `text` (`counting`'s recogniser: the one the count uses)."""
    spans = _URL_SPANS.get((dialect, text))
    if spans is None:
        from crossposter.counting import url_spans_as_written

        spans = _URL_SPANS.put((dialect, text), url_spans_as_written(dialect, text))
    return spans


#: text -> whether some dialect could find a URL in it (a block's reading and each platform's text ask).
_MAY_HOLD_URL: BoundedCache[str, bool] = BoundedCache(20_000)


def _may_hold_url(text: str) -> bool:
    """Whether some dialect's recogniser could find a URL in `text` (`counting.may_hold_url`)."""
    if "://" in text:  # what counting.may_hold_url says first; no cache entry needed
        return True
    if "." not in text:  # every URL of every dialect has a dot, but Bluesky's http://localhost
        return False
    known = _MAY_HOLD_URL.get(text)
    if known is None:
        from crossposter.counting import may_hold_url

        known = _MAY_HOLD_URL.put(text, may_hold_url(text))
    return known


class _BlockReading(NamedTuple):
    """How a block reads across platforms, decided once per block."""

    neutral: bool  # the same on every platform: no link, URL, tag or mention in it
    written_alike: bool  # Mastodon and X find the same URLs in its text (they write links identically)


def _reading(block: Block) -> _BlockReading:
    neutral = True
    for run in block.runs:
        if run.kind == "link":
            neutral = False
        elif run.kind == "text":
            t = run.text
            if "#" in t or "@" in t or "＠" in t:
                neutral = False
            if _may_hold_url(t):
                x = _written_url_spans("x", t)
                if x != _written_url_spans("mastodon", t):
                    return _BlockReading(False, False)
                if x or _written_url_spans("bluesky", t):
                    neutral = False
    return _BlockReading(neutral, True)


def tokenize_all(rendered: RenderedThread, platforms: list[str], *,
                 mastodon_instance: str | None = None) -> dict[str, list[Token]]:
    """`tokenize` for several platforms at once."""
    return {p: stream.tokens()
            for p, stream in tokenize_streams(rendered, platforms, mastodon_instance=mastodon_instance).items()}


#: instance -> `_host` of it (a thread's tokenizing asks again for the same one or two instances).
_HOSTS: BoundedCache[str, str] = BoundedCache(64)


def _host(instance: str | None) -> str:
    """The configured Mastodon instance as `mention_of` spells a profile's host ("" when unknown)."""
    if not instance:
        return ""
    known = _HOSTS.get(instance)
    return _HOSTS.put(instance, _parse_host(instance)) if known is None else known


def _parse_host(instance: str) -> str:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(instance if "://" in instance else f"https://{instance}")
        host = (parts.hostname or "").lower()
        return host if parts.port is None else f"{host}:{parts.port}"
    except ValueError:
        return ""


def tokenize_streams(rendered: RenderedThread, platforms: list[str], *,
                     mastodon_instance: str | None = None) -> dict[str, Stream]:
    """`tokenize_all` as one `Stream` per platform (what `split` reads fastest).

    Most blocks read the same everywhere; their tokens are cut once and copied into every
    platform's stream. Mastodon and X read every block the same way (links written out), so they share
    one stream (`split` never changes a stream), unless a mention is live on one of them and not on the
    other (mention links; bare `@names` of a thread backed up from one of them).

    `mastodon_instance` is the configured Mastodon server: a mention of an account there is written
    `@alice`, any other `@alice@host` (without it, always `@alice@host`, which names the same account).
    A "rule" block (`---`) makes the next block start a new post; images after it with no text before
    them in that post go with the post's first text, or make a post of their own when another `---` or the
    thread's end comes first.
    """
    readings = [_reading(block) for block in rendered.blocks]
    return _tokenize_streams(rendered, platforms, readings, mastodon_instance)


def _tokenize_streams(rendered: RenderedThread, platforms: list[str], readings: list[_BlockReading],
                      mastodon_instance: str | None) -> dict[str, Stream]:
    apart = rendered.mention_links or rendered.source in ("mastodon", "x")
    if "mastodon" in platforms and "x" in platforms and not apart and all(r.written_alike for r in readings):
        own = [p for p in platforms if p != "x"]
        out = _tokenize_streams(rendered, own, readings, mastodon_instance)
        out["x"] = out["mastodon"]
        return {p: out[p] for p in platforms}
    target = {p: _Target(p, rendered.source, _host(mastodon_instance)) for p in platforms}
    out: dict[str, Stream] = {p: Stream() for p in platforms}
    pending: dict[str, list[ImageRef]] = {p: [] for p in platforms}  # images with no text before them yet
    post_start = dict.fromkeys(platforms, 0)  # first token of the post the last `---` started
    hard = dict.fromkeys(platforms, False)  # a `---` came and no token since: the next one starts a post
    for block, reading in zip(rendered.blocks, readings, strict=True):
        if block.kind == "rule":
            for platform in platforms:
                stream = out[platform]
                if pending[platform]:  # images alone between two boundaries: a post of their own
                    imgs = pending[platform]
                    stream.append("", "", SECTION, imgs[0].line, images=imgs)
                    pending[platform] = []
                post_start[platform] = len(stream.texts)
                hard[platform] = True
            continue
        # Tokens by how the block reads: the same everywhere (neutral), on Bluesky (link text, short URLs,
        # tag and mention facets), or with URLs written out (Mastodon and X write links identically, unless
        # `apart`).
        shared: dict[str, tuple[BlockTokens, list[tuple[int, ImageRef]]]] = {}
        for platform in platforms:
            stream = out[platform]
            first = len(stream.texts)
            variant = ("neutral" if reading.neutral else "bluesky" if platform == "bluesky" else
                       platform if apart or not reading.written_alike else "written")
            own = shared.get(variant)
            if own is None:
                written = _block_text(block, target[platform])
                part = _split_block(written.text, written.facets, written.glue, written.lines, len(block.prefix))
                if part.words:
                    part.seps[0] = block.sep
                    part.strengths[0] = block.before
                own = shared[variant] = (part, written.images)
            (words, seps, strengths, token_lines, tok_facets, tok_links, starts), images = own
            n = len(words)
            stream.texts.extend(words)
            stream.seps.extend(seps)
            stream.strengths.extend(strengths)
            stream.lines.extend(token_lines)
            for i, f in tok_facets.items():
                stream.facets[first + i] = f
            for i, links in tok_links.items():
                stream.links[first + i] = links
            if first and n and strengths[0] < SECTION and stream.texts[first - 1].endswith(":"):
                # "My favourite quote:" introduces what follows: keep them together where possible
                stream.strengths[first] = min(strengths[0], CLAUSE)
            if n and not first:  # the thread's first token: nothing before it
                stream.seps[0] = ""
                stream.strengths[0] = SECTION
            if n and hard[platform]:  # the first token after a `---`
                stream.seps[first] = ""
                stream.strengths[first] = SECTION
                hard[platform] = False
            for pos, img in images:
                # The image belongs to the post that holds the text just before it.
                k = first - 1
                for j, start in enumerate(starts):
                    if start < pos:
                        k = first + j
                if k >= post_start[platform]:
                    _attach(stream, k, img)
                else:
                    pending[platform].append(img)
            if pending[platform] and len(stream.texts) > first:
                for img in pending[platform]:
                    _attach(stream, first, img)
                pending[platform] = []
    for platform in platforms:
        if pending[platform]:
            # A thread of images only: an empty token carries them.
            imgs = pending[platform]
            out[platform].append("", "", SECTION, imgs[0].line, images=imgs)
    return out


def _attach(stream: Stream, k: int, image: ImageRef) -> None:
    """Attach an image to token k (a new list: the stream's own)."""
    stream.images[k] = [*stream.images.get(k, ()), image]


@dataclass(frozen=True)
class _Target:
    """What decides how a block reads on one platform."""

    platform: str
    source: str | None  # see RenderedThread.source
    instance_host: str  # the configured Mastodon server's host ("" unknown)


#: Internal facet kind of a `[url](url)` link on Bluesky: a link facet whose text is not shortened.
_AS_TYPED = "link-as-typed"


def _block_text(block: Block, target: _Target | str) -> BlockText:
    """The block's text on a platform, its facets (char offsets), glue ranges, image anchors, line starts."""
    if isinstance(target, str):
        target = _Target(target, None, "")
    platform = target.platform
    parts: list[str] = []
    facets: list[TextFacet] = []
    glue: list[tuple[int, int]] = []
    images: list[tuple[int, ImageRef]] = []
    lines: list[tuple[int, int]] = [(0, block.line)]  # (char offset, file line)
    pos = 0

    def add(s: str) -> None:
        nonlocal pos
        parts.append(s)
        pos += len(s)

    if block.prefix:
        add(block.prefix)  # the marker stays with the first word: see _pieces
    if block.kind == "code":
        run = block.runs[0]
        for k, code_line in enumerate(run.text.split("\n")):
            if k:
                add("\n")
                lines.append((pos, run.line + k))
            add(code_line)
        return BlockText("".join(parts), facets, glue, images, lines)
    bluesky = platform == "bluesky"
    # a thread backed up from another platform: its bare @names are that platform's accounts
    foreign = target.source is not None and target.source != platform
    append = parts.append
    for run in block.runs:
        kind = run.kind
        if kind == "text":
            t = run.text
            if foreign and not bluesky and ("@" in t or "＠" in t):
                t = inert(t)
            if _may_hold_url(t) or bluesky and ("#" in t or "@" in t):  # what _scan_text looks for
                _scan_text(t, pos, platform, facets, mentions=not foreign)
            append(t)
            pos += len(t)
        elif kind == "break":
            append("\n")
            pos += 1
            lines.append((pos, run.line + 1))
        elif kind == "code":
            append(run.text)
            pos += len(run.text)
        elif kind == "image":
            images.append((pos, run.image))
        elif kind == "link":
            url = run.url
            if run.mention is not False and run.mention is not None and run.mention.platform == platform:
                start = pos
                add(_live_mention(run, run.mention, target))
                if bluesky:
                    facets.append(TextFacet(start, pos, "mention", run.mention.account))
            elif run.mention is not False and not bluesky:
                # somebody else's account, or nobody's we know: the words as typed without a live @, and the
                # profile URL written out like every link's
                start = pos
                add(inert(run.text))
                add(" ")
                ustart = pos
                add(url)
                facets.append(TextFacet(ustart, pos, "url", url))
                glue.append((start, pos))
            elif run.as_typed:
                start = pos
                add(url)
                facets.append(TextFacet(start, pos, _AS_TYPED if bluesky else "url", url))
            elif run.autolink:
                start = pos
                add(short_url(url) if bluesky else url)
                if bluesky:
                    facets.append(TextFacet(start, pos, "link", url))
                else:
                    facets.append(TextFacet(start, pos, "url", url))
            elif bluesky:
                start = pos
                add(run.text)
                facets.append(TextFacet(start, pos, "link", url))
                glue.append((start, pos))
            else:
                start = pos
                add(run.text)
                add(" ")
                ustart = pos
                add(url)
                facets.append(TextFacet(ustart, pos, "url", url))
                glue.append((start, pos))
    return BlockText("".join(parts), facets, glue, images, lines)


def _live_mention(run: Run, mention: Mention, target: _Target) -> str:
    """A mention link's text on the platform that owns the account: Mastodon names the server unless it is
    the configured one; Bluesky and X show the text as typed (it names the account: see `mention_of`)."""
    if mention.platform != "mastodon":
        return run.text
    user = run.text[1:].split("@", 1)[0]
    if mention.host == target.instance_host:
        return f"@{user}"
    return f"@{user}@{mention.host}"


def _scan_text(text: str, offset: int, platform: str, facets: list[TextFacet], *,
               mentions: bool = True) -> None:
    """Bare URLs, #tags and @mentions in plain text (rendered text, not Markdown).

    The URLs are the ones the platform's dialect links (`counting.url_spans`: the recogniser the count
    uses), so a facet or written-out link is exactly what is counted as a URL. A URL without a scheme
    (X: `example.com`; Bluesky: what its app links) links to https.
    """
    # Each pattern needs its literal ("://" or ".", "#", "@"): most text has none of them, so no search.
    if _may_hold_url(text):
        kind = "link" if platform == "bluesky" else "url"
        for start, end in _written_url_spans(registry.dialect_of(platform), text):
            url = text[start:end].rstrip(_WHITE_SPACE)  # a Mastodon query may end in U+3000: no URL of a post
            end = start + len(url)
            facets.append(TextFacet(offset + start, offset + end, kind, url if "://" in url else f"https://{url}"))
    if platform != "bluesky":
        return
    if "#" in text:
        for m in _P.tag.finditer(text):
            if len(m.group(1)) <= 64:
                facets.append(TextFacet(offset + m.start(), offset + m.end(), "tag", m.group(1)))
    if mentions and "@" in text:
        for m in _P.mention.finditer(text):
            facets.append(TextFacet(offset + m.start(), offset + m.end(), "mention", m.group(1)))


#: Strength of a gap without a line break after a word, by word ("e.g." -> WORD, "end." -> SENTENCE).
_WORD_GAP: BoundedCache[str, int] = BoundedCache(100_000)


def _split_block(text: str, facets: list[TextFacet], glue: list[tuple[int, int]], lines: list[tuple[int, int]],
                 prefix_len: int) -> BlockTokens:
    """Cut the block's text into tokens at white space (and between CJK characters).

    Returns the tokens as parallel lists (texts, separators, strengths, lines), their facets and links by
    token index, and each token's start offset in the block's text, for anchoring images.
    """
    # Bluesky shows bare URLs shortened: swap in the short text now so every offset stays consistent.
    if facets:
        text, facets, glue, lines = _shorten(text, facets, glue, lines)
    words, seps, starts, ends = _pieces(text, facets, prefix_len)
    if facets:
        _join_urls(text, facets, words, seps, starts, ends)
    n = len(words)
    if not n:
        return BlockTokens([], [], [], [], {}, {}, [])
    # A gap without a line break is decided by the word before it alone (cached by word: "e.g." -> WORD,
    # "end." -> SENTENCE); a line break or a link's text around the gap decides otherwise.
    strengths: list[int | None] = [SECTION]
    strengths.extend(map(_WORD_GAP.get, words[:-1]))
    p = text.find("\n")
    while p >= 0:
        i = bisect_right(starts, p)  # the gap holding this line break comes before token i
        if 0 < i < n:  # what _gap_strength says of a gap with a line break (and no glue)
            strengths[i] = CLAUSE if words[i - 1].endswith(":") else LINE
        p = text.find("\n", p + 1)
    if None in strengths:
        i = 0
        try:
            while True:
                i = strengths.index(None, i + 1)
                prev = words[i - 1]
                strengths[i] = _WORD_GAP.put(prev, _gap_strength(prev, seps[i], ends[i - 1], starts[i], ()))
        except ValueError:
            pass
    for a, b in glue:  # gaps inside a link's text (gap i lies between ends[i - 1] and starts[i])
        for i in range(max(1, bisect_right(ends, a) + 1), bisect_left(starts, b)):
            strengths[i] = GLUE
    if len(lines) == 1:
        token_lines = [lines[0][1]] * n
    else:  # a token's line is the last one starting at or before it: fill each line's run of tokens
        token_lines = []
        firsts = [bisect_left(starts, offset) for offset, _ in lines]
        firsts.append(n)
        for j, (_, line) in enumerate(lines):
            token_lines.extend([line] * (firsts[j + 1] - firsts[j]))
    tok_facets: dict[int, list[TokenFacet]] = {}
    links: dict[int, list[str]] = {}
    for fs, fe, kind, value in facets:
        if kind == _AS_TYPED:
            kind = "link"
        # the tokens the facet overlaps: start < fe and end > fs
        for i in range(bisect_right(ends, fs), bisect_left(starts, fe)):
            start, end = starts[i], ends[i]
            # the last field says the facet began in an earlier token (one link over several words)
            tok_facets.setdefault(i, []).append(TokenFacet(max(fs, start) - start, min(fe, end) - start, kind, value,
                                                           fs < start))
            if kind in ("link", "url") and fs >= start:
                links.setdefault(i, []).append(value)
    return BlockTokens(words, seps, strengths, token_lines, tok_facets, links, starts)


def _pieces(text: str, facets, prefix_len: int):
    """The block's tokens as (texts, separators before them, start offsets, end offsets).

    Tokens are runs of non-white-space, cut between CJK characters, the list marker glued to the first.
    """
    parts = _P.ws_split.split(text)  # word, white space, word, ...: the first and last word may be ""
    offsets = list(accumulate(map(len, parts), initial=0))
    words = parts[0::2]
    seps = parts[1::2]
    seps.insert(0, "")  # seps[i] comes before words[i]
    starts = offsets[0::2]
    ends = offsets[1::2]
    if not words[-1]:
        words.pop()
        seps.pop()
        starts.pop()
        ends.pop()
    if words and not words[0]:
        del words[0], seps[0], starts[0], ends[0]
        if seps:
            seps[0] = ""
    if words and not text.isascii():
        _cut_cjk(text, facets, words, seps, starts, ends)
    if prefix_len and len(words) >= 2 and ends[0] <= prefix_len:
        # a post never starts with a lone list marker ("- ", "12. "): glue it to the item's first word
        words[0] = text[starts[0]:ends[1]]
        del words[1], seps[1], starts[1], ends[0]
    return words, seps, starts, ends


def _cut_cjk(text: str, facets, words: list[str], seps: list[str], starts: list[int], ends: list[int]) -> None:
    """Allow cuts between CJK characters, which are written without spaces (never inside a URL).

    Only a word with a CJK character has cuts (`_cjk_cuts`, cached by word), and only a non-ASCII
    word can have one.
    """
    urls = None
    pieces_of = _CJK_PIECES.get
    # from the end: splicing keeps earlier indices valid
    for j in reversed(_non_ascii_indices(words)):
        chunk = words[j]
        known = pieces_of(chunk)
        if known is None:
            known = _cjk_pieces(chunk)
        if not known:
            continue
        cuts, pieces, gaps = known
        start, end = starts[j], ends[j]
        if urls is None:
            urls = [(fs, fe) for fs, fe, kind, _ in facets if kind in ("link", "url", "mention", "tag", _AS_TYPED)]
        if urls and any(fs < end and fe > start for fs, fe in urls):
            continue
        words[j:j + 1] = pieces
        seps[j + 1:j + 1] = gaps
        starts[j + 1:j + 1] = map(start.__add__, cuts)
        ends[j:j] = map(start.__add__, cuts)


def _join_urls(text: str, facets, words: list[str], seps: list[str], starts: list[int], ends: list[int]) -> None:
    """Make each written-out URL one token, so no post is ever cut inside it.

    Only Mastodon's URLs can hold white space: its query may run on over U+3000 (and U+2028/U+2029), which
    the tokens are cut at; a cut there would leave the post before it listing a URL it does not hold.
    """
    for fs, fe, kind, _ in sorted(facets, reverse=True):  # from the end: joining keeps earlier indices valid
        if kind != "url":
            continue
        i = bisect_right(ends, fs)  # the first token ending after the URL's start
        j = bisect_left(starts, fe) - 1  # the last token starting before its end
        if j > i:
            words[i] = text[starts[i]:ends[j]]
            ends[i] = ends[j]
            del words[i + 1:j + 1], seps[i + 1:j + 1], starts[i + 1:j + 1], ends[i + 1:j + 1]


def _non_ascii_indices(words: list[str]) -> list[int]:
    """Indices of the words that are not pure ASCII (only those can hold CJK text).

    Without a Python-level loop: this runs for every block, and nearly all of its words are ASCII.
    """
    return list(compress(range(len(words)), map(not_, map(str.isascii, words))))


#: Word -> its CJK pieces when `_cjk_cuts` cuts it, else () (words repeat).
_CJK_PIECES: BoundedCache[str, CjkPieces | tuple[()]] = BoundedCache(100_000)


def _cjk_pieces(chunk: str) -> CjkPieces | tuple[()]:
    cuts = _CJK_CUTS.get(chunk)
    if cuts is None:
        cuts = _CJK_CUTS.put(chunk, _cjk_cuts(chunk))
    if not cuts:
        return _CJK_PIECES.put(chunk, ())
    bounds = [0, *cuts, len(chunk)]
    pieces = tuple(chunk[x:y] for x, y in zip(bounds, bounds[1:], strict=False))
    return _CJK_PIECES.put(chunk, CjkPieces(cuts, pieces, ("",) * len(cuts)))


def _shorten(text, facets, glue, lines):
    """Replace bare URLs in `text` by their short form (Bluesky), shifting every offset."""
    edits = []  # (start, end, replacement)
    for fs, fe, kind, value in facets:
        if kind == "link" and text[fs:fe] == value:
            edits.append((fs, fe, short_url(value)))
    if not edits:
        return text, facets, glue, lines
    edits.sort()

    def shift(p: int) -> int:
        d = 0
        for s, e, r in edits:
            if p >= e:
                d += len(r) - (e - s)
            elif p > s:
                return s + d + min(p - s, len(r))
        return p + d

    new_text = []
    last = 0
    for s, e, r in edits:
        new_text.append(text[last:s])
        new_text.append(r)
        last = e
    new_text.append(text[last:])
    facets = [TextFacet(shift(fs), shift(fe), k, v) for fs, fe, k, v in facets]
    glue = [(shift(a), shift(b)) for a, b in glue]
    lines = [(shift(a), ln) for a, ln in lines]
    return "".join(new_text), facets, glue, lines


#: Word -> where `_cjk_cuts` cuts it (words repeat; the cuts depend on the word alone).
_CJK_CUTS: BoundedCache[str, tuple[int, ...]] = BoundedCache(100_000)


def _cjk_cuts(chunk: str) -> tuple[int, ...]:
    """Offsets in a white-space-free word where a cut may fall: around CJK characters, never before a
    closing mark or after an opening one."""
    cuts: list[int] = []
    piece_start = 0
    pos = 0
    prev_cjk = False
    cjk = _P.cjk
    for g in _P.grapheme.findall(chunk):
        is_cjk = bool(cjk.match(g))
        closing = g in "。、，！？」』）》〉】：；”’.,!?)"
        if pos > piece_start and (is_cjk or prev_cjk) and not closing and chunk[pos - 1] not in "「『（《〈【“‘(":
            cuts.append(pos)
            piece_start = pos
        pos += len(g)
        prev_cjk = is_cjk
    return tuple(cuts)


def _gap_strength(prev: str, sep: str, gap_start: int, gap_end: int, glue) -> int:
    for a, b in glue:
        if a < gap_start and gap_end < b:
            return GLUE
    if "\n" in sep:
        return CLAUSE if prev.endswith(":") else LINE
    last = prev[-1:] if prev else ""
    if last.isalnum():  # most words: no punctuation to look at
        return WORD
    if _P.sentence_end.search(prev):
        if prev.lower() in _ABBREVIATIONS or _P.initial.fullmatch(prev):
            return WORD
        return SENTENCE
    if _P.clause_end.search(prev):
        return CLAUSE
    return WORD
