"""Mastodon adapter: Mastodon.py with an access token, the instance's own limits, idempotent posting.

Why an Idempotency-Key on every status: a timeout after the server stored the
status would otherwise turn the publisher's retry into a second copy. Mastodon
remembers the key for an hour per account and answers a repeat with the status
it already created. The key is derived from what makes a post *this* post
(instance, account, thread, position, parent, text), never from randomness, so
a retry after a crash — a new process — sends the same key.

Why Mastodon.py never sleeps here: it is built with `ratelimit_method="throw"`
(its default "wait" sleeps up to 5 minutes inside a request) and never with
`media_post(synchronous=True)` (which sleeps 5 s per poll and turns every
failure into "could not be processed"). Waiting is the publisher's decision.

Why an image that is still being processed (HTTP 202) is not polled in
`upload_image`: polling without sleeping is pointless and sleeping is not
allowed, while the publisher uploads a post's images ahead of time, so
processing usually overlaps earlier posts. `publish` asks the server once per
still-pending image (one GET, no sleep) and, if it is not ready yet, raises
`TransientError(retry_after=2)` *before* sending the status: the retry is
harmless and nothing was posted.

The SDK is imported inside methods: `crossposter.platforms` is on the path of
commands that must start fast.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import re
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crossposter.atomic import write_atomic
from crossposter.platforms import registry
from crossposter.platforms.base import (
    ImageUpload,
    Limits,
    PlatformError,
    PostRef,
    PublishedPost,
    RateLimitedError,
    RejectedError,
    TransientError,
    UnauthorizedError,
    UploadedMedia,
)
from crossposter.platforms.ratelimit import header, reset_from_headers, retry_after_seconds
from crossposter.platforms.sdk_compat import mastodon_plain_json
from crossposter.redact import redact, register

if TYPE_CHECKING:
    from pydantic import SecretStr

    from crossposter.config import Config
    from crossposter.platforms.base import OutgoingPost

log = logging.getLogger(__name__)

PLATFORM = "mastodon"
_SPEC = registry.get(PLATFORM)
TOKEN_VARIABLE = _SPEC.secret_variables[0]
#: Mastodon's defaults when an instance does not say (documented API defaults; written in the registry).
DEFAULT_MAX_CHARACTERS = _SPEC.limit
DEFAULT_URL_LENGTH = _SPEC.characters_reserved_per_url  # (set: every URL counts the same here)
DEFAULT_MAX_IMAGES = _SPEC.max_images
DEFAULT_IMAGE_BYTES = _SPEC.max_image_bytes
DEFAULT_ALT_TEXT = _SPEC.max_alt_text
#: Seconds the publisher should wait before asking again about an image the server is still processing.
MEDIA_PROCESSING_RETRY = 2.0
#: Instance limits change rarely; re-read them once a day.
LIMITS_CACHE_TTL = timedelta(days=1)
#: Oldest Mastodon whose endpoints the adapter uses (v2 media, v2 instance); stated so Mastodon.py does
#: not probe the version with an extra request or, when that probe fails, fall back to v1 endpoints.
_ASSUMED_VERSION = "4.0.0"


def normalise_instance(url: str) -> str:
    """`mastodon.social`, `https://mastodon.social/` → `https://mastodon.social`."""
    url = url.strip().rstrip("/")
    if not re.match(r"^https?://", url, re.IGNORECASE):
        url = "https://" + url
    return url


def idempotency_key(instance: str, account_id: str, thread_key: str, index: int, text: str,
                    parent_id: str | None) -> str:
    """A key that is the same for every attempt of the same post and differs for any other post.

    The parent is part of it: if a thread's root were deleted and posted again within the
    server's one-hour memory, the reply must not be answered with the old reply to the old root.
    """
    material = json.dumps([normalise_instance(instance), account_id, thread_key, index,
                           hashlib.sha256(text.encode("utf-8")).hexdigest(), parent_id or ""],
                          ensure_ascii=True)
    return "crossposter-" + hashlib.sha256(material.encode("ascii")).hexdigest()


def _get(obj: Any, *keys: str) -> Any:
    """Walk nested dicts (Mastodon.py returns dict subclasses); None as soon as a key is missing."""
    for key in keys:
        if isinstance(obj, Mapping):
            obj = obj.get(key)
        else:
            return None
    return obj


def _positive_int(value: Any, default: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return number if number > 0 else default


def html_to_text(content: str) -> str:
    """Plain text of a status' HTML, for servers that do not offer the status source."""
    text = re.sub(r"<br\s*/?>", "\n", content, flags=re.IGNORECASE)
    text = re.sub(r"</p>\s*<p[^>]*>", "\n\n", text, flags=re.IGNORECASE)
    text = re.sub(r"<[^>]+>", "", text)
    return html.unescape(text).strip()


