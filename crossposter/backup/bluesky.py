"""Bluesky reader: the account's own `app.bsky.feed.post` records from its PDS, as neutral `SourcePost`s.

Why the PDS and `com.atproto.repo.listRecords`, not the AppView's author feed: the records are the
author's own data exactly as written (text, UTF-8 byte-offset facets, blob references), every PDS
serves them (a self-hosted one without an AppView too), and the tests can check them against a real
local PDS. The AppView's views would add nothing we keep and lose what we need (bytes, exact facets).

What is not read, on purpose: reposts and likes live in other collections (`app.bsky.feed.repost`,
`app.bsky.feed.like`) and are never the person's threads; threadgates/postgates are settings, not
writing. A link card's title, description and thumbnail are the linked page's preview, not the
author's words: only its URL is kept.

Order and cursor: records are listed oldest first by record key (`reverse=true`). Record keys are
TIDs, which sort by the time they were made, so the newest key seen is a cursor that never skips a
record written after it, and a read stopped half-way (rate limit, network) is resumable from the
last complete page: the error carries what was read as `error.partial`. The cursor is the at:// URI
of the newest record seen (a bare record key is accepted too); a cursor of another account is
ignored with a warning (everything is read again: the shared code matches IDs, so that is safe).
A record written *later* under an *older* key (an importer backdating its TIDs, a client that
chose the key long before writing) is only seen by a full read (no cursor).

Edits: `putRecord` can rewrite a record under the same key; the current version is returned, with
its `cid`, so the shared code can compare it with the one it recorded. Nothing more happens here.

The SDK is imported inside functions only, like the publishing adapter.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import re
import reprlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from crossposter.backup.source import (
    LinkSpan,
    MediaKind,
    MentionSpan,
    ReadResult,
    Skipped,
    SourceMedia,
    SourcePost,
)
from crossposter.platforms.base import RejectedError, TransientError
from crossposter.platforms.bluesky import PLATFORM, POST_COLLECTION, map_error, post_url

if TYPE_CHECKING:
    from pathlib import Path

    from crossposter.config import Config
    from crossposter.platforms.bluesky import BlueskyAdapter

log = logging.getLogger(__name__)

PAGE_SIZE = 100  # listRecords' maximum
LINK = "app.bsky.richtext.facet#link"
MENTION = "app.bsky.richtext.facet#mention"
TAG = "app.bsky.richtext.facet#tag"
EMBED_IMAGES = "app.bsky.embed.images"
EMBED_VIDEO = "app.bsky.embed.video"
EMBED_EXTERNAL = "app.bsky.embed.external"
EMBED_RECORD = "app.bsky.embed.record"
EMBED_RECORD_WITH_MEDIA = "app.bsky.embed.recordWithMedia"

_TID = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
_S32 = "234567abcdefghijklmnopqrstuvwxyz"
_RKEY = re.compile(r"^[A-Za-z0-9._:~-]{1,512}$")
_AT_URI = re.compile(r"^at://([^/?#\s]+)/([A-Za-z0-9.-]+)/([A-Za-z0-9._:~-]{1,512})$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: Fixed, not `mimetypes`: the system's MIME tables differ between machines, and a file name that
#: changes between runs would make a second run download (and keep) every file again.
_EXTENSIONS = {
    "image/jpeg": ".jpg", "image/jpg": ".jpg", "image/png": ".png", "image/gif": ".gif",
    "image/webp": ".webp", "image/heic": ".heic", "image/heif": ".heif", "image/avif": ".avif",
    "image/bmp": ".bmp", "image/tiff": ".tiff", "image/svg+xml": ".svg",
    "video/mp4": ".mp4", "video/quicktime": ".mov", "video/webm": ".webm", "video/mpeg": ".mpeg",
    "video/x-matroska": ".mkv", "text/vtt": ".vtt",
}

#: Where bsky.app shows a record of each quotable collection, from its DID and record key.
_WEB_PATHS = {
    "app.bsky.feed.post": "https://bsky.app/profile/{did}/post/{rkey}",
    "app.bsky.feed.generator": "https://bsky.app/profile/{did}/feed/{rkey}",
    "app.bsky.graph.list": "https://bsky.app/profile/{did}/lists/{rkey}",
    "app.bsky.graph.starterpack": "https://bsky.app/starter-pack/{did}/{rkey}",
    "app.bsky.labeler.service": "https://bsky.app/profile/{did}",
}


# --------------------------------------------------------------------------- UTF-8 byte offsets


def byte_to_str_offsets(text: str, offsets: Iterable[int]) -> dict[int, int]:
    """The `str` index of each byte offset into `text`'s UTF-8 form that falls between two characters.

    Offsets inside a character, negative or past the end are left out, so the caller can say which
    facet was bad. One pass over the text however many offsets (sorted, each slice decoded once).
    """
    data = text.encode("utf-8", "surrogatepass")
    size = len(data)
    wanted = sorted({o for o in offsets if type(o) is int and 0 <= o <= size})
    if len(data) == len(text):  # ASCII: bytes are characters
        return {o: o for o in wanted}
    out: dict[int, int] = {}
    pos = index = 0
    for o in wanted:
        if o < size and data[o] & 0xC0 == 0x80:  # a continuation byte: inside a character
            continue
        index += len(data[pos:o].decode("utf-8", "surrogatepass"))
        pos = o
        out[o] = index
    return out


@dataclass
class FacetSpans:
    """What a record's facets say about its text, in `str` offsets, and what could not be kept as a span."""

    links: list[LinkSpan] = field(default_factory=list)
    mentions: list[MentionSpan] = field(default_factory=list)
    #: URLs of link facets that could not be placed on the text: kept after the post, never lost
    orphan_urls: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _feature_kind(feature: dict[str, Any]) -> str | None:
    kind = feature.get("$type")
    if isinstance(kind, str):
        return {LINK: "link", MENTION: "mention", TAG: "tag"}.get(kind, kind)
    # Some writers leave out the union's $type; the one field each feature has tells them apart.
    for key, name in (("uri", "link"), ("did", "mention"), ("tag", "tag")):
        if key in feature:
            return name
    return None


