"""Stand-ins for every platform: `post --dry-run`, the publisher's and the daemon's tests, the benchmarks.

They follow the adapter protocol and, more importantly, each platform's idempotency
rule as its registry entry states it (`record_key_first`, e.g. Bluesky: a record is addressed by
its rkey, so a second putRecord rewrites it; `idempotency_key`, e.g. Mastodon: an Idempotency-Key
returns the first status; `refuses_repeats`, e.g. X: the same text twice is refused as duplicate
content). That is what lets the publisher's "never twice"
logic be tested without a network. The rules are written once, in `FakeAdapter`;
where the posts are kept is the only difference between the two kinds:

* `FakeAdapter` keeps them in memory. Ids are deterministic so a dry run prints the
  same diff every time.
* `JournalAdapter` appends each accepted request to a JSON-lines journal
  (`$state_dir/fake-platforms.jsonl`) and reads it back before each request, so a
  thread resumed after a kill or a restart replies to the posts of the previous run —
  exactly what the daemon's end-to-end tests need to prove "no duplicate" across
  processes. The daemon command chooses them (`JournalFakes`) when
  `CROSSPOSTER_FAKE_PLATFORMS=1`; `CROSSPOSTER_FAKE_DELAY` (seconds) makes every
  request take that long, so a signal can land mid-thread.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from crossposter.platforms import registry
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

#: What a current Mastodon instance answers (16 MB images, image_matrix_limit 7680×4320), where the registry
#: holds the fallback for an instance that says nothing: a dry run prepares images as a real instance would.
_CURRENT_INSTANCE = {"mastodon": {"max_image_bytes": 16_000_000, "max_image_pixels": 33_177_600}}


def fake_limits(name: str) -> Limits:
    """The limits a fake account of `name` reports: the registry's, as a real account would see them."""
    spec = registry.get(name)
    limits = Limits(max_characters=spec.limit, characters_reserved_per_url=spec.characters_reserved_per_url,
                    max_images=spec.max_images, max_image_bytes=spec.max_image_bytes,
                    max_alt_text=spec.max_alt_text, max_image_pixels=spec.max_image_pixels)
    return dataclasses.replace(limits, **_CURRENT_INSTANCE.get(name, {}))


DEFAULT_FAKE_LIMITS: dict[str, Limits] = {name: fake_limits(name) for name in registry.BUILTIN}

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
    thread_key: str = ""


