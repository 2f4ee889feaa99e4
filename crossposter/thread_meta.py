"""A thread's metadata block, validated: the one way every command reads it.

The block is YAML a person can edit, and its values become reply targets, record keys sent to
a server and times the daemon sleeps until. Every reader used to pick values out of the dict on
its own, each with its own idea of the rules: `x: [null]` or `mastodon: [[1, 2]]` became reply
targets, an `id` of `../../etc` or a `pending` rkey of `../../x` went into request paths,
`pending: [1, 2]` raised a TypeError, and `skip: 'true'` skipped the thread for the daemon but
not for `post`. Here a block is either valid as a whole or an error naming the file, the line,
the thread and the key, and every reader (preview, post, status, check, schedule, the daemon)
gets the same typed answer.

The rules, per key (the on-disk format is the README's, unchanged):

* `schedule`: a date and time (see `crossposter.timeparse`, which also bounds its range).
* `queued`, `skip`: `true` or `false`; anything else (`'true'`, `1`, `yes please`) is an error,
  so no two readers can disagree about it.
* each registered platform's name (`bluesky`, `mastodon`, `x`, …): a list of published posts, each
  `{id, url?, cid?, sha?}`, or just the ID (or the post's link, from which the ID is read) when
  recorded by hand. IDs are checked by the shapes the platform's registry entry gives
  (`id_pattern`, `link_pattern`, `numeric_ids`; `strong_refs` allows a `cid`): an at:// URI of an
  `app.bsky.feed.post` record whose key is a TID (atproto's record-key syntax for posts), a status
  ID of letters and digits on Mastodon (digits on Mastodon itself; GoToSocial and Akkoma use ULIDs
  and flake IDs), digits on X. `cid` is Bluesky's content hash (letters and digits), `sha` hex digits.
* `source`: the platform a backed-up thread came from (`crossposter backup`): a registered platform.
  The thread already lives there; its recorded posts on that platform are the originals.
* `pending`: `{bluesky: {index, rkey, created_at, sha?}}`, the record key (a TID) and time fixed
  before a Bluesky post's first attempt (a platform whose entry has `record_key_first`).
* Any other key is an error: a misspelt `shedule:` would otherwise leave a thread unscheduled
  without a word.

Only the standard library is imported: `preview` reads every block on its fast path.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crossposter.archive import ArchiveError, BlockDict
from crossposter.platforms import registry

if TYPE_CHECKING:
    from crossposter.archive import Thread
    from crossposter.platforms.registry import PlatformName

__all__ = ["BlockDict", "Entry", "MetadataError", "Pending", "ThreadMeta", "Where", "of"]

#: the block's keys besides one per registered platform (`keys()`)
FLAG_KEYS = ("schedule", "queued", "skip", "source")
ENTRY_KEYS = ("id", "url", "cid", "sha")
PENDING_KEYS = ("index", "rkey", "created_at", "sha")

#: compiled on first use (`_fullmatch`): a block without entries, the usual case in `preview`, needs none.
#: A platform's IDs and links are its registry entry's (`id_pattern`, `link_pattern`).
_PATTERNS = {
    "tid": registry.ATPROTO_TID,
    "url": r"https?://[^\s<>\"'\\\x00-\x1f\x7f]{1,2040}",
    "cid": r"[A-Za-z0-9]{8,128}",
    "sha": r"[0-9a-f]{1,64}",
}


def keys() -> tuple[str, ...]:
    """The block's keys: the flags, one per platform registered now, `pending`."""
    return (*FLAG_KEYS, *registry.names(), "pending")


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _fullmatch(name: str, value: str) -> re.Match[str] | None:
    return _compiled(_PATTERNS[name]).fullmatch(value)


def _fullmatch_pattern(pattern: str | None, value: str) -> re.Match[str] | None:
    return _compiled(pattern).fullmatch(value) if pattern else None