def spans_from_facets(text: str, facets: Any) -> FacetSpans:
    """Link and mention spans over `text` from the record's `facets`; never raises, whatever the facets hold.

    Facets come from any client: byte ranges may be out of range, inside a character, empty or
    overlapping, features may be unknown. Each such facet is noted (its text always stays); a link
    that cannot be placed keeps its URL in `orphan_urls`. Overlapping spans cannot both be links in
    Markdown: the facet earlier in the record is kept, the later one noted.
    """
    out = FacetSpans()
    if facets is None:
        return out
    if not isinstance(facets, list):
        out.notes.append(f"facets are not a list ({type(facets).__name__}): ignored, the text is kept")
        return out
    size = len(text.encode("utf-8", "surrogatepass"))
    orphans: list[tuple[int, str]] = []  # (facet number, URL): kept in record order
    parsed: list[tuple[int, int, int, dict[str, Any]]] = []  # (facet number, byteStart, byteEnd, facet)
    for number, facet in enumerate(facets, 1):
        index = facet.get("index") if isinstance(facet, dict) else None
        start = index.get("byteStart") if isinstance(index, dict) else None
        end = index.get("byteEnd") if isinstance(index, dict) else None
        if type(start) is not int or type(end) is not int:
            features = facet.get("features") if isinstance(facet, dict) else None
            urls = [f["uri"] for f in features if isinstance(f, dict) and _feature_kind(f) == "link"
                    and isinstance(f.get("uri"), str) and f["uri"]] if isinstance(features, list) else []
            orphans.extend((number, u) for u in urls)
            kept = "; the URL is kept after the post" if urls else "; ignored, the text is kept"
            out.notes.append(f"facet {number}: no byte range ({_describe(facet)}){kept}")
            continue
        parsed.append((number, start, end, facet))
    offsets = byte_to_str_offsets(text, [o for _, s, e, _ in parsed for o in (s, e)])

    candidates: list[tuple[int, int, int, LinkSpan | MentionSpan]] = []
    for number, start, end, facet in parsed:
        features = facet.get("features")
        if not isinstance(features, list) or not features:
            out.notes.append(f"facet {number} ({start}..{end}): no features; ignored, the text is kept")
            continue
        problem = None
        if not 0 <= start < end <= size:
            problem = f"byte range {start}..{end} is outside the text ({size} bytes) or empty"
        elif start not in offsets or end not in offsets:
            problem = f"byte range {start}..{end} cuts through a character"
        for feature in features:
            kind = _feature_kind(feature) if isinstance(feature, dict) else None
            what = _describe(feature)
            if kind not in ("link", "mention", "tag"):
                shown = f" over {_excerpt(text[offsets[start]:offsets[end]])}" if problem is None else ""
                out.notes.append(f"facet {number}: unknown feature {what}{shown}; ignored, the text is kept")
                continue
            if problem is not None:
                if kind == "link" and isinstance(feature.get("uri"), str) and feature["uri"]:
                    orphans.append((number, feature["uri"]))
                    out.notes.append(f"facet {number} ({what}): {problem}; the URL is kept after the post")
                else:
                    out.notes.append(f"facet {number} ({what}): {problem}; ignored, the text is kept")
                continue
            s, e = offsets[start], offsets[end]
            shown_text = text[s:e]
            if kind == "tag":
                tag = feature.get("tag")
                if not isinstance(tag, str) or shown_text not in (f"#{tag}", f"＃{tag}"):
                    out.notes.append(f"facet {number}: tag {_excerpt(tag)} over {_excerpt(shown_text)}, which does not "
                                     "show it; the tag is not kept")
                continue
            if kind == "link":
                uri = feature.get("uri")
                if not isinstance(uri, str) or not uri:
                    out.notes.append(f"facet {number}: link over {_excerpt(shown_text)} without a URL; the text is kept")
                    continue
                candidates.append((s, e, number, LinkSpan(s, e, uri)))
                continue
            did = feature.get("did")
            handle = shown_text[1:] if shown_text.startswith("@") else shown_text
            if not isinstance(did, str) or not did.startswith("did:") or not handle.strip():
                out.notes.append(f"facet {number}: mention over {_excerpt(shown_text)} without a usable DID "
                                 f"({what}); the text is kept")
                continue
            candidates.append((s, e, number, MentionSpan(s, e, handle, f"https://bsky.app/profile/{did}", did)))

    kept: list[tuple[int, int, LinkSpan | MentionSpan]] = []  # sorted by start, never overlapping
    for s, e, number, span in candidates:  # in record order: an earlier facet wins over a later one
        at = bisect.bisect_left(kept, (s, e))
        if at < len(kept) and kept[at][2] == span:
            continue  # the same facet twice says nothing new
        clash = next((k[2] for k in kept[max(at - 1, 0):at + 1] if k[0] < e and s < k[1]), None)
        if clash is None:
            kept.insert(at, (s, e, span))
            continue
        target = _excerpt(span.url if isinstance(span, LinkSpan) else span.profile_url, 200)
        note = (f"facet {number} ({'link' if isinstance(span, LinkSpan) else 'mention'} {target}) over "
                f"{_excerpt(text[s:e])} overlaps {_excerpt(text[clash.start:clash.end])} of an earlier facet")
        if isinstance(span, LinkSpan):
            orphans.append((number, span.url))
            out.notes.append(f"{note}; the URL is kept after the post")
        else:
            out.notes.append(f"{note}; the mention is not kept")
    out.orphan_urls = [url for _, url in sorted(orphans, key=lambda o: o[0])]
    out.links = [k[2] for k in kept if isinstance(k[2], LinkSpan)]
    out.mentions = [k[2] for k in kept if isinstance(k[2], MentionSpan)]
    return out


