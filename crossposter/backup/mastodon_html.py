"""A status' `content` HTML back to the text its author typed, with its links and mentions as spans.

Mastodon never keeps the HTML it serves as the source of truth: it stores the typed text and renders
it on every request (app/lib/text_formatter.rb), and the account-statuses listing does not carry
that text. So this module inverts the renderer's rules one by one, which is only possible because
each of them is reversible:

- every character of the typed text is HTML-escaped (`&`, `<`, `>`, `"`, `'`), so unescaping
  gives it back;
- `simple_format` turns a run of two or more line breaks into a paragraph boundary (`</p><p>`)
  and every single line break into `<br />`, then deletes every raw newline: a paragraph boundary
  is exactly one blank line, a `<br>` exactly one line break. (Three line breaks in a row become
  one blank line on the server; that loss happened before the status was stored.)
- a URL is a link whose visible text is split into `invisible` / `ellipsis` / `invisible` spans
  that together spell the whole URL: the anchor's full text *is* the typed URL;
- a mention shows only the username (`@<span>alice</span>`), whatever was typed; the status'
  `mentions` list (matched by the link's URL) says which account it is, and its `acct`
  (`alice` for the instance's own accounts, `bob@example.social` otherwise) is what has to be
  typed to mention that account again. A mention that cannot be resolved was never linked and is
  plain text already;
- a hashtag is `#<span>tag</span>` with the tag exactly as typed; custom emoji stay `:shortcode:`.

Servers other than Mastodon (Pleroma, Akkoma, GoToSocial, Misskey forks) serve the same API with
their own HTML: emphasis, lists, quotes, code. Their text is kept (list items as `- `, quotes as
`> `, code as is) and every kind of markup that had to be flattened is named in `notes`, so the
backup's summary says what was lost instead of losing it silently. A quote post's server-added
fallback (`<span class="quote-inline">RE: <a>…</a></span>`) was not typed: it is left out of the
text and its URL returned in `quote_urls`.

Only the standard library's `html.parser` is used: the input is a fragment produced by a known
formatter, not a page to be repaired, and every character has to be accounted for.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

from crossposter.backup.source import LinkSpan, MentionSpan

#: Tags Mastodon's own formatter emits; they never earn a note.
_MASTODON_TAGS = frozenset({"p", "br", "a", "span"})
#: Inline markup whose text is kept as it is.
_INLINE = frozenset({
    "strong", "b", "em", "i", "u", "s", "del", "strike", "ins", "mark", "small", "big", "sup", "sub",
    "code", "kbd", "samp", "var", "abbr", "cite", "q", "dfn", "time", "bdi", "bdo", "font", "tt", "ruby",
    "rt", "rp", "data", "wbr",
})
#: Block markup: a paragraph boundary before and after.
_BLOCKS = frozenset({
    "p", "div", "blockquote", "ul", "ol", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "section",
    "article", "aside", "header", "footer", "figure", "figcaption", "table", "tr", "dl", "dt", "dd",
    "details", "summary", "center", "address",
})
#: Elements whose content is not text the author wrote.
_DROPPED = frozenset({"script", "style", "template", "iframe", "object", "embed", "noscript", "svg", "math"})
_VOID = frozenset({"br", "img", "hr", "wbr", "input", "meta", "link", "source", "area", "col", "base", "embed"})


@dataclass(frozen=True)
class Decoded:
    """The author's text and what in it is a link or a mention, plus what could not be kept exactly."""

    text: str
    links: tuple[LinkSpan, ...] = ()
    mentions: tuple[MentionSpan, ...] = ()
    notes: tuple[str, ...] = ()
    #: URLs of quoted posts found in the server's quote fallback (left out of `text`)
    quote_urls: tuple[str, ...] = ()


@dataclass
class _Anchor:
    href: str
    classes: frozenset[str]
    rel: frozenset[str]
    parts: list[str] = field(default_factory=list)


