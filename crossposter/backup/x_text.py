"""What the author typed, from the text X stores: one rule for the archive zip and the API.

X does not store a post the way it was typed:

- `&`, `<` and `>` are HTML-escaped (`&amp;`, `&lt;`, `&gt;`), and nothing else is, so undoing
  exactly those three (``&amp;`` last) gives the typed characters back, even a typed ``&amp;``;
- every link is replaced by a `t.co` link; the typed URL survives only in the entity's
  `expanded_url`;
- attached media and a quoted post add a `t.co` link at the end that nobody typed;
- a reply starts with the ``@handles`` it is addressed to, which X hides: `display_text_range`
  is the part shown as the post's body.

**The typed text is the displayed range** (`display_text_range`, the whole text when absent)
with links expanded and the three escapes undone; the hidden ``@handles`` in front of a reply
are addressing, not writing, and are left out (`TypedText.hidden_mentions` names them). Links X
appended at the end of the range -- media, the quoted post (the last link, when it points at a
post), the "show more" link to the post itself -- are cut, with the white space before them;
a quoted post and any other link outside the range are returned as `attachments`, never dropped.

Entity offsets (``indices`` in v1.1 and the archive, ``start``/``end`` in v2) count Unicode
code points -- Python string indices, not JavaScript's UTF-16 units -- of the *escaped* text:
in ``AT&amp;T https://t.co/x`` the link starts at 9, not at 5 (checked against tweets Twitter
served, e.g. WHO/874656370829799424: ``#Maldives`` after ``🇧🇹 &amp;`` at 28). X has served
offsets that disagree with its own text (old posts, unescaped coordinates), so every offset is
checked against the text it must point at; one that fails is tried as an offset into the
unescaped text, then the link or mention is looked up by its own text, nearest first.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass

from crossposter.backup.source import LinkSpan, MentionSpan

LINK, MEDIA, MENTION = 0, 1, 2
#: Links and mentions read per post: a forged archive must not make offset checking quadratic for ever.
MAX_ENTITIES = 2000
#: Of those, how many with wrong offsets are looked up by their text (each search walks past taken places).
MAX_SEARCHED = 200

#: A post's address on X (or twitter.com): the id is what a quote or a "show more" link points at.
STATUS_URL = re.compile(r"https?://(?:www\.|mobile\.)?(?:twitter|x)\.com/(?:[A-Za-z0-9_]{1,50}|i/web|i)"
                        r"/status(?:es)?/([0-9]{1,20})(?:[/?#].*)?", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z0-9_]")


@dataclass(slots=True)
class Entity:
    """A link, media link or mention as X reports it, before its offsets are trusted."""

    kind: int  # LINK, MEDIA or MENTION
    start: int | None  # code points into the stored text; None when X gave no usable offset
    end: int | None
    short: str  # what the stored text holds there: the t.co link, or the handle without '@'
    expanded: str = ""  # links: the URL the author typed ('' when X kept none: the short one is it)
    account_id: str | None = None  # mentions


class TypedText:
    """The typed text of one post and what goes with it (a plain slotted class: one per post, made fast)."""

    __slots__ = ("text", "links", "mentions", "attachments", "hidden_mentions", "truncated", "notes")

    def __init__(self, text: str) -> None:
        self.text = text
        self.links: list[LinkSpan] = []
        self.mentions: list[MentionSpan] = []
        #: links that belong to the post but are not in its text: the quoted post, links outside the range
        self.attachments: list[str] = []
        #: handles of a reply's hidden leading mentions, as X spells them
        self.hidden_mentions: list[str] = []
        #: the text ended with X's "show more" link to the post itself: the cut-off part of a long post
        self.truncated = False
        self.notes: list[str] = []

    def __repr__(self) -> str:
        return f"TypedText({self.text!r}, links={self.links}, mentions={self.mentions}, " \
               f"attachments={self.attachments}, truncated={self.truncated})"


def unescape(text: str) -> str:
    """Undo X's escaping (only ``&amp;``, ``&lt;``, ``&gt;``; ``&amp;`` last, so ``&amp;lt;`` stays ``&lt;``)."""
    if "&" not in text:
        return text
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def looks_escaped(text: str) -> bool:
    """False when `text` holds a character X's escaping never leaves raw (``<``, ``>``, a bare ``&``).

    For texts whose form X does not document (long posts' `note-tweet.js` and `note_tweet`): an
    escaped text cannot contain these, so their presence proves it was stored as typed.
    """
    if "<" in text or ">" in text:
        return False
    i = text.find("&")
    while i != -1:
        if not text.startswith(("&amp;", "&lt;", "&gt;"), i):
            return False
        i = text.find("&", i + 1)
    return True


def profile_url(handle: str) -> str:
    return f"https://x.com/{handle}"


