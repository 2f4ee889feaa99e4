"""The account's posts from X's API (``GET /2/users/:id/tweets``) → `SourcePost`s.

Only for accounts whose API access allows reading: X's free access cannot read timelines, and
even paid access serves only the newest 3,200 posts. Anything older, or an account without
such access, is backed up from the official archive zip (`x_archive`, ``--x-archive``); the
error raised when X refuses says so (`XReadAccessError`).

The request is made with the publishing adapter's tweepy client (OAuth 1.0a user context, the
configured `api_base`, a timeout) and its errors are mapped the same way; a 429 becomes
`RateLimitedError` with the reset from ``x-rate-limit-reset``. Pages are followed by
``pagination_token`` newest first; the cursor is the newest post id read (``since_id`` of the
next run). A failure after some pages keeps what they gave: the error carries ``partial``, a
`ReadResult` whose cursor resumes the paging where it stopped (the posts of the pages already
read, newest first; their threads may continue in the older pages still to come).

Retweets are excluded at the source (``exclude=retweets``: pages of nothing), replies are not
(a thread is a chain of replies to oneself). Long posts come whole from ``note_tweet``; texts are
turned back into what was typed by `x_text.typed_text`, as for the archive.

tweepy and requests are imported when a request is made, never at import time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from crossposter.backup.source import ReadResult, Skipped, SourceMedia, SourcePost
from crossposter.backup.x_text import LINK, MEDIA, MENTION, Entity, looks_escaped, typed_text
from crossposter.platforms.base import PlatformError, RejectedError, UnauthorizedError
from crossposter.platforms.x import PLATFORM, map_error, map_response_error, post_url

if TYPE_CHECKING:
    from pathlib import Path

    from crossposter.config import Config
    from crossposter.platforms.x import XAdapter

PAGE_SIZE = 100  # X's maximum for this endpoint
#: X's timelines start here (the first Snowflake ids); a `start_time` before it is a 400 error.
OLDEST_START_TIME = datetime(2010, 11, 6, 0, 0, 1, tzinfo=UTC)
TWEET_FIELDS = ["created_at", "entities", "referenced_tweets", "in_reply_to_user_id", "conversation_id",
                "attachments", "note_tweet", "display_text_range", "lang", "edit_history_tweet_ids"]
EXPANSIONS = ["attachments.media_keys", "referenced_tweets.id", "referenced_tweets.id.author_id"]
MEDIA_FIELDS = ["media_key", "type", "url", "alt_text", "variants", "preview_image_url"]
USER_FIELDS = ["username"]
ARCHIVE_HINT = ("back up from X's archive instead: request it at https://x.com/settings/download_your_data, "
                "then run `crossposter backup --from x --x-archive <the zip X sends>`")
#: What X's answers say when the app's access level cannot read posts (v2 problem documents and
#: v1.1-style error lists: "client-not-enrolled", code 453 "a subset of … endpoints", "Reduced access").
_NO_ACCESS_MARKERS = ("client-not-enrolled", "attached to a project", "subset of", "access level",
                      "reduced access", "client forbidden", "client-forbidden", "appropriate level of api access")


class XReadAccessError(UnauthorizedError):
    """X refuses to serve the account's posts to these credentials: the archive zip is the way."""


def _no_read_access(status: int, body: object, detail: str) -> bool:
    if status != 403:
        return False
    texts = [detail]
    if isinstance(body, Mapping):
        texts += [str(body.get(k, "")) for k in ("reason", "title", "type", "required_enrollment")]
        for err in body.get("errors") or ():
            if isinstance(err, Mapping):
                if str(err.get("code")) == "453":
                    return True
                texts.append(str(err.get("message", "")))
    lowered = " ".join(texts).lower()
    return any(marker in lowered for marker in _NO_ACCESS_MARKERS)