def _norm_url(url: str) -> str:
    """Scheme and host case-insensitive, no trailing slash: the same profile however a server spells it."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url.strip()
    path = parts.path.rstrip("/")
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{path}" + (f"?{parts.query}" if parts.query else "")


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def _match_mention(href: str, display: str, mentions: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The `mentions` entry a mention link stands for; None rather than a guess that could be somebody else.

    Mastodon links a mention to exactly the URL it lists for that account. Other servers link to
    the actor id (`/users/alice`) and list the profile page (`/@alice`): then the name must be
    the only one of its kind among the mentions *and* live on the link's host.
    """
    if href:
        for m in mentions:
            if str(m.get("url") or "") == href:
                return m
        wanted = _norm_url(href)
        for m in mentions:
            if m.get("url") and _norm_url(str(m["url"])) == wanted:
                return m
    name = display[1:] if display.startswith("@") else display
    if not name:
        return None
    host = _host(href)
    for m in mentions:
        if str(m.get("acct") or "").lower() == name.lower() and "@" in name:
            return m
    user = name.split("@", 1)[0].lower()
    same = [m for m in mentions if str(m.get("username") or str(m.get("acct") or "").split("@", 1)[0]).lower() == user]
    if len(same) == 1 and host and host in (_host(str(same[0].get("url") or "")),
                                            str(same[0].get("acct") or "").partition("@")[2].lower()):
        return same[0]
    return None


