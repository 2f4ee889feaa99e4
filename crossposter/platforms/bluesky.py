"""Bluesky adapter: atproto SDK, session kept in the state directory, posts written with putRecord.

Why putRecord and not the SDK's `send_post`: the publisher fixes every post's
record key (a TID) and `createdAt` before the first attempt and stores them in
the archive, so a retry after a timeout or a crash rewrites the very same
record (same URI, same CID) instead of creating a second post. `send_post`
would also silently set `langs=['en']`.

Why the session file: `createSession` is rate-limited to a few dozen calls a
day per account, and the daemon may start many times; the exported session
(access + refresh token) is reused and saved again whenever the SDK refreshes it.

The SDK is imported inside functions only: `crossposter.platforms` is on the
path of commands that must start fast.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from datetime import UTC, datetime
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
from crossposter.redact import register

if TYPE_CHECKING:
    from pydantic import SecretStr

    from crossposter.config import Config
    from crossposter.platforms.base import OutgoingPost

log = logging.getLogger(__name__)

PLATFORM = "bluesky"
POST_COLLECTION = "app.bsky.feed.post"
_SPEC = registry.get(PLATFORM)
MAX_IMAGES = _SPEC.max_images
MAX_IMAGE_BYTES = _SPEC.max_image_bytes
MAX_ALT_TEXT = _SPEC.max_alt_text
#: XRPC error names that mean "the saved tokens are no good", whatever the HTTP status (often 400).
_POST_URI = re.compile(r"^at://(did:[a-z]+:[A-Za-z0-9._:%-]+|[A-Za-z0-9.-]+)/app\.bsky\.feed\.post/[A-Za-z0-9._:~-]{1,512}$")
_TOKEN_ERRORS = frozenset({"ExpiredToken", "InvalidToken", "AuthenticationRequired", "AuthMissing",
                           "AccountTakedown", "AccountDeactivated", "AuthFactorTokenRequired"})

_ssl_lock = threading.Lock()
_ssl: Any = None


def ssl_context() -> Any:
    """httpx's default verifying TLS context, built once per process and shared by every client.

    Each `httpx.Client()` otherwise loads the whole CA bundle again (~50 ms), and the atproto SDK
    builds a client for every log-in: that sat in front of Bluesky's first request on every run.
    The context is the one httpx would make (`create_ssl_context()`, honouring SSL_CERT_FILE/DIR).
    """
    global _ssl
    with _ssl_lock:
        if _ssl is None:
            import httpx

            _ssl = httpx.create_ssl_context()
        return _ssl

# --------------------------------------------------------------------------- TID and timestamps

_S32 = "234567abcdefghijklmnopqrstuvwxyz"
_tid_lock = threading.Lock()
_tid_last_us = 0
_tid_clock_id = secrets.randbelow(1024)


def new_tid() -> str:
    """A fresh record key in the TID format (13 base32-sortable chars), strictly increasing in this process.

    The SDK only validates TIDs, it does not make them. Layout (atproto spec): top bit 0, 53 bits of
    microseconds since the epoch, 10 bits of clock id; encoded big-endian in the sortable alphabet so
    that later posts sort after earlier ones.
    """
    global _tid_last_us
    with _tid_lock:
        us = time.time_ns() // 1000
        if us <= _tid_last_us:
            us = _tid_last_us + 1
        _tid_last_us = us
    value = ((us & ((1 << 53) - 1)) << 10) | _tid_clock_id
    return "".join(_S32[(value >> (5 * i)) & 31] for i in range(12, -1, -1))


def now_iso() -> str:
    """`createdAt` in the form the Bluesky app writes: UTC, millisecond precision, `Z` suffix."""
    return iso_z(datetime.now(UTC))


def iso_z(when: datetime) -> str:
    """`when` (aware) as `now_iso` writes it."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def post_url(handle: str, uri: str) -> str:
    """Where a person sees the post: bsky.app by handle and record key."""
    return f"https://bsky.app/profile/{handle}/post/{uri.rsplit('/', 1)[-1]}"