def _excerpt(value: Any, limit: int = 60) -> str:
    """`repr` of a piece of text or value for a note, never longer than about `limit` (a record may hold megabytes)."""
    if isinstance(value, str):
        return repr(value) if len(value) <= limit else repr(value[:limit]) + "…"
    return reprlib.repr(value)


def _describe(obj: Any, limit: int = 120) -> str:
    """A short, printable account of a piece of a record, for notes."""
    if isinstance(obj, dict):
        kind = obj.get("$type")
        value = next((obj[k] for k in ("uri", "did", "tag") if isinstance(obj.get(k), str)), None)
        text = " ".join(str(p)[:limit] for p in (kind, value) if p) or f"keys {reprlib.repr(sorted(map(str, obj)))}"
    else:
        text = f"{type(obj).__name__} {reprlib.repr(obj)}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------- times and record keys


def parse_created_at(value: Any) -> tuple[datetime | None, str | None]:
    """(aware datetime, note) from a `createdAt` as clients write it; (None, note) when unusable.

    The lexicon asks for RFC 3339 with a zone; clients also write lowercase `t`/`z`, nanoseconds,
    a space instead of `T`, or no zone at all (taken as UTC, with a note).
    """
    if not isinstance(value, str) or not value.strip():
        return None, f"createdAt {_excerpt(value)} is missing"
    try:
        parsed = datetime.fromisoformat(value.strip().upper())
    except ValueError:
        return None, f"createdAt {_excerpt(value)} is not a date"
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC), f"createdAt {_excerpt(value)} has no time zone; taken as UTC"
    return parsed, None


