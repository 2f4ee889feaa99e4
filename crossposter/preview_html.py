"""`crossposter preview --format html`: one self-contained page that shows each thread the way each platform will.

People judge a thread by how it looks on their phone, not by a table of character counts, so this page draws
every post as a card in its platform's spirit (avatar, name, handle, highlighted links and hashtags, image grid,
ALT badge) next to the numbers that decide whether it can be posted (`length/limit`, warnings and errors with
their archive line).

The page never touches the network: CSS and the little JavaScript that switches threads are inline, images are
embedded as `data:` URIs, and the only URLs in it are the `<a href>`s of links written in the posts (which a
browser follows only when clicked). Only the standard library is imported here, so the preview starts fast;
Pillow is imported lazily, and only to shrink an image too big to embed comfortably.

Post text is user content: everything that comes from the archive goes through `html.escape`.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TextIO

from crossposter.model import Diagnostic, Facet, ImageRef, PlatformName, PlatformPosts, Post, ThreadPlan
from crossposter.platforms import registry

__all__ = ["render_html", "write_html", "write_page"]


#: Images larger than this are shrunk (with Pillow, when it is importable) before embedding: the page holds
#: every image once per platform, and a preview of a photo-heavy archive should still open instantly.
EMBED_SHRINK_BYTES = 1_500_000
EMBED_MAX_SIDE = 1600

#: Escapes text and attribute values alike (quotes too): every string from the archive goes through it.
_E = html.escape


# --------------------------------------------------------------------------------------------------------------
# Text → highlighted HTML
# --------------------------------------------------------------------------------------------------------------

# A span of the post text to highlight: (char start, char end, kind, value). kind: link | tag | mention.
_Span = tuple[int, int, str, str]

# A hashtag starts after a start of text or a non-word character (not inside a URL path, an anchor or a word).
_TAG_RE = re.compile(r"(?<![\w/&#@＃])[#＃](\w+)")
# Mastodon: @user or @user@domain.
_MASTODON_MENTION_RE = re.compile(r"(?<![\w@/.])@(\w+(?:[.-]\w+)*(?:@[\w-]+(?:\.[\w-]+)+)?)")
# X (twitter-text): @ and 1–15 word characters, not part of an e-mail-like run ("@user@host" is no mention).
_X_MENTION_RE = re.compile(r"(?<![\w@＠!#$%&*])[@＠](\w{1,15})(?![\w@＠]|://)")


def _char_offsets(text: str) -> dict[int, int]:
    """UTF-8 byte offset → character index, for every character boundary (and the end).

    Bluesky facets count bytes; Python strings count code points. A facet whose offsets do not fall on a
    boundary is wrong, and the dict lookup failing is how we notice it.
    """
    offsets: dict[int, int] = {}
    pos = 0
    for i, ch in enumerate(text):
        offsets[pos] = i
        pos += len(ch.encode("utf-8", "surrogatepass"))
    offsets[pos] = len(text)
    return offsets


def bluesky_spans(text: str, facets: list[Facet]) -> tuple[list[_Span], list[str]]:
    """Facets as character spans; plus a problem message for each facet that cannot be shown.

    Bluesky highlights exactly what the facets say and nothing else (a `#tag` without a tag facet is plain
    text in the app), so the preview does the same: a missing facet is visible as plain text.
    """
    offsets = _char_offsets(text)
    spans: list[_Span] = []
    problems: list[str] = []
    for f in sorted(facets, key=lambda f: (f.byte_start, f.byte_end)):
        start = offsets.get(f.byte_start)
        end = offsets.get(f.byte_end)
        if start is None or end is None or start >= end:
            problems.append(
                f"{f.kind} facet bytes {f.byte_start}–{f.byte_end} do not fall on characters of the text"
            )
            continue
        if spans and start < spans[-1][1]:
            problems.append(f"{f.kind} facet bytes {f.byte_start}–{f.byte_end} overlaps the previous facet")
            continue
        spans.append((start, end, f.kind, f.value))
    return spans, problems


def counted_url_spans(text: str, platform: str) -> list[tuple[int, int]]:
    """The URLs `platform` counts as 23 (`counting.url_spans`: the one recogniser), as offsets in `text`."""
    from crossposter.counting import url_spans_as_written

    return url_spans_as_written(registry.dialect_of(platform), text)  # a registered platform: its dialect's


def written_out_spans(text: str, links: list[str], platform: PlatformName = "mastodon") -> list[_Span]:
    """Links, hashtags and mentions as Mastodon and X find them in plain text.

    The URLs are written out in the text there. The highlighted URLs are exactly the ones the platform's
    count treats as URLs (`counted_url_spans`), so the preview never shows a link the count ignores nor
    misses one it counts as 23; `links` (the renderer's list of the post's URLs) is no longer needed to
    find them and is kept for the callers.
    """
    spans: list[_Span] = []
    taken = [False] * (len(text) + 1)

    def add(start: int, end: int, kind: str, value: str) -> None:
        if start >= end or any(taken[start:end]):
            return
        for i in range(start, end):
            taken[i] = True
        spans.append((start, end, kind, value))

    for start, end in counted_url_spans(text, platform):
        url = text[start:end]
        # X also counts (and links) a URL written without a scheme
        add(start, end, "link", url if "://" in url else f"https://{url}")
    for m in _TAG_RE.finditer(text):
        tag = m.group(1)
        if not tag.replace("_", "").isdigit():  # "#1" is not a hashtag on either platform
            add(m.start(), m.end(), "tag", tag)
    for m in (_X_MENTION_RE if registry.dialect_of(platform) == "x" else _MASTODON_MENTION_RE).finditer(text):
        add(m.start(), m.end(), "mention", m.group(1))
    spans.sort()
    return spans


def _safe_href(url: str) -> str | None:
    """Only web and mail links become clickable: the URL is user content and the page is opened locally."""
    return url if re.match(r"(?i)^(https?:|mailto:)", url) else None


def _link_display(url: str, platform: PlatformName) -> str:
    """A written-out URL the way Mastodon's and X's web apps show it: scheme hidden, long tail cut.

    The whole URL stays in the DOM (hidden parts in `.invisible` spans, the "…" drawn by CSS), so the card's
    text content is still exactly the text that is sent and counted.
    """
    m = re.match(r"(?i)^(https?://(?:www\.)?)", url)
    prefix = m.group(1) if m else ""
    rest = url[len(prefix):]
    keep = 30 if registry.dialect_of(platform) == "mastodon" else 26
    shown, tail = rest[:keep], rest[keep:]
    out = []
    if prefix:
        out.append(f'<span class="invisible">{_E(prefix)}</span>')
    out.append(f'<span class="{"ellipsis" if tail else "shown"}">{_E(shown)}</span>')
    if tail:
        out.append(f'<span class="invisible">{_E(tail)}</span>')
    return "".join(out)


def _span_html(text: str, kind: str, value: str, platform: PlatformName) -> str:
    if kind == "link":
        href = _safe_href(value)
        inner = _E(text) if registry.dialect_of(platform) == "bluesky" else _link_display(text, platform)
        if href is None:
            return f'<span class="link" title="{_E(value)}">{inner}</span>'
        return (
            f'<a class="link" href="{_E(href)}" title="{_E(value)}" target="_blank" '
            f'rel="noopener noreferrer">{inner}</a>'
        )
    if kind == "tag":
        return f'<span class="tag" title="#{_E(value)}">{_E(text)}</span>'
    return f'<span class="mention" title="@{_E(value)}">{_E(text)}</span>'


def text_html(post: Post, platform: PlatformName) -> tuple[str, list[str]]:
    """The post text as HTML with the platform's highlights; its text content equals `post.text` exactly."""
    if registry.dialect_of(platform) == "bluesky":
        spans, problems = bluesky_spans(post.text, post.facets)
    else:
        spans, problems = written_out_spans(post.text, post.links, platform), []
    out: list[str] = []
    pos = 0
    for start, end, kind, value in spans:
        out.append(_E(post.text[pos:start]))
        out.append(_span_html(post.text[start:end], kind, value, platform))
        pos = end
    out.append(_E(post.text[pos:]))
    return "".join(out), problems