# --------------------------------------------------------------------------- error mapping


def _xrpc_error(response: Any) -> tuple[str, str]:
    """(error name, message) of an XRPC error response; either may be empty."""
    content = getattr(response, "content", None)
    name = getattr(content, "error", None)
    message = getattr(content, "message", None)
    if name is None and isinstance(content, dict):
        name, message = content.get("error"), content.get("message")
    return str(name or ""), str(message or "")


def map_error(exc: BaseException, action: str) -> PlatformError:
    """Translate an atproto/httpx failure into the publisher's vocabulary.

    Only the status, the XRPC error name and the server's message are kept: the SDK's
    exception chain can hold the request, so callers raise the result `from None`.
    """
    import httpx
    from atproto_client import exceptions as ex

    if isinstance(exc, PlatformError):
        return exc
    if isinstance(exc, ex.LoginRequiredError):
        return UnauthorizedError(PLATFORM, f"{action}: not logged in")
    if isinstance(exc, ex.RequestErrorBase):
        response = exc.response
        if response is None:  # transport failure or timeout: putRecord makes a retry harmless
            kind = "timed out" if isinstance(exc, ex.InvokeTimeoutError) else "network error"
            cause = exc.__cause__ or exc.__context__
            detail = f" ({type(cause).__name__}: {cause})" if cause is not None else ""
            return TransientError(PLATFORM, f"{action}: {kind}{detail}")
        status = int(response.status_code)
        headers = {str(k).lower(): v for k, v in (response.headers or {}).items()}
        name, message = _xrpc_error(response)
        summary = f"HTTP {status}" + (f" {name}" if name else "") + (f": {message}" if message else "")
        text = f"{action}: {summary}"
        if status == 429:
            return RateLimitedError(PLATFORM, text, reset_at=reset_from_headers(headers, "ratelimit-reset"))
        if status in (401, 403) or name in _TOKEN_ERRORS:
            return UnauthorizedError(PLATFORM, text)
        if status >= 500 or status in (408, 409, 425):
            return TransientError(PLATFORM, text, retry_after=retry_after_seconds(header(headers, "retry-after")))
        return RejectedError(PLATFORM, text)
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return RejectedError(PLATFORM, f"{action}: bad service URL ({exc})")
    if isinstance(exc, httpx.HTTPError):
        return TransientError(PLATFORM, f"{action}: {type(exc).__name__}: {exc}")
    if isinstance(exc, ex.ModelError):
        return TransientError(PLATFORM, f"{action}: unexpected answer from the server ({type(exc).__name__})")
    return TransientError(PLATFORM, f"{action}: {type(exc).__name__}: {exc}")


# --------------------------------------------------------------------------- the adapter


