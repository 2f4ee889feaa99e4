"""The publisher child process: publishing happens here, not in the daemon's own process.

The platform SDKs cost about 55 MB of resident memory once imported (atproto alone ~40 MB) and
Python never gives module memory back. An idle daemon holding them would miss the 80 MB target
by itself, so publishing happens in a child process: started PREWARM seconds before the next
job is due (so its imports are done when the time comes), given threads one at a time over a
pipe, and stopped after LINGER idle seconds with nothing due soon. A parent killed with -9
closes the pipe; the child then stops after the request in flight, like on SIGTERM.
SIGTERM/SIGINT reach the daemon, which forwards a "stop" to the child: the request in flight
finishes and is recorded, the chain stops, the outcome is "stopped".

The protocol is JSON lines: the daemon sends the config (and the fakes to use, if any) once,
then `{"op": "publish", ...}` or `{"op": "stop"}`; the child answers each publish with a result
(`PlatformOutcome.to_json` per platform), a pre-flight refusal, a lock refusal or an error.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import threading
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crossposter.outcome import OutcomeState, PlatformOutcome, PublishResult

if TYPE_CHECKING:
    from crossposter.config import Config
    from crossposter.platforms.fakes import JournalFakes

log = logging.getLogger("crossposter.daemon")

#: Seconds before the next due time the child is started.
PREWARM = 60.0
#: Idle seconds (with nothing due within PREWARM) after which the child is stopped.
LINGER = 120.0


class Op(StrEnum):
    """What the daemon asks of the child (the `op` of each line it writes)."""

    PUBLISH = "publish"
    STOP = "stop"


class Reply(StrEnum):
    """What the child answers (the `kind` of each line it writes)."""

    READY = "ready"  # started and warmed up (id 0)
    RESULT = "result"  # the outcomes, one `PlatformOutcome.to_json` per platform
    PREFLIGHT = "preflight"  # nothing posted: the pre-flight's problems
    LOCKED = "locked"  # nothing posted: another process publishes the thread
    ERROR = "error"  # an exception around the platforms


class ChildPublisher:
    """Callable like `publish_thread`, but runs it in a long-lived child process (see above)."""

    def __init__(self, config: Config, fakes: JournalFakes | None = None) -> None:
        self.config = config
        self.fakes = fakes
        self.proc: Any = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._lock = threading.Lock()
        self.busy = False
        self.idle_since = time.monotonic()
        self._seq = 0

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ensure(self) -> None:
        import subprocess
        import sys

        with self._lock:
            if self.alive:
                return
            self._lines = queue.Queue()
            payload = {"config": self.config.model_dump(mode="json"), "base_dir": str(self.config.base_dir),
                       "fakes": self.fakes.to_json() if self.fakes else None}
            # Logs go where ours go (our stdout); results come back on the child's stdout pipe.
            err = sys.stdout if _has_fileno(sys.stdout) else None
            # the child imports the very package this process runs (not whatever the cwd holds)
            package_root = str(Path(__file__).resolve().parents[2])
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(
                [package_root, *filter(None, [os.environ.get("PYTHONPATH")])])}
            self.proc = subprocess.Popen(
                [sys.executable, "-P", "-c", "from crossposter.daemon.child import child_main; child_main()"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True, bufsize=1, env=env,
                cwd=str(self.config.base_dir),
            )
            self.proc.stdin.write(json.dumps(payload) + "\n")
            self.proc.stdin.flush()
            threading.Thread(target=self._read, args=(self.proc, self._lines), name="publisher-reader",
                             daemon=True).start()
            self.idle_since = time.monotonic()
            log.info("publisher process started (pid %d)", self.proc.pid, extra={"event": "publisher_started"})

    @staticmethod
    def _read(proc: Any, lines: queue.Queue[str | None]) -> None:
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    def close(self, timeout: float = 30.0) -> None:
        with self._lock:
            proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError, ValueError):
            proc.stdin.close()  # EOF: the child finishes what it does and exits
        try:
            proc.wait(timeout)
        except Exception:
            proc.kill()
            proc.wait(5)
        log.info("publisher process stopped", extra={"event": "publisher_stopped"})

    def __call__(self, config: Config, archive: Path, title: str, *, adapters: Any = None,
                 stop_event: threading.Event | None = None, progress: bool = False,
                 platforms: list[str] | None = None) -> PublishResult:
        from crossposter.publish import PreflightError, ThreadLockedError
        from crossposter.redact import redact_obj

        self.ensure()
        self.busy = True
        try:
            self._seq += 1
            job = {"op": Op.PUBLISH, "id": self._seq, "archive": str(archive), "title": title, "platforms": platforms}
            proc, lines = self.proc, self._lines
            try:
                proc.stdin.write(json.dumps(job) + "\n")
                proc.stdin.flush()
            except (OSError, ValueError, AttributeError):
                return self._died(archive, title, "the publisher process could not be reached")
            told_stop = False
            while True:
                if stop_event is not None and stop_event.is_set() and not told_stop:
                    with contextlib.suppress(OSError, ValueError):
                        proc.stdin.write(json.dumps({"op": Op.STOP}) + "\n")
                        proc.stdin.flush()
                    told_stop = True
                try:
                    line = lines.get(timeout=0.2)
                except queue.Empty:
                    continue
                if line is None:
                    return self._died(archive, title, f"the publisher process exited ({proc.wait()})")
                msg = json.loads(line)
                if msg.get("id") != self._seq:
                    continue  # "ready", or an answer to an older request
                kind = Reply(msg["kind"])
                msg = redact_obj(msg)  # the child redacts too; this process may know more secrets
                if kind == Reply.PREFLIGHT:
                    raise PreflightError(msg["problems"])
                if kind == Reply.LOCKED:
                    raise ThreadLockedError(archive, title, Path(msg["lock"]))
                if kind == Reply.ERROR:
                    return _single(archive, title, OutcomeState.ERROR, msg["message"])
                return PublishResult(archive, title, {p: PlatformOutcome.from_json(p, o)
                                                      for p, o in msg["outcomes"].items()})
        finally:
            self.busy = False
            self.idle_since = time.monotonic()

    def _died(self, archive: Path, title: str, why: str) -> PublishResult:
        log.error("%s; the thread will be retried", why, extra={"event": "publisher_died"})
        with self._lock:
            self.proc = None
        return _single(archive, title, OutcomeState.TRANSIENT, why)


def _single(archive: Path, title: str, state: OutcomeState, message: str) -> PublishResult:
    """A result for what went wrong around the platforms (the child), not on one of them."""
    return PublishResult(archive, title, {"publisher": PlatformOutcome("publisher", state, 0, 0, [], message)})


def _has_fileno(stream: Any) -> bool:
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True


def child_main() -> None:
    """The publisher child: read a config, warm the SDK imports, publish threads the daemon sends."""
    import signal
    import sys

    # The daemon decides when to stop (it forwards SIGTERM/SIGINT as a "stop" message), so a
    # Ctrl-C reaching the whole process group must not cut a request short here.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from crossposter.config import Config, secret_values
    from crossposter.logs import setup_logging
    from crossposter.redact import redact_obj

    out = sys.stdout
    sys.stdout = sys.stderr  # nothing but results may reach the pipe
    first = json.loads(sys.stdin.readline())
    config = Config.model_validate({**first["config"], "base_dir": first["base_dir"]})
    setup_logging(config.daemon.log_format, secret_values(), stream=sys.stderr)
    from crossposter.platforms.fakes import JournalFakes
    from crossposter.publish import PreflightError, ThreadLockedError, publish_thread, warm_up

    fakes = JournalFakes.from_json(first["fakes"]) if first.get("fakes") else None
    adapters = fakes.adapters(config.enabled_platforms()) if fakes else None
    # Pay the SDKs' one-time costs now (also with the test fakes, so that memory and timings stay
    # realistic): when the thread is due, the first request goes out at once.
    with contextlib.suppress(Exception):
        warm_up(config.enabled_platforms())
    stop = threading.Event()
    jobs: queue.Queue[dict | None] = queue.Queue()

    def reader() -> None:
        for line in sys.stdin:
            msg = json.loads(line)
            if msg.get("op") == Op.STOP:
                stop.set()
            else:
                jobs.put(msg)
        stop.set()  # the daemon is gone (EOF): finish the request in flight, then exit
        jobs.put(None)

    threading.Thread(target=reader, name="commands", daemon=True).start()

    def send(msg: dict) -> None:
        out.write(json.dumps(redact_obj(msg), default=str) + "\n")
        out.flush()

    send({"kind": Reply.READY, "id": 0})
    while True:
        job = jobs.get()
        if job is None:
            return
        try:
            result = publish_thread(config, Path(job["archive"]), job["title"], job.get("platforms"),
                                    adapters=adapters, stop_event=stop, progress=False)
            send({"id": job["id"], "kind": Reply.RESULT,
                  "outcomes": {p: o.to_json() for p, o in result.outcomes.items()}})
        except PreflightError as e:
            send({"id": job["id"], "kind": Reply.PREFLIGHT, "problems": e.problems})
        except ThreadLockedError as e:
            send({"id": job["id"], "kind": Reply.LOCKED, "lock": str(e.lock_path)})
        except Exception as e:
            log.exception("publishing %r failed", job["title"], extra={"event": "error"})
            send({"id": job["id"], "kind": Reply.ERROR, "message": f"{type(e).__name__}: {e}"})
        if stop.is_set():
            return