class MetadataError(ArchiveError):
    """A block that cannot be used; `problems` holds one (line, message) per bad key, in file order."""

    def __init__(self, path: Path | str, problems: list[tuple[int | None, str]]) -> None:
        self.problems = problems
        line, message = problems[0]
        if len(problems) > 1:
            message += f" (and {len(problems) - 1} more problem(s) in the block)"
        super().__init__(path, line, message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (MetadataError, (self.path, self.problems))

    def messages(self) -> list[str]:
        """Each problem as `path:line: message`, in file order."""
        return [f"{self.path}:{line}: {message}" if line else f"{self.path}: {message}"
                for line, message in self.problems]


@dataclass(frozen=True)
class Where:
    """Which thread a block belongs to, for error messages."""

    path: Path
    title: str
    line: int
    block_line: int | None = None

    @classmethod
    def of(cls, thread: Thread) -> Where:
        return cls(thread.path or Path("<archive>"), thread.title, thread.line, thread.block_line)


@dataclass(frozen=True)
class Entry:
    """One published post as recorded."""

    id: str
    url: str | None = None
    cid: str | None = None
    sha: str | None = None

    @property
    def link(self) -> str:
        return self.url or self.id


@dataclass(frozen=True)
class Pending:
    """A Bluesky post's record key and time, fixed before its first attempt (see publish)."""

    index: int
    rkey: str
    created_at: str  # RFC 3339, UTC, as sent in the record
    sha: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "rkey": self.rkey, "created_at": self.created_at}
        if self.sha is not None:
            out["sha"] = self.sha
        return out


@dataclass(frozen=True)
class ThreadMeta:
    schedule: datetime | None = None  # aware
    queued: bool = False
    skip: bool = False
    posts: Mapping[str, tuple[Entry, ...]] = field(default_factory=dict)
    pending: Mapping[str, Pending] = field(default_factory=dict)
    #: the platform the thread was backed up from (`crossposter backup`), if it was
    source: str | None = None

    def recorded(self, platform: PlatformName) -> tuple[Entry, ...]:
        return self.posts.get(platform, ())

    def published(self) -> list[str]:
        """Platforms crossposter published the thread to (recorded posts or a post in flight), in registry order.

        The `source` platform is not one of them: the thread was written there and backed up, and
        its recorded posts are the originals. A backed-up thread is not "started" (the daemon's queue
        slots take it, a schedule may be added, a late schedule is a misfire, not a resume); it is
        published on its source by definition and never sent there (`sent_to` leaves it out).
        """
        return [p for p in registry.names() if p != self.source and (self.posts.get(p) or p in self.pending)]

    @property
    def started(self) -> bool:
        return bool(self.published())

    def sent_to(self, platforms: list[PlatformName]) -> list[PlatformName]:
        """`platforms` without the thread's source: where `post` and the daemon may send it."""
        return [p for p in platforms if p != self.source]

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None, where: Where, timezone: str = "UTC",
              ignore: tuple[str, ...] = ()) -> ThreadMeta:
        """The block's data, checked; MetadataError listing every bad key otherwise.

        A naive `schedule` is read in `timezone` (the config's); without a config UTC stands in, which
        only matters for a wall time that falls in a DST gap somewhere else. Keys in `ignore` are not
        looked at (`unschedule` removes a schedule whatever it holds).
        """
        p = _Parser(raw if raw is not None else {}, where, ignore)
        meta = p.run(timezone)
        if p.problems:
            p.problems.sort(key=lambda lp: lp[0] or 0)
            raise MetadataError(where.path, p.problems)
        return meta


def of(thread: Thread, timezone: str = "UTC") -> ThreadMeta:
    """The validated metadata of an archive thread (see `ThreadMeta.parse`)."""
    return ThreadMeta.parse(thread.metadata, Where.of(thread), timezone)


# --------------------------------------------------------------------------- the parser