def tid_time(rkey: str) -> datetime | None:
    """When a TID record key was made (its microseconds since the epoch); None for other keys."""
    if not _TID.match(rkey):
        return None
    value = 0
    for ch in rkey:
        value = value * 32 + _S32.index(ch)
    try:
        return _EPOCH + timedelta(microseconds=value >> 10)
    except OverflowError:
        return None


def tid_before(when: datetime) -> str | None:
    """The greatest TID made before `when` (clock id 1023): `listRecords` after it starts at `when`."""
    us = int((when - _EPOCH) / timedelta(microseconds=1)) - 1
    if us < 0:
        return None
    us = min(us, (1 << 53) - 1)
    value = (us << 10) | 1023
    return "".join(_S32[(value >> (5 * i)) & 31] for i in range(12, -1, -1))


def media_filename(rkey: str, index: int, mime_type: str | None) -> str:
    """`<rkey>-<index><ext>`: stable across runs, so a second run finds the file it already has.

    TIDs are safe in a file name as they are; other record keys may hold `:`, `.` or `~` and be 512
    characters long: those are made safe and shortened, with a hash of the key so two keys never
    share a name.
    """
    ext = _EXTENSIONS.get((mime_type or "").split(";", 1)[0].strip().lower(), ".bin")
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", rkey)[:64]
    if safe != rkey or not safe.strip("_-"):
        safe = f"{safe}-{hashlib.sha256(rkey.encode('utf-8')).hexdigest()[:10]}"
    return f"{safe}-{index}{ext}"


def web_url(uri: str) -> str | None:
    """bsky.app's page for an at:// record URI (post, feed, list, starter pack, labeler); None otherwise."""
    m = _AT_URI.match(uri)
    if not m or m.group(2) not in _WEB_PATHS:
        return None
    return _WEB_PATHS[m.group(2)].format(did=m.group(1), rkey=m.group(3))


# --------------------------------------------------------------------------- records


@dataclass
class _Embeds:
    media: list[SourceMedia] = field(default_factory=list)
    attachments: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _blob(obj: Any) -> tuple[str, str | None, int | None] | None:
    """(cid, mimeType, size) of a blob reference, in today's form or the legacy `{cid, mimeType}` one."""
    if not isinstance(obj, dict):
        return None
    ref = obj.get("ref")
    cid = ref.get("$link") if isinstance(ref, dict) else obj.get("cid")
    if not isinstance(cid, str) or not cid:
        return None
    try:
        from atproto_core.cid import CID

        CID.decode(cid)
    except Exception:  # noqa: BLE001 - a forged or broken CID: whatever libipld raises
        return None
    mime = obj.get("mimeType") if isinstance(obj.get("mimeType"), str) else None
    size = obj.get("size") if type(obj.get("size")) is int else None
    return cid, mime, size


def _read_embed(embed: Any, rkey: str, out: _Embeds, *, nested: bool = False) -> None:
    if embed is None:
        return
    kind = embed.get("$type") if isinstance(embed, dict) else None
    if kind == EMBED_IMAGES:
        images = embed.get("images")
        for n, image in enumerate(images if isinstance(images, list) else [], 1):
            blob = _blob(image.get("image")) if isinstance(image, dict) else None
            if blob is None:
                out.notes.append(f"image {n}: no readable blob reference; not kept")
                continue
            alt = image.get("alt") if isinstance(image.get("alt"), str) else ""
            _add_media(out, "image", blob, rkey, alt)
        if not isinstance(images, list):
            out.notes.append("an image embed without a list of images; nothing kept")
    elif kind == EMBED_VIDEO:
        blob = _blob(embed.get("video"))
        if blob is None:
            out.notes.append("video: no readable blob reference; not kept")
        else:
            alt = embed.get("alt") if isinstance(embed.get("alt"), str) else ""
            _add_media(out, "video", blob, rkey, alt)
        captions = embed.get("captions")
        for caption in captions if isinstance(captions, list) else []:
            blob = _blob(caption.get("file")) if isinstance(caption, dict) else None
            lang = caption.get("lang") if isinstance(caption, dict) and isinstance(caption.get("lang"), str) else "?"
            lang = lang[:20]
            if blob is None:
                out.notes.append(f"video captions ({lang}): no readable blob reference; not kept")
            else:
                _add_media(out, "file", blob, rkey, f"captions ({lang})")
    elif kind == EMBED_EXTERNAL:
        external = embed.get("external")
        uri = external.get("uri") if isinstance(external, dict) else None
        if isinstance(uri, str) and uri:
            out.attachments.append(uri)
        else:
            out.notes.append("a link card without a URL; not kept")
    elif kind == EMBED_RECORD:
        record = embed.get("record")
        uri = record.get("uri") if isinstance(record, dict) else None
        if not isinstance(uri, str) or not uri:
            out.notes.append("a quoted record without a URI; not kept")
        elif (url := web_url(uri)) is not None:
            out.attachments.append(url)
        else:
            out.attachments.append(uri)
            out.notes.append(f"quotes {_excerpt(uri, 200)}, which bsky.app has no page for; kept as its at:// URI")
    elif kind == EMBED_RECORD_WITH_MEDIA and not nested:
        _read_embed(embed.get("record"), rkey, out, nested=True)
        _read_embed(embed.get("media"), rkey, out, nested=True)
    else:
        out.notes.append(f"embed {_describe(embed)} is not one this backup knows; not kept")