# --------------------------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------------------------

_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"WEBP", 8, "image/webp"),
)


def _sniff(data: bytes) -> str | None:
    for magic, at, mime in _MAGIC:
        if data[at : at + len(magic)] == magic:
            return mime
    return None


def _shrink(data: bytes, mime: str) -> tuple[bytes, str]:
    """Downscale a big image for the page only (what is posted is decided by the publisher, not here)."""
    try:
        import io

        from PIL import Image
    except ImportError:
        return data, mime
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.thumbnail((EMBED_MAX_SIDE, EMBED_MAX_SIDE))
            buf = io.BytesIO()
            if im.mode in ("RGBA", "LA", "P"):
                im.save(buf, "PNG", optimize=True)
                return buf.getvalue(), "image/png"
            im.convert("RGB").save(buf, "JPEG", quality=85)
            return buf.getvalue(), "image/jpeg"
    except Exception:  # noqa: BLE001 - a preview keeps the original rather than failing on a quirky file
        return data, mime


#: The largest image file the page embeds (a shrunk copy when Pillow is there); anything bigger is not shown.
_EMBED_MAX_FILE = 64 * 1024 * 1024


def _read_regular(path: Path) -> bytes | None:
    """The file's bytes when it is a regular file of at most `_EMBED_MAX_FILE`, else None.

    Opened without blocking and checked before reading: a FIFO named like an image would hang the preview
    and a device such as /dev/zero would never end.
    """
    import os
    import stat

    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size > _EMBED_MAX_FILE:
            return None
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read(_EMBED_MAX_FILE + 1)
    finally:
        os.close(fd)


class _ImageCache:
    """Each file is read (and encoded) once, however many platforms show it."""

    def __init__(self) -> None:
        self._cache: dict[Path, tuple[str | None, str | None]] = {}

    def data_uri(self, path: Path) -> tuple[str | None, str | None]:
        """(data URI, None) or (None, what is wrong)."""
        if path not in self._cache:
            self._cache[path] = self._load(path)
        return self._cache[path]

    @staticmethod
    def _load(path: Path) -> tuple[str | None, str | None]:
        try:
            data = _read_regular(path)
        except FileNotFoundError:
            return None, "file not found"
        except IsADirectoryError:
            return None, "is a folder, not an image"
        except OSError as e:
            return None, f"cannot read: {e.strerror or e}"
        if data is None:
            return None, "not a regular file (a FIFO, a device?), or too big to show"
        mime = _sniff(data)
        if mime is None:
            return None, "not a PNG, JPEG, GIF or WebP image"
        if len(data) > EMBED_SHRINK_BYTES:
            data, mime = _shrink(data, mime)
        return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}", None


# --------------------------------------------------------------------------------------------------------------
# Page
# --------------------------------------------------------------------------------------------------------------


