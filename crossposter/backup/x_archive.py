"""X's official archive zip ("Download an archive of your data") → `SourcePost`s.

The archive is the only complete copy of an X account a person can get (the API serves the last
3,200 posts at best, and X's free API access serves none), so this reader accepts every shape X
has shipped since 2019 and says what it could not use:

- ``data/tweets.js`` (``window.YTD.tweets.part0 = [...]``), split into ``tweets-part1.js``…
  for large accounts, or the older ``data/tweet.js`` (``window.YTD.tweet.part0``); items are
  ``{"tweet": {...}}`` (or, in old archives, the tweet itself). Numbers are strings there.
- ``data/account.js`` (own account id and username; ``manifest.js`` when it is missing).
- ``data/note-tweet.js``: the whole text of long posts, whose ``tweets.js`` entry holds only the
  first part and a "show more" link to itself. Notes carry no tweet id, so a note is matched to
  the cut-off post created in the same seconds whose text it continues (see `_match_notes`).
- ``data/tweets_media/<tweet id>-<file>``: photos under the last part of ``media_url``, GIFs
  (as mp4) and videos under the name of one of their variants: the one present is used.

What is *not* a post of the person's threads is still returned, marked, and counted by
`build_threads`: retweets (``repost=True``) and replies to other accounts. A retweet is known by
its ``RT @handle:`` text (with the handle as the first mention) or a ``retweeted_status``; the
``retweeted`` flag is ignored, because it means "the owner retweeted this", which is also true
of an own post the person later retweeted. Of an edited post, the archive holds every version:
only the last is returned (with the first version's time as `created_at`), the earlier ones
are counted as skipped.

Texts are turned back into what was typed by `x_text.typed_text` (the displayed range, links
expanded, escaping undone; see there).

Reading is one pass over ``json`` output (no re-parsing, no regexes per tweet on the common
path): benchmarks/x_archive.py measures it against a bare ``json.loads`` of ``tweets.js``.
"""

from __future__ import annotations

import gc
import json
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from crossposter.backup.source import ReadResult, Skipped, SourceMedia, SourcePost
from crossposter.backup.x_text import LINK, MEDIA, MENTION, Entity, TypedText, looks_escaped, typed_text
from crossposter.platforms.base import RejectedError
from crossposter.platforms.x import post_url

PLATFORM = "x"
#: A member larger than this is refused before it is read (a 200,000-post tweets.js is ~0.5 GB).
MAX_MEMBER_BYTES = 4 * 1024**3

_YTD_PREFIX = re.compile(rb"\A(?:\xef\xbb\xbf)?\s*window\.YTD\.([A-Za-z0-9_]+)\.part([0-9]+)\s*=\s*")
_THAR_PREFIX = re.compile(rb"\A(?:\xef\xbb\xbf)?\s*window\.__THAR_CONFIG\s*=\s*")
_TWEETS_FILE = re.compile(r"\A((?:.*/)?)data/(tweets|tweet)(?:-part([0-9]+))?\.js\Z")
_SAFE_NAME = re.compile(r"[0-9]{1,20}-[A-Za-z0-9_][A-Za-z0-9._-]{0,200}")
_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                       "Nov", "Dec"), 1)}
_MIME = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".gif": "image/gif",
         ".webp": "image/webp", ".mp4": "video/mp4", ".mov": "video/quicktime", ".m4v": "video/mp4"}
_FIX_DOWNLOAD = "download the archive again from X (Settings → Your account → Download an archive of your data)"


class XArchiveError(RejectedError):
    """The zip cannot be read as an X archive: names the file, the member, what is wrong and what to do."""

    def __init__(self, path: Path, member: str | None, problem: str, fix: str) -> None:
        self.path = path
        self.member = member
        self.problem = problem
        self.fix = fix
        where = f"{path}" + (f" ({member})" if member else "")
        super().__init__(PLATFORM, f"{where}: {problem}; {fix}")


# --------------------------------------------------------------------------- small parsers