class MastodonAdapter:
    """One Mastodon account on one instance, authenticated by an access token."""

    name = PLATFORM
    replies_need_cid = False

    def prepare_attempt(self, now: datetime) -> dict[str, str] | None:
        """Nothing: a retry sends the same Idempotency-Key (`idempotency_key`), and the server answers it."""
        return None

    def __init__(
        self,
        instance: str,
        token: SecretStr,
        *,
        visibility: str = "public",
        language: str = "en",
        state_dir: Path | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.instance = normalise_instance(instance)
        self.visibility = visibility
        self.language = language
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self._token = token
        register([token.get_secret_value()])
        self._timeout = timeout
        self._api: Any = None
        # Per thread: the publisher uploads the next post's images from another thread while posting.
        self._local = threading.local()
        self._lock = threading.Lock()
        self._account_id: str | None = None
        self.account_name: str | None = None
        self._limits: Limits | None = None
        #: Pixels per image the instance accepts (`image_matrix_limit`), when it says.
        self.image_matrix_limit: int | None = None
        self._pending_media: set[str] = set()
        #: answers come as the decoded JSON (sdk_compat.mastodon_plain_json); known once the client exists
        self.plain_json: bool | None = None

    def __repr__(self) -> str:
        return f"MastodonAdapter(instance={self.instance!r}, account={self.account_name!r})"

    # ------------------------------------------------------------------ plumbing

    @property
    def _last_status(self) -> int | None:
        return getattr(self._local, "status", None)

    @property
    def _last_headers(self) -> dict[str, str]:
        return getattr(self._local, "headers", {})

    def _client(self) -> Any:
        with self._lock:
            return self._client_locked()

    def _client_locked(self) -> Any:
        if self._api is None:
            import requests
            from mastodon import Mastodon

            session = requests.Session()
            session.hooks["response"].append(self._remember_response)
            self._api = Mastodon(
                access_token=self._token.get_secret_value(),
                api_base_url=self.instance,
                ratelimit_method="throw",
                request_timeout=self._timeout,
                session=session,
                # "created" takes the version given here without asking the server (no request at start);
                # "none" would ignore it and stay at 1.0.0, and media_post would then use the
                # synchronous, deprecated /api/v1/media.
                mastodon_version=_ASSUMED_VERSION,
                version_check_mode="created",
                user_agent="crossposter",
            )
            self.plain_json = mastodon_plain_json(self._api)
        return self._api

    def _remember_response(self, response: Any, *args: Any, **kwargs: Any) -> None:
        """Keep the status, headers and error text of this thread's latest answer.

        Mastodon.py's errors drop the headers and carry the rest only as positional `args` (an
        undocumented layout); the answer itself, seen here through requests' public hook, is the
        source that cannot change shape under us.
        """
        self._local.status = response.status_code
        self._local.headers = dict(response.headers)
        self._local.error = _error_text(response) if response.status_code >= 400 else ""

    def _call(self, action: str, method: str, *args: Any, **kwargs: Any) -> Any:
        from mastodon.errors import MastodonError

        api = self._client()
        self._local.status = None
        self._local.headers = {}
        self._local.error = ""
        try:
            return getattr(api, method)(*args, **kwargs)
        except MastodonError as e:
            raise self._translate(e, action) from e

    def call(self, action: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """One Mastodon.py method through this adapter's client, failures as `PlatformError` kinds.

        For the backup reader, so that reading uses the same login, timeouts, never-sleeping rate
        limits and error mapping as publishing; `action` says what was being done, in messages."""
        return self._call(action, method, *args, **kwargs)

    def _translate(self, exc: BaseException, action: str) -> PlatformError:
        """Mastodon.py's exception → the publisher's vocabulary (server text kept, secrets never present)."""
        from mastodon import errors as me

        headers = self._last_headers
        where = f"{action} on {self.instance}"
        if isinstance(exc, me.MastodonRatelimitError):
            return self._rate_limited(where, headers)
        if isinstance(exc, me.MastodonNetworkError):
            kind = "timed out" if isinstance(exc, me.MastodonReadTimeout) else "network error"
            return TransientError(PLATFORM, f"{where}: {kind} ({_what_failed(exc)})")
        if isinstance(exc, me.MastodonAPIError):
            status, server_text = self._last_status, getattr(self._local, "error", "")
            if status is None or status < 400:
                return TransientError(PLATFORM, f"{where}: unexpected answer from the server ({_what_failed(exc)})")
            text = f"{where}: HTTP {status}" + (f": {server_text}" if server_text else "")
            if status == 429:
                return self._rate_limited(where, headers, server_text)
            if status == 401:
                return UnauthorizedError(PLATFORM, f"{text} (check {TOKEN_VARIABLE})")
            if status == 403:
                return UnauthorizedError(
                    PLATFORM, f"{text} (the token needs the read and write scopes, and the account must be active)")
            if status >= 500 or status in (408, 409, 425):
                return TransientError(PLATFORM, text,
                                      retry_after=retry_after_seconds(header(headers, "Retry-After")))
            return RejectedError(PLATFORM, text)
        if isinstance(exc, me.MastodonIllegalArgumentError | me.MastodonVersionError):
            return RejectedError(PLATFORM, f"{where}: {exc}")
        return TransientError(PLATFORM, f"{where}: {type(exc).__name__}: {exc}")

    def _rate_limited(self, where: str, headers: Mapping[str, str], detail: str = "") -> RateLimitedError:
        reset = reset_from_headers(headers, "X-RateLimit-Reset")
        if reset is None and self._api is not None and self._api.ratelimit_reset:
            # Mastodon.py's own reading, already shifted by the server/local clock difference
            reset = datetime.fromtimestamp(float(self._api.ratelimit_reset), tz=UTC)
        until = f" until {reset.isoformat(timespec='seconds')}" if reset else ""
        more = f" ({detail})" if detail and detail != "Hit rate limit." else ""
        return RateLimitedError(PLATFORM, f"{where}: rate limited{until}{more}", reset_at=reset)

    # ------------------------------------------------------------------ protocol

    def login(self) -> None:
        """Check the token and learn the account (its id is part of every idempotency key)."""
        account = self._call("checking the access token", "account_verify_credentials")
        self._account_id = str(account["id"])
        self.account_name = str(_get(account, "acct") or _get(account, "username") or self._account_id)
        log.info("mastodon: logged in to %s as @%s", self.instance, self.account_name)

    def _ensure_login(self) -> str:
        if self._account_id is None:
            self.login()
        assert self._account_id is not None
        return self._account_id

    def limits(self) -> Limits:
        """The instance's own limits, read once (`/api/v2/instance`, else v1) and cached for a day on disk."""
        with self._lock:
            if self._limits is not None:
                return self._limits
        values = self._read_cached_limits()
        if values is None:
            values = self._fetch_limits()
            self._write_cached_limits(values)
        self.image_matrix_limit = values.get("image_matrix_limit")
        self._limits = Limits(
            max_characters=values["max_characters"],
            characters_reserved_per_url=values["characters_reserved_per_url"],
            max_images=values["max_images"],
            max_image_bytes=values["max_image_bytes"],
            max_alt_text=values["max_alt_text"],
            max_image_pixels=self.image_matrix_limit,
        )
        return self._limits

    def _fetch_limits(self) -> dict[str, Any]:
        from mastodon.errors import MastodonAPIError

        try:
            info = self._call("reading the instance's limits", "instance_v2")
        except RejectedError as e:  # 404/410 from servers without v2 (older Mastodon, some forks)
            if not isinstance(e.__cause__, MastodonAPIError) or self._last_status not in (404, 410):
                raise
            info = self._call("reading the instance's limits", "instance_v1")
        conf = _get(info, "configuration") or {}
        max_chars = _get(conf, "statuses", "max_characters") or _get(info, "max_toot_chars")
        image_matrix = _get(conf, "media_attachments", "image_matrix_limit")
        return {
            "max_characters": _positive_int(max_chars, DEFAULT_MAX_CHARACTERS),
            "characters_reserved_per_url": _positive_int(
                _get(conf, "statuses", "characters_reserved_per_url"), DEFAULT_URL_LENGTH),
            "max_images": _positive_int(_get(conf, "statuses", "max_media_attachments"), DEFAULT_MAX_IMAGES),
            "max_image_bytes": _positive_int(_get(conf, "media_attachments", "image_size_limit"),
                                             DEFAULT_IMAGE_BYTES),
            "max_alt_text": _positive_int(_get(conf, "media_attachments", "description_limit"), DEFAULT_ALT_TEXT),
            "image_matrix_limit": _positive_int(image_matrix, 0) or None,
        }

    @property
    def _cache_path(self) -> Path | None:
        if self.state_dir is None:
            return None
        return limits_cache_path(self.state_dir, self.instance)

    def _read_cached_limits(self) -> dict[str, Any] | None:
        path = self._cache_path
        if path is None:
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            fetched = datetime.fromisoformat(data["fetched_at"])
            values = data["limits"]
            if data.get("instance") != self.instance or datetime.now(UTC) - fetched > LIMITS_CACHE_TTL:
                return None
            keys = ("max_characters", "characters_reserved_per_url", "max_images", "max_image_bytes",
                    "max_alt_text")
            if not all(isinstance(values.get(k), int) and values[k] > 0 for k in keys):
                return None
            return values
        except (OSError, ValueError, KeyError, TypeError):
            return None  # missing or damaged cache: simply ask the instance again

    def _write_cached_limits(self, values: dict[str, Any]) -> None:
        path = self._cache_path
        if path is None:
            return
        payload = {"instance": self.instance, "fetched_at": datetime.now(UTC).isoformat(), "limits": values}
        try:
            write_atomic(path, json.dumps(payload, indent=2).encode("utf-8"), 0o600)
        except OSError as e:  # a cache is an optimisation: never fail a publication over it
            log.debug("mastodon: cannot cache instance limits in %s: %s", path, e)

    def upload_image(self, image: ImageUpload) -> UploadedMedia:
        """Upload with its description; returns at once even when the server is still processing (202)."""
        limits = self.limits()
        if self.image_matrix_limit and image.width * image.height > self.image_matrix_limit:
            image = self._shrink_to_matrix(image, limits.max_image_bytes, self.image_matrix_limit)
        if len(image.data) > limits.max_image_bytes:
            raise RejectedError(PLATFORM, f"{image.path}: {len(image.data)} bytes is over {self.instance}'s "
                                          f"limit of {limits.max_image_bytes} bytes per image")
        limit = limits.max_alt_text
        alt = image.alt
        if len(alt) > limit:
            log.warning("mastodon: alt text of %s cut to the instance's %d characters", image.path.name, limit)
            alt = alt[:limit]
        media = self._call(f"uploading {image.path.name}", "media_post", image.data, mime_type=image.mime_type,
                           description=alt or None)
        media_id = str(media["id"])
        processing = self._last_status == 202 or not _get(media, "url")
        if processing:
            self._pending_media.add(media_id)
        return UploadedMedia(id=media_id, alt=alt, width=image.width, height=image.height,
                             raw={"processing": processing})

    def _shrink_to_matrix(self, image: ImageUpload, max_bytes: int, max_pixels: int) -> ImageUpload:
        """Mastodon refuses images above `image_matrix_limit` pixels (422), whatever their size in bytes:
        a 48-megapixel phone photo fits 16 MB but not 33 MP. Re-prepare it from the file, smaller.

        The publisher prepares images within `Limits.max_image_pixels` before its first request, so
        this only serves callers that did not."""
        from crossposter.images import ImageError, prepare_image

        log.info("mastodon: %s has %d×%d pixels, over %s's limit of %d; scaling it down",
                 image.path.name, image.width, image.height, self.instance, max_pixels)
        try:
            return prepare_image(image.path, image.alt, max_bytes, max_pixels=max_pixels)
        except (ImageError, OSError) as e:
            raise RejectedError(PLATFORM, f"{image.path}: over {self.instance}'s limit of {max_pixels} pixels "
                                          f"and cannot be scaled down ({e})") from e

    def _check_media_ready(self, post: OutgoingPost) -> None:
        """One GET per image the server had not finished; TransientError (nothing posted) if still busy."""
        for media in post.media:
            if media.id not in self._pending_media:
                continue
            info = self._call("checking an uploaded image", "media", media.id)
            if self._last_status == 206 or not _get(info, "url"):
                raise TransientError(
                    PLATFORM,
                    f"{self.instance} is still processing image {media.id} of post {post.index + 1}; "
                    "nothing was posted, try again shortly",
                    retry_after=MEDIA_PROCESSING_RETRY,
                )
            self._pending_media.discard(media.id)

    def publish(self, post: OutgoingPost, parent: PostRef | None, root: PostRef | None) -> PostRef:
        """Post one status (a reply to `parent` when given) with an Idempotency-Key fixed by its content."""
        account_id = self._ensure_login()
        self._check_media_ready(post)
        parent_id = parent.id if parent is not None else None
        key = idempotency_key(self.instance, account_id, post.thread_key, post.index, post.text, parent_id)
        status = self._call(
            f"publishing post {post.index + 1}",
            "status_post",
            post.text,
            in_reply_to_id=parent_id,
            media_ids=[m.id for m in post.media] or None,
            visibility=self.visibility,
            language=post.language or self.language,
            idempotency_key=key,
        )
        status_id = str(status["id"])
        url = _get(status, "url") or _get(status, "uri") or f"{self.instance}/statuses/{status_id}"
        return PostRef(id=status_id, url=str(url))

    def find_recent(self, text: str, parent: PostRef | None) -> PostRef | None:
        """Always None: the Idempotency-Key answers a repeated post with the first one, so none is ever doubted."""
        return None

    def delete(self, post_id: str) -> None:
        """`DELETE /api/v1/statuses/:id`; a status already gone (404/410) counts as deleted.

        The server refuses another account's status (403, an UnauthorizedError saying so).
        """
        from mastodon.errors import MastodonAPIError

        self._ensure_login()
        try:
            self._call(f"deleting post {post_id}", "status_delete", post_id)
        except RejectedError as e:
            if isinstance(e.__cause__, MastodonAPIError) and self._last_status in (404, 410):
                return
            raise

    def update(self, post_id: str, text: str) -> None:
        """`PUT /api/v1/statuses/:id` with the new text; media, language and visibility stay as they are.

        Not in the adapter protocol: of the three platforms only Mastodon edits a post (the mirror's
        `edits: update`). Repeating it with the same text is harmless.
        """
        self._ensure_login()
        self._call(f"editing post {post_id}", "status_update", post_id, status=text)

    def lookup(self, post_id: str) -> PublishedPost | None:
        """The status by id with its plain source text; None when it is gone (404/410)."""
        from mastodon.errors import MastodonAPIError

        try:
            status = self._call("looking up a published post", "status", post_id)
        except RejectedError as e:
            if isinstance(e.__cause__, MastodonAPIError) and self._last_status in (404, 410):
                return None
            raise
        try:
            text = str(self._call("reading a post's source", "status_source", post_id)["text"])
        except (RejectedError, KeyError, TypeError):  # servers without /source: fall back to the HTML
            text = html_to_text(str(_get(status, "content") or ""))
        url = _get(status, "url") or _get(status, "uri") or ""
        return PublishedPost(ref=PostRef(id=str(status["id"]), url=str(url)), text=text)


def limits_cache_path(state_dir: Path, instance: str) -> Path:
    """Where the instance's limits are cached (the mirror reads the post limit back to redo a plan)."""
    host = re.sub(r"[^A-Za-z0-9._-]", "_", instance.split("://", 1)[-1])
    return state_dir / f"mastodon-instance-{host}.json"


def cached_max_characters(state_dir: Path, instance: str) -> int | None:
    """The post limit the instance last told this account (however old the cache), or None."""
    try:
        data = json.loads(limits_cache_path(state_dir, normalise_instance(instance)).read_text(encoding="utf-8"))
        value = data["limits"]["max_characters"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return value if isinstance(value, int) and value > 0 else None


def cached_limit(config: Config) -> int | None:
    """The post limit the configured instance last told this account (the mirror redoes a plan with it)."""
    return cached_max_characters(config.state_path, config.platforms.mastodon.instance)


def _what_failed(exc: BaseException) -> str:
    """What went wrong, in words, cut short.

    Mastodon.py's errors document no attributes (their `args` are an undocumented tuple), and each
    is raised while handling the real failure: requests' connection error or timeout, the JSON
    decoder's error for an answer that is not JSON. That cause (Python's exception chaining) is
    described; the SDK's own text only when there is none. Redacted before it is cut: a secret cut
    in half could no longer be recognised.
    """
    cause = exc.__cause__ or exc.__context__
    text = redact(str(cause if cause is not None else exc)) or type(exc).__name__
    return text if len(text) <= 300 else text[:300] + "…"


def _error_text(response: Any) -> str:
    """The server's words in an error answer: Mastodon's `{"error": …, "error_description": …}`, else the reason.

    Mastodon.py shows the same (its error message is made from these fields); an HTML error page
    is not quoted, only its status reason.
    """
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        parts = [str(body[k]) for k in ("error", "error_description") if isinstance(body.get(k), str) and body[k]]
        if parts:
            return ": ".join(parts)
    return str(response.reason or "")


def warm_up() -> None:
    """A fresh process's one-time costs, offline (see publish.warm_up): the SDK and the MIME tables."""
    import contextlib
    import mimetypes

    with contextlib.suppress(Exception):
        import mastodon  # noqa: F401
    mimetypes.init()  # Mastodon.py names each upload by its type: the first lookup reads the system tables


def from_config(config: Config) -> MastodonAdapter:
    """The adapter for the configured instance; the token comes from the environment (ConfigError if unset)."""
    from crossposter.config import platform_secrets

    masto = config.platforms.mastodon
    token = platform_secrets(PLATFORM)[TOKEN_VARIABLE]
    return MastodonAdapter(
        instance=masto.instance,
        token=token,
        visibility=masto.visibility,
        language=config.language,
        state_dir=config.state_path,
    )