class _Ids:
    """Stable, readable element ids: `t3` for the third thread, `t3-bluesky-0` for its first Bluesky card."""

    @staticmethod
    def thread(n: int) -> str:
        return f"t{n}"

    @staticmethod
    def card(n: int, platform: PlatformName, index: int) -> str:
        return f"t{n}-{platform}-{index}"

    @staticmethod
    def column(n: int, platform: PlatformName) -> str:
        return f"t{n}-{platform}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _title(plan: ThreadPlan) -> str:
    # an archive that could not be read comes as one plan without a title (its error says why)
    return plan.title or f"{plan.archive.name} (not readable)"


def diagnostic_target(plan: ThreadPlan, diag: Diagnostic) -> tuple[str, int] | None:
    """(platform, post index) of the first card a diagnostic concerns (where the problem list links to)."""
    targets = diagnostic_targets(plan, diag)
    return targets[0] if targets else None


def diagnostic_targets(plan: ThreadPlan, diag: Diagnostic) -> list[tuple[str, int]]:
    """(platform, post index) of every card a diagnostic concerns, in platform order.

    A diagnostic that names a platform concerns that platform's card only; one that names none (a missing
    image, a missing alt text) concerns each platform's, since each would post the same thing. On each
    platform: the card holding an image of that line, else the card whose `Post.line` is the closest at or
    before it (the first card when the line comes before every post).
    """
    platforms = [diag.platform] if diag.platform in plan.platforms else (
        [] if diag.platform else list(plan.platforms))
    targets = []
    for platform in platforms:
        posts = plan.platforms[platform].posts
        if not posts:
            continue
        best = next((i for i, post in enumerate(posts) if any(img.line == diag.line for img in post.images)), None)
        if best is None:
            best, best_line = 0, -1
            for i, post in enumerate(posts):
                if best_line < post.line <= diag.line:
                    best, best_line = i, post.line
        targets.append((platform, best))
    return targets


def _placeholder(platform: PlatformName) -> str:
    """A placeholder account: the preview needs no config, so it cannot know the real ones."""
    return registry.get(platform).placeholder_account if platform in registry.names() else "you"


