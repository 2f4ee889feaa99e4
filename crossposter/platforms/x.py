"""X adapter: tweepy's v2 client with OAuth 1.0a user context, media through the v2 upload endpoint.

Why the host is rewritten: `tweepy.Client.request` hard-codes
`https://api.twitter.com`, but the API base must be configurable (a proxy, or a
local fake in tests). Its public `session` attribute is given a requests.Session
subclass that swaps the host and adds a timeout (tweepy sends none, so a
stalled connection would hang forever).
The OAuth 1.0a signature is computed by requests when the request is prepared,
i.e. over the rewritten URL, so it stays valid.

Why media is not done with tweepy: tweepy 4.17 only knows the v1.1 upload.
`POST /2/media/upload` (multipart, `media_category=tweet_image`) and
`POST /2/media/metadata` (alt text) are sent on a requests session with
tweepy's own OAuth 1.0a auth object.

Why a 403 "duplicate content" is MaybePostedError: X has no idempotency key;
it refuses a text identical to a recent post by the same account. After a
timeout this answer usually means the first attempt went through, so
retrying would only loop. `find_recent` (part of the Adapter protocol) lets the publisher look for it.

Why log records are redacted: requests-oauthlib and oauthlib log the consumer
key and access token (in the Authorization header, the signature base string
and the client's repr) at DEBUG level.
"""

from __future__ import annotations

import html
import logging
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from crossposter.platforms import registry
from crossposter.platforms.base import (
    ImageUpload,
    Limits,
    MaybePostedError,
    PlatformError,
    PostRef,
    PublishedPost,
    RateLimitedError,
    RejectedError,
    TransientError,
    UnauthorizedError,
    UploadedMedia,
)
from crossposter.platforms.ratelimit import header, parse_reset, reset_from_headers, retry_after_seconds
from crossposter.redact import register

if TYPE_CHECKING:
    from pydantic import SecretStr

    from crossposter.config import Config
    from crossposter.platforms.base import OutgoingPost

log = logging.getLogger(__name__)

PLATFORM = "x"
TWEEPY_HOST = "https://api.twitter.com"
_SPEC = registry.get(PLATFORM)
SECRET_VARIABLES = _SPEC.secret_variables
MAX_CHARACTERS = _SPEC.limit
URL_LENGTH = _SPEC.characters_reserved_per_url  # (set: every URL counts the same here)
MAX_IMAGES = _SPEC.max_images
MAX_IMAGE_BYTES = _SPEC.max_image_bytes
MAX_ALT_TEXT = _SPEC.max_alt_text
#: Loggers that print OAuth 1.0a credentials at DEBUG level.
_LEAKY_LOGGERS = ("requests_oauthlib.oauth1_auth", "requests_oauthlib.oauth1_session", "oauthlib.oauth1.rfc5849",
                  "oauthlib.oauth1.rfc5849.signature", "tweepy.client", "tweepy.auth")


_FILTER: logging.Filter | None = None


def _install_redactor(values: Iterable[str]) -> None:
    """Register the credentials with the program's redaction and put its filter on the OAuth loggers.

    The filter sits on those loggers themselves (not only on our handler) because their DEBUG
    records may reach handlers that are not ours (a test's capture, an embedding program's).
    """
    global _FILTER
    from crossposter.logs import RedactFilter

    register(values)
    if _FILTER is None:
        _FILTER = RedactFilter()
    for name in _LEAKY_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def post_url(username: str | None, tweet_id: str) -> str:
    """Where a person sees the post; `i/web` works without knowing the handle."""
    return f"https://x.com/{username or 'i/web'}/status/{tweet_id}"


# --------------------------------------------------------------------------- errors