def _add_media(out: _Embeds, kind: MediaKind, blob: tuple[str, str | None, int | None], rkey: str, alt: str) -> None:
    cid, mime, size = blob
    out.media.append(SourceMedia(kind=kind, fetch=cid, filename=media_filename(rkey, len(out.media), mime),
                                 alt=alt, mime_type=mime, size=size))


def post_from_record(record: Any, did: str, handle: str) -> SourcePost | None:
    """The `SourcePost` of one `listRecords` entry (`{uri, cid, value}`) of account `did`; None if unreadable.

    Unreadable means there is nothing to call a post: no record URI in this account's post
    collection, or a value that is not an object. Everything else is kept, with notes for what a
    client wrote oddly.
    """
    if not isinstance(record, dict):
        return None
    uri, cid, value = record.get("uri"), record.get("cid"), record.get("value")
    m = _AT_URI.match(uri) if isinstance(uri, str) else None
    if m is None or m.group(1) != did or m.group(2) != POST_COLLECTION or not isinstance(value, dict):
        return None
    rkey = m.group(3)
    notes: list[str] = []
    if value.get("$type") not in (POST_COLLECTION, None):
        notes.append(f"record type {_excerpt(value.get('$type'))} in the post collection")

    text = value.get("text", "")
    if not isinstance(text, str):
        notes.append(f"text is not a string but {type(text).__name__} {_excerpt(text)}; the post's text is empty")
        text = ""

    created_at, note = parse_created_at(value.get("createdAt"))
    if note:
        notes.append(note)
    if created_at is None:
        created_at = tid_time(rkey)
        if created_at is not None:
            notes.append("dated by its record key instead")
        else:
            created_at = _EPOCH
            notes.append("no date at all: dated 1970-01-01")

    spans = spans_from_facets(text, value.get("facets"))
    notes.extend(spans.notes)

    embeds = _Embeds()
    _read_embed(value.get("embed"), rkey, embeds)
    notes.extend(embeds.notes)
    linked = {link.url for link in spans.links}
    attachments: list[str] = []
    for url in [*spans.orphan_urls, *embeds.attachments]:
        if url not in linked and url not in attachments:
            attachments.append(url)

    reply_to = root_id = None
    reply_to_self = False
    reply = value.get("reply")
    if reply is not None:
        parent = _ref_uri(reply, "parent")
        root_id = _ref_uri(reply, "root")
        reply_to = parent or root_id
        if reply_to is None:
            notes.append("a reply whose parent cannot be read; kept as a post of its own")
        else:
            host = _AT_URI.match(reply_to)
            root_host = _AT_URI.match(root_id) if root_id else host
            # a reply to oneself inside somebody else's conversation is not one of the person's threads
            reply_to_self = (host is not None and host.group(1) in (did, handle)
                             and root_host is not None and root_host.group(1) in (did, handle))
            if parent is None:
                notes.append("a reply without its parent; taken as a reply to the thread's first post")

    labels = value.get("labels")
    if labels is not None:
        values = labels.get("values") if isinstance(labels, dict) else None
        names = [v.get("val") for v in values if isinstance(v, dict)] if isinstance(values, list) else []
        shown = ", ".join(str(n)[:60] for n in names[:20] if n) or _describe(labels)
        notes.append(f"self-labels (content warnings set by the author): {shown}; not carried over")
    tags = value.get("tags")
    if isinstance(tags, list) and tags:
        notes.append("tags not in the text: " + " ".join(f"#{t[:60]}" for t in tags[:20] if isinstance(t, str)))

    langs = value.get("langs")
    language = langs[0] if isinstance(langs, list) and langs and isinstance(langs[0], str) else None

    return SourcePost(
        platform=PLATFORM,
        id=uri,
        url=post_url(handle, uri),
        created_at=created_at,
        text=text,
        cid=cid if isinstance(cid, str) else None,
        links=tuple(spans.links),
        mentions=tuple(spans.mentions),
        media=tuple(embeds.media),
        reply_to=reply_to,
        reply_to_self=reply_to_self,
        root_id=root_id,
        attachments=tuple(attachments),
        language=language,
        notes=tuple(notes),
    )