def parse_x_time(value: object) -> datetime | None:
    """X's ``Wed Oct 10 20:19:24 +0000 2018`` (or ISO 8601) → aware UTC datetime; None if unusable.

    Hand-split rather than strptime: this runs once per post and strptime is the slowest step.
    """
    if not isinstance(value, str):
        return None
    try:
        _, mon, day, hms, offset, year = value.split()
        h, m, sec = hms.split(":")
        when = datetime(int(year), _MONTHS[mon], int(day), int(h), int(m), int(sec), tzinfo=UTC)
        if offset != "+0000":
            if len(offset) != 5 or offset[0] not in "+-":
                return None
            delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5]))
            when = when - delta if offset[0] == "+" else when + delta
        return when
    except (ValueError, KeyError, OverflowError):
        pass
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _int(value: Any) -> int | None:
    """An offset X wrote as a string or a number (a forged one is harmless: offsets are verified)."""
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _pair(value: Any) -> tuple[int | None, int | None]:
    try:
        a, b = value
        return int(a), int(b)
    except (TypeError, ValueError, OverflowError):
        return None, None


def _id(value: object) -> str | None:
    """A post or account id: ASCII digits (X writes them as strings; old exports as numbers)."""
    if type(value) is str:
        return value if value.isdigit() and value.isascii() and len(value) <= 20 else None
    if type(value) is int and value >= 0:
        return str(value)
    return None


def _str(value: object) -> str:
    return value if type(value) is str else ""


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic GC while a tweets.js becomes objects: none of them is garbage yet, and the collector
    walking ever more live objects is most of the time `json` spends on a large file."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# --------------------------------------------------------------------------- the reader


