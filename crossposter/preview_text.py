"""The terminal preview: each thread, each platform's posts with `length/limit`, images, problems by line.

The post boxes are laid out here rather than left to rich's word wrap, for three things a person must be
able to see: which line breaks are the archive's own (a soft-wrapped row starts with a dim `↪`), where a
Bluesky link goes (its URL beside the link text), and a URL kept whole when it can move to the next row
(a URL too long for any row is cut after a `/`, `?`, `&`… rather than mid-word). Widths are measured in
terminal cells by rich itself (grapheme clusters: `👩🏽‍💻`, flags, CJK, combining marks), so the layout
and the boxes drawn around it agree on every row.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from crossposter.model import PlatformName, Post, ThreadPlan
from crossposter.platforms import registry

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

#: What starts a soft-wrapped row; a real line break of the archive starts a row with the text itself.
CONTINUATION = "↪ "
#: A panel's border and padding take 2 cells on each side.
_BOX_CHROME = 4
#: Narrower than this, a box would hold nothing readable; the layout stays usable rather than exact.
_MIN_INNER = 12

# Characters that would move the cursor, recolour the terminal or reorder the row (ESC, CR, C1 controls,
# line/paragraph separators, bidi overrides and isolates): shown as visible marks, never sent to the
# terminal as they are. Tab and line feed are handled by the layout.
_INVISIBLE_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
#: Inside a URL or any word too long for a row, a cut may fall after these (never inside `//`).
_WEAK_AFTER = frozenset("/?&=#-_.,;~+@")
_SPACE_RE = re.compile(r"\s+")
_WORD_RE = re.compile(r"\S+")


def print_plans(plans: list[ThreadPlan], output: Path | None = None) -> None:
    """Problems are printed one per line, never folded (the terminal wraps them on screen): a `file:line`
    cut in two by an inserted line break could not be clicked, copied or grepped."""
    from rich.console import Console

    out_file = output.open("w", encoding="utf-8") if output else None
    console = Console(file=out_file, highlight=False, soft_wrap=False,
                      width=100 if out_file else None, no_color=out_file is not None)
    try:
        render_plans(plans, console)
    finally:
        if out_file:
            out_file.close()


def render_plans(plans: list[ThreadPlan], console: Console) -> None:
    from rich.markup import escape
    from rich.panel import Panel
    from rich.text import Text

    inner = max(console.width - _BOX_CHROME, _MIN_INNER)
    from crossposter.messages import plural as n

    totals = {"threads": 0, "posts": 0, "errors": 0, "warnings": 0, "skipped": 0}
    for plan in plans:
        where = f"{_rel(plan.archive)}:{plan.line}"
        title = visible(plan.title or plan.archive.name)
        if plan.skipped:
            totals["skipped"] += 1
            console.print(f"[dim]{escape(visible(where))}  {escape(title)} — skipped "
                          f"({escape(visible(plan.skipped))})[/dim]", soft_wrap=True)
            continue
        totals["threads"] += 1
        _heading(console, title, visible(where))
        for d in plan.errors:
            totals["errors"] += 1
            tag = f" [{d.platform}]" if d.platform else ""
            console.print(f"[bold red]error[/bold red] {escape(visible(_rel(plan.archive)))}:{d.line}{escape(tag)}: "
                          f"{escape(visible(d.message))}", soft_wrap=True)
        for d in plan.warnings:
            totals["warnings"] += 1
            console.print(f"[yellow]warning[/yellow] {escape(visible(_rel(plan.archive)))}:{d.line}: "
                          f"{escape(visible(d.message))}", soft_wrap=True)
        for name, pp in plan.platforms.items():
            console.print(f"\n[bold]{registry.display(name)}[/bold] — {n(len(pp.posts), 'post')}, limit {pp.limit}")
            for i, post in enumerate(pp.posts, 1):
                totals["posts"] += 1
                over = post.length > pp.limit
                count = f"[{'bold red' if over else 'green'}]{post.length}/{pp.limit}[/]"
                body = Text("\n", no_wrap=True, overflow="ignore").join(post_rows(post, name, inner))
                console.print(Panel(body, title=f"{i}/{len(pp.posts)}", title_align="left",
                                    subtitle=count + f" [dim]line {post.line}[/dim]", subtitle_align="right",
                                    border_style="red" if over else "dim", expand=False))
        console.print()
    console.print(f"[bold]{n(totals['threads'], 'thread')}[/bold], {n(totals['posts'], 'post')}, "
                  f"{totals['skipped']} skipped, "
                  f"[{'red' if totals['errors'] else 'green'}]{n(totals['errors'], 'error')}[/], "
                  f"{n(totals['warnings'], 'warning')}")


def _heading(console: Console, title: str, where: str) -> None:
    """A rule with the title and `file:line`; when both do not fit, the location gets a line of its own
    rather than being cut by the rule's ellipsis."""
    from rich.cells import cell_len
    from rich.text import Text

    both = Text.assemble((title, "bold"), "  ", (where, "dim"))
    if cell_len(both.plain) + 4 <= console.width:
        console.rule(both)
    else:
        console.rule(Text(title, style="bold"))
        console.print(Text(where, style="dim"), soft_wrap=True)


