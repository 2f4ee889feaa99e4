"""The mirror's poll: back up the source account, look at every source thread, hand the settled ones on.

One poll runs at a time (a lock: the interval job and a settle wake-up may meet). It never
publishes itself: a settled thread is given to the daemon's worker (`Publisher.submit`), which
publishes it with `post`'s own code to the target platforms only, one thread at a time, beside
the scheduled ones. Whether a thread is done is read back from the archive at the next look
(every ID is recorded there after each post), never assumed: a crash between a post and the next
poll costs nothing but a resume.

Why the archive and not the backup's outcome decides what is a source thread: the outcome only
tells what was written *this* poll; a restart, a thread retried after a rate limit, a reply the
person appended by hand all have to be seen from what the archive records. The outcome only adds
what the archive cannot tell: when the newest post was written.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from crossposter.mirror.changes import DELETED, EDITED, Change, SourceView, compare, read_view
from crossposter.mirror.decide import Decision, Rules, Seen, decide, has_tag, id_time
from crossposter.mirror.propagate import (
    DeleteFn,
    UpdateFn,
    delete_posts,
    target_group,
    update_posts,
    updated_text,
)
from crossposter.mirror.source import BackupFn, into_path, run_source_backup
from crossposter.mirror.state import DUE, FINAL, HELD, MAX_PROBLEMS, MIRRORED, MirrorState, MirrorThread, iso
from crossposter.platforms.registry import get as get_spec

if TYPE_CHECKING:
    from crossposter.archive import Archive, Thread
    from crossposter.config import Config

log = logging.getLogger("crossposter.mirror")

#: (config, window start, post IDs inside it) -> what the source has now (`changes.read_view`)
ChangesFn = Callable[["Config", datetime, list[str]], SourceView]
#: (config, [(post ID, recorded cid)]) -> True only when every one is certainly unchanged on the source
UnchangedFn = Callable[["Config", list[tuple[str, "str | None"]]], bool]


def now_utc() -> datetime:
    return datetime.now(UTC)


class Publisher(Protocol):
    """What the mirror needs of the daemon (the engine implements it; tests pass a fake)."""

    def submit(self, archive: Path, title: str, platforms: list[str]) -> None:
        """Publish (or resume) the thread on these platforms, through the daemon's worker."""

    def outcome(self, archive: Path, title: str, thread: Thread) -> tuple[str | None, datetime | None]:
        """The daemon's last outcome for this very text ("failed", "retrying"...) and its retry time."""


