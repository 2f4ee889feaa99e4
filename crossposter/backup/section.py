"""A backed-up thread as an archive section: heading, metadata block, date line, posts between `---`.

The section has the shape the person's own archive has (`../shared/seed/tweets.md`), so a
backed-up thread reads, edits and previews like one written by hand:

```markdown
## The opening words of the first post
<!-- crossposter
source: mastodon
mastodon:
- {id: '113520001', url: 'https://mastodon.social/@me/113520001', sha: 944aa85014e4}
-->
2024-02-13 21:25

The first post, escaped so that it stays text.

![alt text](media/mastodon/113520001-0.png)

---

The second post.
```

The metadata block records the source platform's post IDs exactly as `post` records its own
(`id`, `url`, `cid` on Bluesky, `sha` of the text), plus `source:`, which tells `post` and
`status` that the thread already lives on that platform: it is never sent there again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from crossposter.backup.markdown import Span, link_destination, link_markdown, to_markdown
from crossposter.backup.source import SourcePost, SourceThread
from crossposter.platforms import registry

__all__ = ["Titles", "heading_for", "post_markdown", "section_markdown", "recorded_entry", "HEADING_MAX"]

#: longest heading, in characters; cut at a word
HEADING_MAX = 80
#: characters that would be markup (or end the heading) in a `##` line: left out of headings
_HEADING_DROP = re.compile(r"[\\`*_\[\]<>&#|~!]+")
_URL = re.compile(r"https?://\S+")
#: control characters: Markdown readers replace NUL, and none of them belongs in a heading
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


class Titles(set):
    """Headings of a file as `Archive.find` compares them (case and runs of spaces ignored).

    Kept by the writer for a whole batch, so naming 2,000 threads does not fold every heading 2,000 times.
    """

    @staticmethod
    def norm(title: str) -> str:
        return " ".join(title.split()).casefold()

    def __init__(self, titles: Iterable[str] = ()) -> None:
        super().__init__(self.norm(t) for t in titles)

    def add(self, title: str) -> None:
        super().add(self.norm(title))

    def __contains__(self, title: object) -> bool:
        return isinstance(title, str) and super().__contains__(self.norm(title))


def heading_for(post: SourcePost, taken: set[str], timezone: str) -> str:
    """The opening words of the post, at most HEADING_MAX characters, unique among `taken` (case-blind).

    URLs and Markdown-special characters are left out: the heading names the thread, it is not posted.
    A post with no words (only images) is named after its date.
    """
    words = _HEADING_DROP.sub(_dropped, _URL.sub(" ", _CONTROL.sub(" ", post.text))).split()
    title = ""
    for w in words:
        candidate = f"{title} {w}" if title else w
        if len(candidate) > HEADING_MAX:
            break
        title = candidate
    if not title and words:
        title = words[0][: HEADING_MAX - 1] + "…"
    # (white space left before cut punctuation would end the `##` line and not read back: "- :" gave "- ")
    title = title.rstrip(".,;:").rstrip()
    if not title:
        title = f"Post of {date_line(post.created_at, timezone)}"
    base, n = title, 1
    folded = taken if isinstance(taken, Titles) else Titles(taken)
    while title in folded:
        n += 1
        title = f"{base} ({n})"
    return title


def _dropped(m: re.Match[str]) -> str:
    """Markup characters go; they separate words only between two letters or digits (`a|b`, not `*word*,`)."""
    s, i, j = m.string, m.start(), m.end()
    return " " if i > 0 and j < len(s) and s[i - 1].isalnum() and s[j].isalnum() else ""


def date_line(when: datetime, timezone: str) -> str:
    return when.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")


def _spans(post: SourcePost) -> list[Span]:
    """Links and mentions as Markdown links; plain URLs of Mastodon/X stay as they were typed.

    Bluesky shows a link's text (often shortened) and keeps the URL in a facet (link style "facets"):
    always a Markdown link. Mastodon and X show the URL itself (link style "written"): a link whose text is its URL stays bare text (the renderer
    writes URLs out on those platforms anyway). A mention becomes a link to the account's profile on
    the source platform, so it can never be read as somebody else's handle on another platform.
    """
    spans: list[Span] = []
    for link in post.links:
        text = post.text[link.start:link.end]
        if registry.get(post.platform).link_style == "written" and text == link.url:
            continue
        spans.append(Span(link.start, link.end, link_markdown(text, link.url)))
    for m in post.mentions:
        spans.append(Span(m.start, m.end, link_markdown(post.text[m.start:m.end], m.profile_url)))
    spans.sort(key=lambda s: s.start)
    kept: list[Span] = []
    for s in spans:
        if kept and s.start < kept[-1].end:
            continue  # overlapping spans (a broken facet): the text is kept, the reader noted it
        kept.append(s)
    return kept


def _alt(text: str) -> str:
    """Alt text inside `![…]`: one line, brackets and backslashes escaped."""
    one_line = " ".join(text.split())
    return re.sub(r"([\\\[\]`*_<&])", r"\\\1", one_line)


def post_markdown(post: SourcePost, media_path: Callable[[int], str | None]) -> str:
    """One post: its text, then its attachments' links, then its images (each on its own paragraph).

    `media_path(i)` is the archive-relative path of the post's i-th media file, or None when it could
    not be stored (the caller reports that); a video or other file is linked, an image is embedded.
    """
    parts: list[str] = []
    if post.text.strip():
        parts.append(to_markdown(post.text, _spans(post)))
    for url in post.attachments:
        parts.append(to_markdown(url))
    images: list[str] = []
    for i, media in enumerate(post.media):
        path = media_path(i)
        if path is None:
            continue
        if media.kind == "image":
            images.append(f"![{_alt(media.alt)}]({link_destination(path)})")
        else:
            label = {"gif": "GIF", "video": "Video", "audio": "Audio"}.get(media.kind, "File")
            desc = f": {media.alt}" if media.alt.strip() else ""
            parts.append(f"[{_alt(label + desc)}]({link_destination(path)})")
    if images:
        parts.append("\n".join(images))
    return "\n\n".join(parts)


def recorded_entry(post: SourcePost, text_sha: Callable[[str], str]) -> dict[str, str]:
    """The metadata entry of a backed-up post, in the form `post` records its own."""
    entry = {"id": post.id, "url": post.url}
    if post.cid:
        entry["cid"] = post.cid
    entry["sha"] = text_sha(post.text)
    return entry


def section_markdown(thread: SourceThread, title: str, timezone: str, block: str,
                     media_path: Callable[[SourcePost, int], str | None], eol: str = "\n") -> str:
    """The whole section, from its `##` line to its last post, ending with a line ending."""
    lines = [f"## {title}", block.replace("\r\n", "\n"), date_line(thread.root.created_at, timezone), ""]
    body = "\n\n---\n\n".join(post_markdown(p, lambda i, p=p: media_path(p, i)) for p in thread.posts)
    text = "\n".join(lines) + "\n" + body + "\n"
    return text.replace("\n", eol) if eol != "\n" else text


def append_posts_markdown(posts: Iterable[SourcePost], media_path: Callable[[SourcePost, int], str | None],
                          eol: str = "\n") -> str:
    """Posts added later to a thread already in the archive: each after a `---` line."""
    body = "".join("\n---\n\n" + post_markdown(p, lambda i, p=p: media_path(p, i)) + "\n" for p in posts)
    return body.replace("\n", eol) if eol != "\n" else body