class XArchiveReader:
    """One X archive zip; `read` lists its posts, `fetch_media` reads a media file from the zip.

    `account_id` / `username` override what ``account.js`` says (or stand in for it when a
    hand-trimmed archive lacks it). The zip stays open until `close` (or the end of a `with`),
    so media are read without reopening it; reads from several threads are safe (zipfile locks).
    """

    platform = PLATFORM

    def __init__(self, zip_path: str | Path, *, account_id: str | None = None, username: str | None = None) -> None:
        self.path = Path(zip_path)
        self.account_id = account_id
        self.username = username.lstrip("@") if username else None
        if not self.path.exists():
            raise XArchiveError(self.path, None, "no such file", "check the path given to --x-archive")
        if not self.path.is_file():
            raise XArchiveError(self.path, None, "not a regular file",
                                "give the path of the .zip file X sent (not a folder, pipe or device)")
        try:
            self._zip = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
            raise XArchiveError(self.path, None, f"not a zip file ({e})",
                                "give the .zip X sent as it is (if you unpacked it, zip the folder again)") from e
        self._names = set(self._zip.namelist())
        self._prefix, self._tweet_files = self._find_tweet_files()
        self._media_dirs = (f"{self._prefix}data/tweets_media/", f"{self._prefix}data/tweet_media/")
        self._by_post: dict[str, list[str]] | None = None

    def __enter__(self) -> XArchiveReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()

    def __repr__(self) -> str:
        return f"XArchiveReader({str(self.path)!r})"

    # ------------------------------------------------------------------ members

    def _find_tweet_files(self) -> tuple[str, list[str]]:
        found: dict[str, list[tuple[int, int, str]]] = {}
        for name in self._names:
            m = _TWEETS_FILE.match(name)
            if m:
                kind = 0 if m[2] == "tweets" else 1  # tweets.js wins over the older tweet.js
                found.setdefault(m[1], []).append((kind, int(m[3] or 0), name))
        if not found:
            if any(n.endswith(("tweet_index.js", "data/js/tweets/")) or "/data/js/tweets/" in f"/{n}"
                   for n in self._names):
                raise XArchiveError(self.path, None, "this is the pre-2019 archive format (data/js/tweets/…), "
                                    "which has no post ids for replies and no media", _FIX_DOWNLOAD)
            if any(n.endswith(("manifest.js", "account.js")) for n in self._names):
                raise XArchiveError(self.path, "data/tweets.js", "the archive has no tweets file "
                                    "(data/tweets.js, tweets-part1.js… or tweet.js)",
                                    "an archive made when the account had no posts has none; otherwise "
                                    + _FIX_DOWNLOAD)
            raise XArchiveError(self.path, None, "not an X archive (no data/tweets.js or data/tweet.js inside)",
                                "give the zip X sends from Settings → Your account → Download an archive "
                                "of your data")
        prefix = min(found, key=lambda p: (len(p), p))
        files = sorted(found[prefix])
        kind = files[0][0]
        return prefix, [name for k, _, name in files if k == kind]

    def _read_member(self, name: str) -> bytes:
        try:
            info = self._zip.getinfo(name)
        except KeyError as e:
            raise XArchiveError(self.path, name, "missing from the zip", _FIX_DOWNLOAD) from e
        if info.file_size > MAX_MEMBER_BYTES:
            raise XArchiveError(self.path, name, f"{info.file_size:,} bytes, more than this reader takes "
                                f"({MAX_MEMBER_BYTES:,})", "unpack the archive and check that this file is X's")
        try:
            return self._zip.read(info)
        except RuntimeError as e:  # zipfile's word for an encrypted member
            raise XArchiveError(self.path, name, f"cannot be read ({e})", "X's archives are not encrypted: "
                                "unpack it with its password and zip the folder again without one") from e
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as e:
            raise XArchiveError(self.path, name, f"damaged, cannot be read ({e})", _FIX_DOWNLOAD) from e

    def _read_js(self, name: str, prefix: re.Pattern[bytes] = _YTD_PREFIX) -> Any:
        """The JSON value a ``window.YTD.<kind>.partN = …`` file assigns."""
        data = self._read_member(name)
        m = prefix.match(data)
        if m is None:
            head = data[:60].decode("utf-8", "replace").splitlines()[0] if data.strip() else "(empty)"
            expected = "window.__THAR_CONFIG = " if prefix is _THAR_PREFIX else "window.YTD.<name>.part0 = "
            raise XArchiveError(self.path, name, f"does not start with `{expected}` (it starts with {head!r})",
                                "this is not the file as X wrote it: " + _FIX_DOWNLOAD)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise XArchiveError(self.path, name, f"not UTF-8 text (byte {e.start})", _FIX_DOWNLOAD) from e
        start = len(data[:m.end()].decode("utf-8", "replace"))
        try:
            value, end = json.JSONDecoder().raw_decode(text, start)
        except json.JSONDecodeError as e:
            raise XArchiveError(self.path, name, f"broken JSON at line {e.lineno}, column {e.colno} ({e.msg})",
                                _FIX_DOWNLOAD) from e
        except RecursionError as e:
            raise XArchiveError(self.path, name, "JSON nested deeper than any X archive", _FIX_DOWNLOAD) from e
        rest = text[end:].strip()
        if rest not in ("", ";"):
            line = text.count("\n", 0, end) + 1
            raise XArchiveError(self.path, name, f"unexpected text after the data at line {line}",
                                _FIX_DOWNLOAD)
        return value

    def _items(self, name: str, key: str) -> list[Any]:
        value = self._read_js(name)
        if not isinstance(value, list):
            raise XArchiveError(self.path, name, f"holds a JSON {type(value).__name__}, not the list of "
                                f"{key} entries X writes", _FIX_DOWNLOAD)
        return value

    def _account(self) -> tuple[str | None, str | None]:
        account_id, username = self.account_id, self.username
        if account_id and username:
            return account_id, username
        name = f"{self._prefix}data/account.js"
        if name in self._names:
            items = self._items(name, "account")
            acc = items[0].get("account") if items and isinstance(items[0], dict) else None
            if isinstance(acc, dict):
                account_id = account_id or _id(acc.get("accountId"))
                username = username or (_str(acc.get("username")) or None)
        manifest = f"{self._prefix}data/manifest.js"
        if (not account_id or not username) and manifest in self._names:
            value = self._read_js(manifest, _THAR_PREFIX)
            info = value.get("userInfo") if isinstance(value, dict) else None
            if isinstance(info, dict):
                account_id = account_id or _id(info.get("accountId"))
                username = username or (_str(info.get("userName")) or None)
        return account_id, username

    # ------------------------------------------------------------------ Reader protocol

    def read(self, *, cursor: str | None = None, since: datetime | None = None,
             on_page: Callable[[int], None] | None = None) -> ReadResult:
        """Every post in the archive newer than `cursor` (a post id) and not older than `since`.

        Each tweets file counts as one page for `on_page`. The cursor returned is the newest post
        id in the archive, so a later, bigger archive is read from where this one ended.
        """
        after = _cursor(cursor)
        if since is not None and since.tzinfo is None:
            raise ValueError("since must be an aware datetime (a naive one has no time zone to compare in)")
        with _gc_paused():
            return self._read(after, cursor, since, on_page)

    def _read(self, after: int | None, cursor: str | None, since: datetime | None,
              on_page: Callable[[int], None] | None) -> ReadResult:
        account_id, username = self._account()
        skipped = Skipped()
        raw: list[dict[str, Any]] = []
        seen: set[str] = set()
        bad: list[str] = []
        for name in self._tweet_files:
            items = self._items(name, "tweet")
            for index, item in enumerate(items):
                tweet = item.get("tweet", item) if isinstance(item, dict) else None
                tid = _id(tweet.get("id_str") or tweet.get("id")) if isinstance(tweet, dict) else None
                if tweet is None or tid is None:
                    bad.append(f"{name.removeprefix(self._prefix)} item {index + 1}: no post id")
                    continue
                if tid in seen:
                    skipped.add("entries listed twice in the archive")
                    continue
                seen.add(tid)
                tweet["\0id"] = tid
                raw.append(tweet)
            if on_page is not None:
                on_page(len(items))
        latest, first_time, replaced = _edits(raw)
        if replaced:
            skipped.add("earlier versions of edited posts", len(replaced))
        notes = self._notes()
        noted = {n.tweet_id for n in notes if n.tweet_id}  # notes that name their post need no guessing
        community = f"{self._prefix}data/community-tweet.js"
        if community in self._names:
            n = len(self._items(community, "community tweet"))
            if n:
                skipped.add("posts in X Communities (community-tweet.js; not backed up)", n)

        converter = _Converter(self, account_id, username, seen, latest)
        posts: list[SourcePost] = []
        cut_off: list[tuple[SourcePost, TypedText, dict[str, Any]]] = []
        for tweet in raw:
            tid = tweet["\0id"]
            if tid in replaced or (after is not None and int(tid) <= after):
                continue
            post = converter.convert(tweet, first_time.get(tid))
            if post is None:
                bad.append(f"post {tid}: no usable created_at")
                continue
            if since is not None and post.created_at < since:
                continue
            if not post.repost and (converter.last.truncated or post.text.endswith("…") or tid in noted):
                cut_off.append((post, converter.last, tweet))
            posts.append(post)
        unused = _match_notes(notes, cut_off, converter)
        if unused:
            skipped.add("long-post texts in note-tweet.js matching no post", unused)
        for reason in bad[:20]:
            skipped.add(f"unreadable entry ({reason})")
        if len(bad) > 20:
            skipped.add("more unreadable entries", len(bad) - 20)
        posts.sort(key=lambda p: (p.created_at, int(p.id)))
        newest = max((int(t) for t in seen), default=None)
        if after is not None and (newest is None or newest < after):
            newest = after
        return ReadResult(posts=posts, cursor=str(newest) if newest is not None else cursor, skipped=skipped,
                          requests=0)

    def fetch_media(self, media: SourceMedia) -> bytes:
        """The file's bytes as stored in the zip (CRC-checked by zipfile)."""
        if media.fetch not in self._names:
            raise RejectedError(PLATFORM, f"{self.path}: {media.fetch} is not in the archive")
        try:
            return self._read_member(media.fetch)
        except XArchiveError as e:
            raise RejectedError(PLATFORM, e.message) from e

    # ------------------------------------------------------------------ notes and media

    def _notes(self) -> list[_Note]:
        names = sorted(n for n in self._names
                       if re.fullmatch(re.escape(self._prefix) + r"data/note-tweet(?:-part[0-9]+)?\.js", n))
        notes: list[_Note] = []
        for name in names:
            for item in self._items(name, "note"):
                note = _Note.parse(item)
                if note is not None:
                    notes.append(note)
        return notes

    def media_member(self, tweet_id: str, names: list[str]) -> str | None:
        """The first of `names` present as ``tweets_media/<tweet id>-<name>``."""
        for directory in self._media_dirs:
            for name in names:
                member = f"{directory}{tweet_id}-{name}"
                if member in self._names:
                    return member
        return None

    def media_members_of(self, tweet_id: str) -> list[str]:
        """Every media file of a post, for a video whose variant names do not match any file."""
        if self._by_post is None:
            self._by_post = {}
            for n in sorted(self._names):
                if n.startswith(self._media_dirs):
                    self._by_post.setdefault(n.rsplit("/", 1)[1].split("-", 1)[0], []).append(n)
        return self._by_post.get(tweet_id, [])

    def member_size(self, member: str) -> int:
        return self._zip.getinfo(member).file_size


