"""How a publication ended, per platform: one model for `post`, the daemon and its publisher child.

Kept apart from `publish` (and free of SDK imports) because the daemon process reads these values
back from its publisher child without ever importing the publishing engine itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crossposter.model import ThreadPlan


class OutcomeState(StrEnum):
    """Every state a platform's chain can end in (a `str`, so logs and JSON show the plain word)."""

    DONE = "done"
    RATE_LIMITED = "rate_limited"
    TRANSIENT = "transient"
    REJECTED = "rejected"
    UNAUTHORIZED = "unauthorized"
    MAYBE_POSTED = "maybe_posted"
    CHANGED = "changed"
    ERROR = "error"
    STOPPED = "stopped"


#: The states a later run can finish without a person doing anything first.
RETRYABLE = frozenset({OutcomeState.RATE_LIMITED, OutcomeState.TRANSIENT, OutcomeState.STOPPED})


@dataclass
class PlatformOutcome:
    platform: str
    state: OutcomeState
    posted: int
    total: int
    links: list[str] = field(default_factory=list)
    message: str = ""
    retry_at: datetime | None = None  # aware UTC, for rate_limited/transient

    def to_json(self) -> dict[str, Any]:
        """The form the publisher child sends to the daemon (see `from_json`)."""
        return {"platform": self.platform, "state": str(self.state), "posted": self.posted, "total": self.total,
                "links": list(self.links), "message": self.message,
                "retry_at": self.retry_at.isoformat() if self.retry_at else None}

    @classmethod
    def from_json(cls, platform: str, data: dict[str, Any]) -> PlatformOutcome:
        retry_at = data.get("retry_at")
        return cls(platform, OutcomeState(data["state"]), int(data["posted"]), int(data["total"]),
                   list(data.get("links") or []), str(data.get("message") or ""),
                   datetime.fromisoformat(retry_at) if retry_at else None)


@dataclass
class PublishResult:
    archive: Path
    title: str
    outcomes: dict[str, PlatformOutcome]
    #: The plan that was published (after re-planning for the instance's real limits).
    plan: ThreadPlan | None = None
    #: Dry runs only: the archive's bytes as the run would have left them.
    archive_after: bytes | None = None
    #: Dry runs only: what would make a real run refuse before its first request (unwritable archive or
    #: state_dir, missing credentials); the dry run itself went on with fakes and a copy of the archive.
    refusals: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(o.state == OutcomeState.DONE for o in self.outcomes.values())

    @property
    def retryable(self) -> bool:
        return not self.ok and all(o.state == OutcomeState.DONE or o.state in RETRYABLE
                                   for o in self.outcomes.values())
