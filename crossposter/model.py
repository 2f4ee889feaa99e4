"""Plain data shared by every stage: archive → render → split → publish → record.

Kept free of heavy imports so that `crossposter preview` starts fast; every
stage speaks in these types, which is what lets each one be tested alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from crossposter.platforms import registry
from crossposter.platforms.registry import PlatformName

#: The built-in platforms, in order (`registry.names()` also sees a platform registered later).
PLATFORMS: tuple[PlatformName, ...] = registry.BUILTIN

#: Default post limits when no instance/config says otherwise (`registry.default_limits()` at call time).
DEFAULT_LIMITS: dict[str, int] = registry.default_limits()


@dataclass(frozen=True)
class Diagnostic:
    """A warning or error tied to a 1-based line of the archive file."""

    line: int
    message: str
    platform: PlatformName | None = None

    def as_dict(self) -> dict[str, object]:
        d: dict[str, object] = {"line": self.line, "message": self.message}
        if self.platform:
            d["platform"] = self.platform
        return d


@dataclass(frozen=True)
class Facet:
    """A Bluesky rich-text annotation; offsets are UTF-8 *byte* offsets into the post text."""

    byte_start: int
    byte_end: int
    kind: Literal["link", "tag", "mention"]
    value: str  # the URL, the tag without '#', or the handle without '@'


@dataclass(frozen=True)
class ImageRef:
    """An image the archive attaches to a post."""

    src: str  # the path as written in the Markdown
    path: Path  # resolved absolute path (may not exist: pre-flight reports that)
    alt: str
    title: str | None
    line: int


@dataclass
class Post:
    """One post exactly as it would be sent to one platform."""

    text: str
    length: int  # by the platform's own counting rule
    facets: list[Facet] = field(default_factory=list)
    images: list[ImageRef] = field(default_factory=list)
    links: list[str] = field(default_factory=list)  # full URLs, in order of appearance
    line: int = 0  # archive line of the first source block in this post


@dataclass
class PlatformPosts:
    platform: PlatformName
    limit: int
    posts: list[Post] = field(default_factory=list)


@dataclass
class ThreadPlan:
    """What a thread becomes on each platform, with everything wrong with it."""

    archive: Path
    title: str
    line: int
    skipped: str | None  # why it is not a thread to post, or None
    platforms: dict[PlatformName, PlatformPosts] = field(default_factory=dict)
    warnings: list[Diagnostic] = field(default_factory=list)
    errors: list[Diagnostic] = field(default_factory=list)