def read_error(exc: BaseException, action: str) -> PlatformError:
    """map_error, with 401 and X's "your access cannot read this" 403 turned into `XReadAccessError`."""
    import tweepy

    error = map_error(exc, action)
    if isinstance(exc, tweepy.HTTPException):
        response = exc.response
        status = int(getattr(response, "status_code", 0) or 0)
        try:
            body = response.json()
        except ValueError:
            body = None
        if status == 401:
            return XReadAccessError(PLATFORM, f"{error.message}; if the credentials are right, {ARCHIVE_HINT}")
        if _no_read_access(status, body, error.message):
            return XReadAccessError(
                PLATFORM, f"{error.message} — this X API access level cannot read the account's posts "
                          f"(X's free access cannot; Basic or higher can); {ARCHIVE_HINT}")
    return error


class XApiReader:
    """The configured X account's posts from ``GET /2/users/:id/tweets``, and their media."""

    platform = PLATFORM

    def __init__(self, config: Config | None = None, *, adapter: XAdapter | None = None,
                 page_size: int = PAGE_SIZE, timeout: float = 60.0) -> None:
        if adapter is None:
            if config is None:
                raise ValueError("XApiReader needs the config or an adapter")
            from crossposter.platforms.x import from_config

            adapter = from_config(config)
        self.adapter = adapter
        self.page_size = max(5, min(page_size, PAGE_SIZE))
        self._timeout = timeout
        self._session: Any = None

    def __repr__(self) -> str:
        return f"XApiReader({self.adapter!r})"

    # ------------------------------------------------------------------ Reader protocol

    def read(self, *, cursor: str | None = None, since: datetime | None = None,
             on_page: Callable[[int], None] | None = None) -> ReadResult:
        """Every own post newer than `cursor`, newest page first (see the module doc for `partial`)."""
        since_id, token, newest = _parse_cursor(cursor)
        if since is not None and since.tzinfo is None:
            raise ValueError("since must be an aware datetime (a naive one has no time zone to compare in)")
        if self.adapter.user_id is None:
            try:
                self.adapter.login()
            except PlatformError as e:
                raise _upgrade_login_error(e) from e
        user_id, username = str(self.adapter.user_id), self.adapter.username
        client = self.adapter.client()
        posts: list[SourcePost] = []
        skipped = Skipped()
        requests = 0
        while True:
            params: dict[str, Any] = {
                "user_auth": True, "max_results": self.page_size, "exclude": ["retweets"],
                "expansions": EXPANSIONS, "tweet_fields": TWEET_FIELDS, "media_fields": MEDIA_FIELDS,
                "user_fields": USER_FIELDS,
            }
            if since_id:
                params["since_id"] = since_id
            if since is not None and since > OLDEST_START_TIME:  # X refuses an earlier start_time (HTTP 400)
                params["start_time"] = since.astimezone(UTC)
            if token:
                params["pagination_token"] = token
            try:
                response = client.get_users_tweets(user_id, **params)
            except Exception as e:
                error = read_error(e, "reading the account's posts")
                if requests:
                    resume = json.dumps({"since_id": since_id, "next_token": token, "newest_id": newest})
                    error.partial = ReadResult(posts=posts, cursor=resume, skipped=skipped,  # type: ignore[attr-defined]
                                               requests=requests)
                raise error from e
            requests += 1
            page = _Page(response, user_id, username)
            for raw in response.data or ():
                post = page.convert(raw.data if hasattr(raw, "data") else raw)
                if post is None:
                    skipped.add("posts X served without an id or time")
                    continue
                if (since_id and int(post.id) <= int(since_id)) or (since is not None and post.created_at < since):
                    continue
                if newest is None or int(post.id) > int(newest):
                    newest = post.id
                posts.append(post)
            if on_page is not None:
                on_page(len(response.data or ()))
            meta = response.meta or {}
            token = meta.get("next_token")
            if not token:
                break
        posts.sort(key=lambda p: (p.created_at, int(p.id)))
        return ReadResult(posts=posts, cursor=newest or since_id, skipped=skipped, requests=requests)

    def fetch_media(self, media: SourceMedia) -> bytes:
        """The file from X's media host (no credentials are sent there)."""
        import requests

        if self._session is None:
            self._session = requests.Session()
        action = f"downloading {media.filename}"
        try:
            response = self._session.get(media.fetch, timeout=self._timeout)
        except Exception as e:
            raise map_error(e, action) from e
        if not 200 <= response.status_code < 300:
            raise map_response_error(response.status_code, dict(response.headers), "", action)
        return response.content