class _Renderer:
    def __init__(self, handles: Mapping[str, str]) -> None:
        self.images = _ImageCache()
        self.handles = handles
        self._alt_id = 0

    # ---- cards

    def media(self, images: list[ImageRef]) -> str:
        if not images:
            return ""
        figures = [self.figure(img) for img in images]
        n = min(len(images), 4)
        # a grid with a missing image gives up its fixed shape, so the caption with the file name shows whole
        missing = " has-missing" if any(self.images.data_uri(img.path)[0] is None for img in images) else ""
        return f'<div class="media n{n}{missing}">{"".join(figures)}</div>'

    def figure(self, img: ImageRef) -> str:
        self._alt_id += 1
        alt_id = f"alt{self._alt_id}"
        uri, problem = self.images.data_uri(img.path)
        title = f' title="{_E(img.title)}"' if img.title else ""
        if uri is None:
            alt_line = (
                f'<span class="missing-alt">Alt: {_E(img.alt)}</span>'
                if img.alt
                else '<span class="missing-alt">No alt text</span>'
            )
            return (
                f'<figure class="image missing" data-src="{_E(img.src)}" data-alt="{_E(img.alt)}">'
                f'<div class="missing-box" role="img" aria-label="{_E("Image not available: " + img.alt)}">'
                f'<span class="missing-icon" aria-hidden="true">⚠</span>'
                f'<span class="missing-title">Image not available</span>{alt_line}</div>'
                f'<figcaption class="missing-why">{_E(img.src)}: {_E(problem or "")} '
                f"(line {img.line})</figcaption></figure>"
            )
        if img.alt:
            badge = (
                f'<button type="button" class="alt-badge" aria-describedby="{alt_id}">ALT</button>'
                f'<span class="alt-pop" role="tooltip" id="{alt_id}">{_E(img.alt)}</span>'
            )
        else:
            badge = (
                f'<button type="button" class="alt-badge no-alt" aria-describedby="{alt_id}">NO ALT</button>'
                f'<span class="alt-pop" role="tooltip" id="{alt_id}">This image has no alt text: '
                f"people using screen readers will not know what it shows.</span>"
            )
        return (
            f'<figure class="image" data-src="{_E(img.src)}">'
            f'<img src="{uri}" alt="{_E(img.alt)}"{title}>{badge}</figure>'
        )

    def card(
        self, n: int, pp: PlatformPosts, index: int, post: Post, flags: list[tuple[str, Diagnostic]]
    ) -> str:
        platform = pp.platform
        body, facet_problems = text_html(post, platform)
        over = post.length > pp.limit
        classes = ["card"]
        if over:
            classes.append("over-limit")
        if any(kind == "error" for kind, _ in flags) or facet_problems:
            classes.append("flag-error")
        elif flags:
            classes.append("flag-warning")
        handle = self.handles.get(platform, _placeholder(platform))
        total = len(pp.posts)
        if over:
            count = (
                f'<span class="count over" title="{post.length} of {pp.limit} characters">'
                f'<span aria-hidden="true">⚠ </span>{post.length}/{pp.limit}'
                f'<span class="over-by"> · {post.length - pp.limit} over</span></span>'
            )
        else:
            count = f'<span class="count" title="{post.length} of {pp.limit} characters">{post.length}/{pp.limit}</span>'
        notes = []
        for kind, d in flags:
            notes.append(
                f'<li class="note {kind}"><span aria-hidden="true">{"✖" if kind == "error" else "⚠"}</span> '
                f"line {d.line}: {_E(d.message)}</li>"
            )
        for problem in facet_problems:
            notes.append(f'<li class="note error"><span aria-hidden="true">✖</span> {_E(problem)}</li>')
        notes_html = f'<ul class="notes">{"".join(notes)}</ul>' if notes else ""
        meta = ""
        if registry.dialect_of(platform) == "x":
            meta = '<span class="when" aria-hidden="true">· now</span>'
        elif registry.dialect_of(platform) == "mastodon":
            meta = '<span class="when" aria-hidden="true">now</span>'
        line = f'<span class="src-line">line {post.line}</span>' if post.line else ""
        return (
            f'<li><article class="{" ".join(classes)}" id="{_Ids.card(n, platform, index)}" '
            f'data-platform="{_E(platform)}" data-index="{index}" data-length="{post.length}" '
            f'data-limit="{pp.limit}" data-line="{post.line}" '
            f'aria-label="{_E(registry.display(platform))} post {index + 1} of {total}">'
            f'<div class="avatar" aria-hidden="true"><span>Y</span></div>'
            f'<div class="card-main">'
            f'<header class="card-head"><span class="name">You</span> '
            f'<span class="handle">@{_E(handle)}</span>{meta}</header>'
            f'<div class="text">{body}</div>'
            f"{self.media(post.images)}{notes_html}"
            f'<footer class="card-foot"><span class="pos">{index + 1}/{total}</span>{line}{count}</footer>'
            f"</div></article></li>"
        )

    # ---- thread

    def column(self, n: int, pp: PlatformPosts, flags: dict[tuple[str, int], list[tuple[str, Diagnostic]]]) -> str:
        name = registry.display(pp.platform)
        over = sum(1 for p in pp.posts if p.length > pp.limit)
        over_html = f' · <span class="over-sum">{over} over the limit</span>' if over else ""
        cards = "".join(
            self.card(n, pp, i, post, flags.get((pp.platform, i), [])) for i, post in enumerate(pp.posts)
        )
        if not cards:
            cards = '<li class="empty">No posts.</li>'
        return (
            f'<section class="column p-{_E(pp.platform)}" id="{_Ids.column(n, pp.platform)}" '
            f'data-platform="{_E(pp.platform)}" aria-label="{_E(name)}">'
            f'<header class="col-head"><h3><span class="logo" aria-hidden="true"></span>{_E(name)}</h3>'
            f'<p class="col-sub">{_plural(len(pp.posts), "post")} · limit {pp.limit}{over_html}</p></header>'
            f'<ol class="posts">{cards}</ol></section>'
        )

    def diagnostics(self, n: int, plan: ThreadPlan) -> tuple[str, dict[tuple[str, int], list]]:
        flags: dict[tuple[str, int], list[tuple[str, Diagnostic]]] = {}
        items = []
        entries = [("error", d) for d in plan.errors] + [("warning", d) for d in plan.warnings]
        for kind, d in entries:
            targets = diagnostic_targets(plan, d)
            where = [f"line {d.line}"]
            if d.platform:
                where.append(registry.display(d.platform))
            label = "Error" if kind == "error" else "Warning"
            inner = (
                f'<span class="sev">{label}</span> <span class="where">{_E(" · ".join(where))}</span> '
                f'<span class="msg">{_E(d.message)}</span>'
            )
            for target in targets:
                flags.setdefault(target, []).append((kind, d))
            if targets:
                href = "#" + _Ids.card(n, *targets[0])
                items.append(
                    f'<li class="diag {kind}" data-line="{d.line}"><a href="{href}">{inner}</a></li>'
                )
            else:
                items.append(f'<li class="diag {kind}" data-line="{d.line}">{inner}</li>')
        if not items:
            return "", flags
        summary = ", ".join(
            s
            for s in (
                _plural(len(plan.errors), "error") if plan.errors else "",
                _plural(len(plan.warnings), "warning") if plan.warnings else "",
            )
            if s
        )
        verdict = " — nothing will be posted until the errors are fixed" if plan.errors else ""
        html_ = (
            f'<section class="problems{" has-errors" if plan.errors else ""}" aria-label="Problems">'
            f"<h3>{summary}{verdict}</h3><ul>{''.join(items)}</ul></section>"
        )
        return html_, flags

    def thread(self, n: int, plan: ThreadPlan, default: bool) -> str:
        problems, flags = self.diagnostics(n, plan)
        cols = "".join(self.column(n, pp, flags) for pp in plan.platforms.values())
        skipped = ""
        if plan.skipped:
            skipped = (
                f'<p class="skipped-note">Skipped ({_E(plan.skipped)}): this section is not a thread '
                f"and will not be posted.</p>"
            )
        jump = ""
        if len(plan.platforms) > 1:  # on a phone the columns stack: one tap to the platform you care about
            links = "".join(
                f'<a href="#{_Ids.column(n, p)}">{_E(registry.display(p))} ({len(pp.posts)})</a>'
                for p, pp in plan.platforms.items()
            )
            jump = f'<nav class="jump" aria-label="Platforms of this thread">{links}</nav>'
        if cols:
            body = f'{jump}<div class="columns" style="--n:{len(plan.platforms)}">{cols}</div>'
        else:
            body = "" if plan.skipped else '<p class="skipped-note">No platforms selected.</p>'
        return (
            f'<section class="thread{" skipped" if plan.skipped else ""}" id="{_Ids.thread(n)}" '
            f'aria-labelledby="{_Ids.thread(n)}-title"{" data-default" if default else ""}'
            f'{" data-errors" if plan.errors else ""}>'
            f'<header class="thread-head"><h2 id="{_Ids.thread(n)}-title">{_E(_title(plan))}</h2>'
            f'<p class="thread-meta">{_E(plan.archive.name)}, line {plan.line}</p></header>'
            f"{skipped}{problems}{body}</section>"
        )

    def picker(self, plans: list[ThreadPlan]) -> str:
        return self.picker_of([self.picker_item(n, plan) for n, plan in enumerate(plans, 1)])

    @staticmethod
    def picker_of(items: list[str]) -> str:
        return (
            f'<nav class="picker" aria-label="Threads"><h2 class="picker-title">Threads</h2>'
            f'<ol>{"".join(items)}</ol></nav>'
        )

    @staticmethod
    def picker_item(n: int, plan: ThreadPlan) -> str:
        badges = []
        if plan.skipped:
            badges.append(f'<span class="badge skip">skipped: {_E(plan.skipped)}</span>')
        if plan.errors:
            badges.append(f'<span class="badge err">{_plural(len(plan.errors), "error")}</span>')
        if plan.warnings:
            badges.append(f'<span class="badge warn">{_plural(len(plan.warnings), "warning")}</span>')
        if not plan.skipped:
            counts = " · ".join(
                f"{registry.display(p)} {len(pp.posts)}" for p, pp in plan.platforms.items()
            )
            if counts:
                badges.append(f'<span class="counts">{_E(counts)}</span>')
        return (
            f'<li class="{"skipped" if plan.skipped else ""}">'
            f'<a href="#{_Ids.thread(n)}" data-thread="{_Ids.thread(n)}">'
            f'<span class="pick-title">{_E(_title(plan))}</span>'
            f'<span class="pick-meta">{_E(plan.archive.name)}:{plan.line}</span>'
            f'<span class="badges">{"".join(badges)}</span></a></li>'
        )


