"""Mastodon reader: the account's own statuses, as `SourcePost`s, a page of 40 per request.

Why two walking directions. `GET /api/v1/accounts/:id/statuses` lists newest first. A first
run walks down from the newest status following the `Link: rel="next"` header (`max_id`) until
the end of the account or `since`. Every later run walks *up* from the cursor with `min_id`,
which returns the statuses immediately newer than it: each page continues exactly where the
previous one ended, so an interruption between two pages leaves no hole. `since_id` would not:
it returns the *newest* page above the cursor, and with more than one page of new statuses the
ones between the cursor and that page would be skipped unless the walk went down again.

Why the cursor can hold a gap. The first run's downward walk can be stopped half-way (a rate
limit of 300 requests per 5 minutes, a network failure). The statuses read so far are not lost:
the raised error carries them as `error.partial`, a `ReadResult` whose cursor records the newest
status read and the part still unread below the lowest one; the next run first finishes that
part, bounded by `since_id`, and then walks up from the newest. The cursor is a small JSON
object, bound to the instance and account it was made for (another account's cursor is
ignored: reading everything again is never wrong, skipping is).

Why some statuses are not the person's threads, and which. Reposts (boosts) are returned with
`repost=True` and replies to other accounts with `reply_to_self=False`, so `build_threads`
counts them; these are left out here and counted in `ReadResult.skipped`:
- direct messages (`visibility: direct`): private conversations, not something to publish;
- followers-only posts (`private`, which Mastodon also reports for its `limited` posts) unless
  `include_private=True`: the archive is what `post` and the mirror publish *publicly* on other
  platforms, which would leak what the person chose to show only to followers;
- posts of any other visibility a server invents, named in the count.
Unlisted posts are public (quiet in timelines, often used for the later posts of a thread) and
are kept.

Mastodon.py is imported only when a request is made (through the publishing adapter, which it
shares: login, timeouts, rate limits that are thrown and never slept on, error mapping), and
`requests` only when media is downloaded.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import posixpath
import re
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from crossposter.backup.mastodon_html import Decoded, align_to_source, decode_content
from crossposter.backup.source import ReadResult, Skipped, SourceMedia, SourcePost
from crossposter.platforms.base import (
    PlatformError,
    RateLimitedError,
    RejectedError,
    TransientError,
    UnauthorizedError,
)
from crossposter.platforms.ratelimit import header, reset_from_headers, retry_after_seconds

if TYPE_CHECKING:
    from pathlib import Path

    from crossposter.config import Config
    from crossposter.platforms.mastodon import MastodonAdapter

log = logging.getLogger(__name__)

PLATFORM = "mastodon"
#: Mastodon's largest page for account statuses (a bigger `limit` is silently cut to it).
MAX_PAGE_SIZE = 40
#: Largest attachment downloaded (Mastodon's own video limit is ~100 MB): a server that streams
#: without end must not exhaust memory.
MAX_MEDIA_BYTES = 1 << 30
MEDIA_TIMEOUT = (10.0, 120.0)  # connect, read (between bytes)
_CURSOR_VERSION = 1
_KINDS = {"image": "image", "gifv": "gif", "video": "video", "audio": "audio"}
_SAFE_ID = re.compile(r"[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,127}")
_SAFE_EXT = re.compile(r"\.[A-Za-z0-9]{1,8}")

# Skip reasons, as the backup summary prints them.
SKIP_DIRECT = "direct messages"
SKIP_PRIVATE = "followers-only posts"
SKIP_OTHER_ACCOUNT = "posts by other accounts in the listing"
SKIP_UNREADABLE = "statuses the server sent without an id or date"


# --------------------------------------------------------------------------- the cursor


class _Cursor:
    """Where reading stands: `newest` read status, and a `gap` (floor, below) still unread."""

    def __init__(self, instance: str, account: str, newest: str | None = None,
                 gap: tuple[str | None, str | None] | None = (None, None)) -> None:
        self.instance = instance
        self.account = account
        self.newest = newest
        self.gap = gap  # ids in (floor, below) are unread; None ends = the account's first / the newest

    @classmethod
    def parse(cls, text: str | None, instance: str, account: str) -> _Cursor:
        if not text:
            return cls(instance, account)
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("v") != _CURSOR_VERSION:
                raise ValueError("not a cursor of this reader")
            newest = data.get("newest")
            gap = data.get("gap")
            if newest is not None and not (isinstance(newest, str) and _SAFE_ID.fullmatch(newest)):
                raise ValueError("newest is not an id")
            if gap is not None and not (isinstance(gap, list) and len(gap) == 2
                                        and all(g is None or (isinstance(g, str) and _SAFE_ID.fullmatch(g))
                                                for g in gap)):
                raise ValueError("gap is not two ids")
        except ValueError as e:
            log.warning("mastodon: the stored backup cursor is unusable (%s); reading the whole account again", e)
            return cls(instance, account)
        if data.get("instance") != instance or data.get("account") != account:
            log.warning("mastodon: the stored backup cursor belongs to another account (%s on %s); "
                        "reading the whole account again", data.get("account"), data.get("instance"))
            return cls(instance, account)
        return cls(instance, account, newest, tuple(gap) if gap is not None else None)

    def encode(self) -> str | None:
        if self.newest is None:
            return None  # nothing read yet: next time starts from the top again
        data: dict[str, Any] = {"v": _CURSOR_VERSION, "instance": self.instance, "account": self.account,
                                "newest": self.newest}
        if self.gap is not None:
            data["gap"] = list(self.gap)
        return json.dumps(data, separators=(",", ":"))


def _id_key(status_id: str) -> tuple[int, str]:
    """Ids sort by time as (length, text): numeric ids (Mastodon) and fixed-width ones (ULIDs, flake ids)."""
    return len(status_id), status_id


# --------------------------------------------------------------------------- status → SourcePost


def _get(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _media_filename(status_id: str, index: int, url: str, mime: str | None) -> str:
    """`<status id>-<n>.<ext>`: the same name on every run, so a second run finds the file it already has."""
    ext = posixpath.splitext(urlsplit(url).path)[1]
    if not _SAFE_EXT.fullmatch(ext):
        ext = (mimetypes.guess_extension(mime) if mime else None) or ".bin"
    return f"{status_id}-{index}{ext.lower()}"


def _media(status_id: str, attachments: Any) -> tuple[list[SourceMedia], list[str]]:
    media: list[SourceMedia] = []
    notes: list[str] = []
    if not isinstance(attachments, list):
        return media, notes
    for n, item in enumerate(attachments, start=1):
        if not isinstance(item, Mapping):
            continue
        url = item.get("url") or item.get("remote_url")
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            notes.append(f"attachment {n} ({item.get('type') or 'unknown'}) has no downloadable URL")
            continue
        mime = mimetypes.guess_type(urlsplit(url).path)[0]
        kind = _KINDS.get(str(item.get("type") or ""), "file")
        media.append(SourceMedia(kind=kind, fetch=url, filename=_media_filename(status_id, n, url, mime),  # type: ignore[arg-type]
                                 alt=str(item.get("description") or ""), mime_type=mime))
    return media, notes


def _loose(url: str) -> str:
    """A URL without scheme, `www.`, case of the host, trailing slash: to see a card repeats a link."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url.strip()
    host = parts.netloc.lower().removeprefix("www.")
    return host + parts.path.rstrip("/") + (f"?{parts.query}" if parts.query else "")