def _cursor(cursor: str | None) -> int | None:
    if cursor is None or cursor == "":
        return None
    if not (cursor.isascii() and cursor.isdigit()):
        raise ValueError(f"x archive cursor {cursor!r} is not a post id: the backup state file was changed "
                         "or belongs to another reader; delete its x entry to read the whole archive")
    return int(cursor)


def _edits(raw: list[dict[str, Any]]) -> tuple[dict[str, str], dict[str, datetime], set[str]]:
    """Edited posts: every version id → the last version's id; its first version's time; the replaced ids."""
    groups: dict[str, list[str]] = {}
    present = {t["\0id"] for t in raw}
    times: dict[str, object] = {}
    for t in raw:
        info = t.get("edit_info")
        if not isinstance(info, dict):
            continue
        ids: object = None
        if isinstance(info.get("edit"), dict):
            edit = info["edit"]
            control = edit.get("editControlInitial")
            ids = control.get("editTweetIds") if isinstance(control, dict) else None
            if not ids and _id(edit.get("initialTweetId")):
                ids = [edit["initialTweetId"], t["\0id"]]
        elif isinstance(info.get("initial"), dict):
            ids = info["initial"].get("editTweetIds")
        if not isinstance(ids, list) or len(ids) < 2:
            continue
        versions = [i for i in (_id(x) for x in ids) if i in present]
        if len(versions) < 2:
            continue
        key = min(versions, key=int)
        groups.setdefault(key, []).extend(versions)
        times[t["\0id"]] = t.get("created_at")
    latest: dict[str, str] = {}
    first_time: dict[str, datetime] = {}
    replaced: set[str] = set()
    for key, versions in groups.items():
        last = max(set(versions), key=int)
        for v in set(versions):
            latest[v] = last
            if v != last:
                replaced.add(v)
        first = parse_x_time(times.get(key))
        if first is not None:
            first_time[last] = first
    return latest, first_time, replaced