def _response_detail(response: Any) -> str:
    """X's explanation from a v2 problem document or a v1.1 errors list; '' if none."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    parts: list[str] = []
    if body.get("detail"):
        parts.append(str(body["detail"]))
    elif body.get("title"):
        parts.append(str(body["title"]))
    for err in body.get("errors") or []:
        if isinstance(err, dict):
            text = err.get("message") or err.get("detail") or err.get("title")
            code = err.get("code")
            if text:
                parts.append(f"{code} - {text}" if code else str(text))
        elif isinstance(err, str):
            parts.append(err)
    if body.get("error") and isinstance(body["error"], str):
        parts.append(body["error"])
    seen: list[str] = []
    for p in parts:
        if p not in seen:
            seen.append(p)
    return "; ".join(seen)


def rate_limit_reset(headers: Mapping[str, str]) -> datetime | None:
    """When posting is possible again: the latest reset among the exhausted windows.

    X answers 429 both for the 15-minute window (`x-rate-limit-*`) and for the
    per-user and per-app 24-hour caps on posting (`x-user-limit-24hour-*`,
    `x-app-limit-24hour-*`); waiting for the 15-minute reset when the daily cap is
    spent would only earn another 429.
    """
    exhausted: list[datetime] = []
    for prefix in ("x-rate-limit", "x-user-limit-24hour", "x-app-limit-24hour"):
        if header(headers, f"{prefix}-remaining") == "0":
            reset = parse_reset(header(headers, f"{prefix}-reset"))
            if reset is not None:
                exhausted.append(reset)
    if exhausted:
        return max(exhausted)
    return reset_from_headers(headers, "x-rate-limit-reset")


def map_response_error(status: int, headers: Mapping[str, str], detail: str, action: str) -> PlatformError:
    """An HTTP error answer from X → the publisher's vocabulary."""
    text = f"{action}: HTTP {status}" + (f": {detail}" if detail else "")
    lowered = detail.lower()
    if status == 429:
        return RateLimitedError(PLATFORM, text, reset_at=rate_limit_reset(headers))
    if status == 401:
        return UnauthorizedError(PLATFORM, f"{text} (check {', '.join(SECRET_VARIABLES)})")
    if status == 403 and "duplicate" in lowered:
        return MaybePostedError(
            PLATFORM, f"{text} — X already has a post with this text, probably from an earlier attempt; "
                      "not retried")
    if status == 403 and ("oauth1 app permissions" in lowered or "not configured with the appropriate" in lowered):
        return UnauthorizedError(PLATFORM, f"{text} (give the X app read and write permission, then "
                                           "regenerate the access token and secret)")
    if status >= 500 or status in (408, 409, 425):
        return TransientError(PLATFORM, text, retry_after=retry_after_seconds(header(headers, "retry-after")))
    return RejectedError(PLATFORM, text)


def map_error(exc: BaseException, action: str) -> PlatformError:
    """tweepy / requests failure → the publisher's vocabulary."""
    import requests
    import tweepy

    if isinstance(exc, PlatformError):
        return exc
    if isinstance(exc, tweepy.HTTPException):
        response = exc.response
        status = int(getattr(response, "status_code", 0) or 0)
        headers = dict(getattr(response, "headers", {}) or {})
        detail = _response_detail(response) if hasattr(response, "json") else ""
        if not detail and exc.api_messages:
            detail = "; ".join(str(m) for m in exc.api_messages)
        return map_response_error(status, headers, detail, action)
    if isinstance(exc, requests.Timeout):
        return TransientError(PLATFORM, f"{action}: timed out ({type(exc).__name__})")
    if isinstance(exc, requests.RequestException):
        return TransientError(PLATFORM, f"{action}: network error ({type(exc).__name__}: {exc})")
    if isinstance(exc, ValueError | KeyError | TypeError):
        return TransientError(PLATFORM, f"{action}: unexpected answer from X ({type(exc).__name__}: {exc})")
    return TransientError(PLATFORM, f"{action}: {type(exc).__name__}: {exc}")


# --------------------------------------------------------------------------- the adapter


