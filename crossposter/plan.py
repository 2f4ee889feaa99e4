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
from crossposter.archive import Archive, ArchiveError, Thread, read_archive_parts
from crossposter.archive import _norm_title as norm_title
from crossposter.model import Diagnostic, ImageRef, PlatformName, PlatformPosts, ThreadPlan
from crossposter.platforms import registry

if TYPE_CHECKING:
    from crossposter.config import Config
from crossposter.render import blocks, has_opening_text, live_code_mentions, tokenize_streams
from crossposter.split import split

#: The limit a thread's source platform is planned with (`source:` in its block): none, in effect.
SOURCE_LIMIT = 10**9


@dataclass(frozen=True)
class PlanOptions:
    """What planning needs from the config; `preview` without --config uses the defaults and never
    imports pydantic (which alone would cost a third of the start-up budget)."""

    limits: dict[str, int] = field(default_factory=registry.default_limits)
    numbering: bool = False
    post_title: bool = False
    #: False: images are checked from their structure (crossposter.image_header), which `preview` uses to start
    #: fast; True: decoded by Pillow, as every pre-flight before posting does.
    decode_images: bool = True
    #: the zone a `schedule:` without an offset is read in (the config's)
    timezone: str = "UTC"
    #: the configured Mastodon server (`https://mastodon.social`): a mention link to an account there is
    #: written `@alice` on Mastodon, any other `@alice@host`; None (preview without config): always
    #: `@alice@host`, which names the same account and counts the same
    mastodon_instance: str | None = None
    #: the platform every thread was backed up from when its metadata does not say (`source:`): bare
    #: `@names` are live mentions on that platform only; None: bare mentions as typed everywhere
    source: str | None = None
    #: `mirror.remove_tags`, taken out of the text of threads backed up from `remove_tags_from` (the mirror's source)
    remove_tags: tuple[str, ...] = ()
    remove_tags_from: str | None = None

    @classmethod
    def of(cls, config: Config | PlanOptions) -> PlanOptions:
        if isinstance(config, PlanOptions):
            return config
        return cls(
            limits={spec.name: configured_limit(config, spec) for spec in registry.specs()},
            numbering=config.split.numbering,
            post_title=config.split.post_title,
            timezone=config.timezone,
            mastodon_instance=config.platforms.mastodon.instance,
            remove_tags=tuple(config.mirror.remove_tags) if config.mirror is not None else (),
            remove_tags_from=config.mirror.from_ if config.mirror is not None else None,
        )


def configured_limit(config: Config, spec: registry.PlatformSpec) -> int:
    """The config's limit for the platform (`config_limit`), else its default."""
    return getattr(config.platforms.section(spec.name), spec.config_limit) if spec.config_limit else spec.limit


def platform_limit(config: Config | PlanOptions, platform: PlatformName) -> int:
    return PlanOptions.of(config).limits[platform]