#: How many threads with errors the page's summary names (the picker marks every one of them anyway).
_SUMMARY_ERROR_TITLES = 5


def _errors_summary(error_threads: list[tuple[int, str]]) -> str:
    """"N threads with errors" as a link to the first of them, then a link to each by title: what needs
    fixing is one click away, whichever thread the page shows."""
    first = _Ids.thread(error_threads[0][0])
    links = ", ".join(f'<a href="#{_Ids.thread(n)}">{_E(title)}</a>'
                      for n, title in error_threads[:_SUMMARY_ERROR_TITLES])
    more = len(error_threads) - _SUMMARY_ERROR_TITLES
    return (f'<a class="sum-err" href="#{first}">{_plural(len(error_threads), "thread")} with errors</a>: '
            f'{links}{f" and {more} more" if more > 0 else ""}')


def render_html(
    plans: list[ThreadPlan], *, title: str = "crossposter preview", handles: Mapping[str, str] | None = None
) -> str:
    """One self-contained HTML page previewing every thread of `plans` on each of its platforms.

    `handles` optionally replaces the placeholder account shown on each platform's cards
    (e.g. {"bluesky": "me.bsky.social"}); the preview needs no config, so placeholders are the default.
    """
    out = io.StringIO()
    write_page(plans, out, io.StringIO(), title=title, handles=handles)
    return out.getvalue()


def write_page(plans: Iterable[ThreadPlan], out: TextIO, body: TextIO | None = None, *,
               title: str = "crossposter preview", handles: Mapping[str, str] | None = None) -> None:
    """`render_html`, one plan at a time: each thread's section goes to `body` (a temporary file unless
    given) as soon as it is planned, and only the picker's one line per thread is kept until the page is
    put together, so a big archive's page never exists whole in memory (nor do its plans)."""
    import shutil
    import tempfile
    from contextlib import nullcontext

    r = _Renderer({**{s.name: s.placeholder_account for s in registry.specs()}, **(handles or {})})
    with tempfile.TemporaryFile("w+", encoding="utf-8") if body is None else nullcontext(body) as body:
        items: list[str] = []
        held: list[tuple[int, ThreadPlan]] = []  # skipped plans before the first thread: one may be the default
        default_seen = False
        n_threads = 0
        error_threads: list[tuple[int, str]] = []
        archives: set[str] = set()
        for n, plan in enumerate(plans, 1):
            items.append(r.picker_item(n, plan))
            archives.add(plan.archive.name)
            n_threads += not plan.skipped
            if plan.errors:
                error_threads.append((n, _title(plan)))
            if default_seen:
                body.write(r.thread(n, plan, default=False))
            elif plan.skipped:
                held.append((n, plan))
            else:
                for m, skipped in held:
                    body.write(r.thread(m, skipped, default=False))
                held = []
                body.write(r.thread(n, plan, default=True))
                default_seen = True
        for k, (m, skipped) in enumerate(held):  # nothing but skipped sections: the first is shown
            body.write(r.thread(m, skipped, default=k == 0))
        n_skipped = len(items) - n_threads
        summary = [_plural(n_threads, "thread")]
        if n_skipped:
            summary.append(f"{n_skipped} skipped")
        if error_threads:
            summary.append(_errors_summary(error_threads))
        if archives:
            summary.append(_E(", ".join(sorted(archives))))
        out.write(
            "<!DOCTYPE html>\n"
            '<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<meta name="color-scheme" content="light dark">'
            # Belt and braces: even if something slipped a remote URL into the page, the browser may not load it.
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
            "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">"
            f"<title>{_E(title)}</title><style>{CSS}</style></head>"
            '<body><a class="skip-link" href="#main">Skip to the preview</a>'
            f'<header class="top"><h1>{_E(title)}</h1><p class="summary">{" · ".join(summary)}</p></header>'
            f'<div class="layout">{r.picker_of(items)}<main id="main">'
        )
        if items:
            body.seek(0)
            shutil.copyfileobj(body, out)
        else:
            out.write('<p class="skipped-note">No threads found.</p>')
        out.write(f"</main></div><script>{JS}</script></body></html>\n")


