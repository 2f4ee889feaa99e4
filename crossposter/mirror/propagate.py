"""A deleted source post taken off the targets (`mirror.deletions: delete`): which posts, only the mirror's, once.

Which posts. A source post became one or more posts on each target (split to the target's limit).
Its group is read from the plan, never guessed: the archive's thread, planned for the source (each
`---` part is exactly one source post: the backup writes one part per post, and `---` is a hard
post boundary) and for each target, gives every target post the archive line it starts at; a
target post belongs to the source post whose part holds that line. The mapping is trusted only
when it is certain: the archive has as many parts as the source has recorded posts, the plan has
no errors, and every target post recorded up to the group's last one was published from the very
text planned now (the `sha` the publisher recorded with it). Anything else (the archive was edited
since, the instance's limit changed the split, a post recorded by hand without a sha) deletes
nothing and says why.

Only the mirror's posts. A thread's target posts recorded while the mirror had handed it to the
publisher are the mirror's (`MirrorThread.own`); posts recorded before that (by `post`, by hand)
are not, and are never deleted, whatever the config says.

Once. What is to be deleted is written to the mirror's state before the first request
(`MirrorThread.deleting`), and each post is moved to `deleted` after the platform confirmed it; a
crash in between repeats that one request at the next poll, which is harmless: every adapter's
`delete` counts a post already gone as deleted. The archive is not touched (it records what was
published; removing an ID from it would make the publisher post it again).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crossposter.archive import Archive, Thread
    from crossposter.config import Config

log = logging.getLogger("crossposter.mirror")

#: what one delete came to: None (deleted, or already gone), else ("retry" | "failed", message)
Outcome = tuple[str, str] | None
#: (config, platform, post IDs) -> the outcome of each ID, deleting them in order
DeleteFn = Callable[["Config", str, list[str]], dict[str, Outcome]]


@dataclass
class Group:
    """The target posts one source post became, or why that is not certain."""

    posts: dict[str, list[str]] = field(default_factory=dict)
    problem: str | None = None


def target_group(archive: Archive, thread: Thread, config: Config, source: str, targets: list[str],
                 index: int) -> Group:
    """The IDs of the posts source post `index` (1-based) became on each target (see the module docstring)."""
    from crossposter.plan import plan_thread
    from crossposter.thread_meta import MetadataError, of

    try:
        meta = of(thread, config.timezone)
    except MetadataError as e:
        return Group(problem=f"its metadata block is not valid ({'; '.join(e.messages())})")
    recorded = meta.recorded(source)  # type: ignore[arg-type]
    plan = plan_thread(archive, thread, config, [source])  # type: ignore[list-item]
    if plan.errors:
        return Group(problem=f"its text cannot be planned now (line {plan.errors[0].line}: "
                             f"{plan.errors[0].message})")
    parts = plan.platforms[source].posts  # type: ignore[index]
    if len(parts) != len(recorded) or not 1 <= index <= len(parts):
        return Group(problem=f"the archive holds {len(parts)} part(s) between `---` where the source has "
                             f"{len(recorded)} recorded post(s), so which text was post {index} is not certain")
    start = parts[index - 1].line
    end = parts[index].line if index < len(parts) else None
    out: dict[str, list[str]] = {}
    for target in targets:
        entries = meta.recorded(target)  # type: ignore[arg-type]
        problem = f"no {target} post comes from source post {index} in the plan"
        # the limit the publisher split with: the configured one, or the instance's own (Mastodon)
        for limit in _limits(config, target):
            tplan = plan_thread(archive, thread, config, [target], limits=limit)  # type: ignore[list-item]
            if tplan.errors:
                problem = (f"its text cannot be planned for {target} now (line {tplan.errors[0].line}: "
                           f"{tplan.errors[0].message})")
                continue
            found, problem = _group(tplan.platforms[target].posts, entries, start, end)  # type: ignore[index]
            if found is not None:
                out[target] = found
                break
        else:
            return Group(problem=f"{target}: {problem}, so which posts came from source post {index} is not certain")
    return Group(posts=out)


def _limits(config: Config, target: str) -> list[dict[str, int] | None]:
    """The configured limit (None), then the one the instance last told the account, when it tells one."""
    from crossposter.plan import configured_limit
    from crossposter.platforms.registry import get

    out: list[dict[str, int] | None] = [None]
    spec = get(target)
    look = getattr(spec.adapter_module(), "cached_limit", None) if spec.limit_from_server else None
    told = look(config) if look is not None else None
    if told is not None and told != configured_limit(config, spec):
        out.append({target: told})
    return out


def _group(posts: list[Any], entries: tuple[Any, ...], start: int, end: int | None) -> tuple[list[str] | None, str]:
    """The recorded IDs of the planned posts starting in lines start..end, when every post up to them matches."""
    from crossposter.publish import text_sha

    group = [j for j, p in enumerate(posts) if p.line >= start and (end is None or p.line < end)]
    if not group:
        return None, "no post of the plan comes from it"
    for j in range(min(group[-1] + 1, len(entries))):
        if entries[j].sha is None or entries[j].sha != text_sha(posts[j].text):
            return None, (f"post {j + 1} was published from another text than the archive gives now (edited "
                          "since, or split at another limit)")
    return [entries[j].id for j in group if j < len(entries)], ""


def _adapter(config: Config, platform: str) -> Any:
    """The platform's adapter (the journal fakes when a test chose them), or why it could not be made.

    A missing credential is answered with its (redacted) reason: nothing was attempted, so the intent
    stays for the next poll.
    """
    from crossposter.platforms.fakes import journal_fakes_from_env
    from crossposter.platforms.registry import get

    fakes = journal_fakes_from_env(config)
    try:
        return (fakes.adapters([platform])[platform] if fakes is not None
                else get(platform).adapter_module().from_config(config))
    except Exception as e:
        from crossposter.redact import redact

        return redact(f"{type(e).__name__}: {e}")


def delete_posts(config: Config, platform: str, ids: list[str]) -> dict[str, Outcome]:
    """Delete `ids` on `platform` with its adapter, in order; stops at a rate limit (the rest: retry later)."""
    from crossposter.platforms.base import PlatformError, RateLimitedError, TransientError, UnauthorizedError

    adapter = _adapter(config, platform)
    if isinstance(adapter, str):
        return {post_id: ("retry", adapter) for post_id in ids}
    out: dict[str, Outcome] = {}
    for n, post_id in enumerate(ids):
        try:
            adapter.delete(post_id)
        except (RateLimitedError, TransientError, UnauthorizedError) as e:  # may pass: credentials get fixed
            out[post_id] = ("retry", e.message)
            if isinstance(e, RateLimitedError | UnauthorizedError):
                out.update({rest: ("retry", e.message) for rest in ids[n + 1:]})
                break
        except PlatformError as e:
            out[post_id] = ("failed", e.message)
        else:
            out[post_id] = None
    return out


# --------------------------------------------------------------------------- `edits: update` (Mastodon)

#: (config, platform, {post ID: new text}) -> the outcome of each ID
UpdateFn = Callable[["Config", str, dict[str, str]], dict[str, Outcome]]


@dataclass
class Update:
    """The one target post an edited source post became, and the text it gets now; or why not."""

    post_id: str | None = None
    text: str | None = None
    problem: str | None = None


def updated_text(archive: Archive, thread: Thread, config: Config, source: str, target: str, index: int,
                 markdown: str) -> Update:
    """What source post `index` (1-based) becomes on `target` once its part reads `markdown` (the backup's own
    Markdown of the edited post), planned in memory with the rest of the thread as the archive has it.

    Certain only when the post became exactly one target post, every other planned post stays word for
    word what was published, and the part holds no image (its images are not re-read). The archive is
    not changed: it holds the thread as backed up.
    """
    from crossposter.archive import ArchiveError, decode_archive, parse_archive, read_archive_bytes
    from crossposter.plan import plan_thread
    from crossposter.thread_meta import MetadataError, of

    group = target_group(archive, thread, config, source, [target], index)
    if group.problem is not None:
        return Update(problem=group.problem)
    ids = group.posts.get(target, [])
    if len(ids) != 1:
        return Update(problem=f"it became {len(ids)} posts on {target}, not one")
    parts = plan_thread(archive, thread, config, [source]).platforms[source].posts  # type: ignore[list-item,index]
    if parts[index - 1].images:
        return Update(problem="it has images, which are not read again")
    rules = [t for t in archive.body_tokens(thread, inline=False) if t.type == "hr" and t.level == 0 and t.map]
    if len(rules) != len(parts) - 1:
        return Update(problem="its parts are not separated by `---` lines alone")
    lines = thread.body.split("\n")
    start = rules[index - 2].map[1] if index > 1 else 0  # type: ignore[index]
    end = rules[index - 1].map[0] if index <= len(rules) else len(lines)  # type: ignore[index]
    first = thread.body_line - 1
    try:
        whole = decode_archive(read_archive_bytes(archive.path), archive.path).split("\n")
        if whole[first:first + len(lines)] != lines:
            return Update(problem="the archive changed since it was read; looked at again next time")
        whole[first + start:first + end] = ["", *markdown.split("\n"), ""]
        edited_archive = parse_archive("\n".join(whole), archive.path)
        edited = edited_archive.find(thread.title)
        meta = of(edited, config.timezone)
    except (OSError, ArchiveError, MetadataError) as e:
        return Update(problem=f"the edited text cannot be planned ({e})")
    entries = meta.recorded(target)  # type: ignore[arg-type]
    part_end = parts[index].line if index < len(parts) else None
    for limit in _limits(config, target):
        before = plan_thread(archive, thread, config, [target], limits=limit).platforms[target].posts  # type: ignore[list-item,index]
        found, _ = _group(before, entries, parts[index - 1].line, part_end)
        if found != ids:
            continue
        after_plan = plan_thread(edited_archive, edited, config, [target], limits=limit)  # type: ignore[list-item]
        if after_plan.errors:
            return Update(problem=f"the edited text does not fit {target} ({after_plan.errors[0].message})")
        after = after_plan.platforms[target].posts  # type: ignore[index]
        j = next(k for k, e in enumerate(entries) if e.id == ids[0])
        others_same = len(after) == len(before) and all(a.text == b.text for k, (a, b) in
                                                        enumerate(zip(after, before, strict=True)) if k != j)
        if not others_same:
            return Update(problem=f"the edited text would change how the thread splits on {target}")
        return Update(post_id=ids[0], text=after[j].text)
    return Update(problem=f"which {target} post it became is not certain")


def update_posts(config: Config, platform: str, texts: dict[str, str]) -> dict[str, Outcome]:
    """Give each post its new text on `platform` (only Mastodon edits a post), in order."""
    from crossposter.platforms.base import PlatformError, RateLimitedError, TransientError, UnauthorizedError
    from crossposter.platforms.registry import get

    adapter = _adapter(config, platform)
    if isinstance(adapter, str):
        return {post_id: ("retry", adapter) for post_id in texts}
    if not get(platform).edits_posts or not callable(getattr(adapter, "update", None)):
        return {post_id: ("failed", f"{platform} cannot edit a post") for post_id in texts}
    out: dict[str, Outcome] = {}
    for post_id, text in texts.items():
        try:
            adapter.update(post_id, text)
        except (RateLimitedError, TransientError, UnauthorizedError) as e:
            out[post_id] = ("retry", e.message)
        except PlatformError as e:
            out[post_id] = ("failed", e.message)
        else:
            out[post_id] = None
    return out