def status_id(url: str) -> str | None:
    """The post id a twitter.com / x.com status URL points at, else None."""
    m = STATUS_URL.fullmatch(url)
    return m[1] if m else None


# --------------------------------------------------------------------------- resolving offsets


def _unescaped_to_raw(raw: str) -> list[int]:
    """raw index of every unescaped index (and of the end): for offsets X computed before escaping."""
    out: list[int] = []
    i, n = 0, len(raw)
    while i < n:
        out.append(i)
        if raw[i] == "&":
            for esc in ("&amp;", "&lt;", "&gt;"):
                if raw.startswith(esc, i):
                    i += len(esc)
                    break
            else:
                i += 1
        else:
            i += 1
    out.append(n)
    return out


def _is_at(raw: str, e: Entity, start: int) -> int | None:
    """The end of `e` when it is found at `start` in `raw`, else None."""
    if e.kind == MENTION:
        end = start + 1 + len(e.short)
        if (start >= 0 and end <= len(raw) and raw[start] in "@＠"
                and raw[start + 1:end].lower() == e.short.lower()):
            return end
        return None
    if raw.startswith(e.short, start) and start >= 0:
        return start + len(e.short)
    return None


class _Taken:
    """The spans already given to entities, sorted (they never overlap), for O(log n) overlap checks."""

    def __init__(self, spans: list[tuple[int, int]]) -> None:
        self.spans = spans  # sorted by start

    def free(self, a: int, b: int) -> bool:
        i = bisect.bisect_left(self.spans, (a, -1))
        if i < len(self.spans) and self.spans[i][0] < b:
            return False
        return not (i > 0 and self.spans[i - 1][1] > a)

    def add(self, a: int, b: int) -> None:
        bisect.insort(self.spans, (a, b))


def _occurrences(raw: str, e: Entity, cache: dict[tuple[int, str], list[tuple[int, int]]]) -> list[tuple[int, int]]:
    """Every place `raw` holds `e`'s text (a mention: ``@handle`` as a whole word), in order; cached per text."""
    key = (e.kind == MENTION, e.short.lower() if e.kind == MENTION else e.short)
    found = cache.get(key)
    if found is not None:
        return found
    found = []
    if e.kind == MENTION:
        for m in re.finditer(r"[@＠]" + re.escape(e.short), raw, re.IGNORECASE):
            s, t = m.span()
            if (s == 0 or not _WORD.match(raw[s - 1])) and (t == len(raw) or not _WORD.match(raw[t])):
                found.append((s, t))
    else:
        i = raw.find(e.short)
        while i != -1:
            found.append((i, i + len(e.short)))
            i = raw.find(e.short, i + 1)
    cache[key] = found
    return found


def _search(found: list[tuple[int, int]], near: int, taken: _Taken) -> tuple[int, int] | None:
    """The free occurrence nearest to `near`, walking outwards from it."""
    hi = bisect.bisect_left(found, (near, -1))
    lo = hi - 1
    while lo >= 0 or hi < len(found):
        if hi >= len(found) or (lo >= 0 and near - found[lo][0] <= found[hi][0] - near):
            span, lo = found[lo], lo - 1
        else:
            span, hi = found[hi], hi + 1
        if taken.free(*span):
            return span
    return None


def resolve(raw: str, entities: Sequence[Entity], notes: list[str] | None = None) -> list[tuple[int, int, Entity]]:
    """Every entity at the place in `raw` that really holds its text, in order, without overlaps.

    Media entities all share one t.co link and one offset; they resolve to one place. An entity
    whose text is nowhere in `raw` is left out (with a note for links: their URL is then lost).
    """
    placed: list[tuple[int, int, Entity]] = []
    todo: list[Entity] = []
    for e in entities:  # the common case, inline: X's offset holds the entity's text
        start, short = e.start, e.short
        if not short:
            continue
        if start is not None and start >= 0:
            if e.kind == MENTION:
                end = start + 1 + len(short)
                if raw[start:start + 1] in ("@", "＠") and raw[start + 1:end].lower() == short.lower():
                    placed.append((start, end, e))
                    continue
            elif raw.startswith(short, start):
                placed.append((start, start + len(short), e))
                continue
        todo.append(e)
    placed.sort(key=_first)
    spans: list[tuple[int, int]] = []
    kept: list[tuple[int, int, Entity]] = []
    for a, b, e in placed:
        if spans and a < spans[-1][1]:
            if (a, b) == spans[-1] and e.kind == MEDIA:
                continue  # the shared link of a post's media
            todo.append(e)
            continue
        kept.append((a, b, e))
        spans.append((a, b))
    if not todo:
        return kept
    if len(todo) > MAX_SEARCHED:
        if notes is not None:
            notes.append(f"{len(todo) - MAX_SEARCHED} links and mentions of this post whose offsets X got "
                         "wrong were not looked for (too many)")
        todo = todo[:MAX_SEARCHED]
    taken = _Taken(spans)
    index_map: list[int] | None = None
    cache: dict[tuple[int, str], list[tuple[int, int]]] = {}
    media_links = {raw[a:b] for a, b, e in kept if e.kind == MEDIA}
    for e in todo:
        span = None
        if e.start is not None and e.start >= 0:
            if index_map is None:
                index_map = _unescaped_to_raw(raw) if "&" in raw else []
            if e.start < len(index_map):
                start = index_map[e.start]
                end = _is_at(raw, e, start)
                if end is not None and taken.free(start, end):
                    span = (start, end)
        if span is None:
            if e.kind == MEDIA and e.short in media_links:
                continue  # another media entity of the same post already holds the shared link
            span = _search(_occurrences(raw, e, cache), e.start or 0, taken)
        if span is None:
            if e.kind == LINK and notes is not None and e.expanded and e.expanded not in raw:
                notes.append(f"X lists the link {e.expanded} but its t.co link is not in the text")
            continue
        if e.kind == MEDIA:
            media_links.add(e.short)
        kept.append((span[0], span[1], e))
        taken.add(*span)
    kept.sort(key=_first)
    return kept


