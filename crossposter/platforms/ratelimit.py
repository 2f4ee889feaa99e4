"""Rate-limit and retry headers, read the same way for every platform.

Each platform spells its reset time differently (Mastodon: ISO 8601, X and
Bluesky: epoch seconds, anyone: `Retry-After` in seconds or as an HTTP date);
the publisher only wants an aware UTC datetime, or a number of seconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """Case-insensitive lookup that also works on plain dicts."""
    if not headers:
        return None
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, val in headers.items():
            if str(key).lower() == lowered:
                return str(val)
    return None if value is None else str(value)


def parse_reset(value: str | None) -> datetime | None:
    """An aware UTC datetime from epoch seconds or ISO 8601 ('…Z' or with an offset); None if unusable."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            return None
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:  # a server that omits the offset means UTC (Mastodon always sends Z)
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds from now (it is either seconds or an HTTP date); None if absent/unusable."""
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def reset_from_headers(headers: Mapping[str, str] | None, reset_header: str,
                       now: datetime | None = None) -> datetime | None:
    """The end of the rate-limit window: `reset_header`, else `Retry-After` from now."""
    reset = parse_reset(header(headers, reset_header))
    if reset is not None:
        return reset
    after = retry_after_seconds(header(headers, "Retry-After"), now)
    if after is not None:
        return (now or datetime.now(UTC)) + timedelta(seconds=after)
    return None

