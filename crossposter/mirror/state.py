"""What the mirror remembers between polls and restarts: `state_dir/mirror-state.json`.

The archive stays the truth about what is published where (every ID is recorded there after each
post, and publishing resumes from it), so this file only holds what the archive cannot say:
when the mirror first started (nothing posted before it is mirrored), which source threads it has
seen and what it decided about each (waiting to settle, mirrored, too old, skipped), the last poll,
and the problems to show in `status`. Losing it is safe but not free: the next start is a "first
start" again and would treat the back catalogue as old (nothing is re-posted: a thread already
published on a target has its IDs in the archive and the publisher skips what is recorded).

Written atomically (temp file, fsync, rename), mode 0600, every message redacted: server answers
end up in `problems`.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crossposter.atomic import write_atomic

log = logging.getLogger("crossposter.mirror")

STATE_FILE = "mirror-state.json"
#: problems kept for `status`; older ones are in the log
MAX_PROBLEMS = 50

#: a thread's status, in the order a thread normally goes through them
WAITING = "waiting"  # seen, not quiet for `settle` yet
DUE = "due"  # quiet: handed to the publisher (or waiting for a retry)
MIRRORED = "mirrored"  # every target has every post the source had at that moment
#: left alone for good, with the reason
BEFORE_START = "before_start"
TOO_OLD = "too_old"
SKIPPED = "skipped"
FAILED = "failed"
#: settled, but a post was edited on the source since it was backed up: not handed on (`loop._hold_edited`)
HELD = "held"
FINAL = (BEFORE_START, TOO_OLD, SKIPPED)


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    return dt if dt.tzinfo is not None else None


def _ids(value: Any) -> dict[str, list[str]]:
    """platform -> post IDs, as saved; anything else in the file is dropped (it only ever narrows a deletion)."""
    if not isinstance(value, dict):
        return {}
    return {str(k): [str(x) for x in v if isinstance(x, str)] for k, v in value.items() if isinstance(v, list)}


def iso(dt: datetime | None) -> str | None:
    return dt.astimezone(UTC).isoformat(timespec="microseconds") if dt is not None else None


@dataclass
class MirrorThread:
    """One source thread, keyed by its first post's ID on the source platform."""

    root_id: str
    archive: str
    title: str
    started: datetime | None  # the first post's time on the source
    newest: datetime | None  # the newest post's time (or when the mirror first saw it)
    posts: int  # source posts recorded in the archive when last looked at
    status: str = WAITING
    #: source posts the targets had all of when it was last mirrored (a later reply makes it wait again)
    mirrored_posts: int = 0
    message: str = ""
    #: edits and deletions already reported (`changes.Change.key`: reported once)
    reported: list[str] = field(default_factory=list)
    #: Mastodon's `edited_at` of each post when first looked at ("" for never edited)
    versions: dict[str, str] = field(default_factory=dict)
    #: target post IDs recorded while the mirror had handed the thread to the publisher: the mirror's own
    own: dict[str, list[str]] = field(default_factory=dict)
    #: target post IDs already recorded when the mirror first handed it over (`post`'s, by hand): never its own
    foreign: dict[str, list[str]] = field(default_factory=dict)
    #: target posts to delete (a source post was deleted, `deletions: delete`), written before the request
    deleting: dict[str, list[str]] = field(default_factory=dict)
    #: target posts the platform confirmed deleted
    deleted: dict[str, list[str]] = field(default_factory=dict)
    #: target posts to give an edited source post's new text (`edits: update`, Mastodon), before the request
    updating: dict[str, dict[str, str]] = field(default_factory=dict)
    #: target posts the platform confirmed edited
    updated: dict[str, list[str]] = field(default_factory=dict)
    #: when a HELD thread's source was last read for the edit that holds it, and the edited posts' IDs
    hold_checked: datetime | None = None
    held: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["started"], d["newest"], d["hold_checked"] = iso(self.started), iso(self.newest), iso(self.hold_checked)
        return d

    @classmethod
    def from_json(cls, root_id: str, d: dict[str, Any]) -> MirrorThread | None:
        try:
            return cls(root_id=root_id, archive=str(d["archive"]), title=str(d["title"]),
                       started=_time(d.get("started")), newest=_time(d.get("newest")),
                       posts=int(d.get("posts", 0)), status=str(d.get("status", WAITING)),
                       mirrored_posts=int(d.get("mirrored_posts", 0)), message=str(d.get("message", "")),
                       reported=[str(x) for x in d.get("reported", []) if isinstance(x, str)],
                       versions={str(k): str(v) for k, v in dict(d.get("versions") or {}).items()},
                       own=_ids(d.get("own")), foreign=_ids(d.get("foreign")), deleting=_ids(d.get("deleting")),
                       deleted=_ids(d.get("deleted")), hold_checked=_time(d.get("hold_checked")),
                       held=[str(x) for x in d.get("held", []) if isinstance(x, str)],
                       updating={str(p): {str(k): str(v) for k, v in m.items() if isinstance(v, str)}
                                 for p, m in dict(d.get("updating") or {}).items() if isinstance(m, dict)},
                       updated=_ids(d.get("updated")))
        except (KeyError, TypeError, ValueError):
            return None