def _upgrade_login_error(error: PlatformError) -> PlatformError:
    if isinstance(error, UnauthorizedError) and not isinstance(error, XReadAccessError):
        return XReadAccessError(PLATFORM, f"{error.message}; if the credentials are right, {ARCHIVE_HINT}")
    if isinstance(error, RejectedError) and "403" in error.message:
        lowered = error.message.lower()
        if any(marker in lowered for marker in _NO_ACCESS_MARKERS):
            return XReadAccessError(PLATFORM, f"{error.message} — this X API access level cannot read the "
                                              f"account; {ARCHIVE_HINT}")
    return error


def _parse_cursor(cursor: str | None) -> tuple[str | None, str | None, str | None]:
    """(since_id, pagination token, newest id so far) from a plain post id or a resume cursor."""
    if not cursor:
        return None, None, None
    if cursor.isascii() and cursor.isdigit():
        return cursor, None, None
    try:
        value = json.loads(cursor)
    except ValueError:
        value = None
    if isinstance(value, dict):
        since_id, token, newest = (value.get(k) for k in ("since_id", "next_token", "newest_id"))
        if all(v is None or isinstance(v, str) for v in (since_id, token, newest)) and \
                all(v is None or v.isdigit() for v in (since_id, newest)):
            return since_id, token, newest
    raise ValueError(f"x API cursor {cursor!r} is neither a post id nor a resume point: the backup state file "
                     "was changed or belongs to another reader; delete its x entry to read all posts again")


def _id(value: object) -> str | None:
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    return text if isinstance(text, str) and text.isascii() and text.isdigit() and len(text) <= 20 else None


class _Page:
    """One page's includes (media, quoted posts and their authors), to convert its posts."""

    def __init__(self, response: Any, user_id: str, username: str | None) -> None:
        self.user_id = user_id
        self.username = username
        includes = response.includes or {}
        self.media = {}
        for m in includes.get("media") or ():
            data = m.data if hasattr(m, "data") else m
            if isinstance(data, Mapping) and data.get("media_key"):
                self.media[str(data["media_key"])] = data
        self.users = {}
        for u in includes.get("users") or ():
            data = u.data if hasattr(u, "data") else u
            if isinstance(data, Mapping) and data.get("id"):
                self.users[str(data["id"])] = str(data.get("username") or "")
        self.tweets = {}
        for t in includes.get("tweets") or ():
            data = t.data if hasattr(t, "data") else t
            if isinstance(data, Mapping) and data.get("id"):
                self.tweets[str(data["id"])] = data

    def convert(self, t: Mapping[str, Any]) -> SourcePost | None:
        tid = _id(t.get("id"))
        created = _iso(t.get("created_at"))
        if tid is None or created is None:
            return None
        refs = {str(r.get("type")): _id(r.get("id")) for r in t.get("referenced_tweets") or ()
                if isinstance(r, Mapping)}
        note = t.get("note_tweet") if isinstance(t.get("note_tweet"), Mapping) else None
        text = str(t.get("text") or "")
        display = _range(t.get("display_text_range"))
        entities = t.get("entities") if isinstance(t.get("entities"), Mapping) else {}
        escaped = True
        if note and isinstance(note.get("text"), str):
            hidden = text[:display[0]] if display else ""
            text = note["text"]
            entities = note.get("entities") if isinstance(note.get("entities"), Mapping) else {}
            display = (len(hidden), len(text)) if hidden and text.startswith(hidden) else None
            escaped = looks_escaped(text)
        ents = _entities(entities)
        typed = typed_text(text, ents, display, escaped=escaped, post_id=tid)
        attachments = list(typed.attachments)
        quoted = refs.get("quoted")
        if quoted:
            author = self.users.get(str((self.tweets.get(quoted) or {}).get("author_id") or ""), "")
            url = post_url(author or None, quoted)
            if not any(a.rstrip("/").endswith(f"/status/{quoted}") for a in attachments) and url not in typed.text:
                attachments.append(url)
        notes = list(typed.notes)
        media: list[SourceMedia] = []
        keys = (t.get("attachments") or {}).get("media_keys") if isinstance(t.get("attachments"), Mapping) else None
        for key in keys or ():
            m = self.media.get(str(key))
            item = _media(tid, m) if m else None
            if item is None:
                notes.append(f"an attachment of this post ({key}) was not served by X; not backed up")
                continue
            media.append(item)
        reply_to = refs.get("replied_to")
        reply_user = _id(t.get("in_reply_to_user_id"))
        lang = str(t.get("lang") or "")
        return SourcePost(
            platform=PLATFORM, id=tid, url=post_url(self.username, tid), created_at=created, text=typed.text,
            links=tuple(typed.links), mentions=tuple(typed.mentions), media=tuple(media), reply_to=reply_to,
            reply_to_self=bool(reply_to) and reply_user == self.user_id,
            root_id=_id(t.get("conversation_id")) if reply_to else None,
            repost="retweeted" in refs, attachments=tuple(attachments),
            language=lang if lang and lang != "und" else None, notes=tuple(notes))


