"""How fast `crossposter backup` is against a server that takes 50 ms per request, and an X archive import.

Part 1 (network): a local Mastodon-API-shaped server (standard library `http.server`, one thread per
request, in a process of its own, `TCP_NODELAY` as nginx) that sleeps 50 ms before every answer, like
a distant instance. It serves an account of
10,000 public statuses in 2,000 self-threads of 5 posts, whose 500 images it also serves, with
`GET /api/v1/accounts/verify_credentials`, `GET /api/v1/accounts/:id/statuses` paged by `Link`
headers (Mastodon's own maximum of 40 per page) and the image files. The whole `run_backup`
runs against it (`MastodonReader` through Mastodon.py, media downloads, the archive writer) and the
script prints the wall time, requests per post and the floor a client cannot beat:

    floor = pages × 50 ms  (each page names the next: they are sequential)
          + ceil(media / concurrency) × 50 ms  (downloads, `MediaStore.concurrency` at a time)
          + the log-in request

The target is within 1.3 × the floor: the rest (HTML → text, writing the archive) must stay small.
The same account is served a second time as a Bluesky PDS would serve it (`createSession`,
`com.atproto.repo.listRecords` oldest first, 100 records per page, `com.atproto.sync.getBlob`, the
records with link and tag facets and image embeds) and backed up through `BlueskyReader` and the
atproto SDK, whose import (seconds) counts in its wall time.

Part 2 (local): an X archive zip of 10,000 posts (benchmarks/x_archive.py builds it) imported by the
whole `run_backup` (reader, threads, copying the media files out of the zip, writing the archive),
against `json.loads` of its tweets.js plus copying its media with plain `zipfile` reads (target: under 3 × that). Both sides
are the best of a few runs, but they are measured one after the other: on a busy machine the ratio
moves by ±30 % from run to run (json.loads of the same 19 MB took 190–330 ms); compare several runs.
This reader hands every post over at once, so the new sections are rendered and verified by forked
worker processes (`backup/prepare_pool.py`, two on a machine with two or more CPUs) while the batches
are written: the import's wall time depends on a second core being free, and the script prints the
CPU time of this process and of the workers beside it (their sum over the cores is the floor of this
design: json.loads is C, while the Markdown parse, the YAML both ways and the rendering are pure Python).

Run: `python benchmarks/backup.py [POSTS] [mastodon|bluesky|x ...]` (prints, asserts nothing; POSTS defaults to
10,000; all three parts by default).
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import random
import socket
import sys
import tempfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

DELAY = 0.050
PAGE = 40  # Mastodon's maximum `limit` for account statuses
ACCOUNT = {"id": "42", "username": "me", "acct": "me", "display_name": "Me", "url": "", "locked": False}
WORDS = ("the archive stays the source of truth while threads split into posts for every platform and "
         "nothing typed is ever lost even when a service disappears overnight").split()


# --------------------------------------------------------------------------- the Mastodon-shaped server


class Account:
    """The statuses (newest first, as Mastodon lists them) and the media files of one account."""

    def __init__(self, base: str, posts: int, threads: int, images: int, seed: int = 11) -> None:
        rng = random.Random(seed)
        self.base = base
        self.statuses: list[dict] = []
        self.media: dict[str, bytes] = {}
        per_thread = posts // threads
        t = 1_600_000_000
        sid = 110_000_000_000_000_000
        image_every = max(1, posts // images) if images else 0
        n = 0
        for _ in range(threads):
            parent = None
            for _ in range(per_thread):
                t += rng.randint(20, 4000)
                sid += rng.randint(1, 10**6)
                words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 40)))
                content = (f"<p>{words} &amp; more<br />second line with "
                           f'<a href="https://example.org/{n}" target="_blank" rel="nofollow noopener noreferrer">'
                           f'<span class="invisible">https://</span><span class="">example.org/{n}</span>'
                           f'<span class="invisible"></span></a> '
                           f'<a href="{base}/tags/backup" class="mention hashtag" rel="tag">#<span>backup</span></a>'
                           "</p><p>a new paragraph 😀</p>")
                attachments = []
                if image_every and n % image_every == 0 and len(self.media) < images:
                    name = f"{sid}.png"
                    self.media[name] = rng.randbytes(rng.randint(20_000, 200_000))
                    attachments.append({"id": str(sid + 1), "type": "image", "url": f"{base}/media/{name}",
                                        "preview_url": f"{base}/media/{name}", "remote_url": None,
                                        "description": f"image {n}", "meta": {}, "blurhash": None})
                self.statuses.append({
                    "id": str(sid), "created_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t)),
                    "in_reply_to_id": parent, "in_reply_to_account_id": ACCOUNT["id"] if parent else None,
                    "sensitive": False, "spoiler_text": "", "visibility": "public", "language": "en",
                    "uri": f"{base}/users/me/statuses/{sid}", "url": f"{base}/@me/{sid}", "replies_count": 0,
                    "reblogs_count": 0, "favourites_count": 0, "edited_at": None, "content": content,
                    "reblog": None, "account": ACCOUNT, "media_attachments": attachments, "mentions": [],
                    "tags": [{"name": "backup", "url": f"{base}/tags/backup"}], "emojis": [], "card": None,
                    "poll": None})
                parent = str(sid)
                n += 1
        self.statuses.reverse()
        self.ids = [int(s["id"]) for s in self.statuses]  # descending
        self.encoded = [json.dumps(s, ensure_ascii=False) for s in self.statuses]

    def page(self, max_id: int | None, min_id: int | None, since_id: int | None, limit: int) -> list[int]:
        """Indexes of the statuses a Mastodon server answers (newest first)."""
        if min_id is not None:  # the `limit` statuses just above min_id, newest first
            above = [i for i, v in enumerate(self.ids) if v > min_id]
            return above[-limit:]
        out = []
        for i, v in enumerate(self.ids):
            if max_id is not None and v >= max_id:
                continue
            if since_id is not None and v <= since_id:
                break
            out.append(i)
            if len(out) == limit:
                break
        return out


class Handler(BaseHTTPRequestHandler):
    account: Account
    counts: dict[str, int]
    lock = threading.Lock()
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        # As nginx does (`tcp_nodelay on`): without it, the body written after the headers waits for the
        # client's delayed ACK (~40 ms on Linux), and every request would cost 90 ms instead of the 50 ms modelled.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _send(self, status: int, body: bytes, ctype: str = "application/json", headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path == "/__counts":  # the benchmark's own question (no delay, not counted)
            with self.lock:
                self._send(200, json.dumps(self.counts).encode())
            return
        time.sleep(DELAY)
        url = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        acc = self.account
        kind = "other"
        if url.path == "/api/v1/accounts/verify_credentials":
            kind = "login"
            self._send(200, json.dumps(ACCOUNT).encode())
        elif url.path == f"/api/v1/accounts/{ACCOUNT['id']}/statuses":
            kind = "pages"
            limit = min(int(q.get("limit", 20)), PAGE)
            idx = acc.page(*(int(q[k]) if k in q else None for k in ("max_id", "min_id", "since_id")), limit)
            body = ("[" + ",".join(acc.encoded[i] for i in idx) + "]").encode()
            links = []
            if idx:
                path = f"{acc.base}/api/v1/accounts/{ACCOUNT['id']}/statuses"
                if idx[-1] + 1 < len(acc.ids):
                    links.append(f'<{path}?limit={limit}&max_id={acc.ids[idx[-1]]}>; rel="next"')
                links.append(f'<{path}?limit={limit}&min_id={acc.ids[idx[0]]}>; rel="prev"')
            self._send(200, body, headers={"Link": ", ".join(links)} if links else None)
        elif url.path.startswith("/media/") and url.path[7:] in acc.media:
            kind = "media"
            self._send(200, acc.media[url.path[7:]], "image/png")
        else:
            self._send(404, b'{"error": "not found"}')
        with self.lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1


def serve(posts: int, threads: int, images: int, handler: type[Handler] | None = None) -> tuple[multiprocessing.Process, Account]:
    """The server, in a process of its own (forked): like a real instance it must not take the client's GIL."""
    handler = handler or Handler
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    base = f"http://127.0.0.1:{server.server_address[1]}"
    handler.account = (BskyAccount if handler is BskyHandler else Account)(base, posts, threads, images)
    handler.counts = {}
    process = multiprocessing.get_context("fork").Process(target=server.serve_forever, daemon=True)
    process.start()
    server.socket.close()  # (the child has its own copy and answers on it)
    return process, handler.account