def _ref_uri(reply: Any, key: str) -> str | None:
    ref = reply.get(key) if isinstance(reply, dict) else None
    uri = ref.get("uri") if isinstance(ref, dict) else None
    return uri if isinstance(uri, str) and _AT_URI.match(uri) else None


# --------------------------------------------------------------------------- the reader


class BlueskyReader:
    """The configured Bluesky account's own posts, read from its PDS through the publishing adapter's login."""

    platform = PLATFORM

    def __init__(self, config: Config | None = None, *, adapter: BlueskyAdapter | None = None,
                 page_size: int = PAGE_SIZE) -> None:
        """From the config (as `post` logs in), or from an adapter already made; `page_size` ≤ 100 (tests)."""
        if adapter is None:
            if config is None:
                raise ValueError("BlueskyReader needs a config or an adapter")
            from crossposter.platforms.bluesky import from_config

            adapter = from_config(config)
        if not 1 <= page_size <= PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{PAGE_SIZE}, not {page_size}")
        self._adapter = adapter
        self.page_size = page_size

    def __repr__(self) -> str:
        return f"BlueskyReader({self._adapter!r})"

    def read(self, *, cursor: str | None = None, since: datetime | None = None,
             on_page: Callable[[int], None] | None = None,
             on_posts: Callable[[list[SourcePost]], None] | None = None) -> ReadResult:
        """Every own post written after `cursor` (all when None), not dated before `since`.

        `since` also starts the listing at the record keys made at that time, so a record whose key
        is not a TID (no client we know writes those) and sorts before it is not seen.

        `on_page(n)` is called after each page with the number of records it held, `on_posts` with its
        posts (the caller starts their media downloads). A failure raises
        the adapter's `PlatformError` kinds; when pages were read before it, `error.partial` is the
        `ReadResult` of those (its cursor resumes right after them).
        """
        if since is not None and since.tzinfo is None:
            raise ValueError("since must be an aware datetime")
        client, did, handle = self._adapter.session()
        after = self._cursor_rkey(cursor, did)
        start = after
        if since is not None and (floor := tid_before(since)) is not None and (start is None or floor > start):
            start = floor
        result = ReadResult(posts=[], cursor=self._cursor(did, after), skipped=Skipped())
        from atproto_client import models

        converter = _Converter(did, handle, since, on_posts)
        try:
            try:
                self._pages(client, did, start, result, converter, on_page, models)
            finally:
                # (after a failure too: what was read before it is the error's `partial`, this very result)
                converter.finish(result)
        finally:
            converter.close()
        return result

    def _pages(self, client: Any, did: str, start: str | None, result: ReadResult, converter: _Converter,
               on_page: Callable[[int], None] | None, models: Any) -> None:
        """Request pages until the last; each page's records go to `converter` (the next request does not wait)."""
        while True:
            params = models.ComAtprotoRepoListRecords.Params(
                repo=did, collection=POST_COLLECTION, limit=self.page_size, reverse=True, cursor=start)
            try:
                response = client.invoke_query("com.atproto.repo.listRecords", params=params,
                                               output_encoding="application/json")
                records = response.content.get("records") if isinstance(response.content, dict) else None
                if not isinstance(records, list):
                    raise TransientError(PLATFORM, "list posts: the server's answer has no list of records")
            except Exception as e:  # noqa: BLE001 - sorted by map_error
                err = map_error(e, f"list posts of {did} at {self._adapter.service}")
                if result.requests:
                    err.partial = result  # type: ignore[attr-defined]
                raise err from None
            result.requests += 1
            last = start
            keep = []
            for record in records:
                rkey = _record_key(record)
                if rkey is None:
                    log.warning("bluesky: listRecords gave a record without a usable URI; skipped")
                    result.skipped.add("unreadable records")
                    continue
                if last is not None and rkey <= last:
                    # Following a server that goes backwards would risk a loop; the PDS never does.
                    result.skipped.add("records the server listed out of order")
                    continue
                last = rkey
                keep.append(record)
            converter.submit(keep)
            if last is not None and last != start:
                result.cursor = self._cursor(did, last)
            if on_page is not None:
                on_page(len(records))
            # A page shorter than asked for is the last one (the PDS applies `limit` in SQL); a page
            # that moved nothing forward must not be asked for again.
            if len(records) < self.page_size or last == start:
                break
            start = last

    def fetch_media(self, media: SourceMedia) -> bytes:
        """`com.atproto.sync.getBlob`: the blob exactly as uploaded, checked against its CID.

        The CID is the blob's SHA-256, so a truncated or altered download is caught here (TransientError:
        try again) instead of being kept as the only copy.
        """
        from atproto_client import models
        from atproto_core.cid import CID

        client, did, _ = self._adapter.session()
        try:
            expected = CID.decode(media.fetch).hash
        except Exception:  # noqa: BLE001 - whatever libipld raises for a malformed CID
            raise RejectedError(PLATFORM, f"{media.filename}: {_excerpt(media.fetch)} is not a blob CID") from None
        try:
            data = client.com.atproto.sync.get_blob(models.ComAtprotoSyncGetBlob.Params(did=did, cid=media.fetch))
        except Exception as e:  # noqa: BLE001
            raise map_error(e, f"download {media.filename} ({media.fetch})") from None
        if not isinstance(data, bytes):  # the SDK parses a blob served as JSON: its bytes are gone
            raise RejectedError(PLATFORM, f"download {media.filename}: the server sent it as JSON, "
                                          "not as the uploaded bytes")
        if expected.code == 0x12 and hashlib.sha256(data).digest() != expected.digest:
            raise TransientError(PLATFORM, f"download {media.filename}: {len(data)} bytes that do not match "
                                           f"the blob's CID {media.fetch} (truncated or altered)")
        return data

    # ------------------------------------------------------------------ cursor

    @staticmethod
    def _cursor(did: str, rkey: str | None) -> str | None:
        return f"at://{did}/{POST_COLLECTION}/{rkey}" if rkey is not None else None

    @staticmethod
    def _cursor_rkey(cursor: str | None, did: str) -> str | None:
        """The record key a stored cursor stands for; None (read all) for another account's cursor."""
        if cursor is None:
            return None
        m = _AT_URI.match(cursor)
        if m is not None and m.group(2) == POST_COLLECTION:
            if m.group(1) != did:
                log.warning("bluesky: the backup cursor belongs to %s, not to this account (%s): reading "
                            "every post again", m.group(1), did)
                return None
            return m.group(3)
        if _RKEY.match(cursor) and cursor not in (".", ".."):
            return cursor
        raise ValueError(f"{cursor[:100]!r} is not a Bluesky backup cursor (the at:// URI of the newest post "
                         "read); remove it from the state directory to read every post again")


