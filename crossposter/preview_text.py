"""The terminal preview: each thread, each platform's posts with `length/limit`, images, problems by line."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from crossposter.model import Post, ThreadPlan

if TYPE_CHECKING:
    from rich.text import Text

_NAMES = {"bluesky": "Bluesky", "mastodon": "Mastodon", "x": "X"}


def print_plans(plans: list[ThreadPlan], output: Path | None = None) -> None:
    """Problems are printed one per line, never folded (the terminal wraps them on screen): a `file:line`
    cut in two by an inserted line break could not be clicked, copied or grepped."""
    from rich.console import Console
    from rich.markup import escape
    from rich.panel import Panel

    out_file = output.open("w", encoding="utf-8") if output else None
    console = Console(file=out_file, highlight=False, soft_wrap=False,
                      width=100 if out_file else None, no_color=out_file is not None)
    try:
        totals = {"threads": 0, "posts": 0, "errors": 0, "warnings": 0, "skipped": 0}
        for plan in plans:
            where = f"{_rel(plan.archive)}:{plan.line}"
            if plan.skipped:
                totals["skipped"] += 1
                console.print(f"[dim]{escape(where)}  {escape(plan.title)} — skipped ({plan.skipped})[/dim]",
                              soft_wrap=True)
                continue
            totals["threads"] += 1
            console.rule(f"[bold]{escape(plan.title or plan.archive.name)}[/bold]  [dim]{escape(where)}[/dim]")
            for d in plan.errors:
                totals["errors"] += 1
                tag = f" [{d.platform}]" if d.platform else ""
                console.print(f"[bold red]error[/bold red] {escape(_rel(plan.archive))}:{d.line}{escape(tag)}: "
                              f"{escape(d.message)}", soft_wrap=True)
            for d in plan.warnings:
                totals["warnings"] += 1
                console.print(f"[yellow]warning[/yellow] {escape(_rel(plan.archive))}:{d.line}: {escape(d.message)}",
                              soft_wrap=True)
            for name, pp in plan.platforms.items():
                console.print(f"\n[bold]{_NAMES.get(name, name)}[/bold] — {len(pp.posts)} posts, limit {pp.limit}")
                for i, post in enumerate(pp.posts, 1):
                    totals["posts"] += 1
                    over = post.length > pp.limit
                    count = f"[{'bold red' if over else 'green'}]{post.length}/{pp.limit}[/]"
                    body = post_text(post, name)
                    for img in post.images:
                        alt = img.alt or "(no alt text)"
                        body.append(f"\n🖼  {img.src} — {alt}", style="cyan")
                    console.print(Panel(body, title=f"{i}/{len(pp.posts)}", title_align="left",
                                        subtitle=count + f" [dim]line {post.line}[/dim]", subtitle_align="right",
                                        border_style="red" if over else "dim", expand=False))
            console.print()
        console.print(f"[bold]{totals['threads']} threads[/bold], {totals['posts']} posts, "
                      f"{totals['skipped']} skipped, "
                      f"[{'red' if totals['errors'] else 'green'}]{totals['errors']} errors[/], "
                      f"{totals['warnings']} warnings")
    finally:
        if out_file:
            out_file.close()


#: How a mention that notifies somebody is shown: the author sees who each platform will notify.
MENTION_STYLE = "bold magenta"


def post_text(post: Post, platform: str) -> Text:
    """The post's text with its live mentions marked: Bluesky's mention facets, and what Mastodon and X will
    read as a mention in the text (the same spans the HTML preview highlights). An `@` made inert by a word
    joiner is not marked, so the preview shows which @names reach somebody on which platform."""
    from rich.text import Text

    from crossposter.preview_html import bluesky_spans, written_out_spans

    body = Text(post.text)
    if "@" not in post.text and "＠" not in post.text:
        return body
    spans = bluesky_spans(post.text, post.facets)[0] if platform == "bluesky" else \
        written_out_spans(post.text, post.links, platform)
    for start, end, kind, _ in spans:
        if kind == "mention":
            body.stylize(MENTION_STYLE, start, end)
    return body


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
