"""In-process stand-ins for the three platforms: `post --dry-run`, the publisher's tests and the benchmark.

They follow the adapter protocol and, more importantly, each platform's idempotency
rule (Bluesky: a record is addressed by its rkey, so a second putRecord rewrites it;
Mastodon: an Idempotency-Key returns the first status; X: the same text twice is
refused as duplicate content). That is what lets the publisher's "never twice"
logic be tested without a network. Ids are deterministic so a dry run prints the
same diff every time.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from crossposter.platforms.base import (
    ImageUpload,
    Limits,
    MaybePostedError,
    OutgoingPost,
    PostRef,
    PublishedPost,
    TransientError,
    UploadedMedia,
)

DEFAULT_FAKE_LIMITS: dict[str, Limits] = {
    "bluesky": Limits(max_characters=300, characters_reserved_per_url=None, max_images=4,
                      max_image_bytes=1_000_000, max_alt_text=2000),
    # image_matrix_limit of current Mastodon (7680×4320): a dry run prepares images as a real instance would
    "mastodon": Limits(max_characters=500, characters_reserved_per_url=23, max_images=4,
                       max_image_bytes=16_000_000, max_alt_text=1500, max_image_pixels=33_177_600),
    "x": Limits(max_characters=280, characters_reserved_per_url=23, max_images=4,
                max_image_bytes=5_000_000, max_alt_text=1000),
}

_FIRST_ID = {"mastodon": 110_000_000_000_000_001, "x": 1_860_000_000_000_000_001}


@dataclass
class FakePost:
    ref: PostRef
    text: str
    index: int
    parent: str | None
    root: str | None
    media: list[str] = field(default_factory=list)
    writes: int = 1  # how many accepted requests wrote this post (Bluesky rewrites count)


class FakeAdapter:
    """One fake platform account. Thread-safe: the publisher uploads ahead from another thread."""

    def __init__(self, name: str, *, handle: str = "you", instance: str = "https://mastodon.example",
                 limits: Limits | None = None, delay: float = 0.0, strict: bool = True) -> None:
        self.name = name
        #: Refuse replies to posts this fake never saw (tests); a dry run of a resumed thread turns it off.
        self.strict = strict
        self.handle = handle
        self.instance = instance.rstrip("/")
        self._limits = limits or DEFAULT_FAKE_LIMITS[name]
        self.delay = delay
        self.calls: list[tuple[object, ...]] = []
        self.posts: dict[str, FakePost] = {}
        self.order: list[str] = []  # ids in order of first creation
        self.media: dict[str, UploadedMedia] = {}
        self.logged_in = False
        self._faults: dict[tuple[str, int | None], list[BaseException]] = {}
        self._lost: set[int] = set()
        self._idem: dict[str, str] = {}
        self._next = _FIRST_ID.get(name, 1)
        self._tid_seq = 0
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ test controls

    def fail(self, op: str, *errors: BaseException, index: int | None = None) -> None:
        """Raise `errors` one by one on the next calls of `op` ("login", "limits", "upload", "publish").

        With `index`, only publish/upload calls for that post index are affected.
        """
        self._faults.setdefault((op, index), []).extend(errors)

    def lose_response(self, index: int) -> None:
        """The next publish of post `index` is accepted, but the caller gets a TransientError (a lost reply)."""
        self._lost.add(index)

    def _maybe_fail(self, op: str, index: int | None = None) -> None:
        with self._lock:
            for key in ((op, index), (op, None)):
                queue = self._faults.get(key)
                if queue:
                    raise queue.pop(0)

    def _request(self, *call: object) -> None:
        with self._lock:
            self.calls.append(call)
        if self.delay:
            time.sleep(self.delay)

    @property
    def requests(self) -> int:
        return len(self.calls)

    def thread(self) -> list[FakePost]:
        """Every post in creation order."""
        return [self.posts[i] for i in self.order]

    # ------------------------------------------------------------------ protocol

    def login(self) -> None:
        self._request("login")
        self._maybe_fail("login")
        self.logged_in = True

    def limits(self) -> Limits:
        self._maybe_fail("limits")
        return self._limits

    def new_tid(self) -> str:
        """Deterministic TIDs (a fixed epoch plus a counter) so a dry run prints the same diff every time."""
        with self._lock:
            self._tid_seq += 1
            value = ((1_767_225_600_000_000 + self._tid_seq) << 10) | 1  # 2026-01-01T00:00Z in microseconds
        return "".join("234567abcdefghijklmnopqrstuvwxyz"[(value >> (5 * i)) & 31] for i in range(12, -1, -1))

    def upload_image(self, image: ImageUpload) -> UploadedMedia:
        self._request("upload", image.path.name)
        self._maybe_fail("upload")
        with self._lock:
            media_id = f"{self.name}-media-{len(self.media) + 1}"
            uploaded = UploadedMedia(id=media_id, alt=image.alt, width=image.width, height=image.height)
            self.media[media_id] = uploaded
        return uploaded

    def publish(self, post: OutgoingPost, parent: PostRef | None, root: PostRef | None) -> PostRef:
        self._request("publish", post.index, parent.id if parent else None)
        self._maybe_fail("publish", post.index)
        if self.strict and parent is not None and parent.id not in self.posts:
            raise AssertionError(f"{self.name}: reply to unknown post {parent.id}")
        if self.name == "bluesky" and parent is not None and not parent.cid:
            raise AssertionError("bluesky: reply without the parent's cid")
        digest = hashlib.sha256(post.text.encode()).hexdigest()
        with self._lock:
            ref = self._store(post, parent, root, digest)
            lost = post.index in self._lost
            self._lost.discard(post.index)
        if lost:
            raise TransientError(self.name, "connection reset after the request was sent")
        return ref

    def _store(self, post: OutgoingPost, parent: PostRef | None, root: PostRef | None, digest: str) -> PostRef:
        media = [m.id for m in post.media]
        if self.name == "bluesky":
            if not post.rkey or not post.created_at:
                raise AssertionError("bluesky: the publisher must fix rkey and created_at before the first attempt")
            uri = f"at://did:plc:fake{self.handle}/app.bsky.feed.post/{post.rkey}"
            ref = PostRef(id=uri, url=f"https://bsky.app/profile/{self.handle}/post/{post.rkey}",
                          cid=f"bafyfake{digest[:20]}")
            if uri in self.posts:
                self.posts[uri].writes += 1
                self.posts[uri].text = post.text
                self.posts[uri].ref = ref
                return ref
        else:
            if self.name == "mastodon":
                key = f"{post.thread_key}:{post.index}:{digest[:16]}"
                if key in self._idem:
                    return self.posts[self._idem[key]].ref
            else:  # x: the same text is refused, the outcome is unknown to the caller
                if any(p.text == post.text for p in self.posts.values()):
                    raise MaybePostedError(self.name, "403 Forbidden: You are not allowed to create a Tweet "
                                                      "with duplicate content.")
            sid = str(self._next)
            self._next += 1
            url = (f"{self.instance}/@{self.handle}/{sid}" if self.name == "mastodon"
                   else f"https://x.com/{self.handle}/status/{sid}")
            ref = PostRef(id=sid, url=url)
            if self.name == "mastodon":
                self._idem[f"{post.thread_key}:{post.index}:{digest[:16]}"] = sid
        self.posts[ref.id] = FakePost(ref=ref, text=post.text, index=post.index,
                                      parent=parent.id if parent else None, root=root.id if root else None,
                                      media=media)
        self.order.append(ref.id)
        return ref

    def find_recent(self, text: str, parent: PostRef | None, max_results: int = 20) -> PostRef | None:
        """Like the X adapter's extra: the account's recent post with this text and parent."""
        self._request("find_recent")
        for pid in reversed(self.order[-max_results:]):
            p = self.posts[pid]
            if p.text == text and p.parent == (parent.id if parent else None):
                return p.ref
        return None

    def lookup(self, post_id: str) -> PublishedPost | None:
        self._request("lookup", post_id)
        p = self.posts.get(post_id)
        return PublishedPost(ref=p.ref, text=p.text) if p else None


def fake_adapters(platforms: Iterable[str], *, config: object | None = None, delay: float = 0.0,
                  strict: bool = True) -> dict[str, FakeAdapter]:
    """One fake per platform; handles and instance taken from the config when given (nicer dry-run links)."""
    out: dict[str, FakeAdapter] = {}
    for name in platforms:
        handle, instance = "you", "https://mastodon.example"
        pcfg = getattr(getattr(config, "platforms", None), name, None)
        if name == "bluesky" and getattr(pcfg, "handle", ""):
            handle = pcfg.handle  # type: ignore[union-attr]
        if name == "x" and getattr(pcfg, "username", ""):
            handle = pcfg.username  # type: ignore[union-attr]
        if name == "mastodon" and pcfg is not None:
            instance = pcfg.instance  # type: ignore[union-attr]
            limits = DEFAULT_FAKE_LIMITS["mastodon"]
            out[name] = FakeAdapter(name, handle=handle, instance=instance, delay=delay, strict=strict,
                                    limits=Limits(max_characters=pcfg.max_characters,  # type: ignore[union-attr]
                                                  characters_reserved_per_url=23,
                                                  max_images=limits.max_images,
                                                  max_image_bytes=limits.max_image_bytes,
                                                  max_alt_text=limits.max_alt_text,
                                                  max_image_pixels=limits.max_image_pixels))
            continue
        out[name] = FakeAdapter(name, handle=handle, instance=instance, delay=delay, strict=strict)
    return out