@dataclass
class MirrorState:
    path: Path
    source: str = ""
    #: the mirror's first start: threads started before it are not mirrored (unless backfilled)
    start: datetime | None = None
    last_poll: datetime | None = None
    last_poll_ok: bool = True
    threads: dict[str, MirrorThread] = field(default_factory=dict)
    problems: list[dict[str, str]] = field(default_factory=list)
    #: edits and deletions reported (newest last), for `status`
    changes: list[dict[str, Any]] = field(default_factory=list)
    #: when the source was last read for edits and deletions
    last_changes_check: datetime | None = None
    #: what the mirror did on the targets (copies deleted, deletions refused or failed), newest last, for `status`
    actions: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def load(cls, state_dir: Path) -> MirrorState:
        """The saved state; an unreadable file is reported and counts as a first start."""
        from crossposter.redact import redact_obj

        path = state_dir / STATE_FILE
        st = cls(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return st
        except (OSError, ValueError) as e:
            log.error("mirror state %s is unreadable (%s): starting as on a first start (nothing older is "
                      "mirrored)", path, e, extra={"event": "mirror_state_unreadable"})
            return st
        if not isinstance(data, dict):
            return st
        st.source = str(data.get("source", ""))
        st.start = _time(data.get("start"))
        st.last_poll = _time(data.get("last_poll"))
        st.last_poll_ok = bool(data.get("last_poll_ok", True))
        threads = data.get("threads")
        if isinstance(threads, dict):
            for root_id, d in threads.items():
                t = MirrorThread.from_json(root_id, d) if isinstance(d, dict) else None
                if t is not None:
                    st.threads[root_id] = t
        st.last_changes_check = _time(data.get("last_changes_check"))
        changes = data.get("changes")
        if isinstance(changes, list):
            st.changes = [redact_obj(c) for c in changes if isinstance(c, dict)][-MAX_PROBLEMS:]
        actions = data.get("actions")
        if isinstance(actions, list):
            st.actions = [redact_obj(a) for a in actions if isinstance(a, dict)][-MAX_PROBLEMS:]
        problems = data.get("problems")
        if isinstance(problems, list):
            st.problems = [redact_obj(p) for p in problems if isinstance(p, dict)][-MAX_PROBLEMS:]
        return st

    def save(self) -> None:
        from crossposter.redact import redact_obj

        with self._lock:
            body = {"source": self.source, "start": iso(self.start), "last_poll": iso(self.last_poll),
                    "last_poll_ok": self.last_poll_ok,
                    "threads": {k: redact_obj(t.to_json()) for k, t in self.threads.items()},
                    "problems": redact_obj(self.problems[-MAX_PROBLEMS:]),
                    "changes": redact_obj(self.changes[-MAX_PROBLEMS:]),
                    "actions": redact_obj(self.actions[-MAX_PROBLEMS:]),
                    "last_changes_check": iso(self.last_changes_check)}
            write_atomic(self.path, (json.dumps(body, indent=1, sort_keys=True) + "\n").encode("utf-8"), 0o600)

    def problem(self, message: str, *, when: datetime | None = None, kind: str = "error") -> None:
        """Remember a problem for `status` (the caller logs it)."""
        self.problems.append({"at": iso(when or datetime.now(UTC)) or "", "kind": kind, "message": message})
        del self.problems[:-MAX_PROBLEMS]