def write_html(
    plans: list[ThreadPlan],
    output: Path,
    open_browser: bool = False,
    *,
    title: str = "crossposter preview",
    handles: Mapping[str, str] | None = None,
) -> None:
    """Write the page to `output` and, when asked, open it in the default browser (where one exists)."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render_html(plans, title=title, handles=handles), encoding="utf-8")
    if open_browser:
        import webbrowser  # only here: it pulls in subprocess & co., which the preview itself never needs

        webbrowser.open(output.resolve().as_uri())


# --------------------------------------------------------------------------------------------------------------
# Inline CSS and JS
# --------------------------------------------------------------------------------------------------------------

# Colours are chosen for WCAG AA (≥ 4.5:1) for every text colour on the surface it sits on, in both schemes;
# tests/browser/test_preview_html.py measures that in Chromium.
CSS = """
:root{
  --bg:#eef1f5; --surface:#ffffff; --surface-2:#f6f7f9; --text:#0f1419; --muted:#4a5563; --border:#d5dbe3;
  --err:#b42318; --err-bg:#fdecea; --warn:#8a4b00; --warn-bg:#fff4e0; --focus:#1d4ed8;
  --bsky:#0b62d6; --masto:#5a3fd6; --x:#0f1419; --xlink:#0b66b0; --pill:#e7ebf0;
  --shadow:0 1px 2px rgba(16,24,40,.06),0 1px 3px rgba(16,24,40,.08);
  color-scheme:light dark;
}
@media (prefers-color-scheme:dark){
  :root{
    --bg:#0b0f14; --surface:#151b23; --surface-2:#1c232d; --text:#e8edf2; --muted:#a3afbd; --border:#2c3643;
    --err:#ff8a80; --err-bg:#3a1614; --warn:#ffc266; --warn-bg:#33250c; --focus:#8ab4ff;
    --bsky:#5eaaff; --masto:#a99bff; --x:#e8edf2; --xlink:#5fb6f5; --pill:#243040;
    --shadow:none;
  }
  .p-x .avatar{background:#46505c linear-gradient(135deg,#5b6673,#36404b)}
}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--text);
  font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Liberation Sans","DejaVu Sans",Arial,sans-serif,
  "Noto Color Emoji","Apple Color Emoji","Segoe UI Emoji"}
a{color:inherit}
:focus-visible{outline:3px solid var(--focus);outline-offset:2px}
.skip-link{position:absolute;left:-999px;top:0;background:var(--surface);padding:.5rem 1rem;z-index:10}
.skip-link:focus{left:.5rem}
.top{display:flex;flex-wrap:wrap;align-items:baseline;gap:.25rem 1rem;padding:.8rem 1.25rem;
  background:var(--surface);border-bottom:1px solid var(--border)}
.top h1{font-size:1.1rem;margin:0;letter-spacing:-.01em}
.summary{margin:0;color:var(--muted);font-size:.9rem}
.sum-err{color:var(--err);font-weight:600}
.layout{display:grid;grid-template-columns:minmax(0,1fr)}
@media (min-width:1100px){.layout{grid-template-columns:250px minmax(0,1fr);align-items:start}}

/* thread picker */
.picker{background:var(--surface);border-bottom:1px solid var(--border);padding:.5rem .75rem}
.picker-title{font-size:.75rem;text-transform:uppercase;letter-spacing:.06em;color:var(--muted);margin:.25rem .25rem .5rem}
.picker ol{list-style:none;margin:0;padding:0;display:flex;gap:.4rem;overflow-x:auto;scrollbar-width:thin}
.picker li{flex:0 0 auto;max-width:13rem}
.picker a{display:flex;flex-direction:column;gap:.1rem;text-decoration:none;padding:.45rem .6rem;border-radius:8px;
  border:1px solid var(--border);background:var(--surface);height:100%}
.picker a:hover{background:var(--surface-2)}
.picker a[aria-current="true"]{border-color:var(--bsky);box-shadow:inset 3px 0 0 var(--bsky);background:var(--surface-2)}
.pick-title{font-weight:600;font-size:.9rem;overflow:hidden;text-overflow:ellipsis;display:-webkit-box;
  -webkit-line-clamp:2;-webkit-box-orient:vertical}
.pick-meta{font-size:.75rem;color:var(--muted)}
.picker li.skipped .pick-title{font-weight:500;color:var(--muted)}
.badges{display:flex;flex-wrap:wrap;gap:.25rem;font-size:.72rem;margin-top:.15rem}
.badge{padding:0 .4rem;border-radius:999px;font-weight:600;line-height:1.5}
.badge.err{background:var(--err-bg);color:var(--err)}
.badge.warn{background:var(--warn-bg);color:var(--warn)}
.badge.skip{background:var(--pill);color:var(--muted)}
.counts{color:var(--muted)}
@media (min-width:1100px){
  .picker{position:sticky;top:0;max-height:100vh;overflow-y:auto;border-bottom:0;border-right:1px solid var(--border);
    min-height:calc(100vh - 3rem)}
  .picker ol{flex-direction:column;overflow:visible}
  .picker li{max-width:none}
  .picker a{border-color:transparent}
}

/* thread */
main{padding:1rem;min-width:0}
.thread{margin:0 auto 2.5rem;max-width:1400px}
.js .thread{display:none}
.js .thread.current{display:block}
.thread-head{display:flex;flex-wrap:wrap;align-items:baseline;gap:.2rem .8rem;margin:.25rem 0 .75rem}
.thread-head h2{margin:0;font-size:1.35rem;letter-spacing:-.015em}
.thread-meta{margin:0;color:var(--muted);font-size:.85rem}
.skipped-note{background:var(--surface);border:1px dashed var(--border);border-radius:10px;padding:.75rem 1rem;color:var(--muted)}