class Mirror:
    """The cross-posting bot's brain; `poll()` is what the daemon's interval job runs."""

    def __init__(self, config: Config, publisher: Publisher, *, backup: BackupFn | None = None,
                 clock: Callable[[], datetime] = now_utc, backfill: datetime | None = None,
                 changes: ChangesFn | None = None, delete: DeleteFn | None = None,
                 update: UpdateFn | None = None, unchanged: UnchangedFn | None = None) -> None:
        m = config.mirror
        if m is None:
            raise ValueError("the config has no mirror section")
        self.config = config
        self.publisher = publisher
        self.backup = backup or run_source_backup
        self.changes = changes or read_view
        self.delete = delete or delete_posts
        self.update = update or update_posts
        #: a cheap "these posts are as recorded" before the full read for edits (`backup_child.records_unchanged`)
        self.unchanged = unchanged
        self.clock = clock
        self.state = MirrorState.load(config.state_path)
        now = clock()
        if self.state.source and self.state.source != m.from_:
            log.warning("mirror: the source changed from %s to %s: starting afresh (nothing posted before now "
                        "is mirrored)", self.state.source, m.from_, extra={"event": "mirror_source_changed"})
            self.state = MirrorState(self.state.path)
        if self.state.start is None:
            self.state.start = now
            self.state.source = m.from_
            log.info("mirror: first start; threads posted on %s before %s are not mirrored%s", m.from_,
                     now.isoformat(timespec="seconds"),
                     "" if not (backfill or m.backfill) else f" unless started since "
                     f"{(backfill or m.backfill).isoformat(timespec='seconds')} (backfill)",  # type: ignore[union-attr]
                     extra={"event": "mirror_first_start"})
            self.state.save()
        backfills = [b for b in (backfill, m.backfill) if b is not None]
        self.rules = Rules(settle=timedelta(seconds=m.settle), catch_up=timedelta(seconds=m.catch_up),
                           start=self.state.start, backfill=min(backfills) if backfills else None,
                           skip_tag=m.skip_tag)
        self._lock = threading.Lock()
        #: the earliest time a waiting thread wants another look (the daemon schedules a poll then)
        self.wake: datetime | None = None
        #: this poll's source threads in the archive, by root ID: (archive, thread, recorded source posts)
        self._seen: dict[str, tuple[Archive, Thread, list[Any]]] = {}

    @property
    def source(self) -> str:
        assert self.config.mirror is not None
        return self.config.mirror.from_

    @property
    def targets(self) -> list[str]:
        assert self.config.mirror is not None
        return list(self.config.mirror.to)

    def poll(self) -> datetime | None:
        """Back up, decide, hand on; returns when a waiting thread wants another look (or None)."""
        with self._lock:
            now = self.clock()
            newest: dict[str, datetime] = {}
            try:
                result = self.backup(self.config)
            except Exception as e:  # a platform or archive error: report it, look at the archive anyway
                self._problem(f"backup of {self.source} failed: {type(e).__name__}: {e}", now)
                self.state.last_poll_ok = False
            else:
                newest = result.newest
                for p in result.problems:
                    self._problem(f"backup of {self.source}: {p}", now, kind="warning")
                for n in result.notes:  # (once: a post is written once) in the log, not among the problems
                    log.warning("mirror: backup of %s: %s", self.source, n, extra={"event": "backup_note"})
                self.state.last_poll_ok = result.complete and not result.problems
            before = {k: t.status for k, t in self.state.threads.items()}
            messages = {k: t.message for k, t in self.state.threads.items()}
            decisions = self._look(now, newest)
            decisions = self._hold_edited(decisions, before, messages, now)
            self._check_changes(now)
            self.state.last_poll = now
            self.state.save()  # what is to be deleted is on disk before the first delete request
            self._propagate(now)
            for d in decisions:
                if d.publish:
                    again = before.get(d.thread.root_id) == DUE  # in flight or waiting for the worker: say it once
                    log.log(logging.DEBUG if again else logging.INFO,"mirror: %r is settled; publishing to %s", d.thread.title, ", ".join(self.targets),
                             extra={"event": "mirror_publish", "title": d.thread.title,
                                    "archive": d.thread.archive})
                    self.publisher.submit(Path(d.thread.archive), d.thread.title, self.targets)
            wakes = [d.wake for d in decisions if d.wake is not None]
            self.wake = min(wakes) if wakes else None
            return self.wake

    # ------------------------------------------------------------------ looking at the archive

    def _look(self, now: datetime, newest: dict[str, datetime]) -> list[Decision]:
        from crossposter.archive import ArchiveError, read_archive

        path = into_path(self.config)
        if not path.exists():
            return []
        try:
            archive = read_archive(path)
        except ArchiveError as e:
            self._problem(f"cannot read the mirror's archive: {e}", now)
            return []
        decisions = []
        self._seen = {}
        for thread in archive.threads:
            d = self._one(archive, thread, now, newest)
            if d is None:
                continue
            self.state.threads[d.thread.root_id] = d.thread
            if d.note:
                level = logging.INFO if d.thread.status in (MIRRORED, *FINAL) else logging.WARNING
                log.log(level, "mirror: %r: %s", d.thread.title, d.note,
                        extra={"event": f"mirror_{d.thread.status}", "title": d.thread.title})
            decisions.append(d)
        return decisions

    def _one(self, archive: Archive, thread: Thread, now: datetime, newest: dict[str, datetime]) -> Decision | None:
        from crossposter.thread_meta import MetadataError, of

        try:
            meta = of(thread, self.config.timezone)
        except MetadataError:
            return None  # status and check report a broken block; nothing in it is trusted
        entries = meta.recorded(self.source)
        if not entries or thread.skipped:
            return None  # not a thread of the source account (or one the person marked skip)
        root_id = entries[0].id
        self._seen[root_id] = (archive, thread, list(entries))
        prev = self.state.threads.get(root_id)
        posts = len(entries)
        if (prev is not None and posts == prev.posts and (prev.status in FINAL or prev.status == MIRRORED)
                and prev.archive == str(archive.path) and prev.title == thread.title):
            return None  # nothing new: no planning, no work (the idle poll stays cheap)
        started = id_time(self.source, root_id)
        known = [newest[root_id]] if root_id in newest else []
        if prev is not None and posts > prev.posts:
            known += [t for e in entries[prev.posts:] if (t := id_time(self.source, e.id)) is not None]
        elif prev is None:
            known += [t for e in entries if (t := id_time(self.source, e.id)) is not None]
        seen_newest = max(known) if known else None
        complete, tagged = self._progress(archive, thread, meta)
        outcome, retry_at = self.publisher.outcome(Path(archive.path), thread.title, thread)
        # the daemon published this very text to the end (its plan used the instance's real Mastodon limit,
        # which ours, made offline at the configured one, may not match)
        complete = complete or outcome == "done"
        seen = Seen(root_id=root_id, archive=str(archive.path), title=thread.title, posts=posts, started=started,
                    newest=seen_newest, tagged=tagged, complete=complete, outcome=outcome, retry_at=retry_at)
        d = decide(prev, seen, now, self.rules)
        self._ownership(prev, d, meta)
        return d

    def _ownership(self, prev: MirrorThread | None, d: Decision, meta: Any) -> None:
        """Which target posts are the mirror's own: those recorded while it had handed the thread over.

        Only they may ever be deleted for it. What was recorded before the first hand-over (by `post`, by
        hand, a thread the mirror found published) is someone else's, and stays so.
        """
        t = d.thread
        recorded = {p: [e.id for e in meta.recorded(p)] for p in self.targets}
        if prev is not None and prev.status == DUE:
            for p, ids in recorded.items():
                known = set(t.foreign.get(p, ())) | set(t.own.get(p, ()))
                new = [i for i in ids if i not in known]
                if new:
                    t.own.setdefault(p, []).extend(new)
        if d.publish and (prev is None or prev.status != DUE):
            for p, ids in recorded.items():
                mine = set(t.own.get(p, ()))
                t.foreign[p] = [i for i in ids if i not in mine]

    def _progress(self, archive: Archive, thread: Thread, meta: Any) -> tuple[bool, bool]:
        """Whether every target has every planned post recorded, and whether the skip tag is in a post."""
        from crossposter.plan import plan_thread

        plan = plan_thread(archive, thread, self.config, self.targets)
        complete = not plan.errors and all(
            len(meta.recorded(p)) >= len(plan.platforms[p].posts) and p not in meta.pending
            for p in self.targets if p in plan.platforms)
        tag = self.rules.skip_tag
        tagged = bool(tag) and has_tag([post.text for pp in plan.platforms.values() for post in pp.posts], tag or "")
        return complete, tagged

    # ------------------------------------------------------------------ edits and deletions

    def _check_changes(self, now: datetime) -> None:
        """Every `edits_every`: read the source over `edits_within` and report what changed (see `changes`)."""
        from crossposter.archive import ArchiveError, read_archive
        from crossposter.thread_meta import MetadataError, of

        m = self.config.mirror
        assert m is not None
        last = self.state.last_changes_check
        if last is not None and last <= now < last + timedelta(seconds=m.edits_every):
            return
        since = now - timedelta(seconds=m.edits_within)
        watched = {k for k, t in self.state.threads.items()
                   if (t.status not in FINAL or t.mirrored_posts) and t.newest is not None and t.newest >= since}
        path = into_path(self.config)
        self.state.last_changes_check = now
        if not watched or not path.exists():
            return  # nothing recent: not a single request
        try:
            archive = read_archive(path)
        except ArchiveError:
            return  # `_look` has reported it
        threads: list[tuple[Thread, list[Any]]] = []
        for thread in archive.threads:
            try:
                entries = list(of(thread, self.config.timezone).recorded(self.source))
            except MetadataError:
                continue
            if entries and entries[0].id in watched:
                threads.append((thread, entries))
        if not threads:
            return
        expect = [e.id for _, entries in threads for e in entries
                  if (t := id_time(self.source, e.id)) is None or t >= since]
        try:
            view = self.changes(self.config, since, expect)
        except Exception as e:  # the next look is `edits_every` later; nothing is inferred from a failed read
            self._problem(f"reading {self.source} for edits and deletions failed: {type(e).__name__}: {e}", now,
                          kind="warning")
            return
        for thread, entries in threads:
            t = self.state.threads[entries[0].id]
            for c in compare(t.root_id, entries, view, set(t.reported), t.versions):
                where = f"{archive.path}:{thread.line}"
                cur = view.posts.get(c.post_id)
                if t.mirrored_posts:
                    after = "the archive and the mirrored copies are unchanged"
                elif c.kind == EDITED and cur is not None and cur.sha != entries[c.index - 1].sha:
                    after = ("the archive is unchanged; the thread is not mirrored with the text from before the "
                             "edit while the archive holds it as backed up (put the new text there)")
                else:
                    after = "the archive is unchanged and is what gets mirrored (edit it there to change that)"
                message = f"{where}: {thread.title!r}: {c.detail}; reported only: {after}"
                if c.kind == DELETED and m.deletions == "delete":
                    message = f"{where}: {thread.title!r}: {c.detail}; {self._plan_deletion(archive, thread, t, c)}"
                elif (c.kind == EDITED and m.edits == "update" and t.mirrored_posts and cur is not None
                      and cur.sha != entries[c.index - 1].sha):
                    message = f"{where}: {thread.title!r}: {c.detail}; {self._plan_update(archive, thread, t, c, cur)}"
                log.warning("mirror: %s", message, extra={"event": f"mirror_{c.kind}", "title": thread.title,
                                                           "archive": str(archive.path), "line": thread.line,
                                                           "post": c.post_id})
                t.reported.append(c.key)
                self.state.changes.append({"at": iso(now), "kind": c.kind, "title": thread.title,
                                           "archive": str(archive.path), "line": thread.line, "post": c.post_id,
                                           "index": c.index, "message": message})
            for e in entries:  # the edit time each post has now: the next edit is one that changes it
                cur = view.posts.get(e.id)
                if cur is not None:
                    t.versions[e.id] = cur.edited_at or ""
        del self.state.changes[:-MAX_PROBLEMS]

    # ------------------------------------------------------------------ an edit made while a thread settles

    def _hold_edited(self, decisions: list[Decision], before: dict[str, str], messages: dict[str, str],
                     now: datetime) -> list[Decision]:
        """Hold back a settled thread whose source text was edited (or a post deleted) after it was backed up.

        The archive holds the text the backup wrote, so publishing now would mirror the text before
        the edit. The archive is not rewritten here (it is the person's file, and a post's Markdown,
        links and images come from the backup's converter, not from a diff): the thread is held and
        reported. It goes out, with what the archive says, as soon as the archive's text of each edited
        post is no longer the backup's (the person copied the edit, or changed it otherwise: their
        text wins), or the source reads as the archive again. A post the person already edited in the
        archive is never a reason to hold; an edit that leaves the text alone (Bluesky record, Mastodon
        media or alt text) is reported by the regular look and does not hold. One read of the source
        (the same as `_check_changes`) covers every thread about to be handed on; a held thread is read
        again only every `edits_every`. A post deleted on the source holds the thread the same way (the
        person took it back: it is not published from the archive) until the archive no longer holds it.
        """
        from crossposter.plan import plan_thread
        from crossposter.publish import text_sha

        m = self.config.mirror
        assert m is not None
        asked: dict[str, list[Any]] = {}  # root -> the recorded posts whose archive text is the backup's
        for d in decisions:
            t = d.thread
            if not d.publish or before.get(t.root_id) == DUE or t.root_id not in self._seen:
                continue
            archive, thread, entries = self._seen[t.root_id]
            parts = plan_thread(archive, thread, self.config, [self.source]).platforms.get(self.source)  # type: ignore[list-item]
            if parts is None or len(parts.posts) != len(entries):
                continue  # the person changed the parts: their archive is what they want mirrored
            as_backed_up = [e for e, post in zip(entries, parts.posts, strict=True)
                            if e.sha and e.sha == text_sha(post.text)]
            if as_backed_up:
                asked[t.root_id] = as_backed_up
        if not asked:
            return decisions
        # held at a read less than `edits_every` ago: still held while an edited post is as backed up, else let go
        recent = {k for k in asked if before.get(k) == HELD and (t := self.state.threads[k]).hold_checked
                  is not None and now < t.hold_checked + timedelta(seconds=m.edits_every)}
        held_recently = {k for k in recent if set(self.state.threads[k].held) & {e.id for e in asked[k]}}
        to_read = [k for k in asked if k not in recent]
        if to_read and self.unchanged is not None:
            try:
                same = self.unchanged(self.config, [(e.id, e.cid) for k in to_read for e in asked[k]])
            except Exception:  # the full read decides
                same = False
            if same:
                to_read = []  # nothing was edited: every one of them is handed on below, without a read
        view: SourceView | None = None
        if to_read:
            starts = [t.started or t.newest or now for k in to_read if (t := self.state.threads[k])]
            expect = [e.id for k in to_read for e in asked[k]]
            try:
                view = self.changes(self.config, min(starts) - timedelta(minutes=1), expect)
            except Exception as e:  # mirrored as the archive says, as before this check existed; said once a poll
                self._problem(f"reading {self.source} for edits before publishing failed ({type(e).__name__}: {e}); "
                              "the settled threads are mirrored as the archive holds them", now, kind="warning")
                to_read = []
        out = []
        for d in decisions:
            k = d.thread.root_id
            if k not in asked or (k not in held_recently and k not in to_read):
                out.append(d)
                continue
            t = d.thread
            if k in held_recently:
                t.status, t.message = HELD, messages.get(k, "")
                out.append(Decision(t))
                continue
            assert view is not None
            t.hold_checked, t.held = now, []
            # the regular look's rule (`changes.compare`): a text that only reads differently is no edit
            entries = self._seen[k][2]
            found = compare(k, entries, view, set(), t.versions)
            edited = [(c.index, entries[c.index - 1]) for c in found if c.kind == EDITED
                      and entries[c.index - 1] in asked[k] and view.posts[c.post_id].sha != entries[c.index - 1].sha]
            # a post deleted on the source before its thread went out: mirroring it would publish what the
            # person took back, so it holds the thread the same way until the archive no longer holds it
            deleted = [(c.index, entries[c.index - 1]) for c in found if c.kind == DELETED
                       and entries[c.index - 1] in asked[k]]
            if not edited and not deleted:
                out.append(d)
                continue
            archive, thread, _ = self._seen[k]
            t.status, t.held = HELD, [e.id for _, e in edited + deleted]
            said = []
            if edited:
                said.append(f"post {', '.join(str(i) for i, _ in edited)} of {len(entries)} was edited on the "
                            "source after it was backed up")
            if deleted:
                said.append(f"post {', '.join(str(i) for i, _ in deleted)} of {len(entries)} was deleted on the "
                            "source")
            t.message = (f"{'; '.join(said)}; not mirrored while the archive holds the text as it was backed up: "
                         f"change it in {archive.path}:{thread.line} (put in the new text, or remove the deleted "
                         "post; what the archive then says is mirrored)")
            for i, e in edited + deleted:
                if (i, e) in deleted:
                    key = f"deleted {e.id}"
                    what = ("was deleted on the source while the thread waited to settle; held: the archive still "
                            "holds it (remove it there, and the rest is mirrored)")
                    kind = "deleted"
                else:
                    cur = view.posts[e.id]
                    key = f"edited {e.id} {cur.cid or cur.edited_at or cur.sha}"
                    what = ("was edited on the source while the thread waited to settle; held: the archive holds "
                            "the text from before the edit (put the new text there, and it is mirrored)")
                    kind = "edited"
                if key in t.reported:
                    continue
                t.reported.append(key)
                message = f"{archive.path}:{thread.line}: {thread.title!r}: post {i} of {len(entries)} {what}"
                log.warning("mirror: %s", message, extra={"event": "mirror_held", "title": thread.title,
                                                           "archive": str(archive.path), "line": thread.line,
                                                           "post": e.id})
                self.state.changes.append({"at": iso(now), "kind": kind, "title": thread.title,
                                           "archive": str(archive.path), "line": thread.line, "post": e.id,
                                           "index": i, "message": message})
            out.append(Decision(t))
        return out

    # ------------------------------------------------------------------ deletions taken to the targets

    def _plan_deletion(self, archive: Archive, thread: Thread, t: MirrorThread, c: Change) -> str:
        """Write down which of the mirror's own target posts source post `c.index` became (`deleting`).

        Returns what happens, for the report: the posts to delete, and any left alone and why.
        """
        group = target_group(archive, thread, self.config, self.source, self.targets, c.index)
        if group.problem is not None:
            return f"its copies on the targets are not deleted: {group.problem}"
        doing, left = [], []
        for p, ids in group.posts.items():
            own = set(t.own.get(p, ()))
            mine = [i for i in ids if i in own and i not in t.deleted.get(p, ()) and i not in t.deleting.get(p, ())]
            if mine:
                t.deleting.setdefault(p, []).extend(mine)
                doing.append(f"{p} {', '.join(mine)}")
            others = [i for i in ids if i not in own]
            if others:
                left.append(f"{p} {', '.join(others)} (not published by the mirror: left alone)")
        if not group.posts or not any(group.posts.values()):
            return "it was not mirrored to any target yet (the archive still holds its text; remove it there)"
        said = f"deleting its copies on {'; '.join(doing)}" if doing else "nothing of it to delete on the targets"
        return said + (f"; {'; '.join(left)}" if left else "")

    def _plan_update(self, archive: Archive, thread: Thread, t: MirrorThread, c: Change, cur: Any) -> str:
        """Write down the new text of the one Mastodon post an edited source post became (`updating`)."""
        said = []
        for p in self.targets:
            if not get_spec(p).edits_posts:
                said.append(f"{p} cannot edit a post: not updated there")
                continue
            if cur.markdown is None:
                said.append(f"not updated on {p}: the post has images, which are not read again")
                continue
            u = updated_text(archive, thread, self.config, self.source, p, c.index, cur.markdown)
            if u.problem is not None or u.post_id is None or u.text is None:
                said.append(f"not updated on {p}: {u.problem}")
            elif u.post_id not in t.own.get(p, ()):
                said.append(f"{p} post {u.post_id} was not published by the mirror: left alone")
            else:
                t.updating.setdefault(p, {})[u.post_id] = u.text
                said.append(f"updating {p} post {u.post_id} with the new text")
        return "; ".join(said) + " (the archive keeps the text as backed up)"

    def _propagate(self, now: datetime) -> None:
        """Send the edits and deletions the state lists, recording each confirmed one at once (see `propagate`)."""
        m = self.config.mirror
        assert m is not None
        if m.edits == "update":
            self._send(_EDITS, self.update, now)
        if m.deletions == "delete":  # `report`: nothing is ever deleted, even what a former `delete` left listed
            self._send(_DELETIONS, self.delete, now)

    def _send(self, job: _Job, send: Callable[..., dict[str, Any]], now: datetime) -> None:
        """Send what `job.pending` lists, platform by platform, and record each answer before the next platform.

        The intent was written before any request (a crash repeats only unconfirmed, idempotent requests); a
        post the mirror did not publish is never touched (a state file edited by hand): dropped, said.
        """
        for t in list(self.state.threads.values()):
            pending: dict[str, Any] = getattr(t, job.pending)
            done: dict[str, list[str]] = getattr(t, job.done)
            for p in list(pending):
                own = t.own.get(p, ())
                stray = [i for i in pending[p] if i not in own]
                if stray:
                    self._problem(f"not {job.doing} {p} post(s) {', '.join(stray)} of {t.title!r}: not published "
                                  "by the mirror", now)
                skip = set(stray) | (set(done.get(p, ())) if job.once else set())
                work = pending[p] = _without(pending[p], skip)
                if not work:
                    del pending[p]
                    continue
                try:
                    outcomes = send(self.config, p, work)
                except Exception as e:  # the intent stays: the next poll tries again
                    self._problem(f"{job.doing} {len(work)} post(s) of {t.title!r} on {p} failed: "
                                  f"{type(e).__name__}: {e}", now)
                    continue
                for post_id in list(work):
                    outcome = outcomes.get(post_id, ("retry", "no answer"))
                    if outcome is not None and outcome[0] == "retry":
                        self._problem(f"{job.doing} {p} post {post_id} of {t.title!r} failed (tried again at the next "
                                      f"poll): {outcome[1]}", now, kind="warning")
                        continue
                    if isinstance(work, dict):
                        del work[post_id]
                    else:
                        work.remove(post_id)
                    if outcome is None:
                        done.setdefault(p, []).append(post_id)
                        kind, text = job.ok, f"{job.did} {p} post {post_id} of {t.title!r} {job.why}"
                        log.info("mirror: %s", text, extra={"event": job.event, "title": t.title,
                                                            "platform": p, "post": post_id})
                    else:
                        kind, text = job.failed, f"could not {job.verb} {p} post {post_id} of {t.title!r}: {outcome[1]}"
                        self._problem(text, now)
                    self.state.actions.append({"at": iso(now), "kind": kind, "platform": p, "post": post_id,
                                               "title": t.title, "message": text})
                if not work:
                    del pending[p]
                del self.state.actions[:-MAX_PROBLEMS]
                self.state.save()  # each confirmed answer on disk before the next platform's requests

    def _problem(self, message: str, now: datetime, kind: str = "error") -> None:
        log.log(logging.ERROR if kind == "error" else logging.WARNING, "mirror: %s", message,
                extra={"event": "mirror_problem"})
        self.state.problem(message, when=now, kind=kind)


class _Job(NamedTuple):
    """One kind of request the mirror sends about its own copies: deleting them or editing them."""

    pending: str  # the MirrorThread field listing them, written before the request (ids, or id -> new text)
    done: str  # the MirrorThread field of the confirmed ones
    once: bool  # a confirmed one is never sent again (a deletion; an edit may come twice)
    doing: str
    verb: str
    did: str
    why: str
    ok: str  # the `actions` kind of a confirmed one, and of a refused one
    failed: str
    event: str


_DELETIONS = _Job("deleting", "deleted", True, "deleting", "delete", "deleted", "(its source post was deleted)",
                  "deleted", "delete_failed", "mirror_copy_deleted")
_EDITS = _Job("updating", "updated", False, "editing", "edit", "gave", "its source post's new text",
              "updated", "update_failed", "mirror_copy_updated")


def _without(items: list[str] | dict[str, str], skip: set[str]) -> list[str] | dict[str, str]:
    """`items` (a list of IDs or an ID -> text mapping) without the IDs in `skip`, as a new object."""
    if isinstance(items, dict):
        return {i: x for i, x in items.items() if i not in skip}
    return [i for i in items if i not in skip]
