"""Archive thread → ThreadPlan: render once, split per platform, check images. No network, no credentials.

This is what `preview` shows and what `post` checks before its first request:
the same function, so the preview never disagrees with what gets posted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from crossposter import thread_meta
from crossposter.archive import Archive, ArchiveError, Thread, find_thread, read_archive_parts
from crossposter.model import DEFAULT_LIMITS, PLATFORMS, Diagnostic, ImageRef, PlatformPosts, ThreadPlan

if TYPE_CHECKING:
    from crossposter.config import Config
from crossposter.render import blocks, has_opening_text, tokenize_streams
from crossposter.split import split

#: Longest alt text each platform keeps.
ALT_LIMITS = {"bluesky": 2000, "mastodon": 1500, "x": 1000}


@dataclass(frozen=True)
class PlanOptions:
    """What planning needs from the config; `preview` without --config uses the defaults and never
    imports pydantic (which alone would cost a third of the start-up budget)."""

    limits: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    numbering: bool = False
    post_title: bool = False
    #: False: images are checked from their structure (crossposter.image_header), which `preview` uses to start
    #: fast; True: decoded by Pillow, as every pre-flight before posting does.
    decode_images: bool = True
    #: the zone a `schedule:` without an offset is read in (the config's)
    timezone: str = "UTC"

    @classmethod
    def of(cls, config: Config | PlanOptions) -> PlanOptions:
        if isinstance(config, PlanOptions):
            return config
        return cls(
            limits={"bluesky": config.platforms.bluesky.max_graphemes,
                    "mastodon": config.platforms.mastodon.max_characters, "x": 280},
            numbering=config.split.numbering,
            post_title=config.split.post_title,
            timezone=config.timezone,
        )


def platform_limit(config: Config | PlanOptions, platform: str) -> int:
    return PlanOptions.of(config).limits[platform]


def plan_thread(archive: Archive, thread: Thread, config: Config | PlanOptions, platforms: list[str] | None = None,
                limits: dict[str, int] | None = None) -> ThreadPlan:
    """What `thread` becomes on each platform; `limits` overrides a platform's limit (the instance's real one)."""
    options = PlanOptions.of(config)
    plan = ThreadPlan(archive=archive.path, title=thread.title, line=thread.line, skipped=thread.skipped)
    # The block is read by the same model as `post`, `status` and the daemon read it: a value none of them
    # would use (`skip: 'true'`, an ID that is not one) is an error here too, and nowhere a skip.
    try:
        thread_meta.of(thread, options.timezone)
    except thread_meta.MetadataError as e:
        plan.errors.extend(Diagnostic(line or thread.line, message) for line, message in e.problems)
    if thread.skipped:
        return plan
    plan.errors.extend(thread.errors)  # what reading the file found (see `Thread.errors`)
    plan.warnings.extend(thread.warnings)
    tokens = archive.body_tokens(thread, inline=False)
    title = thread.title if options.post_title or not has_opening_text(tokens) else None
    rendered = blocks(thread.body, thread.body_line, archive.path.parent, title=title, title_line=thread.line,
                      tokens=tokens, inline=archive.inline_children)
    plan.warnings.extend(rendered.warnings)
    plan.errors.extend(rendered.errors)
    names = platforms or list(PLATFORMS)
    images = [run.image for b in rendered.blocks for run in b.runs if run.image is not None]
    _check_images(images, archive.path.parent, names, plan, decode=options.decode_images)
    streams = tokenize_streams(rendered, names)
    for name in names:
        limit = (limits or {}).get(name) or options.limits[name]
        result = split(streams[name], name, limit, numbering=options.numbering)
        plan.platforms[name] = PlatformPosts(platform=name, limit=limit, posts=result.posts)
        plan.errors.extend(result.errors)
    if not any(pp.posts for pp in plan.platforms.values()) and names:
        plan.errors.append(Diagnostic(thread.line, "the thread has nothing to post"))
    plan.errors.sort(key=lambda d: d.line)
    plan.warnings.sort(key=lambda d: d.line)
    return plan


def _check_images(images: list[ImageRef], folder: Path, platforms: list[str], plan: ThreadPlan,
                  decode: bool = True) -> None:
    """Everything about an image that can be known without a network: where it is, what it is, its alt text."""
    root = folder.resolve()
    for img in images:
        if not img.alt.strip():
            plan.warnings.append(Diagnostic(img.line, f"image {img.src!r} has no alt text; write a description "
                                            "between the brackets: ![what the image shows](path)"))
        for name in platforms:
            if len(img.alt) > ALT_LIMITS[name]:
                plan.errors.append(Diagnostic(img.line, f"alt text of {img.src!r} is {len(img.alt)} characters, "
                                              f"{name} keeps at most {ALT_LIMITS[name]}; shorten it", name))
        if not img.path.is_relative_to(root):
            plan.errors.append(Diagnostic(img.line, f"image {img.src!r} is outside the archive's folder {root}; "
                                          "move it into that folder (images travel with the archive)"))
        elif not img.path.is_file():
            plan.errors.append(Diagnostic(img.line, f"image file {img.src!r} not found (looked for {img.path}); "
                                          "add the file or fix the path, which is relative to the archive"))
        else:
            problem, note = _image_problem(img.path, decode)
            if problem:
                plan.errors.append(Diagnostic(img.line, f"image {img.src!r}: {problem}"))
            if note:
                plan.warnings.append(Diagnostic(img.line, f"image {img.src!r}: {note}"))


def _image_problem(path: Path, decode: bool) -> tuple[str | None, str | None]:
    """(what makes the image unusable, what is worth a warning): see `image_header.inspect`."""
    if not decode:
        from crossposter import image_header

        return image_header.inspect(path)
    from crossposter.images import inspect_image

    return inspect_image(path)


def expand_paths(paths: list[Path]) -> list[Path]:
    """Files as given; folders become their `*.md` entries, sorted.

    Every entry but a folder is kept, so that a `*.md` that is a FIFO, a device or a broken link gets its
    error from the reader instead of being skipped without a word.
    """
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted(q for q in p.glob("*.md") if not q.is_dir()))
        else:
            out.append(p)
    return out


def plan_paths(paths: list[Path], config: Config | PlanOptions, platforms: list[str] | None = None,
               thread_title: str | None = None) -> list[ThreadPlan]:
    """Plans for every thread of every archive (or the one titled `thread_title`); see `iter_plans`."""
    return list(iter_plans(paths, config, platforms, thread_title))


def iter_plans(paths: list[Path], config: Config | PlanOptions, platforms: list[str] | None = None,
               thread_title: str | None = None) -> Iterator[ThreadPlan]:
    """`plan_paths`, one plan at a time, in order.

    Each archive is read one slice at a time (`read_archive_parts`) and a slice's tokens are dropped once
    its threads are planned, so a consumer that writes each plan out and drops it (the preview) needs
    memory for one slice of the file, not for its whole parse.

    An archive that cannot be read yields one plan with the error, so a preview of many files still shows
    the others (the plans of an archive's slices before the problem come first).
    """
    options = PlanOptions.of(config)
    for path in expand_paths(paths):
        try:
            if thread_title is None:
                for part in read_archive_parts(path):
                    for thread in part.threads:
                        plan = plan_thread(part, thread, options, platforms)
                        part.release(thread)
                        yield plan
                continue
            found = _find_streamed(path, thread_title)
        except ArchiveError as e:
            yield ThreadPlan(archive=Path(path).resolve(), title="", line=e.line or 0, skipped=None,
                             errors=[Diagnostic(e.line or 0, e.message)])
            continue
        if found is not None:
            yield plan_thread(*found, options, platforms)


def _find_streamed(path: Path, title: str) -> tuple[Archive, Thread] | None:
    """The thread `Archive.find(title)` would give (None where it raises), reading the file in slices."""
    wanted = " ".join(title.split()).casefold()
    candidates: list[tuple[Archive, Thread]] = []
    for part in read_archive_parts(path):
        candidates.extend((part, t) for t in part.threads
                          if t.title == title or " ".join(t.title.split()).casefold() == wanted)
    try:
        thread = find_thread([t for _, t in candidates], title, path)
    except ArchiveError:
        return None
    return next((part, t) for part, t in candidates if t is thread)