/* problems */
.problems{background:var(--warn-bg);border:1px solid var(--border);border-left:4px solid var(--warn);border-radius:10px;
  padding:.6rem .9rem;margin-bottom:1rem}
.problems.has-errors{background:var(--err-bg);border-left-color:var(--err)}
.problems h3{font-size:.95rem;margin:0 0 .4rem}
.problems ul{list-style:none;margin:0;padding:0;display:grid;gap:.2rem}
.diag a{text-decoration:none;display:block;border-radius:6px;padding:.15rem .3rem;margin:0 -.3rem}
.diag a:hover .msg{text-decoration:underline}
.sev{font-weight:700;font-size:.75rem;text-transform:uppercase;letter-spacing:.04em}
.diag.error .sev{color:var(--err)}
.diag.warning .sev{color:var(--warn)}
.where{font-variant-numeric:tabular-nums;font-weight:600}

/* platform columns */
.jump{display:flex;gap:.4rem;flex-wrap:wrap;margin:-.25rem 0 .75rem}
.jump a{font-size:.85rem;font-weight:600;text-decoration:none;padding:.2rem .65rem;border-radius:999px;
  background:var(--surface);border:1px solid var(--border)}
@media (min-width:800px){.jump{display:none}}
.column{scroll-margin-top:.5rem}
.columns{display:grid;gap:1rem;grid-template-columns:minmax(0,1fr)}
@media (min-width:800px){.columns{grid-template-columns:repeat(var(--n,3),minmax(0,1fr))}}
.column{background:var(--surface);border:1px solid var(--border);border-radius:14px;box-shadow:var(--shadow);
  overflow:hidden;min-width:0;border-top:4px solid var(--accent)}
.p-bluesky{--accent:var(--bsky);--link:var(--bsky)}
.p-mastodon{--accent:var(--masto);--link:var(--masto)}
.p-x{--accent:var(--x);--link:var(--xlink)}
.col-head{padding:.6rem .9rem .5rem;border-bottom:1px solid var(--border)}
.col-head h3{margin:0;font-size:1rem;display:flex;align-items:center;gap:.45rem}
.logo{width:.85rem;height:.85rem;border-radius:50%;background:var(--accent);display:inline-block}
.p-mastodon .logo{border-radius:4px}
.p-x .logo{border-radius:2px;transform:rotate(45deg) scale(.8)}
.col-sub{margin:.1rem 0 0;color:var(--muted);font-size:.8rem}
.over-sum{color:var(--err);font-weight:600}
.posts{list-style:none;margin:0;padding:0}
.posts .empty{padding:1rem;color:var(--muted)}

/* cards */
.card{display:grid;grid-template-columns:44px minmax(0,1fr);gap:.7rem;padding:.85rem .9rem .7rem;position:relative;
  border-bottom:1px solid var(--border);scroll-margin-top:1rem}
.posts li:last-child .card{border-bottom:0}
.p-bluesky .card,.p-x .card{border-bottom-color:transparent}
.p-bluesky .posts li:not(:last-child) .card::before,.p-x .posts li:not(:last-child) .card::before{
  content:"";position:absolute;left:calc(.9rem + 21px);top:calc(.85rem + 48px);bottom:-.7rem;width:2px;background:var(--border)}