class XAdapter:
    """One X account, OAuth 1.0a user context (consumer key/secret + access token/secret)."""

    name = PLATFORM
    replies_need_cid = False

    def prepare_attempt(self, now: datetime) -> dict[str, str] | None:
        """Nothing: X refuses the same text twice, and `find_recent` finds the earlier attempt."""
        return None

    def __init__(
        self,
        consumer_key: SecretStr,
        consumer_secret: SecretStr,
        access_token: SecretStr,
        access_token_secret: SecretStr,
        *,
        api_base: str = "https://api.x.com",
        upload_base: str = "https://api.x.com",
        username: str = "",
        timeout: float = 30.0,
    ) -> None:
        self.api_base = api_base.rstrip("/")
        self.upload_base = upload_base.rstrip("/")
        self.username = username.lstrip("@") or None
        self.user_id: str | None = None
        self._credentials = (consumer_key, consumer_secret, access_token, access_token_secret)
        self._timeout = timeout
        self._client: Any = None
        self._session: Any = None
        self._logged_in = False
        self._lock = threading.Lock()  # images are uploaded ahead from another thread
        _install_redactor(s.get_secret_value() for s in self._credentials)

    def __repr__(self) -> str:
        return f"XAdapter(api_base={self.api_base!r}, username={self.username!r})"

    # ------------------------------------------------------------------ plumbing

    def _auth(self) -> Any:
        from tweepy import OAuth1UserHandler

        ck, cs, at, ats = (s.get_secret_value() for s in self._credentials)
        return OAuth1UserHandler(ck, cs, at, ats).apply_auth()

    def _tweepy(self) -> Any:
        with self._lock:
            return self._tweepy_locked()

    def client(self) -> Any:
        """The tweepy client this adapter signs with (rebased host, timeout): the backup reader shares it."""
        return self._tweepy()

    def _tweepy_locked(self) -> Any:
        if self._client is None:
            import tweepy

            ck, cs, at, ats = (s.get_secret_value() for s in self._credentials)
            client = tweepy.Client(consumer_key=ck, consumer_secret=cs, access_token=at, access_token_secret=ats,
                                   wait_on_rate_limit=False)
            client.user_agent = f"crossposter {client.user_agent}"
            client.session = _rebased_session(self.api_base, self._timeout)
            self._client = client
        return self._client

    def _http(self) -> Any:
        with self._lock:
            if self._session is None:
                import requests

                self._session = requests.Session()
            return self._session

    def _post_media(self, action: str, path: str, **kwargs: Any) -> Any:
        """A request to the media API; returns the decoded JSON body or raises a PlatformError."""
        url = f"{self.upload_base}{path}"
        try:
            response = self._http().post(url, auth=self._auth(), timeout=self._timeout, **kwargs)
        except Exception as e:
            raise map_error(e, action) from e
        if not 200 <= response.status_code < 300:
            raise map_response_error(response.status_code, dict(response.headers), _response_detail(response),
                                     action)
        try:
            return response.json() if response.content else {}
        except ValueError as e:
            raise TransientError(PLATFORM, f"{action}: answer is not JSON (HTTP {response.status_code})") from e

    # ------------------------------------------------------------------ protocol

    def login(self) -> None:
        """Check the four credentials with `GET /2/users/me` and learn the handle for post links."""
        try:
            me = self._tweepy().get_me(user_auth=True)
        except Exception as e:
            raise map_error(e, "checking the credentials") from e
        data = me.data
        if data is None:
            raise UnauthorizedError(PLATFORM, "checking the credentials: X did not return the account")
        self.user_id = str(data.id)
        if not self.username:
            self.username = str(data.username)
        self._logged_in = True
        log.info("x: logged in as @%s", self.username)

    def limits(self) -> Limits:
        """X's fixed limits: 280 weighted characters, every URL 23, 4 images ≤ 5 MB, alt text ≤ 1000."""
        return Limits(max_characters=MAX_CHARACTERS, characters_reserved_per_url=URL_LENGTH, max_images=MAX_IMAGES,
                      max_image_bytes=MAX_IMAGE_BYTES, max_alt_text=MAX_ALT_TEXT)

    def upload_image(self, image: ImageUpload) -> UploadedMedia:
        """`POST /2/media/upload` (multipart), then the alt text with `POST /2/media/metadata`.

        Both media endpoints go to `upload_base` (media lived on its own host in v1.1; X now serves
        both from api.x.com, the default of both settings).
        """
        action = f"uploading {image.path.name}"
        extension = "png" if image.mime_type == "image/png" else "jpg"
        body = self._post_media(
            action, "/2/media/upload",
            # no local file name: it can say more about the author than the picture does
            files={"media": (f"image.{extension}", image.data, image.mime_type)},
            data={"media_category": "tweet_image", "media_type": image.mime_type},
        )
        data = body.get("data") if isinstance(body, dict) else None
        media_id = (data or {}).get("id") or (body.get("media_id_string") if isinstance(body, dict) else None)
        if not media_id:
            raise TransientError(PLATFORM, f"{action}: X's answer has no media id")
        media_id = str(media_id)
        alt = image.alt[:MAX_ALT_TEXT]
        if len(image.alt) > MAX_ALT_TEXT:
            log.warning("x: alt text of %s cut to %d characters", image.path.name, MAX_ALT_TEXT)
        if alt:
            self._post_media(f"setting the alt text of {image.path.name}", "/2/media/metadata",
                             json={"id": media_id, "metadata": {"alt_text": {"text": alt}}})
        return UploadedMedia(id=media_id, alt=alt, width=image.width, height=image.height,
                             raw={"media_key": (data or {}).get("media_key")})

    def publish(self, post: OutgoingPost, parent: PostRef | None, root: PostRef | None) -> PostRef:
        """`POST /2/tweets`; a reply when `parent` is given. No idempotency key exists on X (see module doc)."""
        action = f"publishing post {post.index + 1}"
        try:
            response = self._tweepy().create_tweet(
                text=post.text,
                in_reply_to_tweet_id=parent.id if parent is not None else None,
                media_ids=[m.id for m in post.media] or None,
                user_auth=True,
            )
        except Exception as e:
            raise map_error(e, action) from e
        data = response.data or {}
        tweet_id = data.get("id") if isinstance(data, Mapping) else getattr(data, "id", None)
        if not tweet_id:
            raise MaybePostedError(PLATFORM, f"{action}: X accepted the request but returned no post id")
        return PostRef(id=str(tweet_id), url=post_url(self.username, str(tweet_id)))

    def lookup(self, post_id: str) -> PublishedPost | None:
        """`GET /2/tweets/:id`; None when X says it does not exist (404 or a resource-not-found error)."""
        import tweepy

        try:
            response = self._tweepy().get_tweet(post_id, user_auth=True, tweet_fields=["entities", "author_id"])
        except tweepy.NotFound:
            return None
        except Exception as e:
            raise map_error(e, "looking up a published post") from e
        if response.data is None:
            if any("not-found" in str(_get_error_type(err)) for err in response.errors or []):
                return None
            raise TransientError(PLATFORM, f"looking up post {post_id}: X returned neither the post nor an error")
        tweet = response.data
        return PublishedPost(ref=PostRef(id=str(tweet.id), url=post_url(self.username, str(tweet.id))),
                             text=readable_text(tweet.text, tweet.data.get("entities")))

    def delete(self, post_id: str) -> None:
        """`DELETE /2/tweets/:id`; a post already gone (404, a resource-not-found error) counts as deleted.

        X refuses another account's post (403, a RejectedError with X's words).
        """
        import tweepy

        action = f"deleting post {post_id}"
        try:
            response = self._tweepy().delete_tweet(post_id, user_auth=True)
        except tweepy.NotFound:
            return
        except Exception as e:
            raise map_error(e, action) from e
        data = response.data if response.data is not None else {}
        if isinstance(data, Mapping) and data.get("deleted") is True:
            return
        if any("not-found" in str(_get_error_type(err)) for err in response.errors or []):
            return
        raise TransientError(PLATFORM, f"{action}: X did not say it was deleted ({data!r})")

    def find_recent(self, text: str, parent: PostRef | None, max_results: int = 20) -> PostRef | None:
        """The account's recent post with exactly this text (and parent), to settle a MaybePostedError.

        X is the one platform that needs it (see the module docstring): its last `max_results` posts
        are read back (t.co links expanded) and compared with what was sent.
        """
        import tweepy

        if self.user_id is None:
            self.login()
        try:
            response = self._tweepy().get_users_tweets(
                self.user_id, max_results=max(5, min(max_results, 100)), user_auth=True,
                tweet_fields=["entities", "referenced_tweets"],
            )
        except tweepy.NotFound:
            return None
        except Exception as e:
            raise map_error(e, "looking for an earlier attempt") from e
        for tweet in response.data or []:
            replied = [str(r.id) for r in (tweet.referenced_tweets or []) if r.type == "replied_to"]
            if parent is not None and replied != [parent.id]:
                continue
            if parent is None and replied:
                continue
            if readable_text(tweet.text, tweet.data.get("entities")).strip() == text.strip():
                return PostRef(id=str(tweet.id), url=post_url(self.username, str(tweet.id)))
        return None