def post_rows(post: Post, platform: PlatformName, width: int) -> list[Text]:
    """The post as rows at most `width` cells wide: its text (Bluesky links followed by their URL), then
    one row per image, each real line soft-wrapped with a continuation mark."""
    from rich.text import Text

    rows: list[Text] = []
    mentions = live_mentions(post, platform)
    text = _bluesky_text(post, mentions) if registry.dialect_of(platform) == "bluesky" else _plain(post.text, mentions)
    for line in text.split("\n", allow_blank=True):
        rows.extend(wrap_line(line, width))
    for img in post.images:
        line = Text(style="cyan")
        line.append("image: ")
        _append_visible(line, f"{img.src} — {img.alt or '(no alt text)'}")
        for part in line.split("\n", allow_blank=True):
            rows.extend(wrap_line(part, width))
    return rows


def wrap_line(line: Text, width: int) -> list[Text]:
    """One real line as rows of at most `width` cells; every row after the first starts with the dim
    continuation mark. A row ends at white space or between CJK characters when one fits; failing that,
    inside a long URL or word after `/ ? & = # - _ . , ; ~ + @`; failing that, at the last grapheme that fits.
    """
    from rich.cells import cell_len, split_graphemes
    from rich.text import Text

    if "\t" in line.plain:
        line.expand_tabs(8)
    plain = line.plain
    if cell_len(plain) <= width:
        return [line]
    n = len(plain)
    if plain.isascii():  # the common case: one cell per character (controls were replaced, tabs expanded)
        cell_ends = None
    else:  # grapheme clusters: a row never ends inside one, and each is measured as rich draws it
        graphemes, _ = split_graphemes(plain)
        cell_ends = {g[0]: g for g in graphemes}
        starts = [g[0] for g in graphemes]
    strong = _strong_breaks(plain)
    ranges: list[tuple[int, int]] = []
    pos = 0
    avail = width
    while True:
        if ranges:  # the white space a soft break falls on is not drawn at the start of the next row
            while pos < n and plain[pos].isspace():
                pos += 1
            if cell_ends is not None and pos < n and pos not in cell_ends:  # a combining mark after a space
                pos = starts[bisect_left(starts, pos) - 1]
        if pos >= n:
            break
        if cell_ends is None:
            end = min(pos + avail, n)
            fits_to = end
        else:
            end = pos
            cells = 0
            while end < n and cells + cell_ends[end][2] <= avail:
                cells += cell_ends[end][2]
                end = cell_ends[end][1]
            fits_to = end if end > pos else cell_ends[pos][1]  # at least one grapheme: always progress
        if end >= n:
            ranges.append((pos, n))
            break
        cut = _last_in(strong, pos, fits_to) or _weak_break(plain, pos, fits_to, cell_ends) or fits_to
        ranges.append((pos, cut))
        pos = cut
        avail = max(width - len(CONTINUATION), 1)
    # one divide for the whole line (slicing a Text row by row costs a divide each)
    offsets = sorted({x for r in ranges for x in r} - {0, len(plain)})
    pieces = line.divide(offsets)
    first = {0: 0, **{x: k + 1 for k, x in enumerate(offsets)}}
    out: list[Text] = []
    for start, cut in ranges:
        row = pieces[first[start]]
        if plain[start:cut].strip():
            row.rstrip()
        if out:
            marked = Text(CONTINUATION, style="dim")
            marked.append_text(row)
            row = marked
        out.append(row)
    return out


def _strong_breaks(plain: str) -> list[int]:
    """Offsets where a row may end at a word boundary: where white space starts, and around CJK characters
    (the same cuts the splitter makes: never before a closing mark or after an opening one)."""
    points = [m.start() for m in _SPACE_RE.finditer(plain) if m.start() > 0]
    for m in _WORD_RE.finditer(plain):
        if max(m.group()) >= "\u2e80":  # every CJK character is at or above U+2E80: most words skip the scan
            points.extend(m.start() + c for c in _cjk_cuts(m.group()))
    return sorted(set(points))


@lru_cache(maxsize=4096)
def _cjk_cuts(word: str) -> tuple[int, ...]:
    from crossposter.render import _cjk_cuts as cuts

    return cuts(word)


def _weak_break(plain: str, start: int, end: int, graphemes: dict | None) -> int | None:
    """The last offset p with start < p <= end that follows URL punctuation (and does not split `//`, nor a
    grapheme cluster: `graphemes` holds their starts, None when every character is one)."""
    for p in range(end, start, -1):
        if plain[p - 1] in _WEAK_AFTER and (p == len(plain) or plain[p] != "/") and (
                graphemes is None or p in graphemes):
            return p
    return None


