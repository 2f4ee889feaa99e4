"""Where a backup of one account stopped: the reader's cursor, kept in `state_dir`.

One small JSON file per platform account (`state_dir/backup/<platform>-<hash of the account>.json`,
mode 0600), replaced atomically. The archive, not this file, is what prevents duplicates (every
backed-up post's ID is recorded there), so losing or corrupting the cursor costs only a longer
read: an unreadable file is reported and treated as "no cursor".
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from crossposter.atomic import write_atomic

log = logging.getLogger(__name__)

__all__ = ["BackupState", "state_path"]


def state_path(state_dir: Path, platform: str, account: str) -> Path:
    digest = hashlib.sha256(f"{platform}\0{account}".encode()).hexdigest()[:16]
    return state_dir / "backup" / f"{platform}-{digest}.json"


@dataclass
class BackupState:
    path: Path
    account: str
    cursor: str | None = None
    last_run: str | None = None

    @classmethod
    def load(cls, state_dir: Path, platform: str, account: str) -> BackupState:
        path = state_path(state_dir, platform, account)
        state = cls(path, account)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return state
        except (OSError, ValueError) as e:
            log.warning("backup state %s is unreadable (%s); reading the account from the start", path, e)
            return state
        if isinstance(data, dict) and data.get("account") == account:
            cursor = data.get("cursor")
            state.cursor = cursor if isinstance(cursor, str) else None
            last = data.get("last_run")
            state.last_run = last if isinstance(last, str) else None
        return state

    def save(self, cursor: str | None) -> None:
        self.cursor = cursor
        self.last_run = datetime.now(UTC).isoformat(timespec="seconds")
        body = {"account": self.account, "cursor": cursor, "last_run": self.last_run}
        write_atomic(self.path, (json.dumps(body, indent=1) + "\n").encode("utf-8"), 0o600)