def _iso(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _range(value: object) -> tuple[int, int] | None:
    if isinstance(value, list | tuple) and len(value) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        return int(value[0]), int(value[1])
    return None


def _span(e: Mapping[str, Any]) -> tuple[int | None, int | None]:
    start, end = e.get("start"), e.get("end")
    ok = isinstance(start, int) and isinstance(end, int) and not isinstance(start, bool)
    return (start, end) if ok else (None, None)


def _entities(entities: Mapping[str, Any]) -> list[Entity]:
    """v2 entities: urls (a media link has a `media_key`) and mentions, offsets as `start`/`end`."""
    out: list[Entity] = []
    for u in entities.get("urls") or ():
        if isinstance(u, Mapping) and isinstance(u.get("url"), str):
            start, end = _span(u)
            if u.get("media_key"):
                out.append(Entity(MEDIA, start, end, u["url"]))
            else:
                out.append(Entity(LINK, start, end, u["url"], str(u.get("expanded_url") or "")))
    for m in entities.get("mentions") or ():
        if isinstance(m, Mapping) and isinstance(m.get("username"), str) and m["username"]:
            start, end = _span(m)
            out.append(Entity(MENTION, start, end, m["username"], account_id=_id(m.get("id"))))
    return out


def _media(tweet_id: str, m: Mapping[str, Any]) -> SourceMedia | None:
    """A v2 media object as a download: photos at their original size, videos as the best mp4."""
    kind_x = str(m.get("type") or "")
    alt = str(m.get("alt_text") or "")
    if kind_x == "photo":
        url = str(m.get("url") or "")
        if not url:
            return None
        name = url.split("?", 1)[0].rsplit("/", 1)[-1]
        fetch = f"{url}?name=orig" if "pbs.twimg.com/media/" in url and "?" not in url else url
        suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        mime = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif",
                "webp": "image/webp"}.get(suffix)
        return SourceMedia(kind="image", fetch=fetch, filename=f"{tweet_id}-{name}", alt=alt, mime_type=mime)
    if kind_x in ("video", "animated_gif"):
        mp4 = [v for v in m.get("variants") or () if isinstance(v, Mapping) and v.get("content_type") == "video/mp4"
               and isinstance(v.get("url"), str)]
        if not mp4:
            return None
        best = max(mp4, key=lambda v: int(v.get("bit_rate") or 0))
        name = best["url"].split("?", 1)[0].rsplit("/", 1)[-1]
        return SourceMedia(kind="video" if kind_x == "video" else "gif", fetch=best["url"],
                           filename=f"{tweet_id}-{name}", alt=alt, mime_type="video/mp4")
    return None


# --------------------------------------------------------------------------- the registry's hooks
# (commands.backup, the mirror's report and daemon ask the platform's backup module these; no other
# module knows how this platform's cursor is named, when its IDs were made or how to look for news)