class FakeAdapter:
    """One fake platform account. Thread-safe: the publisher uploads ahead from another thread."""

    def __init__(self, name: str, *, handle: str = "you", instance: str = "https://mastodon.example",
                 limits: Limits | None = None, delay: float = 0.0, strict: bool = True) -> None:
        self.name = name
        #: Refuse replies to posts this fake never saw (tests); a dry run of a resumed thread turns it off.
        self.strict = strict
        self.handle = handle
        self.instance = instance.rstrip("/")
        self._limits = limits or fake_limits(name)
        self.spec = registry.get(name)
        #: strong refs (Bluesky's): a reply without the parent's cid is a publisher bug the fake refuses
        self.replies_need_cid = self.spec.strong_refs
        self.delay = delay
        self.calls: list[tuple[object, ...]] = []
        self.posts: dict[str, FakePost] = {}
        self.order: list[str] = []  # ids in order of first creation
        self.media: dict[str, UploadedMedia] = {}
        #: ids deleted by `delete`, in order (a repeat of an already deleted one is not listed again)
        self.deleted: list[str] = []
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

    def prepare_attempt(self, now: datetime) -> dict[str, str] | None:
        """Bluesky's rule: the record key and createdAt are fixed before the first attempt (see the adapter)."""
        if not self.spec.record_key_first:
            return None
        from crossposter.platforms.bluesky import iso_z

        return {"rkey": self.new_tid(), "created_at": iso_z(now)}

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
        if self.replies_need_cid and parent is not None and not parent.cid:
            raise AssertionError(f"{self.name}: reply without the parent's cid")
        digest = hashlib.sha256(post.text.encode()).hexdigest()
        with self._lock:
            self._sync()
            if self.strict and parent is not None and parent.id not in self.posts:
                raise self._unknown_parent(parent)
            ref = self._store(post, parent, root, digest)
            lost = post.index in self._lost
            self._lost.discard(post.index)
        if lost:
            raise TransientError(self.name, "connection reset after the request was sent")
        return ref

    # ------------------------------------------------------------------ where the posts are kept

    def _sync(self) -> None:
        """Bring `posts` up to date with the store (called under the lock): memory is always up to date."""

    def _saved(self, post: FakePost, rewrite: bool) -> None:
        """An accepted request wrote `post` (called under the lock, before the answer is returned)."""

    def _removed(self, post_id: str) -> None:
        """An accepted request deleted `post_id` (called under the lock, before the answer is returned)."""

    def _unknown_parent(self, parent: PostRef) -> BaseException:
        """A reply to a post this fake never saw: in memory, a publisher bug the test must see."""
        return AssertionError(f"{self.name}: reply to unknown post {parent.id}")

    def _store(self, post: OutgoingPost, parent: PostRef | None, root: PostRef | None, digest: str) -> PostRef:
        media = [m.id for m in post.media]
        spec = self.spec
        if spec.record_key_first:
            if not post.rkey or not post.created_at:
                raise AssertionError(f"{self.name}: the publisher must fix rkey and created_at before the first "
                                     "attempt")
            uri = spec.id_from_link.format(repo=f"did:plc:fake{self.handle}", rkey=post.rkey, id=post.rkey)
            ref = PostRef(id=uri, url=self._link(uri, post.rkey),
                          cid=f"bafyfake{digest[:20]}" if spec.strong_refs else None)
            if uri in self.posts:
                self.posts[uri].writes += 1
                self.posts[uri].text = post.text
                self.posts[uri].ref = ref
                self._saved(self.posts[uri], rewrite=True)
                return ref
        else:
            key = f"{post.thread_key}:{post.index}:{digest[:16]}"
            if spec.idempotency_key and key in self._idem:
                return self.posts[self._idem[key]].ref
            if spec.refuses_repeats and any(p.text == post.text for p in self.posts.values()):
                # the outcome is unknown to the caller, as on X
                raise MaybePostedError(self.name, "403 Forbidden: You are not allowed to create a Tweet "
                                                  "with duplicate content.")
            sid = str(self._next)
            self._next += 1
            ref = PostRef(id=sid, url=self._link(sid, sid), cid=f"bafyfake{digest[:20]}" if spec.strong_refs else None)
            if spec.idempotency_key:
                self._idem[key] = sid
        self.posts[ref.id] = FakePost(ref=ref, text=post.text, index=post.index,
                                      parent=parent.id if parent else None, root=root.id if root else None,
                                      media=media, thread_key=post.thread_key)
        self.order.append(ref.id)
        self._saved(self.posts[ref.id], rewrite=False)
        return ref

    def _link(self, post_id: str, rkey: str) -> str:
        """The post's link as the platform writes it (its registry entry's `post_link`)."""
        return self.spec.post_link.format(handle=self.handle, instance=self.instance, id=post_id, rkey=rkey)

    def find_recent(self, text: str, parent: PostRef | None, max_results: int = 20) -> PostRef | None:
        """Like the X adapter's extra: the account's recent post with this text and parent."""
        self._request("find_recent")
        with self._lock:
            self._sync()
        for pid in reversed(self.order[-max_results:]):
            p = self.posts[pid]
            if p.text == text and p.parent == (parent.id if parent else None):
                return p.ref
        return None

    def delete(self, post_id: str) -> None:
        """Every platform's rule: a post already gone counts as deleted (the mirror repeats one a crash cut short)."""
        self._request("delete", post_id)
        self._maybe_fail("delete")
        with self._lock:
            self._sync()
            if self.posts.pop(post_id, None) is not None:
                self.order.remove(post_id)
                self.deleted.append(post_id)
                self._removed(post_id)

    def update(self, post_id: str, text: str) -> None:
        """Mastodon's edit (the only platform here that has one): the post keeps its ID, gets the text."""
        if not registry.get(self.name).edits_posts:
            raise AttributeError(f"{self.name} cannot edit a post")
        self._request("update", post_id)
        self._maybe_fail("update")
        with self._lock:
            self._sync()
            post = self.posts.get(post_id)
            if post is None:
                from crossposter.platforms.base import RejectedError

                raise RejectedError(self.name, f"HTTP 404: Record not found (editing post {post_id})")
            post.text = text
            post.writes += 1
            self._saved(post, rewrite=True)

    def lookup(self, post_id: str) -> PublishedPost | None:
        self._request("lookup", post_id)
        with self._lock:
            self._sync()
            p = self.posts.get(post_id)
        return PublishedPost(ref=p.ref, text=p.text) if p else None


def fake_adapters(platforms: Iterable[str], *, config: object | None = None, delay: float = 0.0,
                  strict: bool = True) -> dict[str, FakeAdapter]:
    """One fake per platform; handles and instance taken from the config when given (nicer dry-run links)."""
    out: dict[str, FakeAdapter] = {}
    for name in platforms:
        sections = getattr(config, "platforms", None)
        section = sections.section(name) if hasattr(sections, "section") else None
        handle = (section.account() if section is not None else "") or "you"
        if "@" in handle:  # an account named on its server (Mastodon's placeholder): the links hold the name
            handle = "you"
        instance = str(getattr(section, "instance", "") or "https://mastodon.example")
        limits = None
        spec = registry.get(name)
        if section is not None and spec.limit_from_server and spec.config_limit:
            # the fake plays the server, which says the account's limit: the configured one
            limits = dataclasses.replace(fake_limits(name), max_characters=getattr(section, spec.config_limit))
        out[name] = FakeAdapter(name, handle=handle, instance=instance, delay=delay, strict=strict, limits=limits)
    return out