class BlueskyAdapter:
    """One Bluesky account on one service (bsky.social, a self-hosted or a bare PDS)."""

    name = PLATFORM
    #: a reply's parent and root are strong refs (URI and CID)
    replies_need_cid = True

    def __init__(
        self,
        handle: str,
        password: SecretStr | None,
        state_dir: Path,
        service: str = "https://bsky.social",
        *,
        max_characters: int = 300,
        timeout: float = 30.0,
        transport: Any = None,
    ) -> None:
        """`transport` (an httpx transport) lets tests and proxies stand in for the network."""
        self.handle = handle
        self.service = service.rstrip("/")
        self.state_dir = Path(state_dir)
        self._password = password
        if password is not None:
            register([password.get_secret_value()])
        self._max_characters = max_characters
        self._timeout = timeout
        self._transport = transport
        self._client: Any = None
        self._did: str | None = None
        self._session_handle: str | None = None
        self._save_lock = threading.Lock()
        self._login_lock = threading.Lock()  # images may be uploaded ahead from another thread
        self._did_cache: dict[str, str | None] = {}

    def __repr__(self) -> str:
        return f"BlueskyAdapter(handle={self.handle!r}, service={self.service!r})"

    # ------------------------------------------------------------------ session

    @property
    def session_path(self) -> Path:
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", self.handle)
        return self.state_dir / f"bluesky-session-{safe}"

    @property
    def did(self) -> str:
        self._ensure_login()
        assert self._did is not None
        return self._did

    def _new_client(self) -> Any:
        from atproto import Client
        from atproto_client.request import Request

        options: dict[str, Any] = {"timeout": self._timeout, "verify": ssl_context()}
        if self._transport is not None:
            options["transport"] = self._transport
        client = Client(base_url=self.service, request=Request(**options))
        client.on_session_change(self._on_session_change)
        return client

    def _on_session_change(self, event: Any, session: Any) -> None:
        """Save new tokens whenever the SDK creates or refreshes them (it refreshes ~15 min before expiry)."""
        from atproto import SessionEvent

        if event in (SessionEvent.CREATE, SessionEvent.REFRESH):
            try:
                self._save_session(session.export())
            except OSError as e:
                # The in-memory session still works; the next run logs in with the password again.
                log.warning("bluesky: could not save the session to %s: %s", self.session_path, e.strerror)

    def _save_session(self, session_string: str) -> None:
        """Write the session atomically, never readable by others (it is as good as the password for a while)."""
        with self._save_lock:
            self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_atomic(self.session_path, session_string.encode("utf-8"), 0o600)

    def _load_session(self) -> str | None:
        try:
            text = self.session_path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except OSError as e:
            log.warning("bluesky: cannot read the saved session %s: %s", self.session_path, e.strerror)
            return None
        return text or None

    def _forget_session(self) -> None:
        try:
            self.session_path.unlink()
        except FileNotFoundError:
            pass
        except OSError as e:
            log.warning("bluesky: cannot remove the stale session %s: %s", self.session_path, e.strerror)

    def login(self) -> None:
        """Reuse the saved session if the server still accepts it, else log in with the app password."""
        with self._login_lock:
            if self._client is not None:
                return
            saved = self._load_session()
            if saved is not None and self._resume(saved):
                return
            self._password_login()

    def _ensure_login(self) -> Any:
        if self._client is None:
            self.login()
        return self._client

    def session(self) -> tuple[Any, str, str]:
        """(SDK client, DID, handle) of the logged-in account, logging in (or resuming) first when needed.

        Public so the backup reader reads the account through this very login: one session file,
        one `createSession` budget, one error mapping, instead of a second way of logging in.
        """
        client = self._ensure_login()
        return client, self.did, self._session_handle or self.handle

    def _resume(self, session_string: str) -> bool:
        """Import the saved session and check it with getSession (the SDK refreshes it first when due).

        Returns False (and forgets the file) when the server refuses the tokens or the file is unreadable,
        so the caller logs in with the password; network trouble, 5xx and 429 propagate instead: a
        password login would fail the same way and spend one of the few createSession calls a day.
        """
        import httpx
        from atproto_client.exceptions import RequestErrorBase

        client = self._new_client()
        try:
            client.login(session_string=session_string, fetch_bsky_profile=False)
            info = client.com.atproto.server.get_session()
        except Exception as e:  # noqa: BLE001 - every SDK failure is sorted below
            response = getattr(e, "response", None) if isinstance(e, RequestErrorBase) else None
            if isinstance(e, httpx.HTTPError) or (isinstance(e, RequestErrorBase) and (
                    response is None or response.status_code >= 500 or response.status_code == 429)):
                raise map_error(e, f"resume the saved session at {self.service}") from None
            reason = map_error(e, "resume").message if response is not None else type(e).__name__
            log.info("bluesky: the saved session %s is not usable (%s); logging in with the password",
                     self.session_path, reason)
            self._forget_session()
            return False
        self._client = client
        self._did = str(info.did)
        self._session_handle = str(info.handle)
        return True

    def _password_login(self) -> None:
        if self._password is None or not self._password.get_secret_value():
            raise UnauthorizedError(
                PLATFORM,
                f"no saved session for {self.handle} and CROSSPOSTER_BLUESKY_PASSWORD is not set "
                "(set it to an app password, or CROSSPOSTER_BLUESKY_PASSWORD_FILE to a file holding it)",
            )
        client = self._new_client()
        try:
            # fetch_bsky_profile=False: a bare PDS has no AppView to answer getProfile.
            client.login(self.handle, self._password.get_secret_value(), fetch_bsky_profile=False)
        except Exception as e:  # noqa: BLE001
            err = map_error(e, f"login as {self.handle} at {self.service}")
            if isinstance(err, UnauthorizedError | RejectedError):
                # A 400 at login is about the credentials too (e.g. a malformed handle, 2FA required).
                raise UnauthorizedError(
                    PLATFORM,
                    f"{err.message} (check the handle and that CROSSPOSTER_BLUESKY_PASSWORD holds an app password)",
                ) from None
            raise err from None
        session = client._session  # noqa: SLF001 - the SDK exposes the session only this way
        self._client = client
        self._did = str(session.did)
        self._session_handle = str(session.handle)

    # ------------------------------------------------------------------ protocol

    def prepare_attempt(self, now: datetime) -> dict[str, str] | None:
        """The record key and createdAt of the next post, fixed (and recorded) before its first putRecord."""
        return {"rkey": new_tid(), "created_at": iso_z(now)}

    def limits(self) -> Limits:
        """Bluesky's limits are fixed by the lexicon and the PDS, not per account: no request needed."""
        return Limits(
            max_characters=self._max_characters,
            characters_reserved_per_url=None,
            max_images=MAX_IMAGES,
            max_image_bytes=MAX_IMAGE_BYTES,
            max_alt_text=MAX_ALT_TEXT,
        )

    def upload_image(self, image: ImageUpload) -> UploadedMedia:
        """uploadBlob; the blob only becomes part of a post when a record references it."""
        if len(image.data) > MAX_IMAGE_BYTES:
            raise RejectedError(PLATFORM, f"{image.path}: {len(image.data)} bytes is over the "
                                          f"{MAX_IMAGE_BYTES} byte limit for Bluesky images")
        if len(image.alt) > MAX_ALT_TEXT:
            raise RejectedError(PLATFORM, f"{image.path}: alt text is {len(image.alt)} characters, "
                                          f"Bluesky takes at most {MAX_ALT_TEXT}")
        client = self._ensure_login()
        try:
            response = client.com.atproto.repo.upload_blob(image.data, headers={"Content-Type": image.mime_type})
        except Exception as e:  # noqa: BLE001
            raise map_error(e, f"upload {image.path.name}") from None
        blob = response.blob
        return UploadedMedia(id=str(blob.cid), alt=image.alt, width=image.width, height=image.height, raw=blob)

    def publish(self, post: OutgoingPost, parent: PostRef | None, root: PostRef | None) -> PostRef:
        """Write the post with putRecord under the caller's rkey: repeating it is a no-op, never a duplicate."""
        if not post.rkey or not post.created_at:
            raise ValueError("bluesky publish needs post.rkey and post.created_at, fixed before the first attempt")
        if len(post.media) > MAX_IMAGES:
            raise RejectedError(PLATFORM, f"post {post.index + 1} has {len(post.media)} images, "
                                          f"Bluesky takes at most {MAX_IMAGES}")
        client = self._ensure_login()
        data = self._put_record_data(post, parent, root)
        try:
            response = client.com.atproto.repo.put_record(data)
        except Exception as e:  # noqa: BLE001
            raise map_error(e, f"publish post {post.index + 1}") from None
        uri = str(response.uri)
        return PostRef(id=uri, url=post_url(self._session_handle or self.handle, uri), cid=str(response.cid))

    def _put_record_data(self, post: OutgoingPost, parent: PostRef | None, root: PostRef | None,
                         repo: str | None = None) -> Any:
        """The putRecord input for `post` (validated by the SDK's models); RejectedError when it is invalid.

        `repo` defaults to the logged-in account's DID; `warm_models` passes a made-up one (no login)."""
        from atproto_client import models
        from pydantic import ValidationError

        for media in post.media:
            if media.raw is None:
                raise ValueError("bluesky media must come from this adapter's upload_image (raw blob ref missing)")
        try:
            reply = None
            if parent is not None:
                parent_ref = self._strong_ref(parent)
                root_ref = self._strong_ref(root) if root is not None else parent_ref
                reply = models.AppBskyFeedPost.ReplyRef(root=root_ref, parent=parent_ref)
            facets = self._facets(post)
        except PlatformError:
            raise
        except Exception as e:  # noqa: BLE001
            raise map_error(e, f"prepare post {post.index + 1}") from None
        try:
            record = models.AppBskyFeedPost.Record(
                text=post.text,
                created_at=post.created_at,
                langs=[post.language] if post.language else None,
                facets=facets or None,
                reply=reply,
                embed=self._images_embed(post),
            )
            return models.ComAtprotoRepoPutRecord.Data(
                repo=repo or self._did, collection=POST_COLLECTION, rkey=post.rkey, record=record
            )
        except ValidationError as e:
            problems = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
            raise RejectedError(PLATFORM, f"post {post.index + 1} is not a valid record: {problems}") from None

    def lookup(self, post_id: str) -> PublishedPost | None:
        """getRecord by the recorded at:// URI; None when the record is gone."""
        from atproto_client import models
        from atproto_client.exceptions import RequestErrorBase
        from atproto_core.uri import AtUri

        if not _POST_URI.match(post_id):
            raise RejectedError(PLATFORM, f"{post_id!r} is not the at:// URI of a post "
                                          f"(at://did:…/{POST_COLLECTION}/<rkey>)")
        uri = AtUri.from_str(post_id)
        client = self._ensure_login()
        try:
            response = client.com.atproto.repo.get_record(
                models.ComAtprotoRepoGetRecord.Params(repo=uri.host, collection=uri.collection, rkey=uri.rkey)
            )
        except Exception as e:  # noqa: BLE001
            if isinstance(e, RequestErrorBase) and e.response is not None:
                name, _ = _xrpc_error(e.response)
                if name == "RecordNotFound" or e.response.status_code == 404:
                    return None
            raise map_error(e, f"look up {post_id}") from None
        value = response.value
        text = value.get("text", "") if isinstance(value, dict) else getattr(value, "text", "")
        handle = self._session_handle if uri.host == self._did else uri.host
        return PublishedPost(
            ref=PostRef(id=str(response.uri), url=post_url(handle or self.handle, post_id),
                        cid=str(response.cid) if response.cid else None),
            text=str(text),
        )

    def delete(self, post_id: str) -> None:
        """deleteRecord by the recorded at:// URI, in the logged-in account's own repository only.

        The PDS answers a record that is already gone like a deleted one ("delete, or ensure it does not
        exist"), so a repeat after a crash is harmless; a 404 from another server counts the same.
        """
        from atproto_client import models
        from atproto_client.exceptions import RequestErrorBase
        from atproto_core.uri import AtUri

        if not _POST_URI.match(post_id):
            raise RejectedError(PLATFORM, f"{post_id!r} is not the at:// URI of a post "
                                          f"(at://did:…/{POST_COLLECTION}/<rkey>)")
        uri = AtUri.from_str(post_id)
        client = self._ensure_login()
        if uri.host not in (self._did, self._session_handle, self.handle):
            raise RejectedError(PLATFORM, f"not deleting {post_id}: it is not a post of {self.handle}")
        try:
            client.com.atproto.repo.delete_record(
                models.ComAtprotoRepoDeleteRecord.Data(repo=self._did, collection=uri.collection, rkey=uri.rkey)
            )
        except Exception as e:  # noqa: BLE001
            if isinstance(e, RequestErrorBase) and e.response is not None:
                name, _ = _xrpc_error(e.response)
                if name == "RecordNotFound" or e.response.status_code in (404, 410):
                    return
            raise map_error(e, f"delete {post_id}") from None

    def find_recent(self, text: str, parent: PostRef | None) -> PostRef | None:
        """Always None: a retry rewrites the record under its stored rkey, so there is no duplicate to find."""
        return None

    # ------------------------------------------------------------------ record parts

    def _strong_ref(self, ref: PostRef) -> Any:
        """A reply needs uri + cid; a PostRef recorded without its cid is looked up once."""
        from atproto_client import models

        cid = ref.cid
        if not cid:
            found = self.lookup(ref.id)
            if found is None or not found.ref.cid:
                raise RejectedError(PLATFORM, f"cannot reply to {ref.id}: the post no longer exists")
            cid = found.ref.cid
        return models.ComAtprotoRepoStrongRef.Main(uri=ref.id, cid=cid)

    def _facets(self, post: OutgoingPost) -> list[Any]:
        from atproto_client import models

        size = len(post.text.encode("utf-8"))
        out: list[Any] = []
        for facet in sorted(post.facets, key=lambda f: f.byte_start):
            if not 0 <= facet.byte_start < facet.byte_end <= size:
                raise RejectedError(PLATFORM, f"post {post.index + 1}: facet {facet.kind} {facet.value!r} has byte "
                                              f"range {facet.byte_start}..{facet.byte_end} outside the text "
                                              f"({size} bytes)")
            if facet.kind == "link":
                feature: Any = models.AppBskyRichtextFacet.Link(uri=facet.value)
            elif facet.kind == "tag":
                feature = models.AppBskyRichtextFacet.Tag(tag=facet.value.lstrip("#"))
            elif facet.kind == "mention":
                who = facet.value.lstrip("@")  # a handle, or a DID (a mention link to bsky.app/profile/did:…)
                did = who if who.startswith("did:") else self._resolve_handle(who)
                if did is None:  # like the official app: an unknown handle stays plain text
                    continue
                feature = models.AppBskyRichtextFacet.Mention(did=did)
            else:
                continue
            out.append(models.AppBskyRichtextFacet.Main(
                features=[feature],
                index=models.AppBskyRichtextFacet.ByteSlice(byte_start=facet.byte_start, byte_end=facet.byte_end),
            ))
        return out

    def _resolve_handle(self, handle: str) -> str | None:
        from atproto_client import models
        from atproto_client.exceptions import BadRequestError

        key = handle.lower()
        if key not in self._did_cache:
            try:
                response = self._client.com.atproto.identity.resolve_handle(
                    models.ComAtprotoIdentityResolveHandle.Params(handle=key)
                )
                self._did_cache[key] = str(response.did)
            except BadRequestError:  # 400: the handle does not resolve (or is not a valid handle)
                self._did_cache[key] = None
        return self._did_cache[key]

    def _images_embed(self, post: OutgoingPost) -> Any:
        from atproto_client import models

        if not post.media:
            return None
        images = []
        for media in post.media:
            aspect = None
            if media.width and media.height:
                aspect = models.AppBskyEmbedDefs.AspectRatio(width=media.width, height=media.height)
            images.append(models.AppBskyEmbedImages.Image(alt=media.alt, image=media.raw, aspect_ratio=aspect))
        return models.AppBskyEmbedImages.Main(images=images)