.p-mastodon .posts li + li .card{border-top:0}
.card:target{background:var(--surface-2);box-shadow:inset 4px 0 0 var(--focus)}
.avatar{width:44px;height:44px;border-radius:50%;display:grid;place-items:center;color:#fff;font-weight:700;font-size:1.1rem;
  background:#0b5cc7 linear-gradient(135deg,#2563eb,#0b62d6 60%,#0a4fb0)}
.p-mastodon .avatar{border-radius:10px;background:#5037d0 linear-gradient(135deg,#6d5dfc,#4a32c9)}
.p-x .avatar{background:#1f252d linear-gradient(135deg,#3b4450,#0f1419)}
.card-head{display:flex;flex-wrap:wrap;align-items:baseline;gap:0 .35rem;line-height:1.3;margin-bottom:.15rem}
.name{font-weight:700}
.handle,.when{color:var(--muted);font-size:.92rem}
.p-mastodon .card-head{display:grid;grid-template-columns:minmax(0,1fr) auto}
.p-mastodon .handle{grid-column:1;grid-row:2}
.p-mastodon .when{grid-column:2;grid-row:1}
.text{white-space:pre-wrap;overflow-wrap:anywhere;word-break:normal}
.p-mastodon .text{font-size:15px}
.text .link,.text .tag,.text .mention{color:var(--link);text-decoration:none}
.text a.link:hover{text-decoration:underline}
.p-mastodon .text .link{text-decoration:underline;text-decoration-thickness:1px;text-underline-offset:2px}
.invisible{font-size:0;line-height:0;display:inline-block;width:0;height:0;position:absolute;overflow:hidden}
.ellipsis::after{content:"…"}

/* images */
.media{display:grid;gap:4px;margin-top:.6rem;border-radius:12px;overflow:hidden;border:1px solid var(--border)}
.p-mastodon .media{border-radius:8px}
.p-x .media{border-radius:16px}
.media.n2,.media.n3,.media.n4{grid-template-columns:minmax(0,1fr) minmax(0,1fr);aspect-ratio:16/9}
.media.n3,.media.n4{grid-template-rows:minmax(0,1fr) minmax(0,1fr)}
.media.n3 .image:first-child{grid-row:span 2}
.image{margin:0;position:relative;min-height:0;min-width:0;background:var(--surface-2)}
.image img{display:block;width:100%;height:100%;object-fit:cover}
.media.n1 .image img{height:auto;max-height:480px;object-fit:contain}
.alt-badge{position:absolute;left:6px;bottom:6px;font:700 11px/1 system-ui,"Liberation Sans",sans-serif;letter-spacing:.03em;
  color:#fff;background:rgba(0,0,0,.78);border:0;border-radius:4px;padding:4px 6px;cursor:help}
.alt-badge.no-alt{background:#9a1b12}
.alt-pop{display:none;position:absolute;left:6px;right:6px;bottom:32px;z-index:3;background:rgba(0,0,0,.9);color:#fff;
  font-size:.85rem;line-height:1.35;padding:.5rem .6rem;border-radius:6px;max-height:70%;overflow:auto;white-space:pre-wrap}
.alt-badge:hover + .alt-pop,.alt-badge:focus + .alt-pop,.alt-badge.open + .alt-pop,.alt-pop:hover{display:block}
.image.missing{display:flex}
.missing-box{flex:1;display:flex;flex-direction:column;gap:.2rem;justify-content:center;align-items:flex-start;padding:.8rem;
  min-height:120px;background:var(--err-bg);color:var(--text);border:2px dashed var(--err)}
.media.n1 .missing-box{min-height:150px}
.missing-icon{color:var(--err);font-size:1.2rem}
.missing-title{font-weight:700;color:var(--err)}
.missing-alt{font-size:.85rem}
.image.missing{flex-direction:column}
.missing-why{font-size:.78rem;color:var(--err);background:var(--err-bg);padding:.1rem .8rem .5rem;overflow-wrap:anywhere}
/* a grid with a missing image takes the height its captions need: the file name is the point of the caption */
.media.has-missing{aspect-ratio:auto;grid-template-rows:none;grid-auto-rows:auto;align-items:start}
.media.has-missing .image:first-child{grid-row:auto}
.media.has-missing .image:not(.missing) img{height:auto;max-height:240px;object-fit:cover}
.missing-box{min-width:0}
.missing-title,.missing-alt{max-width:100%;overflow-wrap:anywhere}

/* notes and footer */
.notes{list-style:none;margin:.5rem 0 0;padding:0;font-size:.82rem;display:grid;gap:.15rem}
.note.error{color:var(--err)}
.note.warning{color:var(--warn)}
.card.flag-error{box-shadow:inset 3px 0 0 var(--err)}
.card.flag-warning{box-shadow:inset 3px 0 0 var(--warn)}
.card-foot{display:flex;flex-wrap:wrap;align-items:center;gap:.3rem .6rem;white-space:nowrap;margin-top:.5rem;font-size:.8rem;color:var(--muted);
  font-variant-numeric:tabular-nums}
.count{margin-left:auto;padding:.05rem .5rem;border-radius:999px;background:var(--pill);color:var(--muted);font-weight:600}
.count.over{background:var(--err-bg);color:var(--err);border:1px solid var(--err)}
.card.over-limit{background:linear-gradient(var(--err-bg),var(--err-bg)) left/3px 100% no-repeat}
@media (max-width:480px){
  main{padding:.6rem}
  .card{grid-template-columns:36px minmax(0,1fr);padding:.75rem .7rem .6rem}
  .avatar{width:36px;height:36px;font-size:.95rem}
  .p-bluesky .posts li:not(:last-child) .card::before,.p-x .posts li:not(:last-child) .card::before{left:calc(.7rem + 17px);top:calc(.75rem + 40px)}
}

"""

# Switches the visible thread from the URL's #fragment (a thread id or the id of a card in it), so the picker
# and the problem links work with the back button; without JavaScript every thread is simply shown in turn.
JS = """
(function(){
  var root=document.documentElement;root.classList.add('js');
  var threads=Array.prototype.slice.call(document.querySelectorAll('.thread'));
  var links=Array.prototype.slice.call(document.querySelectorAll('.picker a[data-thread]'));
  function show(id,scroll){
    var el=id?document.getElementById(id):null;
    var t=el&&el.closest?el.closest('.thread'):null;
    /* no thread asked for: the first with errors (what needs fixing), else the first thread */
    if(!t)t=document.querySelector('.thread[data-errors]')||document.querySelector('.thread[data-default]')||threads[0];
    if(!t)return;
    threads.forEach(function(x){x.classList.toggle('current',x===t);});
    links.forEach(function(a){
      var on=a.getAttribute('data-thread')===t.id;a.setAttribute('aria-current',on?'true':'false');
      var ol=a.parentNode.parentNode;  /* phone width: the picker is a row that scrolls sideways */
      if(on&&ol.scrollWidth>ol.clientWidth)ol.scrollLeft=Math.max(0,a.parentNode.offsetLeft-ol.offsetLeft-16);
    });
    document.title=(t.querySelector('h2')||{}).textContent+' \\u2014 '+document.title.split(' \\u2014 ').pop();
    if(scroll&&el&&el!==t&&el.scrollIntoView)el.scrollIntoView({block:'center'});
    else if(scroll)window.scrollTo(0,0);
  }
  var hash=function(){try{return decodeURIComponent(location.hash.slice(1));}catch(e){return location.hash.slice(1);}};
  window.addEventListener('hashchange',function(){show(hash(),true);});
  /* a tap does not always focus a button on phones: toggle the alt text explicitly */
  document.addEventListener('click',function(e){
    var b=e.target.closest?e.target.closest('.alt-badge'):null;
    if(b){var open=!b.classList.contains('open');b.classList.toggle('open',open);b.setAttribute('aria-expanded',open?'true':'false');}
  });
  show(hash(),false);
  window.addEventListener('load',function(){if(hash())show(hash(),true);});
})();
"""