def _quote_urls(status: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The quoted post's URL (Mastodon 4.4+ `quote`, older fedi `quote`/`quote_url`), and notes."""
    urls: list[str] = []
    notes: list[str] = []
    quote = status.get("quote")
    if isinstance(quote, Mapping):
        if {"state", "quoted_status", "quoted_status_id"} & quote.keys():  # Mastodon's Quote / ShallowQuote
            quoted = quote.get("quoted_status")
            url = _get(quoted, "url") or _get(quoted, "uri")
            if isinstance(url, str) and url:
                urls.append(url)
            else:
                qid = quote.get("quoted_status_id") or _get(quoted, "id")
                notes.append(f"quotes a post the server did not show (state: {quote.get('state') or 'unknown'}"
                             + (f", id {qid})" if qid else ")"))
        else:  # a whole status (Akkoma, Fedibird)
            url = quote.get("url") or quote.get("uri")
            if isinstance(url, str) and url:
                urls.append(url)
    for key in (("quote_url",), ("pleroma", "quote_url")):
        url = _get(status, *key)
        if isinstance(url, str) and url:
            urls.append(url)
    return urls, notes


def status_to_post(status: Mapping[str, Any], *, account_id: str, instance: str) -> SourcePost:
    """One status of the account as a `SourcePost`; raises ValueError when it has no usable id or date."""
    status_id = str(status.get("id") or "")
    if not _SAFE_ID.fullmatch(status_id):
        raise ValueError(f"status id {status_id[:80]!r} is not an id")
    created = _parse_time(status.get("created_at"))
    if created is None:
        raise ValueError(f"status {status_id} has no creation date")
    url = str(status.get("url") or status.get("uri") or f"{instance}/statuses/{status_id}")
    if isinstance(status.get("reblog"), Mapping):
        original = status["reblog"]
        return SourcePost(platform=PLATFORM, id=status_id, url=url, created_at=created, text="", repost=True,
                          attachments=tuple(u for u in [original.get("url") or original.get("uri")] if u))

    mentions = status.get("mentions") if isinstance(status.get("mentions"), list) else []
    decoded: Decoded = decode_content(str(status.get("content") or ""), mentions, instance=instance)
    source = status.get("text")
    if isinstance(source, str) and source and source != decoded.text:
        decoded = align_to_source(source, decoded)
    notes = list(decoded.notes)

    media, media_notes = _media(status_id, status.get("media_attachments"))
    notes.extend(media_notes)

    attachments: list[str] = []
    quote_urls, quote_notes = _quote_urls(status)
    attachments.extend(quote_urls)
    attachments.extend(decoded.quote_urls)
    notes.extend(quote_notes)

    card_url = _get(status, "card", "url")
    if isinstance(card_url, str) and card_url:
        in_text = {_loose(link.url) for link in decoded.links}
        if _loose(card_url) not in in_text and card_url not in decoded.text:
            attachments.append(card_url)

    poll = status.get("poll")
    if isinstance(poll, Mapping):
        raw_options = poll.get("options")
        options = [str(_get(o, "title") or "") for o in (raw_options if isinstance(raw_options, list) else [])
                   if isinstance(o, Mapping)]
        kind = "multiple-choice poll" if poll.get("multiple") else "poll"
        listed = " / ".join(repr(o) for o in options)
        notes.append(f"a {kind} ({listed}) cannot be written as text; kept as a link to the post")
        attachments.append(url)

    reply_to = status.get("in_reply_to_id")
    reply_account = status.get("in_reply_to_account_id")
    spoiler = status.get("spoiler_text")
    language = status.get("language")
    return SourcePost(
        platform=PLATFORM,
        id=status_id,
        url=url,
        created_at=created,
        text=decoded.text,
        links=decoded.links,
        mentions=decoded.mentions,
        media=tuple(media),
        reply_to=str(reply_to) if reply_to is not None else None,
        reply_to_self=reply_to is not None and reply_account is not None and str(reply_account) == account_id,
        attachments=tuple(dict.fromkeys(attachments)),
        content_warning=spoiler if isinstance(spoiler, str) and spoiler else None,
        edited_at=_parse_time(status.get("edited_at")),
        language=language if isinstance(language, str) and language else None,
        notes=tuple(notes),
    )


# --------------------------------------------------------------------------- the reader


def _without_query(url: str) -> str:
    """A URL fit for a message: no query or fragment (signed media URLs carry their signature there)."""
    try:
        parts = urlsplit(url)
        return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    except ValueError:
        return "(an unparsable URL)"


class MastodonReader:
    """The configured Mastodon account's statuses, for `crossposter backup --from mastodon` and the mirror."""

    platform = PLATFORM

    def __init__(self, config: Config | None = None, *, adapter: MastodonAdapter | None = None,
                 include_private: bool = False, page_size: int = MAX_PAGE_SIZE) -> None:
        if adapter is None:
            if config is None:
                raise ValueError("MastodonReader needs a config or an adapter")
            from crossposter.platforms.mastodon import from_config as adapter_from_config

            adapter = adapter_from_config(config)
        self.adapter = adapter
        self.include_private = include_private
        self.page_size = max(1, min(int(page_size), MAX_PAGE_SIZE))
        self._account: Mapping[str, Any] | None = None
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"MastodonReader(instance={self.adapter.instance!r})"

    # ------------------------------------------------------------------ listing

    def account(self) -> Mapping[str, Any]:
        """The token's own account (`verify_credentials`), asked once."""
        if self._account is None:
            account = self.adapter.call("checking the access token", "account_verify_credentials")
            if getattr(self.adapter, "plain_json", None) is False:  # see platforms/sdk_compat.py
                raise RejectedError(PLATFORM, "this Mastodon.py returns typed answers the backup cannot read "
                                              "exactly; install a Mastodon.py version crossposter was checked with "
                                              "(see crossposter/platforms/sdk_compat.py)")
            if not isinstance(account, Mapping) or account.get("id") is None:
                raise TransientError(PLATFORM, f"{self.adapter.instance} answered verify_credentials without an account")
            self._account = account
        return self._account

    def _page(self, account_id: str, **params: Any) -> tuple[list[Mapping[str, Any]], str | None, bool]:
        """One page: its statuses, the `max_id` of its `Link: rel="next"`, and whether a Link header came."""
        what = "reading the account's statuses" + (f" below {params['max_id']}" if params.get("max_id") else "") \
            + (f" above {params['min_id']}" if params.get("min_id") else "")
        page = self.adapter.call(what, "account_statuses", account_id, limit=self.page_size, **params)
        if not isinstance(page, list):
            raise TransientError(PLATFORM, f"{what} on {self.adapter.instance}: the answer is not a list")
        nxt = getattr(page, "_pagination_next", None)
        linked = nxt is not None or getattr(page, "_pagination_prev", None) is not None
        next_max = nxt.get("max_id") if isinstance(nxt, Mapping) else None
        return [s for s in page if isinstance(s, Mapping)], (str(next_max) if next_max is not None else None), linked

    def read(self, *, cursor: str | None = None, since: datetime | None = None,
             on_page: Callable[[int], None] | None = None,
             on_posts: Callable[[list[SourcePost]], None] | None = None) -> ReadResult:
        """Every own status newer than `cursor` and not older than `since` (naive: UTC).

        `on_page` is called after each page with the number of statuses it held, `on_posts` with the
        page's posts once converted (on the converter's thread: the caller starts their media). On a
        `PlatformError` the error carries `partial`: what was read so far and a cursor that
        resumes without a gap.
        """
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        account = self.account()
        account_id = str(account["id"])
        state = _Cursor.parse(cursor, self.adapter.instance, account_id)
        walk_up = state.newest is not None
        converter = _Converter(self, account_id, on_posts)
        seen: set[str] = set()
        requests = 0

        def take(statuses: list[Mapping[str, Any]], floor: str | None = None) -> tuple[int, bool]:
            """Hand the page's statuses to the converter; (new ones, whether one was older than `since`
            or not above `floor`). Only cheap checks here: they decide the next request."""
            new = 0
            older = False
            keep = []
            for status in statuses:
                sid = str(status.get("id") or "")
                if sid in seen:
                    continue
                seen.add(sid)
                new += 1
                if floor is not None and _SAFE_ID.fullmatch(sid) and _id_key(sid) <= _id_key(floor):
                    older = True  # a server that ignored since_id: what follows was read by an earlier run
                    continue
                created = _parse_time(status.get("created_at"))
                if since is not None and created is not None and created < since:
                    older = True
                    continue
                keep.append(status)
            if keep:
                converter.submit(keep)
            return new, older

        try:
            if state.gap is not None:
                floor, below = state.gap
                params: dict[str, Any] = {}
                if below is not None:
                    params["max_id"] = below
                if floor is not None:
                    params["since_id"] = floor
                while True:
                    page, next_max, linked = self._page(account_id, **params)
                    requests += 1
                    ids = _page_ids(page, self.adapter.instance)
                    new, older = take(page, floor)
                    if on_page is not None:
                        on_page(len(page))
                    if page:
                        if new == 0:
                            raise TransientError(PLATFORM, f"{self.adapter.instance} sent a page of statuses it "
                                                           "had already sent; stopped so that nothing is skipped")
                        top, bottom = max(ids, key=_id_key), min(ids, key=_id_key)
                        if state.newest is None or _id_key(top) > _id_key(state.newest):
                            state.newest = top
                        state.gap = (floor, bottom)
                    if not page or older or (next_max is None and linked):
                        state.gap = None  # the end of the account, of `since`, or the server's last page
                        break
                    params = {"max_id": next_max or bottom}
                    if floor is not None:
                        params["since_id"] = floor
            if walk_up:
                while True:
                    assert state.newest is not None
                    page, _next, _linked = self._page(account_id, min_id=state.newest)
                    requests += 1
                    new, _older = take(page)
                    if on_page is not None:
                        on_page(len(page))
                    if not page or new == 0:
                        break
                    top = max(_page_ids(page, self.adapter.instance), key=_id_key)
                    if _id_key(top) > _id_key(state.newest):
                        state.newest = top
                    else:
                        break
            posts, skipped = converter.finish()
        except PlatformError as e:
            posts, skipped = converter.finish()
            e.partial = ReadResult(posts, state.encode(), skipped, requests)  # type: ignore[attr-defined]
            raise
        finally:
            converter.close()
        return ReadResult(posts, state.encode(), skipped, requests)

    def _convert(self, status: Mapping[str, Any], account_id: str, skipped: Skipped) -> SourcePost | None:
        author = _get(status, "account", "id")
        if author is not None and str(author) != account_id:
            skipped.add(SKIP_OTHER_ACCOUNT)
            return None
        if not isinstance(status.get("reblog"), Mapping):
            visibility = status.get("visibility") or "public"
            if visibility == "direct":
                skipped.add(SKIP_DIRECT)
                return None
            if visibility == "private" and not self.include_private:
                skipped.add(SKIP_PRIVATE)
                return None
            if visibility not in ("public", "unlisted", "private"):
                skipped.add(f"posts with visibility {str(visibility)[:40]!r}")
                return None
        try:
            return status_to_post(status, account_id=account_id, instance=self.adapter.instance)
        except ValueError as e:
            log.warning("mastodon: %s; not backed up", e)
            skipped.add(SKIP_UNREADABLE)
            return None

    # ------------------------------------------------------------------ media

    def _session(self) -> Any:
        session = getattr(self._local, "session", None)
        if session is None:
            import requests

            session = requests.Session()
            session.headers["User-Agent"] = "crossposter"
            self._local.session = session
        return session

    def fetch_media(self, media: SourceMedia) -> bytes:
        """The original file, as served. The access token is never sent: media are public files, often
        on another host (a CDN), and the token must not travel there."""
        import requests

        url = media.fetch
        shown = _without_query(url)
        if urlsplit(url).scheme not in ("http", "https"):
            raise RejectedError(PLATFORM, f"{media.filename}: {shown} is not an http(s) URL")
        where = f"downloading {media.filename} from {shown}"
        try:
            with self._session().get(url, timeout=MEDIA_TIMEOUT, stream=True) as response:
                status = response.status_code
                headers = response.headers
                if status == 429:
                    reset = reset_from_headers(headers, "X-RateLimit-Reset")
                    until = f" until {reset.isoformat(timespec='seconds')}" if reset else ""
                    raise RateLimitedError(PLATFORM, f"{where}: rate limited{until}", reset_at=reset)
                if status >= 500 or status in (408, 425):
                    raise TransientError(PLATFORM, f"{where}: HTTP {status}",
                                         retry_after=retry_after_seconds(header(headers, "Retry-After")))
                if status == 401:
                    raise UnauthorizedError(PLATFORM, f"{where}: HTTP 401 (the file needs a login)")
                if status >= 400:
                    raise RejectedError(PLATFORM, f"{where}: HTTP {status}")
                declared = header(headers, "Content-Length")
                if declared and declared.isdigit() and int(declared) > MAX_MEDIA_BYTES:
                    raise RejectedError(PLATFORM, f"{where}: {declared} bytes is over the {MAX_MEDIA_BYTES} bytes "
                                                  "a backup downloads")
                chunks: list[bytes] = []
                total = 0
                for chunk in response.iter_content(chunk_size=1 << 16):
                    total += len(chunk)
                    if total > MAX_MEDIA_BYTES:
                        raise RejectedError(PLATFORM, f"{where}: more than the {MAX_MEDIA_BYTES} bytes "
                                                      "a backup downloads")
                    chunks.append(chunk)
                data = b"".join(chunks)
        except requests.Timeout as e:
            raise TransientError(PLATFORM, f"{where}: timed out") from e
        except requests.RequestException as e:
            raise TransientError(PLATFORM, f"{where}: network error ({type(e).__name__})") from e
        encoded = (header(headers, "Content-Encoding") or "identity").lower() != "identity"
        if declared and declared.isdigit() and not encoded and int(declared) != len(data):
            raise TransientError(PLATFORM, f"{where}: got {len(data)} of {declared} bytes")
        return data


class _Converter:
    """Turns pages of statuses into `SourcePost`s on one worker thread while the next page is on the network.

    Why a thread: decoding a page of HTML costs milliseconds of CPU and a page's request tens of
    milliseconds of waiting; one after the other they add up (1.4× the network time against a
    server answering in 50 ms), side by side they mostly do not. Requests stay in the calling
    thread, one at a time, so errors, cursors and rate limits behave exactly as without it.
    """

    def __init__(self, reader: MastodonReader, account_id: str,
                 on_posts: Callable[[list[SourcePost]], None] | None = None) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.reader = reader
        self.account_id = account_id
        self.on_posts = on_posts
        self.posts: dict[str, SourcePost] = {}
        self.skipped = Skipped()  # touched only by the worker until finish()
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mastodon-convert")
        self.futures: list[Any] = []

    def submit(self, statuses: list[Mapping[str, Any]]) -> None:
        self.futures.append(self.pool.submit(self._convert, statuses))

    def _convert(self, statuses: list[Mapping[str, Any]]) -> None:
        page = []
        for status in statuses:
            post = self.reader._convert(status, self.account_id, self.skipped)
            if post is not None:
                self.posts[post.id] = post
                page.append(post)
        if self.on_posts is not None and page:
            self.on_posts(page)

    def finish(self) -> tuple[list[SourcePost], Skipped]:
        """Every page submitted so far, converted (a bug in the conversion is raised here)."""
        for future in self.futures:
            future.result()
        return _ordered(self.posts), self.skipped

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def _page_ids(page: list[Mapping[str, Any]], instance: str) -> list[str]:
    """The page's status ids, which the next request is built from; a page without one cannot be continued."""
    ids = [str(s.get("id")) for s in page if _SAFE_ID.fullmatch(str(s.get("id") or ""))]
    if page and not ids:
        raise TransientError(PLATFORM, f"{instance} sent a page of statuses without ids; stopped so that "
                                       "nothing is skipped")
    return ids


def _ordered(posts: dict[str, SourcePost]) -> list[SourcePost]:
    return sorted(posts.values(), key=lambda p: (p.created_at, _id_key(p.id)))


def from_config(config: Config, **kwargs: Any) -> MastodonReader:
    """The reader for the configured account (the token from the environment, as for publishing)."""
    return MastodonReader(config, **kwargs)


# --------------------------------------------------------------------------- the registry's hooks
# (commands.backup, the mirror's report and daemon ask the platform's backup module these; no other
# module knows how this platform's cursor is named, when its IDs were made or how to look for news)


def cursor_account(config: Config) -> str:
    """The name `crossposter backup` keeps this account's cursor under: the instance (the token says who)."""
    return config.platforms.mastodon.instance


def open_reader(config: Config, login_config: Config, archive: Path | None = None) -> tuple[MastodonReader, str]:
    """The reader `crossposter backup` and the mirror use, and its cursor's account name."""
    from crossposter.platforms.mastodon import from_config as adapter

    return MastodonReader(adapter=adapter(login_config)), cursor_account(config)


def post_time(post_id: str) -> datetime | None:
    """When a post was made: Mastodon's own status IDs are milliseconds since 1970 shifted 16 bits (a
    GoToSocial ULID or Akkoma flake ID is not read: None)."""
    return datetime.fromtimestamp((int(post_id) >> 16) / 1000, UTC) if post_id.isdigit() else None


def nothing_new(config: Config) -> bool:
    """`GET /api/v1/accounts/:id/statuses?min_id=<cursor>&limit=1` answered `[]`: nothing after the cursor.

    The account and the newest status read come from the backup's cursor (the reader's own JSON);
    a cursor with a gap still to read, of another instance, or anything unexpected runs the backup.
    """
    import urllib.parse
    import urllib.request

    from crossposter.backup.state import BackupState
    from crossposter.config import ConfigError, platform_secrets
    from crossposter.platforms.mastodon import TOKEN_VARIABLE

    instance = config.platforms.mastodon.instance
    cursor = BackupState.load(config.state_path, PLATFORM, cursor_account(config)).cursor
    try:
        data = json.loads(cursor or "")
    except ValueError:
        return False
    if not isinstance(data, dict) or data.get("instance") != instance or "gap" in data:
        return False
    account, newest = data.get("account"), data.get("newest")
    if not (isinstance(account, str) and account.isalnum() and isinstance(newest, str) and newest.isalnum()):
        return False
    try:
        token = platform_secrets(PLATFORM)[TOKEN_VARIABLE].get_secret_value()
    except (ConfigError, KeyError):
        return False
    query = urllib.parse.urlencode({"min_id": newest, "limit": 1})
    request = urllib.request.Request(f"{instance.rstrip('/')}/api/v1/accounts/{account}/statuses?{query}",
                                     headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=20) as r:  # noqa: S310 - the configured instance
            page = json.loads(r.read(1_000_000))
    except (OSError, ValueError):
        return False
    return page == []