# --------------------------------------------------------------------------- the Bluesky-PDS-shaped server

DID = "did:plc:benchmarkbenchmarkbench"
HANDLE = "me.bench.test"
_TID_CHARS = "234567abcdefghijklmnopqrstuvwxyz"


def _tid(micros: int, clock: int = 7) -> str:
    n = (micros << 10) | clock
    return "".join(_TID_CHARS[(n >> (5 * (12 - i))) & 31] for i in range(13))


def _cid(data: bytes, codec: int) -> str:
    """A CIDv1 (sha2-256) in base32, as the PDS names records (dag-cbor, 0x71) and blobs (raw, 0x55)."""
    import base64
    import hashlib

    raw = bytes([1, codec, 0x12, 0x20]) + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")


def _jwt(scope: str) -> str:
    import base64

    def b64(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    now = int(time.time())
    return ".".join([b64({"typ": "at+jwt", "alg": "HS256"}),
                     b64({"scope": scope, "sub": DID, "iat": now, "exp": now + 7200, "aud": "did:web:bench"}), "sig"])


class BskyAccount(Account):
    """The account's post records (oldest first, as listRecords with `reverse=true` lists them) and blobs."""

    def __init__(self, base: str, posts: int, threads: int, images: int, seed: int = 11) -> None:
        rng = random.Random(seed)
        self.base = base
        self.media = {}
        self.records: list[tuple[str, bytes]] = []  # (rkey, the record's JSON)
        per_thread = posts // threads
        t = 1_600_000_000_000_000
        image_every = max(1, posts // images) if images else 0
        n = 0
        for _ in range(threads):
            root = parent = None
            for _ in range(per_thread):
                t += rng.randint(20, 4000) * 1_000_000
                rkey = _tid(t)
                uri = f"at://{DID}/app.bsky.feed.post/{rkey}"
                words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 40)))
                text = f"{words} & more\nsecond line with example.org/{n} #backup\n\na new paragraph 😀"
                raw = text.encode()
                link_at = raw.index(b"example.org/")
                link_end = link_at + len(f"example.org/{n}".encode())
                tag_at = raw.index(b"#backup")
                value: dict = {
                    "$type": "app.bsky.feed.post", "text": text, "langs": ["en"],
                    "createdAt": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t / 1e6)),
                    "facets": [
                        {"index": {"byteStart": link_at, "byteEnd": link_end},
                         "features": [{"$type": "app.bsky.richtext.facet#link", "uri": f"https://example.org/{n}"}]},
                        {"index": {"byteStart": tag_at, "byteEnd": tag_at + 7},
                         "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "backup"}]}]}
                if parent is not None:
                    value["reply"] = {"root": root, "parent": parent}
                if image_every and n % image_every == 0 and len(self.media) < images:
                    blob = rng.randbytes(rng.randint(20_000, 200_000))
                    cid = _cid(blob, 0x55)
                    self.media[cid] = blob
                    value["embed"] = {"$type": "app.bsky.embed.images", "images": [{
                        "alt": f"image {n}", "aspectRatio": {"width": 4, "height": 3},
                        "image": {"$type": "blob", "ref": {"$link": cid}, "mimeType": "image/png",
                                  "size": len(blob)}}]}
                encoded = json.dumps(value, ensure_ascii=False)
                ref = {"uri": uri, "cid": _cid(encoded.encode(), 0x71)}
                self.records.append((rkey, json.dumps({"uri": uri, "cid": ref["cid"], "value": value},
                                                      ensure_ascii=False).encode()))
                root = root or ref
                parent = ref
                n += 1
        self.rkeys = [k for k, _ in self.records]


class BskyHandler(Handler):
    account: BskyAccount  # type: ignore[assignment]

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        time.sleep(DELAY)
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if urlsplit(self.path).path == "/xrpc/com.atproto.server.createSession":
            self._send(200, json.dumps({"did": DID, "handle": HANDLE, "accessJwt": _jwt("com.atproto.access"),
                                        "refreshJwt": _jwt("com.atproto.refresh"), "active": True}).encode())
            with self.lock:
                self.counts["login"] = self.counts.get("login", 0) + 1
        else:
            self._send(404, b'{"error": "NotFound", "message": "not here"}')

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/__counts":
            with self.lock:
                self._send(200, json.dumps(self.counts).encode())
            return
        time.sleep(DELAY)
        url = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        acc = self.account
        kind = "other"
        if url.path == "/xrpc/com.atproto.repo.listRecords":
            import bisect

            kind = "pages"
            limit = min(int(q.get("limit", 50)), 100)
            start = bisect.bisect_right(acc.rkeys, q["cursor"]) if "cursor" in q else 0
            page = acc.records[start:start + limit]
            body = {"records": "RECORDS"}
            if page:
                body["cursor"] = page[-1][0]
            text = json.dumps(body).replace('"RECORDS"', "[" + ",".join(r.decode() for _, r in page) + "]")
            self._send(200, text.encode())
        elif url.path == "/xrpc/com.atproto.sync.getBlob" and q.get("cid") in acc.media:
            kind = "media"
            self._send(200, acc.media[q["cid"]], "image/png")
        else:
            self._send(404, b'{"error": "NotFound", "message": "not here"}')
        with self.lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1


def counts_of(account: Account) -> dict[str, int]:
    """Requests the server answered so far, by kind."""
    from urllib.request import urlopen

    with urlopen(f"{account.base}/__counts", timeout=10) as answer:
        return json.loads(answer.read())


# --------------------------------------------------------------------------- the runs


class Phases:
    """A `BackupReporter` that times the phases: reading (until the last page), downloading media (the
    time from the event before a batch's first media file to its last one), the rest (threads,
    Markdown, archive writes)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.read_until = 0.0
        self.media_time = 0.0
        self._kind = ""
        self._since = 0.0  # when the current run of events of one kind began (the event before it)
        self._prev = 0.0

    def _mark(self, kind: str) -> None:
        now = time.perf_counter() - self.start
        if kind != self._kind:
            self._kind, self._since = kind, self._prev
        if kind == "media":
            self.media_time += now - max(self._prev, self._since)
        self._prev = now

    def page(self, records: int) -> None:
        self._mark("page")
        self.read_until = self._prev

    def media(self, done: int, total: int) -> None:
        self._mark("media")

    def threads(self, done: int, total: int) -> None:
        self._mark("threads")

    def waiting(self, seconds: float, why: str) -> None:
        pass

    def note(self, message: str) -> None:
        pass


def network_backup(platform: str, posts: int) -> None:
    """Back up the account from the local server (Mastodon- or Bluesky-PDS-shaped) and print the numbers."""
    from crossposter.backup.media import MediaStore
    from crossposter.backup.run import run_backup
    from crossposter.config import Config

    threads, images = posts // 5, posts // 20
    server, account = serve(posts, threads, images, BskyHandler if platform == "bluesky" else Handler)
    os.environ["CROSSPOSTER_MASTODON_ACCESS_TOKEN"] = "benchmark-token"
    os.environ["CROSSPOSTER_BLUESKY_PASSWORD"] = "benchmark-password"

    def reader(config: Config):  # noqa: ANN202
        if platform == "bluesky":
            from crossposter.backup.bluesky import BlueskyReader

            return BlueskyReader(config)
        from crossposter.backup.mastodon import MastodonReader

        return MastodonReader(config)

    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = Config(state_dir=Path(tmp) / "state", base_dir=Path(tmp))
            config.platforms.mastodon.instance = account.base
            config.platforms.bluesky.handle = HANDLE
            config.platforms.bluesky.service = account.base
            into = Path(tmp) / "threads" / f"{platform}.md"
            into.parent.mkdir()
            phases = Phases()
            t0, c0 = time.perf_counter(), time.process_time()
            outcome = run_backup(reader(config), config, account=account.base, into=into, archives=[],
                                 reporter=phases)  # type: ignore[arg-type]
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            counts = counts_of(account)  # (of the first run only)
            size = into.stat().st_size
            t1 = time.perf_counter()
            again = run_backup(reader(config), config, account=account.base, into=into, archives=[])
            rerun = time.perf_counter() - t1
    finally:
        server.terminate()
        server.join()
    concurrency = MediaStore.concurrency
    pages = counts.get("pages", 0)
    media = counts.get("media", 0)
    logins = counts.get("login", 0)
    requests = sum(counts.values())
    page_size = 100 if platform == "bluesky" else PAGE
    floor = (pages + logins) * DELAY + math.ceil(media / concurrency) * DELAY
    name = "Bluesky-PDS" if platform == "bluesky" else "Mastodon"
    print(f"{name}-shaped server, {DELAY * 1000:.0f} ms per request: {posts:,} posts in {threads:,} threads, "
          f"{images} images (load average {' '.join(f'{x:.1f}' for x in os.getloadavg())})")
    print(f"  backed up: {outcome.posts_added:,} posts in {len(outcome.threads):,} threads, "
          f"{outcome.media_added} media, archive {size / 1e6:.1f} MB, problems {len(outcome.problems)}")
    print(f"  requests: {requests:,} ({pages} pages of {page_size}, {media} media, {logins} log-in) = "
          f"{requests / max(posts, 1):.3f} per post")
    print(f"  floor: {pages + logins} sequential requests × {DELAY * 1000:.0f} ms + ceil({media} / {concurrency}) × "
          f"{DELAY * 1000:.0f} ms = {floor:.2f} s")
    pages_only = (pages + logins) * DELAY
    print(f"  wall: {wall:.2f} s, ratio {wall / floor:.2f} × the floor (target ≤ 1.3); the pages alone (media "
          f"downloads overlap them) {pages_only:.2f} s: {wall / pages_only:.2f} ×; CPU of this process {cpu:.2f} s "
          "(all threads; the SDK's import included)")
    rest = wall - phases.read_until - phases.media_time
    print(f"  where: reading (pages, converting, sections prepared meanwhile: {outcome.prepared:,} of "
          f"{len(outcome.threads):,}) {phases.read_until:.2f} s, media (waiting for downloads at the batches: they "
          f"start while the pages are read) {phases.media_time:.2f} s, the rest (threads, Markdown, archive writes) "
          f"{rest:.2f} s")
    print(f"  second run, nothing new: {rerun:.2f} s, {again.posts_added} posts added")


def x_archive_import(posts: int) -> None:
    import x_archive as xa

    from crossposter.backup.run import run_backup
    from crossposter.backup.x_archive import XArchiveReader
    from crossposter.config import Config

    with tempfile.TemporaryDirectory() as tmp:
        zpath = Path(tmp) / "twitter-archive.zip"
        tweets_js = xa.build(zpath, posts, 500)
        payload = tweets_js[tweets_js.index(b"["):]
        t_json = min(xa.timed(lambda: json.loads(payload))[0] for _ in range(5))

        def copy_plain() -> None:
            out = Path(tmp) / "plain-copy"
            out.mkdir(exist_ok=True)
            with zipfile.ZipFile(zpath) as z:
                for info in z.infolist():
                    if info.filename.startswith("data/tweets_media/"):
                        (out / info.filename.rsplit("/", 1)[1]).write_bytes(z.read(info))

        t_copy = min(xa.timed(copy_plain)[0] for _ in range(3))
        with XArchiveReader(zpath) as reader:
            t_read = min(xa.timed(reader.read)[0] for _ in range(3))
        # The time the batches wait for their media, measured around `fetch_all` itself (this reader hands
        # nothing over while reading, so a reporter's events cannot tell the media from the reading).
        from crossposter.backup.media import MediaStore

        fetch_all = MediaStore.fetch_all
        media_wait = [0.0]

        def timed_fetch_all(self, *args, **kwargs):  # noqa: ANN001, ANN202
            t = time.perf_counter()
            try:
                return fetch_all(self, *args, **kwargs)
            finally:
                media_wait[0] += time.perf_counter() - t

        MediaStore.fetch_all = timed_fetch_all  # type: ignore[method-assign]
        runs = []
        try:
            for k in range(3):
                base = Path(tmp) / f"run{k}"
                config = Config(state_dir=base / "state", base_dir=base)
                into = base / "threads" / "x.md"
                into.parent.mkdir(parents=True)
                media_wait[0] = 0.0
                c0, t0 = os.times(), time.perf_counter()
                with XArchiveReader(zpath) as reader:
                    outcome = run_backup(reader, config, account=xa.OWN_ID, into=into, archives=[])
                runs.append(time.perf_counter() - t0)
                c1 = os.times()
                cpu = (c1.user + c1.system - c0.user - c0.system,
                       c1.children_user + c1.children_system - c0.children_user - c0.children_system)
        finally:
            MediaStore.fetch_all = fetch_all  # type: ignore[method-assign]
        t_import = min(runs)
        base = t_json + t_copy  # the issue's target: the import under 3 × this
        print(f"X archive zip: {posts:,} posts, tweets.js {len(tweets_js) / 1e6:.1f} MB, "
              f"{outcome.media_added} media files copied")
        print(f"  backed up: {outcome.posts_added:,} posts in {len(outcome.threads):,} threads, "
              f"skipped {sum(outcome.skipped.values()):,}, problems {len(outcome.problems)}")
        print(f"  json.loads(tweets.js) {t_json * 1000:.0f} ms, plain media copy {t_copy * 1000:.0f} ms")
        print(f"  import (run_backup: read, threads, media, archive) {t_import * 1000:.0f} ms = "
              f"{t_import / base:.2f} × (json.loads + media copy = {base * 1000:.0f} ms; target < 3)")
        media = media_wait[0]
        print(f"  where (last run): XArchiveReader.read() alone {t_read * 1000:.0f} ms, waiting for the media copy "
              f"{media * 1000:.0f} ms (the next batch's files are copied while one is written), the rest "
              f"{(runs[-1] - t_read - media) * 1000:.0f} ms: threads, Markdown and the archive writes (load average "
              f"{' '.join(f'{x:.1f}' for x in os.getloadavg())})")
        print(f"  CPU (last run): this process {cpu[0]:.2f} s, worker processes {cpu[1]:.2f} s (sections they "
              f"prepared: {outcome.prepared:,} of {len(outcome.threads):,}); with a core free for each, the wall "
              "time tends to this process's CPU plus what it waits for the workers")


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.isdigit()]
    posts = int(next((a for a in sys.argv[1:] if a.isdigit()), 10_000))
    parts = args or ["mastodon", "bluesky", "x"]
    for part in parts:
        if part == "x":
            x_archive_import(posts)
        else:
            network_backup(part, posts)


if __name__ == "__main__":
    main()