class _Note:
    """One entry of note-tweet.js: the whole text of a long post (shape varies: see `parse`)."""

    __slots__ = ("id", "tweet_id", "created", "raw", "urls", "mentions", "used")

    def __init__(self, note_id: str, tweet_id: str | None, created: datetime | None, raw: str,
                 urls: list[Any], mentions: list[Any]) -> None:
        self.id, self.tweet_id, self.created, self.raw = note_id, tweet_id, created, raw
        self.urls, self.mentions = urls, mentions
        self.used = False

    @classmethod
    def parse(cls, item: object) -> _Note | None:
        """``{"noteTweet": {noteTweetId, createdAt, core: {text, urls, mentions, …}}}``; some archives
        hold ``noteTweetResults``/``entitySet`` and a ``tweetId`` instead."""
        note = item.get("noteTweet", item) if isinstance(item, dict) else None
        if not isinstance(note, dict):
            return None
        core = note.get("core") or note.get("noteTweetResults") or note.get("noteTweetContents") or {}
        if not isinstance(core, dict):
            return None
        raw = core.get("text")
        if not isinstance(raw, str) or not raw:
            return None
        ents = core.get("entitySet") if isinstance(core.get("entitySet"), dict) else core
        urls = ents.get("urls") if isinstance(ents.get("urls"), list) else []
        mentions = ents.get("mentions") or ents.get("userMentions") or ents.get("user_mentions") or []
        return cls(_str(note.get("noteTweetId")), _id(note.get("tweetId")),
                   parse_x_time(note.get("createdAt") or note.get("updatedAt")), raw, urls,
                   mentions if isinstance(mentions, list) else [])


def _note_span(e: dict[str, Any]) -> tuple[int | None, int | None]:
    start, end = _int(e.get("fromIndex")), _int(e.get("toIndex"))
    if start is None:
        start, end = _pair(e.get("indices"))
    if start is None:
        start, end = _int(e.get("start")), _int(e.get("end"))
    return start, end


