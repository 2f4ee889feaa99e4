"""`crossposter daemon`: the container's entrypoint. The engine lives in `crossposter.schedule`.

Test hook: with `CROSSPOSTER_FAKE_PLATFORMS=1` in the environment the daemon publishes to
journal fakes instead of the real platforms: each accepted post is appended to
`$state_dir/fake-platforms.jsonl`, and the journal is read back at start-up, so a thread
resumed after a kill or a restart replies to the posts of the previous run — exactly what
the end-to-end tests need to prove "no duplicate" across processes. `CROSSPOSTER_FAKE_DELAY`
(seconds) makes every request take that long, so a signal can land mid-thread. Only tests
and the benchmark set these variables; the daemon logs loudly when they are on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("crossposter.daemon")

FAKE_ENV = "CROSSPOSTER_FAKE_PLATFORMS"
FAKE_DELAY_ENV = "CROSSPOSTER_FAKE_DELAY"
JOURNAL = "fake-platforms.jsonl"


class JournalAdapter:
    """A fake platform account whose posts survive restarts (one JSON line per accepted request)."""

    def __init__(self, name: str, journal: Path, delay: float = 0.0, lock: threading.Lock | None = None) -> None:
        self.name = name
        self.journal = journal
        self.delay = delay
        self._lock = lock or threading.Lock()

    def _entries(self) -> list[dict[str, Any]]:
        try:
            lines = self.journal.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        return [e for e in (json.loads(line) for line in lines if line.strip()) if e.get("platform") == self.name]

    def login(self) -> None:
        pass

    def limits(self) -> Any:
        from crossposter.fakes import DEFAULT_FAKE_LIMITS

        return DEFAULT_FAKE_LIMITS[self.name]

    def upload_image(self, image: Any) -> Any:
        from crossposter.platforms.base import UploadedMedia

        digest = hashlib.sha256(image.data).hexdigest()[:16]
        return UploadedMedia(id=f"{self.name}-media-{digest}", alt=image.alt, width=image.width, height=image.height)

    def find_recent(self, text: str, parent: Any) -> Any:
        """Adapter protocol: the journal never settles a "duplicate content", like an adapter that finds nothing."""
        return None

    def publish(self, post: Any, parent: Any, root: Any) -> Any:
        from crossposter.platforms.base import MaybePostedError, PostRef, RejectedError

        if self.delay:
            time.sleep(self.delay)  # the request is "on the wire": a signal now must not cut it short
        digest = hashlib.sha256(post.text.encode()).hexdigest()
        with self._lock:
            entries = self._entries()
            ids = {e["id"] for e in entries}
            if parent is not None and parent.id not in ids:
                raise RejectedError(self.name, f"reply to unknown post {parent.id}")
            rewrite = False
            if self.name == "bluesky":
                sid = f"at://did:plc:fake/app.bsky.feed.post/{post.rkey}"
                url = f"https://bsky.app/profile/fake/post/{post.rkey}"
                rewrite = sid in ids
                ref = PostRef(id=sid, url=url, cid=f"bafyfake{digest[:20]}")
            else:
                idem = f"{post.thread_key}:{post.index}:{digest[:16]}"
                if self.name == "mastodon":
                    same = [e for e in entries if e.get("idem") == idem]
                    if same:
                        return PostRef(id=same[0]["id"], url=same[0]["url"])
                elif any(e["text"] == post.text for e in entries):
                    raise MaybePostedError(self.name, "duplicate content")
                sid = str(time.time_ns())
                url = f"https://{self.name}.example/@fake/{sid}"
                ref = PostRef(id=sid, url=url)
            entry = {"platform": self.name, "id": ref.id, "url": ref.url, "cid": ref.cid, "text": post.text,
                     "index": post.index, "thread_key": post.thread_key, "parent": parent.id if parent else None,
                     "rewrite": rewrite, "time": time.time(), "idem": f"{post.thread_key}:{post.index}:{digest[:16]}"}
            with self.journal.open("a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")
                f.flush()
                os.fsync(f.fileno())
        return ref

    def lookup(self, post_id: str) -> Any:
        from crossposter.platforms.base import PostRef, PublishedPost

        for e in reversed(self._entries()):
            if e["id"] == post_id:
                return PublishedPost(ref=PostRef(id=e["id"], url=e["url"], cid=e.get("cid")), text=e["text"])
        return None


def fake_adapters_from_env(config: Any) -> dict[str, Any] | None:
    if os.environ.get(FAKE_ENV) != "1":
        return None
    delay = float(os.environ.get(FAKE_DELAY_ENV) or 0)
    journal = config.state_path / JOURNAL
    lock = threading.Lock()
    return {p: JournalAdapter(p, journal, delay, lock) for p in config.enabled_platforms()}


def run(config_path: Path | None) -> int:
    from crossposter.config import ConfigError, config_for_command, missing_settings, secret_values
    from crossposter.logs import setup_logging
    from crossposter.redact import redact

    try:
        config = config_for_command(config_path, required=True)
    except ConfigError as e:
        print(redact(f"error: {e}"), file=sys.stderr)
        return 1
    setup_logging(config.daemon.log_format, secret_values())
    adapters = fake_adapters_from_env(config)
    if adapters is not None:
        log.warning("%s=1: publishing to FAKE platforms (journal %s)", FAKE_ENV, config.state_path / JOURNAL,
                    extra={"event": "fake_platforms"})
    else:
        problems = missing_settings(config)
        for p in problems:
            log.error("config: %s", p, extra={"event": "config_error"})
        if problems:
            return 1
    try:
        config.state_path.mkdir(parents=True, exist_ok=True)
        probe = config.state_path / f".write-test.{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        log.error("state_dir %s is not writable: %s", config.state_path, e.strerror, extra={"event": "config_error"})
        return 1

    from crossposter.schedule import STATE_FILE, DaemonState, Engine

    # a state file written by an older version may hold unredacted messages, or be readable by others
    DaemonState.load(config.state_path / STATE_FILE).scrub()
    engine = Engine(config, adapters=adapters)
    signals = {"count": 0}

    def on_signal(signum: int, _frame: object) -> None:
        signals["count"] += 1
        name = signal.Signals(signum).name
        if signals["count"] == 1:
            log.info("%s: finishing the current request, then exiting", name, extra={"event": "signal"})
        else:
            log.info("%s again: still finishing the current request", name, extra={"event": "signal"})
        engine.stop_event.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    engine.start()
    try:
        engine.run_forever()
    finally:
        engine.stop()
    log.info("daemon stopped", extra={"event": "stopped_daemon"})
    return 0
