"""The `crossposter` command line. Option parsing only: each command lives in `crossposter.commands.*`."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Cross-post Markdown thread archives to Bluesky, Mastodon and X.",
    pretty_exceptions_enable=False,
)


class Format(StrEnum):
    text = "text"
    json = "json"
    html = "html"


class Platform(StrEnum):
    bluesky = "bluesky"
    mastodon = "mastodon"
    x = "x"


ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Config file (default: $CROSSPOSTER_CONFIG, ./crossposter.yaml)."),
]
PlatformOpt = Annotated[
    list[Platform] | None, typer.Option("--platform", "-p", help="Only this platform (repeatable).")
]


def _names(platforms: list[Platform] | None) -> list[str] | None:
    return [p.value for p in platforms] if platforms else None


@app.command()
def preview(
    paths: Annotated[list[Path] | None, typer.Argument(help="Archive files or folders (default: threads/).")] = None,
    thread: Annotated[str | None, typer.Option("--thread", "-t", help="Only the thread with this title.")] = None,
    platform: PlatformOpt = None,
    format: Annotated[Format, typer.Option("--format", "-f", help="text, json or html.")] = Format.text,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file.")] = None,
    open_: Annotated[bool, typer.Option("--open", help="Open the HTML preview in a browser.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Show how each thread splits on each platform. No credentials, no network."""
    from crossposter.commands.preview import run

    raise typer.Exit(run(paths=paths or [], thread=thread, platforms=_names(platform), fmt=format.value,
                         output=output, open_browser=open_, config_path=config))


@app.command()
def post(
    path: Annotated[Path, typer.Argument(help="The archive file.")],
    thread: Annotated[str, typer.Option("--thread", "-t", help="Title of the thread (its ## heading).")],
    platform: PlatformOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Go through everything with fake platforms.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Publish a thread now, or resume one that stopped."""
    from crossposter.commands.post import run

    raise typer.Exit(run(path=path, thread=thread, platforms=_names(platform), dry_run=dry_run, config_path=config))


@app.command()
def schedule(
    path: Annotated[Path, typer.Argument(help="The archive file.")],
    thread: Annotated[str, typer.Option("--thread", "-t", help="Title of the thread.")],
    at: Annotated[str, typer.Option("--at", help="ISO 8601, or 'YYYY-MM-DD HH:MM' in the configured timezone.")],
    config: ConfigOpt = None,
) -> None:
    """Schedule a thread (written into the archive)."""
    from crossposter.commands.schedule import run_schedule

    raise typer.Exit(run_schedule(path=path, thread=thread, at=at, config_path=config))


@app.command()
def unschedule(
    path: Annotated[Path, typer.Argument(help="The archive file.")],
    thread: Annotated[str, typer.Option("--thread", "-t", help="Title of the thread.")],
    config: ConfigOpt = None,
) -> None:
    """Remove a thread's schedule."""
    from crossposter.commands.schedule import run_unschedule

    raise typer.Exit(run_unschedule(path=path, thread=thread, config_path=config))


@app.command()
def status(
    paths: Annotated[list[Path] | None, typer.Argument(help="Archives (default: the config's archives).")] = None,
    format: Annotated[Format, typer.Option("--format", "-f", help="text or json.")] = Format.text,
    config: ConfigOpt = None,
) -> None:
    """Each thread: schedule, posted n/m per platform, links."""
    from crossposter.commands.status import run

    raise typer.Exit(run(paths=paths or [], fmt=format.value, config_path=config))


@app.command()
def check(config: ConfigOpt = None) -> None:
    """Config, credentials (a real login) and archives: everything that would stop a scheduled post."""
    from crossposter.commands.check import run

    raise typer.Exit(run(config_path=config))


@app.command()
def daemon(config: ConfigOpt = None) -> None:
    """Run the scheduler (the container's entrypoint)."""
    from crossposter.commands.daemon import run

    raise typer.Exit(run(config_path=config))


@app.command()
def health(config: ConfigOpt = None) -> None:
    """Exit 0 when the daemon's heartbeat is fresh (the container's health check)."""
    from crossposter.commands.health import run

    raise typer.Exit(run(config_path=config))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