class _Converter:
    """Records → posts on a thread of its own, page by page in order, while the next page is requested.

    Why: a page of 100 records costs tens of milliseconds of CPU to convert, and its request 50 ms or
    more of waiting; one after the other they add up, side by side they mostly do not (as for
    Mastodon's pages). The requests, the cursor and the errors stay in the calling thread; `finish`
    puts the posts into the result in the order they were listed, and raises a bug of the conversion.
    """

    def __init__(self, did: str, handle: str, since: datetime | None,
                 on_posts: Callable[[list[SourcePost]], None] | None) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.did, self.handle, self.since, self.on_posts = did, handle, since, on_posts
        self.posts: list[SourcePost] = []
        self.skipped = Skipped()  # touched only by the worker until finish()
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bluesky-convert")
        self.futures: list[Any] = []

    def submit(self, records: list[Any]) -> None:
        if records:
            self.futures.append(self.pool.submit(self._convert, records))

    def _convert(self, records: list[Any]) -> None:
        page = []
        for record in records:
            try:
                post = post_from_record(record, self.did, self.handle)
            except Exception:  # a bug here must not cost the person the rest of their backup
                log.exception("bluesky: reading %s failed; skipped (please report this)", record.get("uri"))
                post = None
            if post is None:
                log.warning("bluesky: %s is not a readable post record; skipped", record.get("uri"))
                self.skipped.add("unreadable records")
            elif self.since is not None and post.created_at < self.since:
                self.skipped.add("posts dated before --since")
            else:
                page.append(post)
        self.posts.extend(page)
        if self.on_posts is not None and page:
            self.on_posts(page)  # their media start downloading while the next page loads

    def finish(self, result: ReadResult) -> None:
        """Every page submitted so far, converted, into `result` (once)."""
        futures, self.futures = self.futures, []
        for future in futures:
            future.result()
        result.posts.extend(self.posts)
        self.posts = []
        for reason, n in self.skipped.counts.items():
            result.skipped.add(reason, n)
        self.skipped = Skipped()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def _record_key(record: Any) -> str | None:
    uri = record.get("uri") if isinstance(record, dict) else None
    m = _AT_URI.match(uri) if isinstance(uri, str) else None
    return m.group(3) if m else None