class JournalAdapter(FakeAdapter):
    """A fake platform account whose posts survive restarts: the same rules, kept in a JSON-lines journal.

    Each accepted request is one line (fsynced before the answer), and the journal is read back before
    each request, so another process's posts (an earlier daemon run, a killed publisher) are seen.
    """

    def __init__(self, name: str, journal: Path, *, delay: float = 0.0, lock: threading.Lock | None = None) -> None:
        super().__init__(name, handle="fake", instance=f"https://{name}.example", delay=delay)
        self.journal = journal
        if lock is not None:
            self._lock = lock  # the platforms of one process share the file

    def new_tid(self) -> str:
        """Real TIDs: a deterministic counter would restart with each process and reuse an earlier rkey."""
        from crossposter.platforms.bluesky import new_tid

        return new_tid()

    def _entries(self) -> list[dict[str, Any]]:
        try:
            lines = self.journal.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        return [e for e in (json.loads(line) for line in lines if line.strip()) if e.get("platform") == self.name]

    def _sync(self) -> None:
        self.posts, self.order, self._idem = {}, [], {}
        for e in self._entries():
            if e.get("deleted"):
                if self.posts.pop(e["id"], None) is not None:
                    self.order.remove(e["id"])
                continue
            ref = PostRef(id=e["id"], url=e["url"], cid=e.get("cid"))
            if e["id"] in self.posts:  # a Bluesky rewrite of the same record
                known = self.posts[e["id"]]
                known.writes, known.text, known.ref = known.writes + 1, e["text"], ref
                continue
            self.posts[e["id"]] = FakePost(ref=ref, text=e["text"], index=e["index"], parent=e.get("parent"),
                                           root=e.get("root"), media=list(e.get("media") or []),
                                           thread_key=e.get("thread_key", ""))
            self.order.append(e["id"])
            if e.get("idem"):
                self._idem[e["idem"]] = e["id"]
            if e["id"].isdigit():
                self._next = max(self._next, int(e["id"]) + 1)

    def _saved(self, post: FakePost, rewrite: bool) -> None:
        digest = hashlib.sha256(post.text.encode()).hexdigest()
        entry = {"platform": self.name, "id": post.ref.id, "url": post.ref.url, "cid": post.ref.cid,
                 "text": post.text, "index": post.index, "thread_key": post.thread_key, "parent": post.parent,
                 "root": post.root, "media": post.media, "rewrite": rewrite, "time": time.time(),
                 "idem": f"{post.thread_key}:{post.index}:{digest[:16]}"}
        self._append(entry)

    def _append(self, entry: dict[str, Any]) -> None:
        self.journal.parent.mkdir(parents=True, exist_ok=True)
        with self.journal.open("a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def _removed(self, post_id: str) -> None:
        self._append({"platform": self.name, "id": post_id, "deleted": True, "time": time.time()})

    def _unknown_parent(self, parent: PostRef) -> BaseException:
        """What a server answers to a reply to a post it does not have (the daemon records it, never crashes)."""
        from crossposter.platforms.base import RejectedError

        return RejectedError(self.name, f"reply to unknown post {parent.id}")


FAKE_ENV = "CROSSPOSTER_FAKE_PLATFORMS"
FAKE_DELAY_ENV = "CROSSPOSTER_FAKE_DELAY"
JOURNAL = "fake-platforms.jsonl"


@dataclass(frozen=True)
class JournalFakes:
    """The choice to publish to journal fakes, made once by a command and handed down (to the publisher child too)."""

    journal: Path
    delay: float = 0.0

    def adapters(self, platforms: Iterable[str]) -> dict[str, FakeAdapter]:
        lock = threading.Lock()
        return {p: JournalAdapter(p, self.journal, delay=self.delay, lock=lock) for p in platforms}

    def to_json(self) -> dict[str, Any]:
        return {"journal": str(self.journal), "delay": self.delay}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JournalFakes:
        return cls(Path(data["journal"]), float(data.get("delay") or 0))


def journal_fakes_from_env(config: Any, environ: Mapping[str, str] = os.environ) -> JournalFakes | None:
    """The test hook: `CROSSPOSTER_FAKE_PLATFORMS=1` (and `CROSSPOSTER_FAKE_DELAY`), read by the commands only."""
    if environ.get(FAKE_ENV) != "1":
        return None
    return JournalFakes(config.state_path / JOURNAL, float(environ.get(FAKE_DELAY_ENV) or 0))
