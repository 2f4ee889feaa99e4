"""What the daemon keeps outside the archive: `daemon-state.json` and the heartbeat file.

The archive holds what was published; it cannot hold that a thread was missed, failed, is waiting
for a retry or was stopped by a signal. Those outcomes live here, keyed by archive path and title,
with the signature of the thread (`ThreadInfo.sig`) so that editing or rescheduling a thread makes it
eligible again. `status` and `check` read this file too, so it imports nothing heavy.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from crossposter.atomic import write_atomic

STATE_FILE = "daemon-state.json"
HEARTBEAT_FILE = "heartbeat"


class ThreadOutcome(StrEnum):
    """How the daemon's last attempt at a thread ended, as stored in the state file."""

    DONE = "done"
    FAILED = "failed"
    MISSED = "missed"
    RETRYING = "retrying"
    STOPPED = "stopped"


#: Terminal outcomes: the daemon leaves the thread alone until its schedule or text changes.
TERMINAL = frozenset({ThreadOutcome.DONE, ThreadOutcome.FAILED, ThreadOutcome.MISSED})
#: The daemon gave up on the thread: a person has to act (`check` fails on these).
GAVE_UP = TERMINAL - {ThreadOutcome.DONE}
#: Outcomes `status` shows in place of what the archive says (the archive cannot know them).
UNFINISHED = frozenset(ThreadOutcome) - {ThreadOutcome.DONE}


def now_utc() -> datetime:
    return datetime.now(UTC)


class DaemonState:
    """`daemon-state.json`: outcomes the archive does not hold. Written atomically and durably (`atomic.write_atomic`), mode 0600.

    Its messages come from server answers and exceptions, so every value is redacted before it is
    stored (and again when read: a file written by an older version may hold what it should not).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        #: The file on disk held something redaction removed, or was readable by others.
        self.exposed = False

    @classmethod
    def load(cls, path: Path) -> DaemonState:
        from crossposter.redact import redact_obj

        st = cls(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and isinstance(data.get("threads"), dict):
                # values only: a key is a thread's archive and title, which must stay as they are to match
                st.entries = {k: redact_obj(v) for k, v in data["threads"].items()}
                st.exposed = st.entries != data["threads"] or (path.stat().st_mode & 0o077) != 0
        except (OSError, ValueError):
            pass
        return st

    def get(self, key: str, sig: str | None = None) -> dict[str, Any] | None:
        e = self.entries.get(key)
        if e is None or (sig is not None and e.get("sig") != sig):
            return None
        return e

    def set(self, key: str, **values: Any) -> None:
        from crossposter.redact import redact_obj

        with self._lock:
            entry = {**redact_obj(values), "at": now_utc().isoformat(timespec="seconds")}
            self.entries[key] = entry
            self._save()

    def drop(self, key: str) -> None:
        with self._lock:
            if self.entries.pop(key, None) is not None:
                self._save()

    def scrub(self) -> None:
        """Rewrite the file redacted and private if it was not (the daemon does this when it starts)."""
        with self._lock:
            if self.exposed:
                self._save()
                self.exposed = False

    def _save(self) -> None:
        write_private(self.path, json.dumps({"threads": self.entries}, indent=1, sort_keys=True))


def write_private(path: Path, text: str) -> None:
    """Replace `path` atomically and durably with `text`, readable by the owner only (0600, also when it
    existed before): the temp file is 0600 before anything is written to it (`atomic.write_atomic`)."""
    write_atomic(path, text.encode("utf-8"), 0o600)


def state_time(value: Any) -> datetime | None:
    """An aware time read back from the state file, or None when it is not one (the file may be edited)."""
    from crossposter.timeparse import TimeError, check_range

    try:
        dt = datetime.fromisoformat(value) if isinstance(value, str) else None
        return check_range(dt) if dt is not None and dt.tzinfo is not None else None
    except (ValueError, TimeError):
        return None


def write_heartbeat(state_dir: Path, extra: dict[str, Any] | None = None) -> None:
    """The file `crossposter health` looks at; written atomically so a reader never sees half of it."""
    write_private(state_dir / HEARTBEAT_FILE,
                  json.dumps({"time": now_utc().isoformat(), "pid": os.getpid(), **(extra or {})}))
