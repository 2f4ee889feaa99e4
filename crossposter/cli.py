"""The `crossposter` command line. Option parsing only: each command lives in `crossposter.commands.*`.

argparse rather than click or typer: `crossposter preview` is the first thing every
user runs and must start within a quarter of a second; click's import alone took
~20 ms of that budget and typer's (it pulls in pydantic) far more, for nothing
argparse does not do (measured in benchmarks/cold_start.py). Usage errors exit 2,
like every other command-line mistake here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

PLATFORMS = ("bluesky", "mastodon", "x")


def _file_path(value: str) -> Path:
    """A file to read or write: a folder here is a mistake worth stopping for."""
    path = Path(value)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{value!r} is a folder; give a file")
    return path


class _Version(argparse.Action):
    """`--version`, reading the installed version only when asked (importlib.metadata is slow to import)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="Show the version and exit.")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"crossposter {version('crossposter')}")
        except PackageNotFoundError:
            print("crossposter (not installed: running from a source tree)")
        parser.exit()


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", type=_file_path, default=None, metavar="FILE",
                        help="Config file (default: $CROSSPOSTER_CONFIG, ./crossposter.yaml, then the user "
                             "config folder).")


def _platform_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--platform", "-p", dest="platforms", action="append", choices=PLATFORMS, default=None,
                        help="Only this platform (repeatable).")


def _thread_option(parser: argparse.ArgumentParser, help: str, required: bool = True) -> None:
    parser.add_argument("--thread", "-t", required=required, default=None, metavar="TITLE", help=help)


def _command(sub: argparse._SubParsersAction, name: str, summary: str, details: str = "") -> argparse.ArgumentParser:
    return sub.add_parser(name, help=summary, description=f"{summary}\n\n{details}".strip(),
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crossposter",
                                     description="Cross-post Markdown thread archives to Bluesky, Mastodon and X.")
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = _command(sub, "preview", "Show how each thread splits on each platform. No credentials, no network.",
                 "PATHS are archive files or folders of *.md files (default: threads/, or the config's archives).")
    p.add_argument("paths", nargs="*", type=Path, metavar="PATHS")
    _thread_option(p, "Only the thread with this title.", required=False)
    _platform_option(p)
    p.add_argument("--format", "-f", dest="fmt", choices=("text", "json", "html"), default="text",
                   help="Output format (default: text).")
    p.add_argument("--output", "-o", type=_file_path, default=None, metavar="FILE",
                   help="Write to this file instead of the terminal (html: default preview.html).")
    p.add_argument("--open", dest="open_browser", action="store_true", help="Open the HTML preview in a browser.")
    p.add_argument("--force", action="store_true",
                   help="Replace FILE even when it is not an earlier preview (never an archive being read).")
    _config_option(p)

    p = _command(sub, "post", "Publish a thread now, or resume one that stopped.")
    p.add_argument("path", type=Path, metavar="PATH")
    _thread_option(p, "Title of the thread (its ## heading).")
    _platform_option(p)
    p.add_argument("--dry-run", action="store_true",
                   help="Go through everything with fake platforms; the archive is not touched.")
    _config_option(p)

    p = _command(sub, "schedule", "Schedule a thread (written into the archive).")
    p.add_argument("path", type=Path, metavar="PATH")
    _thread_option(p, "Title of the thread.")
    p.add_argument("--at", required=True, help="ISO 8601, or 'YYYY-MM-DD HH:MM' in the configured timezone.")
    _config_option(p)

    p = _command(sub, "unschedule", "Remove a thread's schedule.")
    p.add_argument("path", type=Path, metavar="PATH")
    _thread_option(p, "Title of the thread.")
    _config_option(p)

    p = _command(sub, "status", "Each thread: schedule, posted n/m per platform, links.")
    p.add_argument("paths", nargs="*", type=Path, metavar="PATHS")
    p.add_argument("--format", "-f", dest="fmt", choices=("text", "json"), default="text",
                   help="Output format (default: text).")
    _config_option(p)

    p = _command(sub, "check", "Config, credentials (a real login) and archives: everything that would stop a "
                               "scheduled post.")
    _config_option(p)
    p = _command(sub, "daemon", "Run the scheduler (the container's entrypoint).")
    _config_option(p)
    p = _command(sub, "health", "Exit 0 when the daemon's heartbeat is fresh (the container's health check).")
    _config_option(p)
    return parser


def _names(platforms: list[str] | None) -> list[str] | None:
    return list(dict.fromkeys(platforms)) if platforms else None


def run(argv: Sequence[str] | None = None) -> int:
    """Parse `argv` and run the command; its exit code (argparse itself exits 2 on a usage error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    cmd = args.command
    if cmd is None:
        parser.print_help()
        return 0
    if cmd == "preview":
        from crossposter.commands.preview import run as preview

        return preview(paths=list(args.paths), thread=args.thread, platforms=_names(args.platforms), fmt=args.fmt,
                       output=args.output, open_browser=args.open_browser, config_path=args.config,
                       force=args.force)
    if cmd == "post":
        from crossposter.commands.post import run as post

        return post(path=args.path, thread=args.thread, platforms=_names(args.platforms), dry_run=args.dry_run,
                    config_path=args.config)
    if cmd == "schedule":
        from crossposter.commands.schedule import run_schedule

        return run_schedule(path=args.path, thread=args.thread, at=args.at, config_path=args.config)
    if cmd == "unschedule":
        from crossposter.commands.schedule import run_unschedule

        return run_unschedule(path=args.path, thread=args.thread, config_path=args.config)
    if cmd == "status":
        from crossposter.commands.status import run as status

        return status(paths=list(args.paths), fmt=args.fmt, config_path=args.config)
    if cmd == "check":
        from crossposter.commands.check import run as check

        return check(config_path=args.config)
    if cmd == "daemon":
        from crossposter.commands.daemon import run as daemon

        return daemon(config_path=args.config)
    from crossposter.commands.health import run as health

    return health(config_path=args.config)


def _excepthook(*exc_info: object) -> None:
    """A traceback nothing caught is printed redacted (imported only then: preview must start fast)."""
    from crossposter.redact import excepthook

    try:
        from crossposter.config import secret_values

        secret_values()  # registers them, for a command that had not read them yet
    except Exception:  # the traceback is printed anyway, redacted of what is known
        pass
    excepthook(*exc_info)  # type: ignore[arg-type]


def main() -> None:
    sys.excepthook = _excepthook
    sys.exit(run())


if __name__ == "__main__":
    main()
