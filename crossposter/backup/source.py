"""What a backup reads from a platform, before it becomes Markdown: one neutral shape for all three.

Each platform's reader (the PDS's records, Mastodon's statuses, X's archive zip or API) turns
what the platform serves into `SourcePost`s; everything after that (rebuilding threads, writing
Markdown that previews back to the exact text, downloading media, recording IDs) is shared and
never looks at a platform's own format again. That is why `text` must be *exactly* what the
author typed (as the platform stores it, after undoing the platform's own markup and escaping),
and why links and mentions are kept as spans over that text rather than re-detected later:
a mention belongs to one platform's account and must never be re-read as somebody else's.

Offsets are Python string indices into `text` (code points), not bytes: readers convert
Bluesky's UTF-8 byte offsets once, here, so nothing downstream has to know about them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

MediaKind = Literal["image", "gif", "video", "audio", "file"]


@dataclass(frozen=True)
class LinkSpan:
    """`text[start:end]` links to `url` (Bluesky: the shortened text of a link facet; Mastodon/X: the URL itself)."""

    start: int
    end: int
    url: str


@dataclass(frozen=True)
class MentionSpan:
    """`text[start:end]` (e.g. ``@alice.bsky.social``, ``@alice``, ``@alice@example.social``) names an account.

    `profile_url` is that account's page on the source platform: the one identity that survives a
    move to another platform, where the same handle may belong to somebody else.
    """

    start: int
    end: int
    handle: str  # as the source platform spells it, without the leading '@'
    profile_url: str
    account_id: str | None = None  # DID, Mastodon account id, X user id, when known


@dataclass(frozen=True)
class SourceMedia:
    """One attachment. `fetch` is a URL to download, or a member name inside an X archive zip."""

    kind: MediaKind
    fetch: str
    filename: str  # stable local name, so a second run finds the file it already has
    alt: str = ""
    mime_type: str | None = None
    size: int | None = None  # bytes, when the platform says


@dataclass
class SourcePost:
    """One post of the account, as the platform has it."""

    platform: str
    id: str  # exactly what `post` records: at:// URI, Mastodon status id, X tweet id
    url: str  # where a person sees it
    created_at: datetime  # aware
    text: str  # exactly what the author typed
    cid: str | None = None  # Bluesky only (reply refs need it)
    links: tuple[LinkSpan, ...] = ()
    mentions: tuple[MentionSpan, ...] = ()
    media: tuple[SourceMedia, ...] = ()
    #: the post this one replies to (its ID), and whether that post is the account's own
    reply_to: str | None = None
    reply_to_self: bool = False
    #: the first post of the reply chain, when the platform says (Bluesky's reply.root)
    root_id: str | None = None
    #: a repost/boost/retweet of somebody else's post: never part of the person's threads
    repost: bool = False
    #: what cannot be written as text of the post and is kept as links after it: a quoted post,
    #: a link card whose URL is not in the text, a poll's or video's page (see `backup.markdown`)
    attachments: tuple[str, ...] = ()
    content_warning: str | None = None  # Mastodon spoiler_text
    edited_at: datetime | None = None
    language: str | None = None
    #: anything a reader could not carry over and says so (shown in the backup's summary, never dropped silently)
    notes: tuple[str, ...] = ()


@dataclass
class SourceThread:
    """A post of the account and its chain of self-replies, oldest first."""

    posts: list[SourcePost] = field(default_factory=list)

    @property
    def root(self) -> SourcePost:
        return self.posts[0]

    @property
    def ids(self) -> list[str]:
        return [p.id for p in self.posts]


@dataclass
class Skipped:
    """What a reader saw and did not turn into threads, counted by reason for the summary."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, reason: str, n: int = 1) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + n


def build_threads(posts: Iterable[SourcePost], skipped: Skipped | None = None) -> list[SourceThread]:
    """The person's threads: each top-level post with every self-reply below it, by time.

    A reply to somebody else's post is not the person's thread (skipped, counted), and so is
    anything below it, even the person's own follow-ups. A self-reply whose parent is not among
    `posts` (deleted, or outside a `--since` window) is continued from by nobody: it starts a
    thread of its own only when its parent is unknown *and* it replies to the account itself
    (the older part was lost); callers that back up incrementally attach such replies to the
    thread already in the archive before calling this. Posts within a thread are in `created_at`
    order (ties by id), so branches of self-replies come out interleaved by time, as a reader saw
    them appear.
    """
    skipped = skipped if skipped is not None else Skipped()
    before = skipped.counts.get("replies to other accounts", 0)
    by_id: dict[str, SourcePost] = {}
    for p in posts:
        if p.repost:
            skipped.add("reposts")
            continue
        by_id.setdefault(p.id, p)
    children: dict[str, list[SourcePost]] = {}
    roots: list[SourcePost] = []
    for p in by_id.values():
        if p.reply_to is None:
            roots.append(p)
        elif not p.reply_to_self:
            skipped.add("replies to other accounts")
        elif p.reply_to in by_id:
            children.setdefault(p.reply_to, []).append(p)
        else:
            roots.append(p)  # the parent is the person's but not here: keep the post, never drop it
    threads: list[SourceThread] = []
    for root in roots:
        chain: list[SourcePost] = []
        todo = [root]
        while todo:
            p = todo.pop()
            chain.append(p)
            todo.extend(children.get(p.id, ()))
        head, rest = chain[0], chain[1:]
        rest.sort(key=lambda q: (q.created_at, q.id))
        threads.append(SourceThread([head, *rest]))
    reached = sum(len(t.posts) for t in threads)
    lost = len(by_id) - reached - skipped.counts.get("replies to other accounts", 0) + before
    if lost:
        skipped.add("self-replies below a reply to another account", lost)
    threads.sort(key=lambda t: (t.root.created_at, t.root.id))
    return threads


@dataclass
class ReadResult:
    """One reader pass: the account's posts newer than the cursor it was given, and where to start next time."""

    posts: list[SourcePost]
    #: opaque to everyone but the reader that made it; stored per account in state_dir
    cursor: str | None
    skipped: Skipped = field(default_factory=Skipped)
    #: requests made (pages), for the summary and the benchmark's requests-per-post
    requests: int = 0


class Reader(Protocol):
    """One platform's way of listing the account's own posts and fetching their media.

    Readers never sleep and never write files: they raise the publisher's `PlatformError` kinds
    (`TransientError`, `RateLimitedError(reset_at)`, `UnauthorizedError`...) and the shared backup
    code decides whether to wait, retry or stop with a resumable cursor.
    """

    platform: str

    def read(self, *, cursor: str | None = None, since: datetime | None = None,
             on_page: Callable[[int], None] | None = None) -> ReadResult:
        """Every own post newer than `cursor` (all when None) and not older than `since`.

        A reader that reads page by page over a network may also take `on_posts`, called with each
        page's posts as soon as they are known: `run_backup` then starts their media downloads while
        the next pages are read (it passes `on_posts` only to a `read` that names it).
        """

    def fetch_media(self, media: SourceMedia) -> bytes:
        """The attachment's bytes exactly as the platform serves them (no re-encoding)."""