def plan_thread(archive: Archive, thread: Thread, config: Config | PlanOptions,
                platforms: list[PlatformName] | None = None, limits: dict[str, int] | None = None) -> ThreadPlan:
    """What `thread` becomes on each platform; `limits` overrides a platform's limit (the instance's real one).

    render/split/counting speak in dialects (`registry.Dialect`): each platform is planned with its own.
    """
    options = PlanOptions.of(config)
    plan = ThreadPlan(archive=archive.path, title=thread.title, line=thread.line, skipped=thread.skipped)
    # The block is read by the same model as `post`, `status` and the daemon read it: a value none of them
    # would use (`skip: 'true'`, an ID that is not one) is an error here too, and nowhere a skip.
    meta = None
    try:
        meta = thread_meta.of(thread, options.timezone)
    except thread_meta.MetadataError as e:
        plan.errors.extend(Diagnostic(line or thread.line, message) for line, message in e.problems)
    # `source:` (the platform a backed-up thread came from), where the metadata model knows the key
    source = getattr(meta, "source", None) or options.source
    source = str(source).lower() if source else None  # "X" as the registry spells it: "x"
    if thread.skipped:
        return plan
    plan.errors.extend(thread.errors)  # what reading the file found (see `Thread.errors`)
    plan.warnings.extend(thread.warnings)
    tokens = archive.body_tokens(thread, inline=False)
    title = thread.title if options.post_title or not has_opening_text(tokens) else None
    rendered = blocks(thread.body, thread.body_line, archive.path.parent, title=title, title_line=thread.line,
                      tokens=tokens, inline=archive.inline_children, source=source)
    plan.warnings.extend(rendered.warnings)
    plan.errors.extend(rendered.errors)
    if options.remove_tags and source is not None and source == options.remove_tags_from:
        from crossposter.mirror.tags import remove_tags

        plan.errors.extend(Diagnostic(line, message) for line, message in remove_tags(rendered, options.remove_tags))
    names = platforms or list(registry.names())
    specs = [registry.get(name) for name in names]
    dialects = list(dict.fromkeys(spec.dialect for spec in specs))
    plan.warnings.extend(_per_platform(live_code_mentions(rendered, dialects), specs))
    images = [run.image for b in rendered.blocks for run in b.runs if run.image is not None]
    _check_images(images, archive.path.parent, specs, plan, decode=options.decode_images)
    streams = tokenize_streams(rendered, dialects, mastodon_instance=options.mastodon_instance)
    for spec in specs:
        name, dialect = spec.name, spec.dialect
        limit = (limits or {}).get(name) or options.limits.get(name) or spec.limit
        if meta is not None and name == meta.source:
            # A backed-up thread's posts already exist on their source platform, each whole (an X long
            # post, a Mastodon post from an instance with a larger limit): each `---` part is one post
            # there, whatever this account's limit. Nothing is ever sent to the source (see publish).
            result = split(streams[dialect], dialect, SOURCE_LIMIT, numbering=False)
            limit = max([limit, *(p.length for p in result.posts)])
        else:
            result = split(streams[dialect], dialect, limit, numbering=options.numbering)
        plan.platforms[name] = PlatformPosts(platform=name, limit=limit, posts=result.posts)
        plan.errors.extend(result.errors)
        if spec.refuses_repeats and not (meta is not None and name == meta.source):
            plan.errors.extend(_repeats(result.posts, name))  # (never sent to its source: nothing to refuse)
    if not any(pp.posts for pp in plan.platforms.values()) and names:
        plan.errors.append(Diagnostic(thread.line, "the thread has nothing to post"))
    plan.errors.sort(key=lambda d: d.line)
    plan.warnings.sort(key=lambda d: d.line)
    return plan


def _per_platform(found: list[Diagnostic], specs: list[registry.PlatformSpec]) -> list[Diagnostic]:
    """Diagnostics render made per dialect, given to each platform speaking it (a built-in platform's
    dialect is its own name: one each, unchanged)."""
    out = []
    for d in found:
        for spec in specs:
            if spec.dialect != d.platform:
                continue
            if spec.name == d.platform:
                out.append(d)
            else:
                out.append(Diagnostic(d.line, d.message.replace(registry.display(d.platform), spec.display, 1),
                                      spec.name))
    return out


def _repeats(posts: list, platform: PlatformName) -> list[Diagnostic]:
    """A post with the same text as an earlier one of the same thread, which `platform` would refuse."""
    first: dict[str, tuple[int, int]] = {}
    found = []
    for n, post in enumerate(posts, 1):
        key = post.text.strip()
        if not key:
            continue  # an image-only post: X's duplicate rule is about text (its images differ or are refused)
        if key in first:
            m, line = first[key]
            name = registry.display(platform)
            found.append(Diagnostic(post.line, f"post {n} repeats post {m} (line {line}) word for word; {name} "
                                    "refuses a repeated post (\"duplicate content\") and the thread would stop "
                                    "there: change one of them", platform))
        else:
            first[key] = (n, post.line)
    return found


def _check_images(images: list[ImageRef], folder: Path, platforms: list[registry.PlatformSpec], plan: ThreadPlan,
                  decode: bool = True) -> None:
    """Everything about an image that can be known without a network: where it is, what it is, its alt text."""
    root = folder.resolve()
    for img in images:
        if not img.alt.strip():
            plan.warnings.append(Diagnostic(img.line, f"image {img.src!r} has no alt text; write a description "
                                            "between the brackets: ![what the image shows](path)"))
        for spec in platforms:
            if len(img.alt) > spec.max_alt_text:
                plan.errors.append(Diagnostic(img.line, f"alt text of {img.src!r} is {len(img.alt)} characters, "
                                              f"{spec.name} keeps at most {spec.max_alt_text}; shorten it",
                                              spec.name))
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