def _squash(text: str) -> str:
    return " ".join(text.split())


def _loose(text: str) -> str:
    return "".join(ch for ch in re.sub(r"https?://\S+", " ", text) if ch.isalnum())[:60]


def _match_notes(notes: list[_Note], cut_off: list[tuple[SourcePost, TypedText, dict[str, Any]]],
                 converter: _Converter) -> int:
    """Give each cut-off post the whole text of its note; the number of notes matching no post.

    A note has no tweet id in most archives. It belongs to the cut-off post created within two
    seconds of it whose text it continues (compared with white space squashed; then, when the two
    texts store links differently, on their letters and digits alone): a short post that merely
    shares its second with a long one never matches, because it is not cut off.
    """
    if not notes:
        for post, typed, _ in cut_off:
            if typed.truncated:
                post.notes = (*post.notes, "the archive holds only the first part of this long post "
                              "(note-tweet.js is missing)")
        return 0
    by_tweet = {n.tweet_id: n for n in notes if n.tweet_id}
    by_second: dict[int, list[_Note]] = {}
    for n in notes:
        if n.created is not None:
            by_second.setdefault(int(n.created.timestamp()), []).append(n)
    for post, typed, tweet in cut_off:
        note = by_tweet.get(post.id)
        if note is None or note.used:
            note = None
            when = int(post.created_at.timestamp()) if not post.edited_at else int(post.edited_at.timestamp())
            candidates = [n for s in range(when - 2, when + 3) for n in by_second.get(s, ()) if not n.used]
            prefix = typed.text.rstrip().removesuffix("…").rstrip()
            if candidates and prefix:
                full = {id(n): converter.note_text(n, tweet).text for n in candidates}
                squashed, loose = _squash(prefix), _loose(prefix)
                pick = [n for n in candidates if _squash(full[id(n)]).startswith(squashed)]
                if not pick and loose:
                    pick = [n for n in candidates if _loose(full[id(n)]).startswith(loose)]
                if pick:
                    note = min(pick, key=lambda n: abs(n.created.timestamp() - when) if n.created else 0)
        if note is None:
            if typed.truncated:
                post.notes = (*post.notes, "the archive holds only the first part of this long post "
                              "(no matching entry in note-tweet.js)")
            continue
        note.used = True
        full_text = converter.note_text(note, tweet)
        post.text = full_text.text
        post.links = tuple(full_text.links)
        post.mentions = tuple(full_text.mentions)
        extra = [a for a in full_text.attachments if a not in post.attachments]
        post.attachments = (*post.attachments, *extra)
        post.notes = (*post.notes, *full_text.notes)
    return sum(1 for n in notes if not n.used)