class _Decoder(HTMLParser):
    def __init__(self, mentions: list[Mapping[str, Any]], instance_host: str) -> None:
        super().__init__(convert_charrefs=True)
        self.mentions = mentions
        self.instance_host = instance_host
        self.parts: list[str] = []
        self.length = 0
        self.pending = 0  # line breaks owed before the next text (a block boundary)
        self.links: list[LinkSpan] = []
        self.found: list[MentionSpan] = []
        self.notes: list[str] = []
        self.flattened: set[str] = set()
        self.quote_urls: list[str] = []
        self.anchor: _Anchor | None = None
        self.quote_depth = 0
        self.written_depth = 0  # quote depth of the latest text written
        self.pre_depth = 0
        self.lists: list[list[Any]] = []  # [kind, next number]
        self.fresh_item = False  # a list marker was just written
        # an element whose content is left out: [tag, nesting depth, why, collected text]
        self.skip: list[Any] | None = None

    # ------------------------------------------------------------------ output

    def _ends_with_newlines(self) -> int:
        count = 0
        for part in reversed(self.parts):
            stripped = part.rstrip("\n")
            count += len(part) - len(stripped)
            if stripped:
                break
        return count

    def _append(self, s: str) -> None:
        if s:
            self.parts.append(s)
            self.length += len(s)

    def _at_line_start(self) -> bool:
        return not self.parts or self.parts[-1].endswith("\n")

    def _flush_pending(self) -> None:
        if self.pending and self.length:
            missing = self.pending - self._ends_with_newlines()
            # a blank line inside a quote is quoted too; the one before a quote starts is not
            depth = min(self.quote_depth, self.written_depth)
            for _ in range(max(missing, 0)):
                if depth and self._at_line_start():
                    self._append(">" * depth)
                self._append("\n")
        self.pending = 0

    def write(self, text: str) -> tuple[int, int]:
        """Append `text` after any owed block boundary; returns where it landed in the output."""
        if not text:
            return self.length, self.length
        self.fresh_item = False
        self._flush_pending()
        self.written_depth = self.quote_depth
        if not self.quote_depth:
            start = self.length
            self._append(text)
            return start, self.length
        start = -1
        for i, line in enumerate(text.split("\n")):
            if i:
                self._append("\n")
            if line:
                if self._at_line_start():
                    self._append("> " * self.quote_depth)
                if start < 0:
                    start = self.length
                self._append(line)
        return (start if start >= 0 else self.length), self.length

    def block_break(self, n: int = 2) -> None:
        if not self.fresh_item:  # `<li><p>x`: the item's marker already started the line
            self.pending = max(self.pending, n)

    # ------------------------------------------------------------------ parser events

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        classes = frozenset(a.get("class", "").split())
        if self.skip is not None:
            if tag == self.skip[0]:
                self.skip[1] += 1
            if tag == "a" and a.get("href"):
                self.skip[3].append(("href", a["href"]))
            elif tag == "br":
                self.skip[3].append(("text", " "))
            return
        if "quote-inline" in classes:
            if tag not in _VOID:
                self.skip = [tag, 1, "quote", []]
            return
        if tag in _DROPPED and tag not in _VOID:
            self.skip = [tag, 1, "dropped", []]
            return
        if tag not in _MASTODON_TAGS:
            self.flattened.add(tag)
        if self.anchor is not None:  # markup inside a link only contributes its text
            if tag == "br":
                self.anchor.parts.append("\n")
            elif tag == "img" and a.get("alt"):
                self.anchor.parts.append(a["alt"])
            return
        if tag == "a":
            self.anchor = _Anchor(href=a.get("href", ""), classes=classes, rel=frozenset(a.get("rel", "").split()))
        elif tag == "br":
            self._flush_pending()
            self._append("\n")
        elif tag == "img":
            alt = a.get("alt", "")
            if alt:
                self.write(alt)
        elif tag == "li":
            self.block_break(1)
            indent = "  " * max(len(self.lists) - 1, 0)
            if self.lists and self.lists[-1][0] == "ol":
                marker = f"{self.lists[-1][1]}. "
                self.lists[-1][1] += 1
            else:
                marker = "- "
            self.write(indent + marker)
            self.fresh_item = True
        elif tag in ("ul", "ol"):
            self.block_break(2 if not self.lists else 1)
            start = a.get("start", "1")
            self.lists.append([tag, int(start) if re.fullmatch(r"[0-9]{1,9}", start) else 1])
        elif tag == "blockquote":
            self.block_break()
            self.quote_depth += 1
        elif tag == "pre":
            self.block_break()
            self.pre_depth += 1
        elif tag in _BLOCKS:
            self.block_break()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.skip is not None:
            if tag == self.skip[0]:
                self.skip[1] -= 1
                if self.skip[1] == 0:
                    self._end_skip()
            return
        if tag == "a":
            if self.anchor is not None:
                self._end_anchor()
            return
        if self.anchor is not None:
            return
        if tag in ("ul", "ol"):
            if self.lists:
                self.lists.pop()
            self.block_break(2 if not self.lists else 1)
        elif tag == "blockquote":
            self.block_break()
            self.quote_depth = max(self.quote_depth - 1, 0)
        elif tag == "pre":
            self.block_break()
            self.pre_depth = max(self.pre_depth - 1, 0)
        elif tag in _BLOCKS:
            self.block_break()

    def handle_data(self, data: str) -> None:
        if self.skip is not None:
            self.skip[3].append(("text", data))
            return
        if self.anchor is not None:
            self.anchor.parts.append(data)
            return
        if self.pending and not self.pre_depth and "\n" in data and not data.strip():
            return  # the newline-and-indent between two blocks of pretty-printed HTML, not text
        self.write(data)

    def close(self) -> None:
        super().close()
        if self.anchor is not None:  # a link left open by broken HTML: its text still counts
            self._end_anchor()
        if self.skip is not None:
            self._end_skip()

    # ------------------------------------------------------------------ links and mentions

    def _end_skip(self) -> None:
        assert self.skip is not None
        _tag, _depth, why, items = self.skip
        self.skip = None
        text = " ".join("".join(v for k, v in items if k == "text").split())
        if why == "quote":
            urls = [v for k, v in items if k == "href"]
            self.quote_urls.extend(urls)
            rest = text
            for url in urls:
                rest = rest.replace(url, "")
            rest = re.sub(r"^\s*(?:RE|QT|RT)\s*:", "", rest, flags=re.IGNORECASE).strip()
            if rest or not urls:
                self.notes.append(f"left out the server's quote fallback {text!r}")
        elif text:
            self.notes.append(f"left out the content of a <{_tag}> element ({len(text)} characters)")

    def _end_anchor(self) -> None:
        anchor = self.anchor
        assert anchor is not None
        self.anchor = None
        text = "".join(anchor.parts)
        if "hashtag" in anchor.classes or "tag" in anchor.rel:
            self.write(text)
            return
        if ("mention" in anchor.classes or "u-url" in anchor.classes) and text.startswith("@"):
            self._mention(anchor.href, text)
            return
        if not anchor.href:
            self.write(text)
            return
        if not text.strip():
            self.notes.append(f"a link without text to {anchor.href} was left out of the text")
            return
        start, end = self.write(text)
        self.links.append(LinkSpan(start, end, anchor.href))
        if text != anchor.href and "\n" not in text:
            self.notes.append(f"the link text {text!r} differs from its URL {anchor.href}")

    def _mention(self, href: str, display: str) -> None:
        m = _match_mention(href, display, self.mentions)
        if m is not None:
            acct = str(m.get("acct") or m.get("username") or display[1:])
            start, end = self.write("@" + acct)
            account_id = m.get("id")
            self.found.append(MentionSpan(start, end, acct, str(m.get("url") or href),
                                          str(account_id) if account_id is not None else None))
            return
        name = display[1:]
        host = _host(href)
        if "@" not in name and host and host != self.instance_host:
            name = f"{name}@{host}"
            self.notes.append(f"the mention {display} is not in the status' mentions; "
                              f"written as @{name} from its link {href}")
        elif href:
            self.notes.append(f"the mention {display} is not in the status' mentions; kept with its link {href}")
        start, end = self.write("@" + name)
        if href:
            self.found.append(MentionSpan(start, end, name, href, None))

    def result(self) -> Decoded:
        notes = list(self.notes)
        if self.flattened:
            names = ", ".join(f"<{t}>" for t in sorted(self.flattened))
            notes.insert(0, f"markup flattened to plain text: {names}")
        return Decoded("".join(self.parts), tuple(self.links), tuple(self.found), tuple(notes),
                       tuple(dict.fromkeys(self.quote_urls)))


