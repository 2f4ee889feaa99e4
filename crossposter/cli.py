"""The `crossposter` command line. Option parsing only: each command lives in `crossposter.commands.*`.

click rather than typer: typer's import pulls in pydantic, which alone would
spend a third of the preview's start-up budget (measured in benchmarks/cold_start.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

PLATFORM_CHOICE = click.Choice(["bluesky", "mastodon", "x"])
_config_option = click.option(
    "--config", "-c", "config", type=click.Path(path_type=Path, dir_okay=False), default=None,
    help="Config file (default: $CROSSPOSTER_CONFIG, ./crossposter.yaml, then the user config folder).")
_platform_option = click.option(
    "--platform", "-p", "platforms", type=PLATFORM_CHOICE, multiple=True, help="Only this platform (repeatable).")


def _names(platforms: tuple[str, ...]) -> list[str] | None:
    return list(dict.fromkeys(platforms)) if platforms else None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="crossposter")
def app() -> None:
    """Cross-post Markdown thread archives to Bluesky, Mastodon and X."""


@app.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--thread", "-t", default=None, help="Only the thread with this title.")
@_platform_option
@click.option("--format", "-f", "fmt", type=click.Choice(["text", "json", "html"]), default="text",
              show_default=True, help="Output format.")
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write to this file instead of the terminal (html: default preview.html).")
@click.option("--open", "open_browser", is_flag=True, help="Open the HTML preview in a browser.")
@_config_option
def preview(paths: tuple[Path, ...], thread: str | None, platforms: tuple[str, ...], fmt: str,
            output: Path | None, open_browser: bool, config: Path | None) -> None:
    """Show how each thread splits on each platform. No credentials, no network.

    PATHS are archive files or folders of *.md files (default: threads/, or the config's archives).
    """
    from crossposter.commands.preview import run

    sys.exit(run(paths=list(paths), thread=thread, platforms=_names(platforms), fmt=fmt, output=output,
                 open_browser=open_browser, config_path=config))


@app.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--thread", "-t", required=True, help="Title of the thread (its ## heading).")
@_platform_option
@click.option("--dry-run", is_flag=True, help="Go through everything with fake platforms; the archive is not touched.")
@_config_option
def post(path: Path, thread: str, platforms: tuple[str, ...], dry_run: bool, config: Path | None) -> None:
    """Publish a thread now, or resume one that stopped."""
    from crossposter.commands.post import run

    sys.exit(run(path=path, thread=thread, platforms=_names(platforms), dry_run=dry_run, config_path=config))


@app.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--thread", "-t", required=True, help="Title of the thread.")
@click.option("--at", "at", required=True, help="ISO 8601, or 'YYYY-MM-DD HH:MM' in the configured timezone.")
@_config_option
def schedule(path: Path, thread: str, at: str, config: Path | None) -> None:
    """Schedule a thread (written into the archive)."""
    from crossposter.commands.schedule import run_schedule

    sys.exit(run_schedule(path=path, thread=thread, at=at, config_path=config))


@app.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--thread", "-t", required=True, help="Title of the thread.")
@_config_option
def unschedule(path: Path, thread: str, config: Path | None) -> None:
    """Remove a thread's schedule."""
    from crossposter.commands.schedule import run_unschedule

    sys.exit(run_unschedule(path=path, thread=thread, config_path=config))


@app.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--format", "-f", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@_config_option
def status(paths: tuple[Path, ...], fmt: str, config: Path | None) -> None:
    """Each thread: schedule, posted n/m per platform, links."""
    from crossposter.commands.status import run

    sys.exit(run(paths=list(paths), fmt=fmt, config_path=config))


@app.command()
@_config_option
def check(config: Path | None) -> None:
    """Config, credentials (a real login) and archives: everything that would stop a scheduled post."""
    from crossposter.commands.check import run

    sys.exit(run(config_path=config))


@app.command()
@_config_option
def daemon(config: Path | None) -> None:
    """Run the scheduler (the container's entrypoint)."""
    from crossposter.commands.daemon import run

    sys.exit(run(config_path=config))


@app.command()
@_config_option
def health(config: Path | None) -> None:
    """Exit 0 when the daemon's heartbeat is fresh (the container's health check)."""
    from crossposter.commands.health import run

    sys.exit(run(config_path=config))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