def _last_in(points: list[int], start: int, end: int) -> int | None:
    """The last point p with start < p <= end."""
    k = bisect_right(points, end)
    if k and points[k - 1] > start:
        return points[k - 1]
    return None


def _bluesky_text(post: Post, mentions: list[tuple[int, int]] = ()) -> Text:  # type: ignore[assignment]
    """The Bluesky text with each link facet's URL shown dimmed beside its text, unless the text already
    says it (a bare URL written out whole). Facets count UTF-8 bytes; one that does not fall on characters
    is left out here (the HTML preview and pre-flight report it)."""
    from rich.style import Style
    from rich.text import Text

    data = post.text.encode("utf-8", "surrogatepass")
    links: list[tuple[int, int, str]] = []
    for f in sorted(post.facets, key=lambda f: f.byte_start):
        if f.kind != "link":
            continue
        try:
            start = len(data[:f.byte_start].decode("utf-8"))
            end = start + len(data[f.byte_start:f.byte_end].decode("utf-8"))
        except UnicodeDecodeError:
            continue
        if start < end and (not links or start >= links[-1][1]):
            links.append((start, end, f.value))
    out = Text()
    pos = 0
    for start, end, url in links:
        _append_part(out, post.text, pos, start, None, mentions)
        shown = post.text[start:end]
        _append_part(out, post.text, start, end,
                     Style(underline=True, link=url if _INVISIBLE_RE.search(url) is None else None), mentions)
        if not _says_url(shown, url):
            _append_visible(out, f" <{url}>", "dim")
        pos = end
    _append_part(out, post.text, pos, len(post.text), None, mentions)
    return out


def _says_url(shown: str, url: str) -> bool:
    bare = re.sub(r"^https?://", "", url, flags=re.IGNORECASE)
    return shown in (url, bare, bare.rstrip("/"))


def _plain(text: str, mentions: list[tuple[int, int]] = ()) -> Text:  # type: ignore[assignment]
    from rich.text import Text

    out = Text()
    _append_part(out, text, 0, len(text), None, mentions)
    return out


def _append_part(out: Text, text: str, start: int, end: int, style: object,
                 mentions: list[tuple[int, int]]) -> None:
    """`text[start:end]` appended with `style`, the parts inside a live mention also in MENTION_STYLE."""
    from rich.style import Style

    pos = start
    for a, b in mentions:
        a, b = max(a, pos), min(b, end)
        if a >= b:
            continue
        _append_visible(out, text[pos:a], style)
        marked = Style.parse(MENTION_STYLE) + style if isinstance(style, Style) else MENTION_STYLE
        _append_visible(out, text[a:b], marked)
        pos = b
    _append_visible(out, text[pos:end], style)


#: how a mention that notifies somebody on the platform is drawn
MENTION_STYLE = "bold magenta"


def live_mentions(post: Post, platform: PlatformName) -> list[tuple[int, int]]:
    """Character spans of the @names that reach somebody on `platform`: Bluesky's mention facets, and what
    Mastodon and X read as a mention in the text (the spans the HTML preview highlights). An `@` made inert
    by a word joiner is not one, so the preview shows which @names notify whom on which platform."""
    if "@" not in post.text and "\uff20" not in post.text:
        return []
    from crossposter.preview_html import bluesky_spans, written_out_spans

    spans = bluesky_spans(post.text, post.facets)[0] if registry.dialect_of(platform) == "bluesky" else \
        written_out_spans(post.text, post.links, platform)
    return sorted((start, end) for start, end, kind, _ in spans if kind == "mention")


def post_text(post: Post, platform: PlatformName) -> Text:
    """The post's text with its live mentions in MENTION_STYLE (see `live_mentions`)."""
    from rich.text import Text

    body = Text(post.text)
    for start, end in live_mentions(post, platform):
        body.stylize(MENTION_STYLE, start, end)
    return body


def _append_visible(out: Text, text: str, style: object = None) -> None:
    """Append `text`, each invisible control character as a reversed visible mark (␛ for ESC, <U+202E>…)."""
    pos = 0
    for m in _INVISIBLE_RE.finditer(text):
        if m.start() > pos:
            out.append(text[pos:m.start()], style)  # type: ignore[arg-type]
        out.append(_mark(m.group()), "reverse")
        pos = m.end()
    if pos < len(text):
        out.append(text[pos:], style)  # type: ignore[arg-type]


def visible(text: str) -> str:
    """`text` with invisible control characters replaced by visible marks (for titles and messages)."""
    return _INVISIBLE_RE.sub(lambda m: _mark(m.group()), text)


def _mark(ch: str) -> str:
    code = ord(ch)
    if code < 0x20:
        return chr(0x2400 + code)  # the Control Pictures block: ␛, ␍, ␀ …
    if code == 0x7F:
        return "\u2421"
    return f"<U+{code:04X}>"


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