def decode_content(content: str, mentions: Iterable[Mapping[str, Any]] = (), *, instance: str = "") -> Decoded:
    """The typed text of a status' `content`, resolving mention links through its `mentions` list.

    `instance` is the account's own server: a mention that is not in `mentions` and links to
    another host is written with that host (`@bob@other.example`), never as a bare `@bob` that
    would name somebody on the account's own instance.
    """
    decoder = _Decoder([m for m in mentions if isinstance(m, Mapping)], _host(instance))
    decoder.feed(content or "")
    decoder.close()
    return decoder.result()


def align_to_source(source: str, decoded: Decoded) -> Decoded:
    """`decoded`'s spans moved onto the status' own source text (servers that send `text`).

    The source is what the author typed (plain text, or Markdown on servers that take it), so it
    wins over the decoded HTML; the spans are found in it in order: a link by its URL (Markdown
    writes `[words](url)`) or else by its text, a mention as `@user` with or without `@domain`.
    A span that cannot be found is named in the notes instead of pointing at the wrong characters.
    """
    links: list[LinkSpan] = []
    mentions: list[MentionSpan] = []
    notes = [n for n in decoded.notes if not n.startswith("markup flattened")]
    spans: list[tuple[int, LinkSpan | MentionSpan]] = [(s.start, s) for s in (*decoded.links, *decoded.mentions)]
    spans.sort(key=lambda item: item[0])
    pos = 0
    for _, span in spans:
        if isinstance(span, LinkSpan):
            found = -1
            needle = span.url
            if needle:
                found = source.find(needle, pos)
            if found < 0:
                needle = decoded.text[span.start:span.end]
                found = source.find(needle, pos) if needle else -1
            if found < 0:
                notes.append(f"the link to {span.url} was not found in the status' source text")
                continue
            links.append(replace(span, start=found, end=found + len(needle)))
            pos = found + len(needle)
        else:
            user = span.handle.split("@", 1)[0]
            match = re.compile(r"@" + re.escape(user) + r"(?:@[\w.-]*\w)?(?![\w@])", re.IGNORECASE).search(source, pos)
            if match is None:
                notes.append(f"the mention @{span.handle} was not found in the status' source text")
                continue
            mentions.append(replace(span, start=match.start(), end=match.end()))
            pos = match.end()
    return Decoded(source, tuple(links), tuple(mentions), tuple(notes), decoded.quote_urls)