def warm_up() -> None:
    """A fresh process's one-time costs, offline (see publish.warm_up): the SDK, its HTTP stack, its models.

    Importing the SDK is not all of it: the first client builds the HTTP stack (httpx imports httpcore,
    ~150 ms) and pydantic completes each record model on first use. Every platform waits for every
    log-in, so Bluesky's first-use cost would delay all chains. Nothing here touches the network.
    """
    import contextlib

    with contextlib.suppress(Exception):
        import atproto  # noqa: F401
    with contextlib.suppress(Exception):
        from atproto import Client, models
        from atproto_client.request import Request

        request = Request(timeout=1, verify=ssl_context())  # the CA bundle is loaded here, once
        Client(base_url="http://127.0.0.1:9", request=request)  # never used: builds the HTTP stack
        request.close()
        for name in ("ComAtprotoServerGetSession", "ComAtprotoRepoPutRecord", "ComAtprotoRepoUploadBlob",
                     "ComAtprotoRepoStrongRef", "AppBskyFeedPost", "AppBskyEmbedImages", "AppBskyRichtextFacet"):
            getattr(models, name)
    with contextlib.suppress(Exception):
        # Importing the models is not using them: pydantic completes each on first use (~40 ms for a
        # post with reply, facets and images, which sat inside the first post's request time).
        warm_models()


