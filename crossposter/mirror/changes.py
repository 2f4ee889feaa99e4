"""Edited and deleted source posts: found, reported once each, never republished.

Why a read of its own. The backup reads *after* its cursor, so it never sees a post written before
the cursor change again: an edit (Bluesky `putRecord` under the same key, a Mastodon edit) or a
deletion of a post already backed up is invisible to it. Every `mirror.edits_every` the mirror
reads the source once more over a window (`mirror.edits_within`: threads whose newest post is
that recent) with the backup's own reader (`reader.read(since=...)`, so the text is converted the
very way the archive's was), in the backup's child process, and compares with what the archive
recorded: the `sha` of each post's text, and on Bluesky its record `cid`.

Why a deletion needs two looks. "Not in this read" is not "deleted": a read can be cut short, a
server can leave a status out of a listing (visibility, a post dated before its record key), and
a post can fall just outside the window. A post is reported deleted only when it is missing from
a complete read of a window that covers it *and* the adapter's `lookup` (getRecord, GET status,
GET tweet) says it is gone. Anything less certain is not reported.

What is done about them: `report` (status, the log), once per post and version: the archive is
never rewritten (it holds what was mirrored; the person decides), the targets are not touched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crossposter.config import Config

log = logging.getLogger("crossposter.mirror")

EDITED = "edited"
DELETED = "deleted"
#: a post is judged by a window read only when its ID's time is this far inside the window
MARGIN = timedelta(hours=1)


@dataclass(frozen=True)
class Current:
    """One source post as the source has it now."""

    sha: str
    cid: str | None = None
    edited_at: str | None = None
    #: the post as the backup would write it (its images left out), for `edits: update`; None with images
    markdown: str | None = None


@dataclass
class SourceView:
    """What one window read of the source says about the posts the mirror asked about."""

    #: posts found, by ID
    posts: dict[str, Current]
    #: IDs asked about that the source says are gone (missing from a complete read *and* looked up)
    gone: set[str]
    complete: bool = True
    requests: int = 0


@dataclass(frozen=True)
class Change:
    kind: str  # EDITED or DELETED
    root_id: str
    post_id: str
    index: int  # 1-based position of the post in the thread
    posts: int
    #: once-only key: a second edit of the same post (another version) is reported again
    key: str
    detail: str


def compare(root_id: str, entries: list[Any], view: SourceView, reported: set[str],
            versions: dict[str, str]) -> list[Change]:
    """The thread's edits and deletions not reported yet.

    `entries` are the archive's recorded source posts (`id`, `cid`, `sha`); `versions` the Mastodon
    `edited_at` each post had when first looked at (an edit that leaves the text alone only shows there).
    """
    out: list[Change] = []
    n = len(entries)
    for i, e in enumerate(entries, start=1):
        if e.id in view.gone:
            key = f"deleted {e.id}"
            if key not in reported:
                out.append(Change(DELETED, root_id, e.id, i, n, key, f"post {i} of {n} was deleted on the source"))
            continue
        cur = view.posts.get(e.id)
        if cur is None:
            continue
        # whether the post itself changed, as the platform says: a Bluesky record's cid (when both are
        # known), a Mastodon/X `edited_at`. A text that only reads differently (this program converts a
        # status's HTML differently since it was backed up) is not the person's edit.
        if e.cid and cur.cid:
            changed: bool | None = cur.cid != e.cid
        else:
            changed = True if cur.edited_at else (None if cur.cid else False)
        if e.sha and cur.sha != e.sha and changed is not False:
            version = cur.cid or cur.edited_at or cur.sha
            what = "its text changed"
        elif e.cid and cur.cid and cur.cid != e.cid:
            version, what = cur.cid, "its record changed (images, alt text, links or language; the text is the same)"
        elif cur.edited_at and e.id in versions and versions[e.id] != cur.edited_at:
            version, what = cur.edited_at, "it was edited (media, alt text or content warning; the text is the same)"
        else:
            continue
        key = f"edited {e.id} {version}"
        if key not in reported:
            out.append(Change(EDITED, root_id, e.id, i, n, key, f"post {i} of {n} was edited on the source: {what}"))
    return out


def read_view(config: Config, since: datetime, expect: list[str]) -> SourceView:
    """One read of the source account over `since`..now, and a `lookup` of each expected post it lacks.

    Runs where the SDKs may be imported (the backup's child process, or a test).
    """
    from crossposter.commands.backup import _reader
    from crossposter.mirror.decide import id_time
    from crossposter.publish import text_sha

    m = config.mirror
    assert m is not None
    reader, _account = _reader(m.from_, config, None)
    # a little earlier than asked: a post whose recorded date is a little before its ID's time is still read
    result = reader.read(since=since - MARGIN)
    from crossposter.backup.section import post_markdown

    posts = {p.id: Current(sha=text_sha(p.text), cid=p.cid,
                           edited_at=p.edited_at.isoformat() if p.edited_at is not None else None,
                           markdown=None if p.media else post_markdown(p, lambda _i: None))
             for p in result.posts}
    requests = result.requests
    adapter = getattr(reader, "adapter", None) or getattr(reader, "_adapter", None)
    gone: set[str] = set()
    for post_id in expect:
        when = id_time(m.from_, post_id)
        if post_id in posts or (when is not None and when < since) or adapter is None:
            continue  # found, or older than this read: nothing to say
        # missing from the read (or of unknown age: IDs that are not snowflakes, GoToSocial's ULIDs): asked for
        requests += 1
        if adapter.lookup(post_id) is None:
            gone.add(post_id)
    return SourceView(posts=posts, gone=gone, complete=True, requests=requests)


def view_to_json(view: SourceView) -> dict[str, Any]:
    return {"posts": {k: {"sha": v.sha, "cid": v.cid, "edited_at": v.edited_at, "markdown": v.markdown}
                      for k, v in view.posts.items()},
            "gone": sorted(view.gone), "complete": view.complete, "requests": view.requests}


def view_from_json(data: dict[str, Any]) -> SourceView:
    posts = {str(k): Current(sha=str(v.get("sha", "")), cid=v.get("cid"), edited_at=v.get("edited_at"),
                             markdown=v["markdown"] if isinstance(v.get("markdown"), str) else None)
             for k, v in dict(data.get("posts", {})).items() if isinstance(v, dict)}
    return SourceView(posts=posts, gone={str(x) for x in data.get("gone", [])},
                      complete=bool(data.get("complete", False)), requests=int(data.get("requests", 0)))
