"""`mirror.remove_tags`: hashtags taken out of what is posted to the targets, never out of the archive.

Why on the rendered blocks. The archive keeps the person's words (`#xpost` marks what to mirror,
a `#nomirror`-style mark kept in a thread they want mirrored after all); the targets get the text
without them. Taking them out of the rendered text runs, before the text is cut into tokens and
posts, keeps everything after it right: Bluesky's tag facets, the splitting and the counts are
made from the text as posted. Code (inline or blocks) is literal and left alone; a link's text is
the person's link, left alone too.

Cleanly: a tag goes with the spaces before it ("a #xpost b" → "a b"); a line or block left with
nothing is dropped; a post (a `---` part) left with no text and no image is an error at its line:
the thread would lose a post without a word.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import regex

if TYPE_CHECKING:
    from crossposter.render import Block, RenderedThread


def tag_pattern(tags: list[str] | tuple[str, ...]) -> regex.Pattern[str]:
    """The tags as whole hashtags (any case), with the horizontal space before each."""
    names = "|".join(regex.escape(t.removeprefix("#")) for t in sorted(tags, key=len, reverse=True))
    return regex.compile(rf"[ \t]*(?<![\w#])[#＃](?:{names})(?!\w)", regex.IGNORECASE)


def _strip_block(block: Block, pattern: regex.Pattern[str]) -> Block | None:
    """The block without the tags; None when nothing is left of it."""
    if block.kind in ("code", "rule"):
        return block
    runs = []
    for run in block.runs:
        if run.kind == "text":
            text = pattern.sub("", run.text)
            if not runs or runs[-1].kind == "break":
                text = text.lstrip(" \t")
            if text:
                runs.append(replace(run, text=text) if text != run.text else run)
        else:
            runs.append(run)
    # no line break at the start or end, nor two in a row where a line held only tags
    out = []
    for run in runs:
        if run.kind == "break" and (not out or out[-1].kind == "break"):
            continue
        out.append(run)
    while out and out[-1].kind == "break":
        out.pop()
    if out and out[-1].kind == "text":
        last = out[-1].text.rstrip(" \t")
        out[-1:] = [replace(out[-1], text=last)] if last else []
    if not out:
        return None
    return replace(block, runs=out) if out != block.runs else block


def remove_tags(rendered: RenderedThread, tags: list[str] | tuple[str, ...]) -> list[tuple[int, str]]:
    """Take `tags` out of the rendered thread in place; the (line, message) of each post left empty."""
    if not tags:
        return []
    pattern = tag_pattern(tags)
    kept: list[Block] = []
    problems: list[tuple[int, str]] = []
    part: list[Block] = []  # the current `---` part as it was
    part_kept = 0

    def close() -> None:
        if part and not part_kept:
            names = ", ".join(tags)
            problems.append((part[0].line, f"this post holds nothing but {names} (mirror.remove_tags): it would "
                                           "be empty on the targets; add words to it, or delete the post"))

    for block in rendered.blocks:
        if block.kind == "rule":
            close()
            part, part_kept = [], 0
            kept.append(block)
            continue
        part.append(block)
        new = _strip_block(block, pattern)
        if new is not None:
            kept.append(new)
            part_kept += 1
    close()
    rendered.blocks[:] = kept
    return problems