class _Parser:
    def __init__(self, raw: Mapping[str, Any], where: Where, ignore: tuple[str, ...] = ()) -> None:
        self.raw = raw
        self.where = where
        self.ignore = ignore
        self.problems: list[tuple[int | None, str]] = []
        self._nodes: Any = None

    def bad(self, path: tuple[str | int, ...], problem: str) -> None:
        key = "".join(f"[{k}]" if isinstance(k, int) else (f".{k}" if i else str(k)) for i, k in enumerate(path))
        self.problems.append((self._line(path), f"thread {self.where.title!r}: crossposter block, `{key}`: "
                                                f"{problem}"))

    def run(self, timezone: str) -> ThreadMeta:
        raw = self.raw
        if not isinstance(raw, Mapping):
            self.bad(("block",), f"must be a mapping of keys to values, not {_kind(raw)}")
            return ThreadMeta()
        known = keys()
        for key in raw:
            if key not in known and key not in self.ignore:
                self.bad((str(key),), f"unknown key (the block's keys are {', '.join(known)}); fix its "
                                      "spelling or remove it")
        schedule = None
        if raw.get("schedule") is not None and "schedule" not in self.ignore:
            from crossposter.timeparse import TimeError, schedule_value

            try:
                schedule = schedule_value(raw["schedule"], timezone)
            except TimeError as e:
                self.bad(("schedule",), str(e))
        flags = {k: self._bool(k) for k in ("queued", "skip")}
        posts = {p: self._entries(p) for p in registry.names()}
        pending = self._pending()
        return ThreadMeta(schedule=schedule, queued=flags["queued"], skip=flags["skip"], posts=posts, pending=pending,
                          source=self._source())

    def _source(self) -> str | None:
        value = self.raw.get("source")
        if value is None:
            return None
        if not isinstance(value, str) or value not in registry.names():
            self.bad(("source",), f"must be the platform the thread was backed up from "
                                  f"({', '.join(registry.names())}), "
                                  f"not {_kind(value)}")
            return None
        return value

    def _bool(self, key: str) -> bool:
        value = self.raw.get(key)
        if value is None:
            return False
        if not isinstance(value, bool):
            self.bad((key,), f"must be true or false, not {_kind(value)}")
            return False
        return value

    def _entries(self, platform: PlatformName) -> tuple[Entry, ...]:
        value = self.raw.get(platform)
        if value is None:
            return ()
        if not isinstance(value, list):
            self.bad((platform,), f"must be a list of published posts (`- {{id: …}}` lines), not {_kind(value)}")
            return ()
        out = []
        for i, item in enumerate(value):
            entry = self._entry(platform, i, item)
            if entry is not None:
                out.append(entry)
        return tuple(out)

    def _entry(self, platform: PlatformName, i: int, item: Any) -> Entry | None:
        path: tuple[str | int, ...] = (platform, i)
        if isinstance(item, Mapping):
            fields = dict(item)
            for key in fields:
                if key not in ENTRY_KEYS:
                    self.bad((*path, str(key)), f"unknown key (an entry has {', '.join(ENTRY_KEYS)})")
            if "id" not in fields or fields["id"] is None:
                self.bad(path, f"has no `id`: write {registry.get(platform).id_hint}")
                return None
        elif _scalar_id(item):
            fields = {"id": item}
        else:
            self.bad(path, f"must be a published post `{{id: …, url: …}}` or its ID, not {_kind(item)}")
            return None
        post_id, url = self._id(platform, (*path, "id") if isinstance(item, Mapping) else path, fields["id"])
        ok = True
        if fields.get("url") is not None:
            url = fields["url"]
            if not (isinstance(url, str) and _fullmatch("url", url)):
                self.bad((*path, "url"), f"must be the post's http(s) link, not {_kind(url)}")
                ok = False
        cid = fields.get("cid")
        if cid is not None:
            if not registry.get(platform).strong_refs:
                self.bad((*path, "cid"), "only Bluesky posts have a cid; remove it")
                ok = False
            elif not (isinstance(cid, str) and _fullmatch("cid", cid)):
                self.bad((*path, "cid"), f"must be the record's CID (letters and digits), not {_kind(cid)}")
                ok = False
        sha = self._sha((*path, "sha"), fields.get("sha"))
        if not ok or post_id is None:
            return None
        return Entry(id=post_id, url=url, cid=cid, sha=sha)

    def _id(self, platform: PlatformName, path: tuple[str | int, ...], value: Any) -> tuple[str | None, str | None]:
        """(ID, link when the ID was given as a link), or (None, None) after reporting the problem."""
        spec = registry.get(platform)
        if spec.numeric_ids and isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            value = str(value)  # YAML reads an unquoted `113520001` as a number
        if isinstance(value, str) and len(value) <= 2048:  # (no regex over a megabyte a person pasted)
            if _fullmatch_pattern(spec.id_pattern, value):
                return value, None
            m = _fullmatch_pattern(spec.link_pattern, value)
            if m:
                return spec.id_from_link.format(**m.groupdict()), value
        self.bad(path, f"{_kind(value)} is not a {platform} post ID: write {registry.get(platform).id_hint}")
        return None, None

    def _sha(self, path: tuple[str | int, ...], value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # an all-digit hash written without quotes
        if isinstance(value, str) and _fullmatch("sha", value):
            return value
        self.bad(path, f"must be hex digits (the first 12 of the post text's SHA-256), not {_kind(value)}")
        return None

    def _pending(self) -> dict[str, Pending]:
        value = self.raw.get("pending")
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.bad(("pending",), f"must be a mapping like `{{bluesky: {{index: …, rkey: …}}}}`, not {_kind(value)}")
            return {}
        out: dict[str, Pending] = {}
        for platform, item in value.items():
            path: tuple[str | int, ...] = ("pending", str(platform))
            if platform not in registry.names() or not registry.get(platform).record_key_first:
                self.bad(path, "only Bluesky posts have a pending entry; remove it")
                continue
            if not isinstance(item, Mapping):
                self.bad(path, f"must be a mapping `{{index, rkey, created_at}}`, not {_kind(item)}")
                continue
            ok = True
            for key in item:
                if key not in PENDING_KEYS:
                    self.bad((*path, str(key)), f"unknown key (a pending entry has {', '.join(PENDING_KEYS)})")
                    ok = False
            index = item.get("index")
            if not (isinstance(index, int) and not isinstance(index, bool) and index >= 0):
                self.bad((*path, "index"), f"must be the post's position (0, 1, …), not {_kind(index)}")
                ok = False
            rkey = item.get("rkey")
            if not (isinstance(rkey, str) and _fullmatch("tid", rkey)):
                self.bad((*path, "rkey"), f"must be a record key in atproto's TID form (13 characters like "
                                          f"3lbq2xk7d2s2a), not {_kind(rkey)}")
                ok = False
            created = self._created_at((*path, "created_at"), item.get("created_at"))
            sha = self._sha((*path, "sha"), item.get("sha"))
            if ok and created is not None:
                assert isinstance(index, int) and isinstance(rkey, str)
                out[platform] = Pending(index=index, rkey=rkey, created_at=created, sha=sha)
        return out

    def _created_at(self, path: tuple[str | int, ...], value: Any) -> str | None:
        from crossposter.timeparse import TimeError, check_range

        dt = value
        if isinstance(value, str):
            try:
                dt = datetime.fromisoformat(value)
            except ValueError:
                dt = None
        if isinstance(dt, datetime) and dt.tzinfo is not None:
            try:
                check_range(dt, "created_at")
            except TimeError as e:
                self.bad(path, str(e))
                return None
            if isinstance(value, str):
                return value
            return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self.bad(path, f"must be a date and time with its offset, like '2026-12-01T08:00:00.000Z', not {_kind(value)}")
        return None

    # ------------------------------------------------------------------ lines

    def _line(self, path: tuple[str | int, ...]) -> int | None:
        """The file line of the YAML node at `path` (or of its nearest ancestor found)."""
        source = getattr(self.raw, "source", "")
        first = getattr(self.raw, "first_line", 0)
        if not source or not first:
            return self.where.block_line or self.where.line
        if self._nodes is None:
            try:
                import yaml

                self._nodes = yaml.compose(source, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
            except Exception:  # the block loaded once, so this does not happen; a line is a nicety
                self._nodes = False
        node = self._nodes
        if not node:
            return first
        for n, step in enumerate(path):
            child = None
            if isinstance(step, int) and type(node).__name__ == "SequenceNode":
                child = node.value[step] if step < len(node.value) else None
            elif isinstance(step, str) and type(node).__name__ == "MappingNode":
                for k, v in node.value:
                    if getattr(k, "value", None) == step:
                        child = k if n == len(path) - 1 else v  # a key's own line, a value's content
                        break
            if child is None:
                break
            node = child
        return first + node.start_mark.line


def _scalar_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _kind(value: Any) -> str:
    """A short, safe description of a value for an error message (never the whole of a huge value)."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, str):
        shown = value if len(value) <= 80 else value[:77] + "…"
        return f"the text {shown!r}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, Mapping):
        return "a mapping"
    return f"a {type(value).__name__}"
