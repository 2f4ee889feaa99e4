"""The protocol every platform adapter implements, and the error vocabulary the publisher acts on.

The publisher never looks at SDK exceptions: each adapter translates its
platform's failures into one of the `PlatformError` subclasses below, because
what to do next (retry, wait, stop, ask the user) depends only on that kind.
Adapters never sleep; waiting is the publisher's decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from crossposter.model import Facet
from crossposter.platforms.registry import PlatformName
from crossposter.redact import redact

# --------------------------------------------------------------------------- errors


class PlatformError(Exception):
    """Base of every adapter failure. Its message never contains a secret.

    Adapters build messages from server answers and SDK exceptions, which may quote the
    credential (a 401 echoing the token, a refused header value): the message is redacted
    here, where such text becomes ours, before anything can print, log, store or cut it short.
    """

    def __init__(self, platform: PlatformName, message: str) -> None:
        self.platform = platform
        self.message = redact(message)
        super().__init__(f"{platform}: {self.message}")


class TransientError(PlatformError):
    """Network trouble, 5xx, timeouts: the same request may succeed later."""

    def __init__(self, platform: PlatformName, message: str, retry_after: float | None = None) -> None:
        super().__init__(platform, message)
        self.retry_after = retry_after  # seconds, when the server said


class RateLimitedError(PlatformError):
    """The platform refuses more requests until `reset_at` (UTC, aware) when known."""

    def __init__(self, platform: PlatformName, message: str, reset_at: datetime | None = None) -> None:
        super().__init__(platform, message)
        self.reset_at = reset_at


class RejectedError(PlatformError):
    """The platform refused this content (too long, bad media, validation): do not retry."""


class UnauthorizedError(PlatformError):
    """Credentials missing, wrong or revoked."""


class MaybePostedError(PlatformError):
    """The outcome is unknown (e.g. X's 'duplicate content'): look before posting again, never loop."""


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Limits:
    """What the account can post, as the platform itself reports it."""

    max_characters: int
    characters_reserved_per_url: int | None  # None: URLs count as written (Bluesky)
    max_images: int = 4
    max_image_bytes: int = 1_000_000
    max_alt_text: int = 1000
    #: Pixels per image (width × height) the platform accepts, when it has such a cap (Mastodon's
    #: `image_matrix_limit`); images are prepared within it once, before the first request.
    max_image_pixels: int | None = None


@dataclass(frozen=True)
class PostRef:
    """A published post: `id` is what the archive records (at:// URI, status id, tweet id)."""

    id: str
    url: str  # where a person can see it
    cid: str | None = None  # Bluesky's content hash, needed for reply refs


@dataclass(frozen=True)
class UploadedMedia:
    id: str  # platform media id (Mastodon/X) or a serialised blob ref (Bluesky)
    alt: str
    width: int | None = None
    height: int | None = None
    raw: object | None = None  # adapter-private payload (e.g. the atproto BlobRef)


@dataclass(frozen=True)
class ImageUpload:
    """An image ready to upload: already verified, stripped of EXIF and within the byte limit."""

    path: Path
    data: bytes
    mime_type: str
    width: int
    height: int
    alt: str


@dataclass
class OutgoingPost:
    """One post to publish, with everything the adapter needs to make a retry harmless."""

    text: str
    index: int  # 0-based position in the thread
    thread_key: str  # stable id of the thread (archive path + title), for idempotency keys
    facets: list[Facet] = field(default_factory=list)
    media: list[UploadedMedia] = field(default_factory=list)
    language: str = "en"
    # Bluesky: fixed before the first attempt and stored in the archive, so a retry rewrites the same record.
    rkey: str | None = None
    created_at: str | None = None


@dataclass(frozen=True)
class PublishedPost:
    """A post read back from the platform by its recorded ID."""

    ref: PostRef
    text: str


# --------------------------------------------------------------------------- protocol


@runtime_checkable
class Adapter(Protocol):
    """What the publisher calls; everything platform-specific about publishing is behind it.

    The adapter's module also has `from_config(config)` (builds it) and `warm_up()` (see
    `crossposter.platforms.registry.PlatformSpec.adapter`).
    """

    name: str
    #: A reply names its parent and root by content hash as well as ID (Bluesky's strong refs): an ID the
    #: archive recorded without one (written by hand) is looked up before the first reply.
    replies_need_cid: bool

    def prepare_attempt(self, now: datetime) -> dict[str, str] | None:
        """What to fix before the first attempt at a post, so that a retry after a crash repeats it exactly.

        The publisher writes it into the archive (`pending`) before the request and passes it back in
        `OutgoingPost.rkey`/`created_at`: Bluesky's record key and createdAt, so a second putRecord rewrites
        the same record instead of adding one. None: the platform makes retries harmless another way
        (Mastodon's Idempotency-Key; X's duplicate-content refusal with `find_recent`).
        """

    def login(self) -> None:
        """Authenticate, reusing a saved session where the platform has one. Raises UnauthorizedError."""

    def limits(self) -> Limits:
        """The account's real limits (may ask the server once, then cached)."""

    def upload_image(self, image: ImageUpload) -> UploadedMedia:
        """Upload one image with its alt text."""

    def publish(self, post: OutgoingPost, parent: PostRef | None, root: PostRef | None) -> PostRef:
        """Publish `post` as a reply to `parent` (thread root `root`), or as a new thread when parent is None."""

    def lookup(self, post_id: str) -> PublishedPost | None:
        """Read a published post back by the ID the archive recorded; None when it no longer exists."""

    def delete(self, post_id: str) -> None:
        """Delete one of the account's own posts by the ID the archive recorded.

        Idempotent, because the mirror repeats a deletion a crash interrupted: a post already gone
        (404, 410, "not found") counts as deleted and returns normally. A post of another account is
        refused (RejectedError or UnauthorizedError, never attempted where the ID says whose it is).
        """

    def find_recent(self, text: str, parent: PostRef | None) -> PostRef | None:
        """The account's recent post with exactly `text`, replying to `parent` (a thread start when None).

        Why: after a MaybePostedError (X's "duplicate content" when an earlier attempt got through but
        its answer was lost) the publisher records the post this finds instead of posting it again, and
        stops to ask the user when it finds nothing. Platforms whose retries are idempotent (Bluesky's
        putRecord under a fixed rkey, Mastodon's Idempotency-Key) never raise MaybePostedError and
        return None. Raises a PlatformError when the lookup itself fails.
        """