def _get_error_type(err: Any) -> str:
    if isinstance(err, Mapping):
        return str(err.get("type") or err.get("title") or "")
    return ""


def readable_text(text: str, entities: Mapping[str, Any] | None) -> str:
    """X's stored text made comparable with what was sent: t.co links expanded, media links and &amp; undone."""
    urls = list((entities or {}).get("urls") or [])
    for url in sorted(urls, key=lambda u: int(u.get("start", 0)), reverse=True):
        short = url.get("url")
        if not short:
            continue
        replacement = "" if url.get("media_key") else str(url.get("expanded_url") or short)
        text = text.replace(short, replacement)
    return html.unescape(text).rstrip()


def _rebased_session(api_base: str, timeout: float) -> Any:
    """A requests session that sends tweepy's `https://api.twitter.com` requests to `api_base`, with a timeout."""
    import requests

    class RebasedSession(requests.Session):
        def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
            if isinstance(url, str) and url.startswith(TWEEPY_HOST):
                url = api_base + url[len(TWEEPY_HOST):]
            kwargs.setdefault("timeout", timeout)
            return super().request(method, url, *args, **kwargs)

    return RebasedSession()


def warm_up() -> None:
    """A fresh process's one-time costs, offline (see publish.warm_up): the SDK."""
    import contextlib

    with contextlib.suppress(Exception):
        import tweepy  # noqa: F401


def from_config(config: Config) -> XAdapter:
    """The adapter for the configured account; the four secrets come from the environment (ConfigError)."""
    from crossposter.config import platform_secrets

    secrets = platform_secrets(PLATFORM)
    xconf = config.platforms.x
    return XAdapter(
        *(secrets[name] for name in SECRET_VARIABLES),
        api_base=xconf.api_base,
        upload_base=xconf.upload_base,
        username=xconf.username,
    )
