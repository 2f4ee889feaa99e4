"""What to do with one source thread at one poll: wait, publish, or leave it alone (and why).

Pure functions of what the archive says now (`Seen`), what the mirror decided before
(`MirrorThread`) and the clock, so every rule is tested without a platform or a daemon:

* a thread started before the mirror's start is never mirrored (no flood of the back catalogue
  on the first start); `backfill` moves that line back on purpose;
* a thread first seen after downtime, started longer than `catch_up` before now, is reported
  and left alone (a week-long outage does not post a week of threads at once);
* a thread with the skip tag in any post is backed up but not mirrored;
* otherwise it waits until its newest post is `settle` old (people post a thread reply by
  reply), then it is published; a reply added later makes it wait again, and the publisher
  continues the target chains after the last recorded post.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import regex

from crossposter.mirror.state import (
    BEFORE_START,
    DUE,
    FAILED,
    FINAL,
    MIRRORED,
    SKIPPED,
    TOO_OLD,
    WAITING,
    MirrorThread,
)


@dataclass(frozen=True)
class Seen:
    """One source thread as the archive has it at this poll."""

    root_id: str
    archive: str
    title: str
    posts: int  # source posts recorded
    started: datetime | None  # the first post's time, when known
    newest: datetime | None  # the newest post's time, when known
    tagged: bool = False  # the skip tag is in one of its posts
    complete: bool = False  # every target has every planned post recorded
    #: the daemon's last outcome for this very text ("failed", "retrying", "stopped"...), and a retry time
    outcome: str | None = None
    retry_at: datetime | None = None


@dataclass(frozen=True)
class Decision:
    thread: MirrorThread
    publish: bool = False
    #: when this thread wants another look (its settle time, a retry), or None
    wake: datetime | None = None
    #: a line for the log when the thread's status changed
    note: str | None = None


@dataclass(frozen=True)
class Rules:
    settle: timedelta
    catch_up: timedelta
    start: datetime  # the mirror's first start
    backfill: datetime | None = None
    skip_tag: str | None = None


def has_tag(texts: list[str], tag: str) -> bool:
    """Whether `tag` appears as a hashtag (whole word, any case) in one of the texts."""
    pattern = regex.compile(rf"(?<![\w#]){regex.escape(tag)}(?!\w)", regex.IGNORECASE)
    return any(pattern.search(t) for t in texts)


def id_time(platform: str, post_id: str) -> datetime | None:
    """When a post was made, read from its ID where the platform encodes it (None otherwise).

    Read by the platform's backup module (`post_time`: Bluesky record keys are TIDs, Mastodon's own
    status IDs and X's are snowflakes). A value outside 2006..tomorrow is not trusted.
    """
    from importlib import import_module

    from crossposter.platforms import registry

    module = registry.get(platform).backup if platform in registry.names() else None
    read = getattr(import_module(module), "post_time", None) if module else None
    try:
        when = read(post_id) if read is not None else None
    except (ValueError, OverflowError, OSError):
        return None
    if when is None or not datetime(2006, 1, 1, tzinfo=UTC) <= when <= datetime.now(UTC) + timedelta(days=1):
        return None
    return when


def _first_look(seen: Seen, now: datetime, rules: Rules) -> MirrorThread:
    began = seen.started or seen.newest or now
    t = MirrorThread(root_id=seen.root_id, archive=seen.archive, title=seen.title, started=seen.started,
                     newest=seen.newest or now, posts=seen.posts)
    backfilled = rules.backfill is not None and began >= rules.backfill
    if not backfilled and began < rules.start:
        t.status = BEFORE_START
        t.message = (f"started {began.isoformat(timespec='seconds')}, before the mirror's start "
                     f"{rules.start.isoformat(timespec='seconds')} (backfill to mirror it)")
    elif not backfilled and began < now - rules.catch_up:
        t.status = TOO_OLD
        t.message = (f"started {began.isoformat(timespec='seconds')}, more than catch_up "
                     f"({rules.catch_up.total_seconds():.0f} s) before the mirror saw it; not mirrored")
    elif seen.complete:
        t.status, t.mirrored_posts = MIRRORED, seen.posts  # published to the targets before (e.g. by `post`)
    return t


def decide(prev: MirrorThread | None, seen: Seen, now: datetime, rules: Rules) -> Decision:
    """The thread's new record and whether to publish it now (see the module docstring)."""
    if prev is None:
        t = _first_look(seen, now, rules)
        before = None
    else:
        t = MirrorThread(**{**prev.__dict__, "reported": list(prev.reported), "versions": dict(prev.versions),
                            "held": list(prev.held), "updating": {p: dict(m) for p, m in prev.updating.items()},
                            **{k: {p: list(ids) for p, ids in getattr(prev, k).items()}
                               for k in ("own", "foreign", "deleting", "deleted", "updated")}})
        before = prev.status
        t.archive, t.title = seen.archive, seen.title  # a renamed heading is still the same thread
        if t.started is None and seen.started is not None:
            t.started = seen.started
        if seen.posts > t.posts:  # replies arrived: quiet again only `settle` after the newest
            newest = seen.newest if seen.newest is not None and seen.newest > (t.newest or seen.newest) else None
            t.newest = newest or now
        t.posts = seen.posts
        if t.status == BEFORE_START and rules.backfill is not None and t.started and t.started >= rules.backfill:
            t.status, t.message = WAITING, ""  # backfilled since
    if t.status in FINAL:
        return Decision(t, note=t.message if t.status != before else None)
    if rules.skip_tag and seen.tagged:
        t.status = SKIPPED
        t.message = (f"{rules.skip_tag} in one of its posts: not mirrored"
                     + (" further" if t.mirrored_posts else ""))
        return Decision(t, note=t.message)
    if seen.complete:
        t.status, t.mirrored_posts, t.message = MIRRORED, seen.posts, ""
        return Decision(t, note="mirrored" if before != MIRRORED else None)
    if seen.outcome == "failed":
        t.status = FAILED
        t.message = "publishing failed (see status and the log); a new reply or an edit makes it try again"
        return Decision(t, note=t.message if before != FAILED else None)
    settle_at = (t.newest or now) + rules.settle
    if now < settle_at:
        t.status, t.message = WAITING, ""
        return Decision(t, wake=settle_at)
    if seen.outcome == "retrying" and seen.retry_at is not None and seen.retry_at > now:
        t.status, t.message = DUE, f"waiting to retry at {seen.retry_at.isoformat(timespec='seconds')}"
        return Decision(t, wake=seen.retry_at)
    t.status, t.message = DUE, ""
    return Decision(t, publish=True)