class _Converter:
    """Archive tweet dicts → SourcePosts, with what every tweet of this archive shares."""

    def __init__(self, reader: XArchiveReader, account_id: str | None, username: str | None,
                 own_ids: set[str], latest: dict[str, str]) -> None:
        self.reader = reader
        self.account_id = account_id
        self.username = username
        self.own_ids = own_ids
        self.latest = latest
        self.last = TypedText("")

    def convert(self, t: dict[str, Any], first_time: datetime | None) -> SourcePost | None:
        tid: str = t["\0id"]
        created = parse_x_time(t.get("created_at"))
        if created is None:
            return None
        edited = None
        if first_time is not None and first_time < created:
            created, edited = first_time, created
        raw = _str(t.get("full_text")) or _str(t.get("text"))
        entities = t.get("entities") if isinstance(t.get("entities"), dict) else {}
        notes: list[str] = []

        repost = "retweeted_status" in t or _is_retweet_text(raw, entities)
        if repost:
            typed = TypedText(raw and _unescape_all(raw))
        else:
            ents = _entities(entities, t)
            if not ents and "&" not in raw and "display_text_range" not in t:
                typed = TypedText(raw)
            else:
                start, end = _pair(t.get("display_text_range"))
                display = (start, end) if start is not None and end is not None else None
                typed = typed_text(raw, ents, display, post_id=tid)
            permalink = t.get("quoted_status_permalink")
            if isinstance(permalink, dict) and _str(permalink.get("expanded")):
                url = permalink["expanded"]
                if url not in typed.attachments and url not in typed.text:
                    typed.attachments.append(url)
            if typed.hidden_mentions:
                others = [h for h in typed.hidden_mentions
                          if not self.username or h.lower() != self.username.lower()]
                if others:
                    notes.append("reply addressed to " + ", ".join("@" + h for h in others)
                                 + " (X hides these; not part of the text)")
            notes.extend(typed.notes)
        self.last = typed

        reply_to = _id(t.get("in_reply_to_status_id_str") or t.get("in_reply_to_status_id"))
        reply_user = _id(t.get("in_reply_to_user_id_str") or t.get("in_reply_to_user_id"))
        reply_to_self = False
        if reply_to is not None:
            reply_to = self.latest.get(reply_to, reply_to)
            reply_to_self = reply_to in self.own_ids or (reply_user is not None and reply_user == self.account_id)
        elif reply_user is not None:
            # an old "@handle …" post X filed as a reply to that account, with no post to point at
            reply_to = ""
            reply_to_self = reply_user == self.account_id

        media, attachments = ((), typed.attachments) if repost else self._media(tid, t, typed.attachments, notes)
        lang = _str(t.get("lang"))
        return SourcePost(
            platform=PLATFORM, id=tid, url=post_url(self.username, tid), created_at=created, text=typed.text,
            links=tuple(typed.links), mentions=tuple(typed.mentions), media=media, reply_to=reply_to,
            reply_to_self=reply_to_self, repost=repost, attachments=tuple(attachments), edited_at=edited,
            language=lang if lang and lang != "und" else None, notes=tuple(notes))

    def _media(self, tid: str, t: dict[str, Any], attachments: list[str],
               notes: list[str]) -> tuple[tuple[SourceMedia, ...], list[str]]:
        ext = t.get("extended_entities")
        items = ext.get("media") if isinstance(ext, dict) else None
        if not isinstance(items, list):
            ent = t.get("entities")
            items = ent.get("media") if isinstance(ent, dict) else None
        if not isinstance(items, list) or not items:
            return (), attachments
        out: list[SourceMedia] = []
        used: set[str] = set()
        attachments = list(attachments)
        for m in items:
            if not isinstance(m, dict):
                continue
            kind_x = _str(m.get("type"))
            alt = _str(m.get("ext_alt_text")) or _str(m.get("alt_text"))
            main = _str(m.get("media_url_https")) or _str(m.get("media_url"))
            if kind_x in ("video", "animated_gif"):
                kind = "video" if kind_x == "video" else "gif"
                variants = (m.get("video_info") or {}).get("variants") if isinstance(m.get("video_info"), dict) \
                    else None
                ranked = sorted((v for v in variants or () if isinstance(v, dict) and _str(v.get("url"))),
                                key=lambda v: -(_int(v.get("bitrate")) or 0))
                names = [_basename(_str(v.get("url"))) for v in ranked]
                member = self.reader.media_member(tid, [n for n in names if n and n not in used])
                if member is None:
                    spare = [n for n in self.reader.media_members_of(tid)
                             if n.rsplit("/", 1)[1].split("-", 1)[1] not in used
                             and n.lower().endswith((".mp4", ".mov", ".m4v"))]
                    member = spare[0] if spare else None
            else:
                kind = "image"
                name = _basename(main)
                member = self.reader.media_member(tid, [name]) if name and name not in used else None
            filename = member.rsplit("/", 1)[1] if member else ""
            if member is None or not _SAFE_NAME.fullmatch(filename):
                page = _str(m.get("expanded_url")) or main
                what = {"image": "an image", "gif": "a GIF", "video": "a video"}[kind]
                if member is None:
                    notes.append(f"{what} of this post is not in the archive's tweets_media folder"
                                 + (f"; kept as a link: {page}" if page else ""))
                else:
                    notes.append(f"{what} of this post has a file name unsafe to copy ({filename!r})"
                                 + (f"; kept as a link: {page}" if page else ""))
                if page and page not in attachments:
                    attachments.append(page)
                continue
            used.add(filename.split("-", 1)[1])
            suffix = PurePosixPath(filename).suffix.lower()
            out.append(SourceMedia(kind=kind, fetch=member, filename=filename, alt=alt,
                                   mime_type=_MIME.get(suffix), size=self.reader.member_size(member)))
        return tuple(out), attachments

    def note_text(self, note: _Note, tweet: dict[str, Any]) -> TypedText:
        """The note's whole text, typed; its mentions get account ids from the tweet's own mentions."""
        ids: dict[str, str] = {}
        ent = tweet.get("entities") if isinstance(tweet.get("entities"), dict) else {}
        for m in ent.get("user_mentions") or ():
            if isinstance(m, dict) and _str(m.get("screen_name")) and _id(m.get("id_str") or m.get("id")):
                ids[m["screen_name"].lower()] = _id(m.get("id_str") or m.get("id")) or ""
        ents: list[Entity] = []
        for u in note.urls:
            if not isinstance(u, dict):
                continue
            short = _str(u.get("shortUrl")) or _str(u.get("url"))
            expanded = _str(u.get("expandedUrl")) or _str(u.get("expanded_url"))
            start, end = _note_span(u)
            if short:
                ents.append(Entity(LINK, start, end, short, expanded))
            elif expanded:
                ents.append(Entity(LINK, start, end, expanded, expanded))
        for m in note.mentions:
            if not isinstance(m, dict):
                continue
            handle = _str(m.get("screenName")) or _str(m.get("screen_name")) or _str(m.get("username"))
            if handle:
                start, end = _note_span(m)
                ents.append(Entity(MENTION, start, end, handle,
                                   account_id=_id(m.get("id_str") or m.get("userId")) or ids.get(handle.lower())))
        # the post's media link may close the note's text as it closes the post's
        for e in _entities(ent, tweet):
            if e.kind == MEDIA:
                ents.append(Entity(MEDIA, None, None, e.short))
        raw = note.raw
        display = None
        hidden_start, _ = _pair(tweet.get("display_text_range"))
        full = _str(tweet.get("full_text"))
        if hidden_start and full and raw.startswith(full[:hidden_start]):
            display = (hidden_start, len(raw))
        return typed_text(raw, ents, display, escaped=looks_escaped(raw), post_id=_str(tweet.get("\0id")))