#: `crossposter backup --x-archive ZIP` reads X's archive export instead of the API (`open_reader`)
READS_ARCHIVE = True

#: X's snowflake IDs count milliseconds from this instant (2010-11-04), in their bits above the 22nd
_X_EPOCH_MS = 1288834974657


def cursor_account(config: Config) -> str:
    """The name `crossposter backup` keeps the API reader's cursor under (never a secret)."""
    return f"api {config.platforms.x.api_base} {config.platforms.x.username}"


def open_reader(config: Config, login_config: Config, archive: Path | None = None) -> tuple[Any, str]:
    """The reader `crossposter backup` and the mirror use, and its cursor's account name: X's archive zip
    (`--x-archive`, no credentials) when given, else the API."""
    if archive is not None:
        from crossposter.backup.x_archive import XArchiveReader

        reader = XArchiveReader(archive)
        account_id, username = reader._account()
        return reader, f"archive {account_id or username or archive.name}"
    return XApiReader(config), cursor_account(config)


def post_time(post_id: str) -> datetime | None:
    """When a post was made: a snowflake (milliseconds since X's epoch above bit 22)."""
    return datetime.fromtimestamp(((int(post_id) >> 22) + _X_EPOCH_MS) / 1000, UTC) if post_id.isdigit() else None


#: the X account's user id by (api_base, access token's digest): learnt once per daemon with `GET /2/users/me`
_X_USER_IDS: dict[tuple[str, str], str] = {}


def _x_get(url: str, credentials: list[str]) -> object:
    """One GET signed with OAuth 1.0a (HMAC-SHA1, oauthlib: what tweepy signs with); its JSON."""
    import urllib.request

    from oauthlib.oauth1 import Client as OAuth1Client

    ck, cs, at, ats = credentials
    uri, headers, _ = OAuth1Client(ck, client_secret=cs, resource_owner_key=at,
                                   resource_owner_secret=ats).sign(url, http_method="GET")
    request = urllib.request.Request(uri, headers={**headers, "Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=20) as r:  # noqa: S310 - the configured API base
        return json.loads(r.read(1_000_000))


def nothing_new(config: Config) -> bool:
    """`GET /2/users/:id/tweets?since_id=<cursor>` listed no post above the cursor.

    The user id is asked for once (`/2/users/me`) and kept for the daemon's life; a resume cursor (a
    read stopped half-way) or anything unexpected runs the backup. A server that ignores `since_id`
    is no risk: only IDs above the cursor count as new.
    """
    import hashlib
    import urllib.parse

    from crossposter.backup.state import BackupState
    from crossposter.config import ConfigError, platform_secrets
    from crossposter.platforms import registry

    cursor = BackupState.load(config.state_path, PLATFORM, cursor_account(config)).cursor
    if not (cursor and cursor.isascii() and cursor.isdigit() and len(cursor) <= 20):
        return False
    try:
        secrets = platform_secrets(PLATFORM)
    except ConfigError:
        return False
    credentials = [secrets[name].get_secret_value() for name in registry.get(PLATFORM).secret_variables]
    base = config.platforms.x.api_base.rstrip("/")
    key = (base, hashlib.sha256("\0".join(credentials).encode()).hexdigest())
    try:
        user_id = _X_USER_IDS.get(key)
        if user_id is None:
            me = _x_get(f"{base}/2/users/me", credentials)
            user_id = str(me["data"]["id"]) if isinstance(me, dict) and isinstance(me.get("data"), dict) else ""
            if not (user_id.isascii() and user_id.isdigit()):
                return False
            _X_USER_IDS[key] = user_id
        query = urllib.parse.urlencode({"since_id": cursor, "max_results": 5, "exclude": "retweets"})
        page = _x_get(f"{base}/2/users/{user_id}/tweets?{query}", credentials)
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if not isinstance(page, dict) or "errors" in page:
        return False
    data = page.get("data") or []
    if not isinstance(data, list):
        return False
    ids = [str(t.get("id", "")) if isinstance(t, dict) else "" for t in data]
    return all(i.isascii() and i.isdigit() and int(i) <= int(cursor) for i in ids)