def warm_models() -> None:
    """Build, offline, every SDK model a publication builds or parses; once per process is enough.

    The SDK's pydantic models are completed on first use (forward references resolved, referenced
    lexicon modules imported): ~40 ms for a post record with reply, facets and images, paid inside the
    first post's request time otherwise. This goes through the adapter's own record building and the
    SDK's own (de)serialisation helpers, with made-up values; nothing is sent anywhere.
    """
    import tempfile

    from atproto_client import models
    from atproto_client.models.blob_ref import BlobRef
    from atproto_client.models.utils import get_model_as_json, get_or_create

    from crossposter.model import Facet
    from crossposter.platforms.base import OutgoingPost

    did = "did:plc:warmupwarmupwarmupwarmup"
    cid = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"
    uri = f"at://{did}/{POST_COLLECTION}/3l3warmupwarm"
    blob = get_or_create({"$type": "blob", "ref": {"$link": cid}, "mimeType": "image/png", "size": 1},
                         BlobRef, strict=True)
    adapter = BlueskyAdapter("warm-up.invalid", None, state_dir=Path(tempfile.gettempdir()))
    text = "warm-up https://example.com #tag"
    post = OutgoingPost(text=text, index=1, thread_key="warm-up", rkey="3l3warmupwarn",
                        created_at=now_iso(), facets=[Facet(8, 27, "link", "https://example.com"),
                                                      Facet(28, 32, "tag", "tag")],
                        media=[UploadedMedia(id=cid, alt="a", width=2, height=1, raw=blob)])
    ref = PostRef(id=uri, url="https://bsky.app", cid=cid)
    get_model_as_json(adapter._put_record_data(post, ref, ref, repo=did))
    get_or_create({"uri": uri, "cid": cid}, models.ComAtprotoRepoPutRecord.Response, strict=True)
    get_or_create({"blob": {"$type": "blob", "ref": {"$link": cid}, "mimeType": "image/png", "size": 1}},
                  models.ComAtprotoRepoUploadBlob.Response, strict=True)
    get_or_create({"did": did, "handle": "warm-up.invalid"}, models.ComAtprotoServerGetSession.Response,
                  strict=True)


def from_config(config: Config) -> BlueskyAdapter:
    """The adapter for the configured account; the password comes from the environment (ConfigError if unset)."""
    from crossposter.config import ConfigError, platform_secrets

    bsky = config.platforms.bluesky
    if not bsky.handle:
        raise ConfigError(["platforms.bluesky.handle: not set (your handle, e.g. you.bsky.social)"])
    password = platform_secrets(PLATFORM)["CROSSPOSTER_BLUESKY_PASSWORD"]
    return BlueskyAdapter(
        handle=bsky.handle,
        password=password,
        state_dir=config.state_path,
        service=bsky.service,
        max_characters=bsky.max_graphemes,
    )
