"""The terminal preview: each thread, each platform's posts with `length/limit`, images, problems by line."""

from __future__ import annotations

from pathlib import Path

from crossposter.model import ThreadPlan

_NAMES = {"bluesky": "Bluesky", "mastodon": "Mastodon", "x": "X"}


def print_plans(plans: list[ThreadPlan], output: Path | None = None) -> None:
    """Problems are printed one per line, never folded (the terminal wraps them on screen): a `file:line`
    cut in two by an inserted line break could not be clicked, copied or grepped."""
    from rich.console import Console
    from rich.markup import escape
    from rich.panel import Panel
    from rich.text import Text

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
                console.print(f"\n[bold]{_NAMES.get(name, name)}[/bold] — {len(pp.posts)} post{'' if len(pp.posts) == 1 else 's'}, limit {pp.limit}")
                for i, post in enumerate(pp.posts, 1):
                    totals["posts"] += 1
                    over = post.length > pp.limit
                    count = f"[{'bold red' if over else 'green'}]{post.length}/{pp.limit}[/]"
                    body = Text(post.text)
                    for img in post.images:
                        alt = img.alt or "(no alt text)"
                        body.append(f"\n🖼  {img.src} — {alt}", style="cyan")
                    console.print(Panel(body, title=f"{i}/{len(pp.posts)}", title_align="left",
                                        subtitle=count + f" [dim]line {post.line}[/dim]", subtitle_align="right",
                                        border_style="red" if over else "dim", expand=False))
            console.print()
        from crossposter.messages import plural as n

        console.print(f"[bold]{n(totals['threads'], 'thread')}[/bold], {n(totals['posts'], 'post')}, "
                      f"{totals['skipped']} skipped, "
                      f"[{'red' if totals['errors'] else 'green'}]{n(totals['errors'], 'error')}[/], "
                      f"{n(totals['warnings'], 'warning')}")
    finally:
        if out_file:
            out_file.close()


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