def _unescape_all(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _is_retweet_text(raw: str, entities: dict[str, Any]) -> bool:
    """A native retweet in an archive: ``RT @handle: …`` with that handle as the first mention at offset 3."""
    if not raw.startswith("RT @"):
        return False
    mentions = entities.get("user_mentions")
    if isinstance(mentions, list) and mentions and isinstance(mentions[0], dict):
        start, _ = _pair(mentions[0].get("indices"))
        handle = _str(mentions[0].get("screen_name"))
        return start == 3 and bool(handle) and raw[4:4 + len(handle)].lower() == handle.lower()
    return True


def _basename(url: str) -> str:
    """The last part of a media URL's path (``…/media/AbC.jpg?name=orig`` → ``AbC.jpg``)."""
    path = url.split("?", 1)[0].split("#", 1)[0]
    return path.rstrip("/").rsplit("/", 1)[-1] if "/" in path else ""


def _entities(entities: dict[str, Any], tweet: dict[str, Any]) -> list[Entity]:
    """A v1.1/archive tweet's urls, media and mentions as `Entity`s (indices are strings in archives)."""
    out: list[Entity] = []
    urls = entities.get("urls")
    if urls and type(urls) is list:
        for u in urls:
            if type(u) is dict and type(u.get("url")) is str:
                start, end = _pair(u.get("indices"))
                out.append(Entity(LINK, start, end, u["url"], _str(u.get("expanded_url"))))
    ext = tweet.get("extended_entities")
    for source in (entities.get("media"), ext.get("media") if type(ext) is dict else None):
        if source and type(source) is list:
            for m in source:
                if type(m) is dict and type(m.get("url")) is str:
                    start, end = _pair(m.get("indices"))
                    out.append(Entity(MEDIA, start, end, m["url"]))
    mentions = entities.get("user_mentions")
    if mentions and type(mentions) is list:
        for m in mentions:
            if type(m) is dict and _str(m.get("screen_name")):
                start, end = _pair(m.get("indices"))
                out.append(Entity(MENTION, start, end, m["screen_name"],
                                  account_id=_id(m.get("id_str") or m.get("id"))))
    return out