# --------------------------------------------------------------------------- the registry's hooks
# (commands.backup, the mirror's report and daemon ask the platform's backup module these; no other
# module knows how this platform's cursor is named, when its IDs were made or how to look for news)


def cursor_account(config: Config) -> str:
    """The name `crossposter backup` keeps this account's cursor under (never a secret)."""
    b = config.platforms.bluesky
    return f"{b.service} {b.handle}"


def open_reader(config: Config, login_config: Config, archive: Path | None = None) -> tuple[BlueskyReader, str]:
    """The reader `crossposter backup` and the mirror use, and its cursor's account name.

    `login_config` holds where the login caches go (a dry run's temporary folder)."""
    from crossposter.platforms.bluesky import from_config

    return BlueskyReader(adapter=from_config(login_config)), cursor_account(config)


def post_time(post_id: str) -> datetime | None:
    """When a post was made: its record key is a TID (microseconds since 1970)."""
    return tid_time(post_id.rsplit("/", 1)[-1])


def nothing_new(config: Config) -> bool:
    """True only when the account lists no record after the backup's cursor: one unauthenticated
    `com.atproto.repo.listRecords` after its record key (the mirror's cheap look, see mirror.backup_child)."""
    import json
    import urllib.parse
    import urllib.request

    from crossposter.backup.state import BackupState

    cursor = BackupState.load(config.state_path, PLATFORM, cursor_account(config)).cursor
    if not cursor or not cursor.startswith("at://"):
        return False
    repo, _, rest = cursor.removeprefix("at://").partition("/")
    rkey = rest.rsplit("/", 1)[-1]
    if not repo or not rkey:
        return False
    query = urllib.parse.urlencode({"repo": repo, "collection": "app.bsky.feed.post", "limit": 1,
                                    "reverse": "true", "cursor": rkey})
    url = f"{config.platforms.bluesky.service.rstrip('/')}/xrpc/com.atproto.repo.listRecords?{query}"
    try:
        with urllib.request.urlopen(url, timeout=20) as r:  # noqa: S310 - the configured service URL
            page = json.loads(r.read(1_000_000))
    except (OSError, ValueError):
        return False  # the backup itself will say what is wrong
    return isinstance(page, dict) and page.get("records") == []


def records_unchanged(config: Config, posts: list[tuple[str, str | None]]) -> bool:
    """True only when each (at:// URI, recorded cid) is still that very record on the account's PDS:
    one unauthenticated `com.atproto.repo.getRecord` per post (the mirror's look before it hands a
    settled thread on, see mirror.backup_child). Any doubt (no cid recorded, an error, another cid)
    answers False."""
    import json
    import urllib.parse
    import urllib.request

    base = config.platforms.bluesky.service.rstrip("/")
    for uri, cid in posts:
        repo, _, rest = uri.removeprefix("at://").partition("/")
        collection, _, rkey = rest.partition("/")
        if not (uri.startswith("at://") and cid and repo and collection and rkey):
            return False
        query = urllib.parse.urlencode({"repo": repo, "collection": collection, "rkey": rkey})
        try:
            with urllib.request.urlopen(f"{base}/xrpc/com.atproto.repo.getRecord?{query}",  # noqa: S310
                                        timeout=20) as r:
                record = json.loads(r.read(1_000_000))
        except (OSError, ValueError):
            return False
        if not isinstance(record, dict) or record.get("cid") != cid:
            return False
    return True