def _first(p: tuple[int, int, Entity]) -> int:
    return p[0]


# --------------------------------------------------------------------------- the typed text


def typed_text(raw: str, entities: Sequence[Entity], display: tuple[int, int] | None = None, *,
               escaped: bool = True, post_id: str = "") -> TypedText:
    """`raw` (as X stores it) back to the typed text with its link and mention spans.

    `display` is X's `display_text_range` (code points of `raw`); `post_id` is the post's own id,
    so a trailing link to itself is known as the "show more" link of a cut-off long post.
    """
    out = TypedText("")
    n = len(raw)
    s, e = 0, n
    if display is not None:
        s, e = max(0, min(display[0], n)), max(0, min(display[1], n))
        if s > e:
            s, e = 0, n
    if len(entities) > MAX_ENTITIES:  # far beyond any real post (280 characters; a long post's 25,000)
        out.notes.append(f"{len(entities) - MAX_ENTITIES} of this post's {len(entities)} links and mentions "
                         "were not read (more than any post can hold)")
        entities = entities[:MAX_ENTITIES]
    placed = resolve(raw, entities, out.notes) if entities else []
    # an entity straddling a range boundary widens the range: a link is never cut in half
    for a, b, _ in placed:
        if a < s < b:
            s = a
        if a < e < b:
            e = b
    inside = placed
    if placed and (placed[0][0] < s or placed[-1][1] > e):
        inside = [p for p in placed if p[0] >= s and p[1] <= e]
        for a, b, ent in placed:
            if b <= s and ent.kind == MENTION:
                out.hidden_mentions.append(ent.short)
            elif a >= e and ent.kind == LINK:
                url = ent.expanded or ent.short
                if post_id and status_id(url) == post_id:
                    out.truncated = True  # X's "show more" link, outside the range in some exports
                else:
                    out.attachments.append(url)

    # links X appended at the end of the range: media, one quoted post, the post's own "show more" link
    tail = e
    keep = len(inside)  # inside[keep:] is cut
    quote_taken = False
    while keep:
        a, b, ent = inside[keep - 1]
        if raw[b:tail].strip():
            break
        if ent.kind == LINK:
            sid = status_id(ent.expanded or ent.short)
            if sid is None:
                break
            if post_id and sid == post_id:
                out.truncated = True
            elif not quote_taken:
                quote_taken = True
                out.attachments.insert(0, ent.expanded or ent.short)
            else:
                break
        elif ent.kind != MEDIA:
            break
        keep -= 1
        tail = a

    parts: list[str] = []
    length = 0
    pos = s
    for a, b, ent in inside[:keep]:
        if a > pos:
            seg = raw[pos:a]
            if escaped and "&" in seg:
                seg = unescape(seg)
            parts.append(seg)
            length += len(seg)
        kind = ent.kind
        if kind == LINK:
            url = ent.expanded or ent.short
            parts.append(url)
            out.links.append(LinkSpan(length, length + len(url), url))
            length += len(url)
        elif kind == MENTION:
            typed = raw[a:b]
            parts.append(typed)
            out.mentions.append(MentionSpan(length, length + len(typed), ent.short, profile_url(ent.short),
                                            ent.account_id))
            length += len(typed)
        # MEDIA inside the text (not at its end): X's link, never typed: left out
        pos = b
    cut = keep < len(inside)
    end = tail if cut else e
    if end > pos:
        seg = raw[pos:end]
        parts.append(unescape(seg) if escaped and "&" in seg else seg)
    text = "".join(parts)
    if cut:
        text = text.rstrip()
    out.text = text
    return out