def plan_paths(paths: list[Path], config: Config | PlanOptions, platforms: list[PlatformName] | None = None,
               thread_title: str | None = None) -> list[ThreadPlan]:
    """Plans for every thread of every archive (or the one titled `thread_title`); see `iter_plans`."""
    return list(iter_plans(paths, config, platforms, thread_title))


def iter_plans(paths: list[Path], config: Config | PlanOptions, platforms: list[PlatformName] | None = None,
               thread_title: str | None = None) -> Iterator[ThreadPlan]:
    """`plan_paths`, one plan at a time, in order.

    Each archive is read in slices (`read_archive_parts`) and a thread's tokens are dropped once it is
    planned. Two threads with one title are an error on both, so every title is known before the first
    plan: an archive above `_TWO_PASS_BYTES` is parsed twice (titles, then plans), so that a consumer that
    writes each plan out and drops it (the preview) needs memory for one slice of it, not its whole parse.

    An archive that cannot be read yields one plan with the error, so a preview of many files still shows
    the others (the plans of an archive's slices before the problem come first).
    """
    options = PlanOptions.of(config)
    for path in expand_paths(paths):
        try:
            if thread_title is None:
                big = path.stat().st_size > _TWO_PASS_BYTES
                parts = read_archive_parts(path) if big else list(read_archive_parts(path))
                # duplicate titles need every title first: a big file is read twice rather than held whole
                lines = _title_lines(read_archive_parts(path) if big else parts)
                for part in parts:
                    for thread in part.threads:
                        plan = plan_thread(part, thread, options, platforms)
                        _flag_same_title(plan, thread, lines)
                        part.release(thread)
                        yield plan
                continue
            found = _find_streamed(path, thread_title)
        except ArchiveError as e:
            yield ThreadPlan(archive=Path(path).resolve(), title="", line=e.line or 0, skipped=None,
                             errors=[Diagnostic(e.line or 0, e.message)])
            continue
        lines = _title_lines([t for _, t in found], threads=True)
        for part, thread in found:
            plan = plan_thread(part, thread, options, platforms)
            _flag_same_title(plan, thread, lines)
            yield plan


#: above this size a file is parsed twice (titles, then plans) instead of being held whole in memory
_TWO_PASS_BYTES = 8 * 1024 * 1024


def _title_lines(parts, threads: bool = False) -> dict[str, list[int]]:
    """Heading lines by normalised title, from archive parts (or threads)."""
    lines: dict[str, list[int]] = {}
    for t in (parts if threads else (t for part in parts for t in part.threads)):
        lines.setdefault(norm_title(t.title), []).append(t.line)
    return lines


def _flag_same_title(plan: ThreadPlan, thread: Thread, lines: dict[str, list[int]]) -> None:
    """Titles identify threads (post, schedule, the daemon's state): two alike make each of those ambiguous."""
    same = lines.get(norm_title(thread.title), [])
    if len(same) > 1 and thread.skipped != "table of contents":
        others = ", ".join(str(n) for n in same if n != thread.line)
        plan.errors.insert(0, Diagnostic(thread.line, f"another thread has the title {thread.title!r} "
                                         f"(line {others}); rename one: commands find a thread by its title"))


def _find_streamed(path: Path, title: str) -> list[tuple[Archive, Thread]]:
    """The threads `--thread title` means, reading the file in slices: the one titled exactly so, else every
    one whose title matches ignoring case and spacing (all shown, flagged, when there are several)."""
    wanted = norm_title(title)
    candidates: list[tuple[Archive, Thread]] = []
    for part in read_archive_parts(path):
        candidates.extend((part, t) for t in part.threads if t.title == title or norm_title(t.title) == wanted)
    exact = [(part, t) for part, t in candidates if t.title == title]
    return exact if len(exact) == 1 else candidates
